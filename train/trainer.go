package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/safetensors"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// RunOptions are how a caller drives Train (not part of the saved configuration).
type RunOptions struct {
	Resume   bool      // continue from <out>/checkpoints/latest
	Log      io.Writer // progress and tables; nil discards
	Progress bool      // a progress bar (stderr is a terminal) instead of periodic log lines

	afterStep func(step int) // tests: called after every optimizer step
}

// Result is what a run produced.
type Result struct {
	Out                   string          `json:"out"`
	BestEpoch             int             `json:"best_epoch"`
	Steps                 int             `json:"steps"`
	Epochs                int             `json:"epochs_run"`
	Valid                 *metrics.Report `json:"valid,omitempty"` // at the best epoch
	Test                  *metrics.Report `json:"test,omitempty"`
	SamplesPerSec         float64         `json:"train_samples_per_sec"`
	Seconds               float64         `json:"train_seconds"`
	Interrupted           bool            `json:"interrupted"`
	UsersWithoutKnowledge int             `json:"users_without_knowledge,omitempty"`
	Baseline              *Result         `json:"baseline,omitempty"`
	Scenarios             []string        `json:"scenarios"`
}

// ErrNonFinite marks a run stopped by a NaN or infinite loss.
var ErrNonFinite = errors.New("non-finite loss")

// run is one training run's live state, all of it owned by the torch goroutine.
type run struct {
	cfg     Config
	opts    RunOptions
	dev     torch.Device
	splits  *data.Splits
	vocabs  *data.Vocabs
	model   *model.Model
	opt     *torch.Optimizer
	params  []*torch.Tensor
	state   State
	group   *grouper
	log     io.Writer
	missing int
}

// Setup prepares the torch runtime for the calling goroutine: it locks it
// to its OS thread (libtorch's grad mode and device are thread-local), sets
// thread counts and checks the libtorch version and device.
func Setup(cfg *Config) (torch.Device, error) {
	runtime.LockOSThread()
	if err := torch.CheckVersion(); err != nil {
		return torch.Device{}, err
	}
	if err := torch.SetUpProcess(cfg.Threads); err != nil {
		return torch.Device{}, err
	}
	return torch.ResolveDevice(cfg.Device)
}

// Train runs the configured training: data, knowledge, model, the loop with
// per-epoch validation, early stopping and checkpoints, then the test
// metrics of the best epoch. With train.baseline it then trains the same
// backbone without meta networks into <out>/baseline for comparison.
func Train(ctx context.Context, cfg Config, opts RunOptions) (*Result, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res, err := trainOne(ctx, cfg, opts)
	if err != nil || res.Interrupted || !cfg.Train.Baseline || cfg.Model.Meta.Levels == "none" {
		return res, err
	}
	base := cfg
	base.Model.Meta.Levels = "none"
	base.Train.Baseline = false
	base.Out = filepath.Join(cfg.Out, "baseline")
	fmt.Fprintf(opts.Log, "\nbaseline: the same %s backbone without meta networks\n", cfg.Model.Backbone)
	baseOpts := opts
	baseOpts.Resume = opts.Resume && hasRun(base.Out) // else the interruption came before the baseline started
	baseRes, err := trainOne(ctx, base, baseOpts)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	res.Baseline = baseRes
	if res.Test != nil && baseRes.Test != nil {
		fmt.Fprintf(opts.Log, "\ntest AUC, %s without vs with LLM4MSR meta networks (%s):\n", cfg.Model.Backbone, cfg.Model.Meta.Levels)
		metrics.CompareTable(opts.Log, []string{"bare " + cfg.Model.Backbone, "LLM4MSR"}, []metrics.Report{*baseRes.Test, *res.Test})
	}
	return res, writeJSON(filepath.Join(cfg.Out, "summary.json"), res)
}

func trainOne(ctx context.Context, cfg Config, opts RunOptions) (*Result, error) {
	dev, err := Setup(&cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, opts: opts, dev: dev, log: opts.Log}
	var resumeFrom *Checkpoint
	if !opts.Resume {
		if hasRun(cfg.Out) {
			return nil, fmt.Errorf("%s already holds a run (%s); continue it with --resume, or train into another --out", cfg.Out, checkpointRoot(cfg.Out))
		}
	} else {
		dir, err := CheckpointDir(cfg.Out, "latest")
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if resumeFrom, err = ReadCheckpoint(dir); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if err := sameRun(resumeFrom.Config, cfg); err != nil {
			return nil, fmt.Errorf("resume %s: %w", dir, err)
		}
	}
	if err := r.prepare(ctx, resumeFrom); err != nil {
		return nil, err
	}
	defer r.close()
	if err := writeFile(filepath.Join(cfg.Out, "config.yaml"), r.cfg.Marshal); err != nil {
		return nil, err
	}
	return r.loop(ctx)
}

// sameRun refuses to resume into a different configuration, which would silently mix two runs.
func sameRun(saved, now Config) error {
	a, _ := saved.Marshal()
	b, _ := now.Marshal()
	if string(a) != string(b) {
		return fmt.Errorf("the configuration differs from the checkpoint's (%s); resume with the same config, or start a new --out", configFile)
	}
	return nil
}

func (r *run) prepare(ctx context.Context, ck *Checkpoint) error {
	cfg := &r.cfg
	if err := torch.ManualSeed(uint64(cfg.Seed)); err != nil {
		return err
	}
	dcfg := cfg.Data
	dcfg.Seed = cfg.Seed // one seed drives the data, the shuffle and libtorch
	var lopts []data.Option
	if ck != nil {
		lopts = append(lopts, data.WithVocabs(ck.Vocabs))
	}
	fmt.Fprintf(r.log, "loading data (%s)\n", dcfg.Format)
	sp, err := data.Load(dcfg, lopts...)
	if err != nil {
		return err
	}
	r.splits, r.vocabs = sp, sp.Vocabs
	if sp.Skipped.Count > 0 {
		fmt.Fprintf(r.log, "skipped %d bad rows (data.skip_bad_rows); first: %v\n", sp.Skipped.Count, sp.Skipped.First)
	}
	var know *model.Knowledge
	if cfg.Model.Meta.Levels != "none" {
		store, stats, err := BuildKnowledge(ctx, cfg, sp, progressWriter(r.opts))
		if err != nil {
			return fmt.Errorf("knowledge: %w", err)
		}
		fmt.Fprintf(r.log, "knowledge: %d prompts (%d stored before, %d encoded) with %s in %s\n", stats.Prompts, stats.Stored, stats.Encoded, cfg.Knowledge.Encoder, store.Dir())
		know, r.missing, err = ModelKnowledge(store, sp.Vocabs, r.dev)
		store.Close()
		if err != nil {
			return err
		}
		if r.missing > 0 {
			fmt.Fprintf(r.log, "knowledge: %d users have no vector and use the learned fallback\n", r.missing)
		}
	}
	m, err := buildModel(cfg.Model, sp.Vocabs, know, r.dev)
	if err != nil {
		return err
	}
	r.model = m
	fmt.Fprintf(r.log, "model: %s, meta networks %s, %d parameters, on %s\n", cfg.Model.Backbone, cfg.Model.Meta.Levels, m.Store.NumParameters(), r.dev)
	if err := r.newOptimizer(); err != nil {
		return err
	}
	r.group = newGrouper(sp.Vocabs.Schema(), r.dev)
	r.state = State{Seed: cfg.Seed, BestEpoch: -1, TorchVersion: torch.CompiledVersion(), Backbone: cfg.Model.Backbone, Meta: cfg.Model.Meta.Levels}
	if ck != nil {
		if err := restoreModel(ck.Dir, r); err != nil {
			return err
		}
		if err := restoreOptimizer(ck.Dir, r, ck.State.OptimizerSteps); err != nil {
			return err
		}
		r.state = ck.State
		fmt.Fprintf(r.log, "resumed from %s at epoch %d, batch %d (step %d)\n", ck.Dir, r.state.Epoch+1, r.state.Batch, r.state.Step)
	}
	return nil
}

// buildModel creates the configured model for data mapped with vocabs; on
// failure it frees the knowledge it was given.
func buildModel(cfg model.Config, vocabs *data.Vocabs, know *model.Knowledge, dev torch.Device) (*model.Model, error) {
	spec := model.Spec{Numeric: len(vocabs.Numeric), Scenarios: len(vocabs.Scenarios)}
	for _, n := range vocabs.Sizes() {
		spec.VocabSizes = append(spec.VocabSizes, int64(n))
	}
	m, err := model.New(cfg, spec, know, dev)
	if err != nil && know != nil {
		know.Close()
	}
	return m, err
}

func (r *run) newOptimizer() error {
	kind, err := torch.ParseOptimizer(r.cfg.Train.Optimizer)
	if err != nil {
		return err
	}
	o := torch.DefaultOptimOptions(kind)
	o.LR = r.cfg.Train.LR
	o.WeightDecay = r.cfg.Train.WeightDecay
	o.Momentum = r.cfg.Train.Momentum
	opt, err := torch.NewOptimizer(kind)
	if err != nil {
		return err
	}
	names, params := r.model.Store.ParameterTensors()
	if err := opt.AddGroup(names, params, o); err != nil {
		opt.Close()
		return err
	}
	r.opt, r.params = opt, params
	return nil
}

func (r *run) close() {
	if r.opt != nil {
		r.opt.Close()
	}
	if r.model != nil {
		r.model.Close()
	}
}

func (r *run) trainSource() (data.Source, error) {
	t := r.cfg.Train
	return r.splits.Source(data.Train, data.BatchOptions{
		Size: t.BatchSize, Shuffle: true, Seed: r.cfg.Seed, DropLast: t.DropLast, Workers: t.LoaderWorkers,
	})
}

// stepSeed makes each step's randomness (dropout) a function of the seed
// and the step alone, so a resumed run draws what an uninterrupted one would.
// It mixes them with SplitMix64's finaliser.
func stepSeed(seed int64, step int) uint64 {
	z := uint64(seed)*0x9e3779b97f4a7c15 + uint64(step) + 1
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

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
	// Appended to, so that a resumed run continues the same log.
	metricsLog, err := os.OpenFile(filepath.Join(cfg.Out, "metrics.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer metricsLog.Close()
	watched, _ := parseMetric(cfg.Train.EarlyStopping.Metric)
	var samples int
	var trainTime time.Duration
	prog := newProgress(r.opts, r.log, total, r.state.Step, cfg.Train.LogEvery)
	defer prog.finish()

	for r.state.Epoch < cfg.Train.Epochs {
		epoch := r.state.Epoch
		it := src.Epoch(epoch, r.state.Batch)
		var lossSum float64
		var lossN int
		start := time.Now()
		for {
			if ctx.Err() != nil {
				break
			}
			b, ok := it.Next()
			if !ok {
				break
			}
			loss, err := r.step(b, total)
			n := b.Size
			it.Release(b)
			if err != nil {
				it.Close()
				if errors.Is(err, ErrNonFinite) {
					return res, fmt.Errorf("epoch %d, step %d: %w; the last good checkpoint is in %s", epoch+1, r.state.Step+1, err, checkpointRoot(cfg.Out))
				}
				return res, err
			}
			r.state.Step++
			r.state.Batch++
			samples += n
			lossSum += loss
			lossN++
			prog.step(r.state.Step, epoch, loss, samples, trainTime+time.Since(start))
			if r.opts.afterStep != nil {
				r.opts.afterStep(r.state.Step)
			}
		}
		it.Close()
		trainTime += time.Since(start)
		if err := it.Err(); err != nil {
			return res, err
		}
		if ctx.Err() != nil {
			// Ctrl-C: the step in flight finished; save where we are and stop.
			prog.finish()
			res.Interrupted = true
			if err := saveCheckpoint(cfg.Out, r, false); err != nil {
				return res, err
			}
			fmt.Fprintf(r.log, "interrupted at epoch %d, batch %d; checkpoint saved, resume with --resume\n", epoch+1, r.state.Batch)
			res.Steps = r.state.Step
			return res, nil
		}
		// End of epoch: validate, log, checkpoint, early stopping.
		prog.pause()
		r.state.Epoch++
		r.state.Batch = 0
		valid, err := r.evaluate(data.Valid)
		if err != nil {
			return res, err
		}
		line := map[string]any{"epoch": epoch + 1, "step": r.state.Step, "train_loss": lossSum / math.Max(float64(lossN), 1), "lr": r.state.LR}
		improved := false
		if valid != nil {
			line["valid"] = valid
			if v, ok := watched.value(*valid); ok {
				if r.state.BestMetric == nil || watched.better(v, *r.state.BestMetric) {
					r.state.BestMetric, r.state.BestEpoch, r.state.SinceBest, improved = &v, epoch, 0, true
				} else {
					r.state.SinceBest++
				}
			}
			fmt.Fprintf(r.log, "epoch %d/%d  train loss %.4f  valid:\n", epoch+1, cfg.Train.Epochs, lossSum/math.Max(float64(lossN), 1))
			valid.Table(r.log)
		} else {
			improved = true // nothing to compare: the newest model is the best one
			r.state.BestEpoch = epoch
		}
		if err := json.NewEncoder(metricsLog).Encode(line); err != nil {
			return res, err
		}
		if err := saveCheckpoint(cfg.Out, r, improved); err != nil {
			return res, err
		}
		if p := cfg.Train.EarlyStopping.Patience; p > 0 && r.state.SinceBest >= p {
			fmt.Fprintf(r.log, "early stopping: %s has not improved for %d epochs\n", cfg.Train.EarlyStopping.Metric, p)
			break
		}
	}
	prog.finish()
	res.Steps, res.Epochs, res.BestEpoch = r.state.Step, r.state.Epoch, r.state.BestEpoch
	if trainTime > 0 {
		res.Seconds = trainTime.Seconds()
		res.SamplesPerSec = float64(samples) / trainTime.Seconds()
	}
	// Restore the best epoch's weights for the final metrics.
	bestDir, err := CheckpointDir(cfg.Out, "best")
	if err != nil {
		return res, err
	}
	if err := restoreModel(bestDir, r); err != nil {
		return res, err
	}
	if res.Valid, err = r.evaluate(data.Valid); err != nil {
		return res, err
	}
	if res.Test, err = r.evaluate(data.Test); err != nil {
		return res, err
	}
	if res.Test != nil {
		fmt.Fprintf(r.log, "test (best epoch %d, %.0f samples/s in training):\n", res.BestEpoch+1, res.SamplesPerSec)
		res.Test.Table(r.log)
	}
	return res, writeJSON(filepath.Join(cfg.Out, "summary.json"), res)
}

// step runs one optimizer step on a batch and returns its loss.
func (r *run) step(b *data.Batch, total int) (float64, error) {
	scope := torch.NewScope()
	defer scope.Close()
	lr := r.cfg.Train.Schedule.lrAt(r.cfg.Train.LR, r.state.Step, total)
	if lr != r.state.LR {
		if err := r.opt.SetLR(lr); err != nil {
			return 0, err
		}
		r.state.LR = lr
	}
	if err := torch.ManualSeed(stepSeed(r.cfg.Seed, r.state.Step)); err != nil {
		return 0, err
	}
	r.model.Store.SetTraining(true)
	r.group.group(b)
	batch, label := r.group.tensors()
	logits := r.model.Forward(batch)
	loss := torch.BCEWithLogits(logits, label, nil, nil, torch.ReduceMean)
	value, err := loss.Item()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return 0, fmt.Errorf("%w (%v)", ErrNonFinite, value)
	}
	if err := loss.Backward(); err != nil {
		return 0, err
	}
	if r.cfg.Train.ClipNorm > 0 {
		if _, err := torch.ClipGradNorm(r.params, r.cfg.Train.ClipNorm); err != nil {
			return 0, err
		}
	}
	if err := r.opt.Step(); err != nil {
		return 0, err
	}
	return value, r.opt.ZeroGrad()
}

func writeJSON(path string, v any) error {
	return writeFile(path, func() ([]byte, error) { return json.MarshalIndent(v, "", "  ") })
}

// writeFile replaces path atomically (temporary file, fsync, rename) with what render returns.
func writeFile(path string, render func() ([]byte, error)) error {
	b, err := render()
	if err != nil {
		return err
	}
	return safetensors.AtomicWriteFile(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
