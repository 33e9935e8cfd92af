package model

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"text/tabwriter"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// BenchmarkMetaOverhead times a full model's training step (embedding
// lookup, optional meta networks, backbone, BCE, backward, Adam) for every
// backbone without and with LLM4MSR's meta networks (both levels, defaults),
// on 8 categorical fields × 16 dims, 3 scenarios, 64-dimensional knowledge,
// at batch 512 and 2048, with users drawn from 20,000 (so nearly every row
// of a batch has its own user, the costly case). Both variants run
// alternately in the same process; it prints ms/step and the ratio:
//
//	go test -run '^$' -bench MetaOverhead -benchtime 1x ./model/
//
// (-args -backbones=star,mmoe measures some backbones only).
func BenchmarkMetaOverhead(b *testing.B) {
	defer setUpBench(b)()
	const rounds, minSeconds = 3, 0.7
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "backbone\tbatch\tbare ms/step\tLLM4MSR ms/step\toverhead ×\t")
	for n := 0; n < b.N; n++ {
		for _, name := range benchedBackbones(b) {
			for _, batch := range []int{512, 2048} {
				var best [2]float64
				steps := [2]func() error{}
				var closers [2]func()
				for v, levels := range []string{"none", "both"} {
					steps[v], closers[v] = newModelBenchStep(b, name, levels, batch)
				}
				for r := 0; r < rounds; r++ {
					for v := range steps {
						ms := timeSteps(b, steps[v], minSeconds)
						if r == 0 || ms < best[v] {
							best[v] = ms
						}
					}
				}
				for _, c := range closers {
					c()
				}
				fmt.Fprintf(w, "%s\t%d\t%.2f\t%.2f\t%.2f\t\n", name, batch, best[0], best[1], best[1]/best[0])
				b.ReportMetric(best[1]/best[0], fmt.Sprintf("%s/%d-meta-overhead-x", name, batch))
			}
		}
	}
	w.Flush()
}

func newModelBenchStep(b *testing.B, backbone, levels string, batch int) (func() error, func()) {
	const fields, users, knowledgeDim, scenarios = 8, 20000, 64, 3
	if err := torch.ManualSeed(0); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultConfig()
	cfg.Backbone, cfg.Meta.Levels = backbone, MetaLevels(levels)
	spec := Spec{Scenarios: scenarios, VocabSizes: []int64{users + 1, 5001, 101, 51, 21, 11, 11, 6}}
	var know *Knowledge
	if levels != "none" {
		vec := func(n int) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			return v
		}
		known := make([]bool, users+1)
		for i := 1; i < len(known); i++ {
			known[i] = true
		}
		var err error
		if know, err = NewKnowledge(vec(scenarios*knowledgeDim), vec((users+1)*knowledgeDim), known, knowledgeDim, torch.CPU); err != nil {
			b.Fatal(err)
		}
	}
	m, err := New(cfg, spec, know, torch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	opt := newAdam(b, m.Store, torch.DefaultOptimOptions(torch.Adam).LR)
	counts := benchCounts(int64(batch))
	cat := make([]int64, batch*fields)
	scen := make([]int64, 0, batch)
	for s, c := range counts {
		for range c {
			scen = append(scen, int64(s))
		}
	}
	for i := range batch {
		for f := range fields {
			cat[i*fields+f] = 1 + r.Int64N(spec.VocabSizes[f]-1)
		}
	}
	labels := make([]float32, batch)
	for i := range labels {
		if r.Float64() < 0.3 {
			labels[i] = 1
		}
	}
	// Like the trainer, copy the batch from Go slices inside every step.
	step := func() error {
		sc := torch.NewScope()
		defer sc.Close()
		in := Batch{Cat: torch.FromSlice(cat, int64(batch), fields), Scenario: torch.FromSlice(scen), Counts: counts}
		loss := torch.BCEWithLogits(m.Forward(in), torch.FromSlice(labels), nil, nil, torch.ReduceMean)
		if err := loss.Backward(); err != nil {
			return err
		}
		if err := opt.Step(); err != nil {
			return err
		}
		return opt.ZeroGrad()
	}
	return step, func() { opt.Close(); m.Close() }
}
