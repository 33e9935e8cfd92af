package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// The loop is: for each epoch, trainEpoch; then either saveInterrupted
// (Ctrl-C) or endEpoch (validation, checkpoint, early stopping); after the
// last epoch, finalTest on the best epoch's weights.

// throughput counts the samples and the time spent in training steps
// (evaluation excluded), over every epoch this process ran.
type throughput struct {
	samples int
	time    time.Duration
}

// epochLoss is the mean training loss of an epoch's steps.
type epochLoss struct {
	sum float64
	n   int
}

func (l epochLoss) mean() float64 { return l.sum / math.Max(float64(l.n), 1) }

func (r *run) loop(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	src, err := r.trainSource()
	if err != nil {
		return nil, err
	}
	perEpoch := src.NumBatches()
	if perEpoch == 0 {
		return nil, fmt.Errorf("the training split has no full batch (rows < train.batch_size with train.drop_last)")
	}
	total := perEpoch * cfg.Train.Epochs
	res := &Result{Out: cfg.Out, Scenarios: r.vocabs.Schema().ScenarioNames(), UsersWithoutKnowledge: r.missing, BestEpoch: r.state.BestEpoch}
	res.WorldSize, res.GlobalBatch = r.world(), r.world()*cfg.Train.BatchSize
	epochs, err := openLog(r, rundir.Dir.AppendEpochs)
	if err != nil {
		return nil, err
	}
	defer epochs.Close()
	stepRecords, err := openLog(r, rundir.Dir.AppendSteps)
	if err != nil {
		return nil, err
	}
	steps := &stepLog{log: stepRecords, every: max(cfg.Train.LogEvery, 1)}
	defer steps.log.Close()
	prog := newProgress(r.opts, r.log, total, r.state.Step, cfg.Train.LogEvery)
	defer prog.finish()

	var tp throughput
	if r.stoppedEarly() && r.state.EpochsDone < cfg.Train.Epochs {
		es := cfg.Train.EarlyStopping
		fmt.Fprintf(r.log, "no more epochs: after epoch %d %s had not improved for %d epochs (best: epoch %d), where a run of %d epochs from the start stops early; a larger train.early_stopping.patience lets it go on\n",
			r.state.EpochsDone, es.Metric, r.state.SinceBest, r.state.BestEpoch, cfg.Train.Epochs)
	}
	for r.state.EpochsDone < cfg.Train.Epochs && !r.stoppedEarly() {
		loss, err := r.trainEpoch(ctx, src, total, prog, &tp, steps)
		if err != nil {
			return res, err
		}
		if r.stopping(ctx) {
			prog.finish()
			return res, r.saveInterrupted(res)
		}
		prog.pause()
		stop, err := r.endEpoch(loss, epochs)
		if err != nil {
			return res, err
		}
		if stop {
			break
		}
	}
	prog.finish()
	res.Steps, res.Epochs, res.BestEpoch = r.state.Step, r.state.EpochsDone, r.state.BestEpoch
	if tp.time > 0 {
		res.Seconds = tp.time.Seconds()
		res.SamplesPerSec = float64(tp.samples) / tp.time.Seconds()
	}
	if err := r.finalTest(res); err != nil {
		return res, err
	}
	if !r.rank0() {
		return res, nil
	}
	return res, rundir.Dir(cfg.Out).WriteSummary(res)
}

// trainEpoch runs the steps of the epoch in progress from its next batch
// until the epoch ends or ctx is cancelled (after the step in flight).
func (r *run) trainEpoch(ctx context.Context, src data.Source, total int, prog *progress, tp *throughput, steps *stepLog) (loss epochLoss, err error) {
	epoch := r.state.EpochsDone + 1
	it := src.Epoch(epoch-1, r.state.Batch) // the data numbers its shuffles from 0
	defer it.Close()
	start := time.Now()
	defer func() { tp.time += time.Since(start) }()
	defer func() { // the epoch's last, partial interval
		if ferr := steps.flush(r.state.Step, epoch, r.state.LR); err == nil {
			err = ferr
		}
	}()
	for !r.stopping(ctx) {
		b, ok := it.Next()
		if !ok {
			break
		}
		value, err := r.step(b, total)
		n := b.Size
		it.Release(b)
		if err != nil {
			if errors.Is(err, ErrNonFinite) {
				return loss, fmt.Errorf("epoch %d, step %d: %w; the last good checkpoint is in %s", epoch, r.state.Step+1, err, checkpointRoot(r.cfg.Out))
			}
			return loss, err
		}
		r.state.Step++
		r.state.Batch++
		tp.samples += n * r.world() // every rank's batch k has the same size
		loss.sum += value
		loss.n++
		if err := steps.add(r.state.Step, epoch, value, r.state.LR); err != nil {
			return loss, err
		}
		prog.step(r.state.Step, epoch, value, tp.samples, tp.time+time.Since(start))
		if r.opts.afterStep != nil {
			r.opts.afterStep(r.state.Step)
		}
	}
	return loss, it.Err()
}

// saveInterrupted checkpoints a run stopped by Ctrl-C where it is (the step
// in flight finished), so that --resume continues from the next batch.
func (r *run) saveInterrupted(res *Result) error {
	res.Interrupted = true
	res.Steps = r.state.Step
	if err := r.checkpoint(false); err != nil {
		return err
	}
	fmt.Fprintf(r.log, "interrupted at epoch %d, batch %d; checkpoint saved, resume with --resume\n", r.state.EpochsDone+1, r.state.Batch)
	return nil
}

// endEpoch closes the epoch in progress: it validates, logs a metrics line,
// checkpoints (as "best" when the watched metric improved) and reports
// whether early stopping ends the run.
func (r *run) endEpoch(loss epochLoss, epochs *rundir.Log[rundir.Epoch]) (stop bool, err error) {
	r.state.EpochsDone++
	epoch := r.state.EpochsDone
	r.state.Batch = 0
	valid, err := r.evaluate(data.Valid)
	if err != nil {
		return false, err
	}
	r.lastValid = valid
	improved := r.watch(valid, epoch)
	if valid != nil {
		fmt.Fprintf(r.log, "epoch %d/%d  train loss %.4f  valid:\n", epoch, r.cfg.Train.Epochs, loss.mean())
		valid.Table(r.log)
	}
	if err := epochs.Append(rundir.Epoch{Epoch: epoch, Step: r.state.Step, TrainLoss: loss.mean(), LR: r.state.LR, Valid: valid}); err != nil {
		return false, err
	}
	if err := r.checkpoint(improved); err != nil {
		return false, err
	}
	es := r.cfg.Train.EarlyStopping
	switch {
	case epoch == r.cfg.Train.Epochs:
		if r.state.BestEpoch != epoch && r.state.BestEpoch > 0 {
			fmt.Fprintf(r.log, "trained all %d epochs; the best by %s is epoch %d, and the test uses its weights\n", epoch, es.Metric, r.state.BestEpoch)
		}
	case r.stoppedEarly():
		fmt.Fprintf(r.log, "early stopping after epoch %d of %d: %s has not improved for %d epochs (best: epoch %d)\n",
			epoch, r.cfg.Train.Epochs, es.Metric, es.Patience, r.state.BestEpoch)
		return true, nil
	}
	return false, nil
}

// stoppedEarly reports whether the watched metric has gone
// train.early_stopping.patience epochs without improving.
func (r *run) stoppedEarly() bool {
	p := r.cfg.Train.EarlyStopping.Patience
	return p > 0 && r.state.SinceBest >= p
}

// watch records the epoch's validation in the early-stopping state and
// reports whether it is the best so far. Without a validation split the
// newest model is the best one.
func (r *run) watch(valid *metrics.Report, epoch int) (improved bool) {
	if valid == nil {
		r.state.BestEpoch = epoch
		return true
	}
	watched, _ := parseMetric(r.cfg.Train.EarlyStopping.Metric) // checked by Validate
	v, ok := watched.value(*valid)
	if !ok {
		return false
	}
	if r.state.BestMetric != nil && !watched.Better(v, *r.state.BestMetric) {
		r.state.SinceBest++
		return false
	}
	r.state.BestMetric, r.state.BestEpoch, r.state.SinceBest = &v, epoch, 0
	return true
}

// finalTest restores the best epoch's weights and computes the validation
// and test metrics of the result. When the best epoch is the last one this
// process validated, its weights are those in memory and its validation
// stands: neither is done twice.
func (r *run) finalTest(res *Result) error {
	var bestDir string
	if r.rank0() {
		var err error
		if bestDir, err = CheckpointDir(r.cfg.Out, "best"); err != nil {
			return err
		}
	}
	var err error
	if r.ranks == nil && r.lastValid != nil && r.state.BestEpoch == r.state.EpochsDone {
		// The weights in memory are the best epoch's, validated at its end.
		res.Valid = r.lastValid
	} else {
		if err := r.restoreBest(bestDir); err != nil {
			return err
		}
		if res.Valid, err = r.evaluate(data.Valid); err != nil {
			return err
		}
	}
	if r.testPredictions, err = r.predictions(data.Test); err != nil {
		return err
	}
	if r.testPredictions != nil {
		test := r.testPredictions.Compute(res.Scenarios)
		res.Test = &test
	}
	if res.Test != nil {
		fmt.Fprintf(r.log, "test (best epoch %d, %.0f samples/s in training):\n", res.BestEpoch, res.SamplesPerSec)
		res.Test.Table(r.log)
	}
	return nil
}

// openLog opens one of the run's logs for appending (so that a resumed run
// continues it) on rank 0; the other ranks write none (a nil log).
func openLog[T any](r *run, open func(rundir.Dir) (*rundir.Log[T], error)) (*rundir.Log[T], error) {
	if !r.rank0() {
		return nil, nil
	}
	return open(rundir.Dir(r.cfg.Out))
}

// stepLog appends to steps.jsonl the mean training loss of every
// train.log_every steps and the learning rate, for the report's curves.
type stepLog struct {
	log   *rundir.Log[rundir.Step]
	every int
	sum   float64
	n     int
}

func (l *stepLog) add(step, epoch int, loss, lr float64) error {
	l.sum += loss
	l.n++
	if step%l.every != 0 {
		return nil
	}
	return l.flush(step, epoch, lr)
}

// flush writes the interval so far, if it has steps.
func (l *stepLog) flush(step, epoch int, lr float64) error {
	if l.n == 0 {
		return nil
	}
	rec := rundir.Step{Step: step, Epoch: epoch, Loss: l.sum / float64(l.n), LR: lr}
	l.sum, l.n = 0, 0
	return l.log.Append(rec)
}
