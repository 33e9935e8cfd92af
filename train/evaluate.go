package train

import (
	"fmt"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/ddp"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// scorer runs a model in evaluation mode over data mapped with its
// vocabularies; training (validation) and a loaded model (eval, predict) share it.
type scorer struct {
	model   *model.Model
	group   *grouper
	vocabs  *data.Vocabs
	batches data.BatchOptions // evaluation batches: train.eval_batch_size, train.loader_workers
	ranks   *ddp.Group        // scores a shard and gathers the rest (nil: alone)
}

func evalBatches(t Options) data.BatchOptions {
	return data.BatchOptions{Size: t.EvalBatchSize, Workers: t.LoaderWorkers}
}

// evaluate computes metrics on a split; nil when the split has no rows.
func (s scorer) evaluate(sp *data.Splits, part data.Part) (*metrics.Report, error) {
	acc, err := s.predictions(sp, part)
	if acc == nil || err != nil {
		return nil, err
	}
	rep := acc.Compute(s.vocabs.Schema().ScenarioNames())
	return &rep, nil
}

// predictions scores a split in its order; nil when the split has no rows.
func (s scorer) predictions(sp *data.Splits, part data.Part) (*metrics.Accumulator, error) {
	src, err := sp.Source(part, s.batches)
	if err != nil {
		return nil, err
	}
	if src.NumBatches() == 0 {
		return nil, nil
	}
	var acc metrics.Accumulator
	if s.ranks != nil {
		err = s.evaluateSharded(sp, part, src.NumBatches(), &acc)
	} else {
		err = s.score(src, func(g *grouper, probs []float32) error {
			return acc.Add(g.scenario, g.user, g.label, probs)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", part, err)
	}
	return &acc, nil
}

// probabilities groups a batch and returns its click probabilities on the
// model's device (evaluation mode, no grad: score's setting).
func (s scorer) probabilities(b *data.Batch) *torch.Tensor {
	s.group.group(b)
	batch, _ := s.group.tensors()
	return s.model.Forward(batch).Sigmoid()
}

// score runs the model frozen (evaluation mode, the meta layers computed
// once for every scenario and user) over a source and hands each grouped
// batch with its click probabilities to sink.
func (s scorer) score(src data.Source, sink func(g *grouper, probs []float32) error) error {
	thaw, err := s.model.Freeze()
	if err != nil {
		return err
	}
	defer thaw()
	return s.scoreFrozen(src, sink)
}

// scoreTable returns the click probability of every row of t, in row
// order, on a model the caller has frozen.
func (s scorer) scoreTable(t *data.Table) ([]float32, error) {
	o := s.batches
	o.Size = max(min(o.Size, t.Len()), 1) // no buffers larger than the table
	src, err := data.NewBatcher(t, o)
	if err != nil {
		return nil, err
	}
	scores := make([]float32, t.Len())
	err = s.scoreFrozen(src, func(g *grouper, probs []float32) error {
		for i, row := range g.row {
			scores[row] = probs[i]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return scores, nil
}

// scoreFrozen is score on a model the caller has frozen.
func (s scorer) scoreFrozen(src data.Source, sink func(g *grouper, probs []float32) error) (err error) {
	it := src.Epoch(0, 0)
	defer it.Close()
	torch.NoGrad(func() {
		for {
			b, ok := it.Next()
			if !ok {
				break
			}
			var probs []float32
			func() {
				scope := torch.NewScope()
				defer scope.Close()
				probs, err = s.probabilities(b).Float32s()
			}()
			it.Release(b)
			if err == nil {
				err = sink(s.group, probs)
			}
			if err != nil {
				return
			}
		}
		err = it.Err()
	})
	return err
}

// ScoredRow is a row a loaded model scored: its user (vocabulary index),
// its scenario and its click probability.
type ScoredRow struct {
	User, Scenario int64
	Prob           float32
}

// ScoreTables scores every row of the tables (mapped with the model's
// vocabularies) in a fixed order: the tables as given, each in evaluation
// batches without shuffling, grouped by scenario within a batch, so that
// two calls line up row by row.
func (l *Loaded) ScoreTables(tables ...*data.Table) ([]ScoredRow, error) {
	s := l.scorer()
	var out []ScoredRow
	for _, t := range tables {
		src, err := data.NewBatcher(t, s.batches)
		if err != nil {
			return nil, err
		}
		err = s.score(src, func(g *grouper, probs []float32) error {
			for i, p := range probs {
				out = append(out, ScoredRow{User: g.user[i], Scenario: g.scenario[i], Prob: p})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// watchedMetric is the validation metric early stopping watches.
type watchedMetric struct {
	scenario string // "" for overall
	metrics.Metric
}

func parseMetric(s string) (watchedMetric, error) {
	parts := strings.Split(s, ".")
	var w watchedMetric
	var name string
	switch {
	case len(parts) == 2 && parts[0] == "overall":
		name = parts[1]
	case len(parts) == 3 && parts[0] == "scenario" && parts[1] != "":
		w.scenario, name = parts[1], parts[2]
	default:
		return w, fmt.Errorf("%q: want overall.<metric> or scenario.<name>.<metric>", s)
	}
	m, ok := metrics.Lookup(name)
	if !ok {
		return w, fmt.Errorf("%q: the metric must be %s", s, metrics.MetricNames())
	}
	w.Metric = m
	return w, nil
}

// value reads the metric from a report; false when it is undefined there.
func (w watchedMetric) value(r metrics.Report) (float64, bool) {
	if w.scenario == "" {
		return w.Of(r.Overall)
	}
	for _, e := range r.PerScenario {
		if e.Scenario == w.scenario {
			return w.Of(e)
		}
	}
	return 0, false
}

// scoredBatches are a rank's scored evaluation batches, flattened.
type scoredBatches struct {
	sizes        []int64
	scenarioUser []int64   // per sample: scenario, user
	labelProb    []float32 // per sample: label, probability
}

// evaluateSharded scores this rank's whole batches (k mod ranks == rank),
// gathers every rank's, and adds them to acc in one process's batch order,
// so that every rank computes exactly the metrics one process would.
func (s scorer) evaluateSharded(sp *data.Splits, part data.Part, total int, acc *metrics.Accumulator) error {
	o := s.batches
	o.Shard = data.Shard{Rank: s.ranks.Rank(), Count: s.ranks.Size(), WholeBatches: true}
	src, err := sp.Source(part, o)
	if err != nil {
		return err
	}
	var mine scoredBatches
	err = s.score(src, func(g *grouper, probs []float32) error {
		mine.sizes = append(mine.sizes, int64(len(probs)))
		for i, p := range probs {
			mine.scenarioUser = append(mine.scenarioUser, g.scenario[i], g.user[i])
			mine.labelProb = append(mine.labelProb, g.label[i], p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	scope := torch.NewScope()
	defer scope.Close()
	gather := func(t *torch.Tensor) (*torch.Tensor, []int64, error) {
		if s.model.Store.Device.IsCUDA() { // NCCL gathers device tensors
			t = t.ToDevice(s.model.Store.Device, false)
		}
		return s.ranks.AllGather(t)
	}
	sizesT, batchCounts, err := gather(torch.FromSlice(mine.sizes))
	if err != nil {
		return err
	}
	suT, _, err := gather(torch.FromSlice(mine.scenarioUser, int64(len(mine.scenarioUser)/2), 2))
	if err != nil {
		return err
	}
	lpT, _, err := gather(torch.FromSlice(mine.labelProb, int64(len(mine.labelProb)/2), 2))
	if err != nil {
		return err
	}
	sizes, err := sizesT.Int64s()
	if err != nil {
		return err
	}
	su, err := suT.Int64s()
	if err != nil {
		return err
	}
	lp, err := lpT.Float32s()
	if err != nil {
		return err
	}
	// Where each rank's batches and samples start in the gathered arrays.
	world := s.ranks.Size()
	firstBatch := make([]int, world)
	firstSample := make([]int, world)
	var b, n int
	for r := range world {
		firstBatch[r], firstSample[r] = b, n
		for _, sz := range sizes[b : b+int(batchCounts[r])] {
			n += int(sz)
		}
		b += int(batchCounts[r])
	}
	var scen, user []int64
	var label, prob []float32
	for k := range total {
		r := k % world
		size := int(sizes[firstBatch[r]])
		lo := firstSample[r]
		firstBatch[r]++
		firstSample[r] += size
		scen, user, label, prob = scen[:0], user[:0], label[:0], prob[:0]
		for i := lo; i < lo+size; i++ {
			scen = append(scen, su[2*i])
			user = append(user, su[2*i+1])
			label = append(label, lp[2*i])
			prob = append(prob, lp[2*i+1])
		}
		if err := acc.Add(scen, user, label, prob); err != nil {
			return err
		}
	}
	return nil
}
