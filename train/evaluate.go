package train

import (
	"fmt"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// evaluate computes metrics on a split; nil when the split has no rows.
func (r *run) evaluate(part data.Part) (*metrics.Report, error) {
	src, err := r.splits.Source(part, data.BatchOptions{Size: r.cfg.Train.EvalBatchSize, Workers: r.cfg.Train.LoaderWorkers})
	if err != nil {
		return nil, err
	}
	if src.NumBatches() == 0 {
		return nil, nil
	}
	var acc metrics.Accumulator
	err = r.score(src, func(g *grouper, probs []float32) error {
		return acc.Add(g.scenario, g.user, g.label, probs)
	})
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", part, err)
	}
	rep := acc.Compute(r.vocabs.Schema().ScenarioNames())
	return &rep, nil
}

// score runs the model in evaluation mode over a source and hands each
// grouped batch with its click probabilities to sink.
func (r *run) score(src data.Source, sink func(g *grouper, probs []float32) error) error {
	r.model.Store.SetTraining(false)
	defer r.model.Store.SetTraining(true)
	it := src.Epoch(0, 0)
	defer it.Close()
	var err error
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
				r.group.group(b)
				batch, _ := r.group.tensors()
				probs, err = r.model.Forward(batch).Sigmoid().Float32s()
			}()
			it.Release(b)
			if err == nil {
				err = sink(r.group, probs)
			}
			if err != nil {
				return
			}
		}
		err = it.Err()
	})
	return err
}

// metric is a validation metric that early stopping watches.
type metric struct {
	scenario string // "" for overall
	name     string // auc, gauc, logloss
}

func parseMetric(s string) (metric, error) {
	parts := strings.Split(s, ".")
	var m metric
	switch {
	case len(parts) == 2 && parts[0] == "overall":
		m.name = parts[1]
	case len(parts) == 3 && parts[0] == "scenario" && parts[1] != "":
		m.scenario, m.name = parts[1], parts[2]
	default:
		return m, fmt.Errorf("%q: want overall.<metric> or scenario.<name>.<metric>", s)
	}
	switch m.name {
	case "auc", "gauc", "logloss":
		return m, nil
	}
	return m, fmt.Errorf("%q: the metric must be auc, gauc or logloss", s)
}

func (m metric) better(a, b float64) bool {
	if m.name == "logloss" {
		return a < b
	}
	return a > b
}

// value reads the metric from a report; false when it is undefined there.
func (m metric) value(r metrics.Report) (float64, bool) {
	e := r.Overall
	if m.scenario != "" {
		found := false
		for _, s := range r.PerScenario {
			if s.Scenario == m.scenario {
				e, found = s, true
			}
		}
		if !found {
			return 0, false
		}
	}
	var v *float64
	switch m.name {
	case "auc":
		v = e.AUC
	case "gauc":
		v = e.GAUC
	case "logloss":
		v = e.LogLoss
	}
	if v == nil {
		return 0, false
	}
	return *v, true
}
