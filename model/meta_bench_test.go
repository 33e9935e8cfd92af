package model

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// metaBenchData are the two shapes of data the meta-network overhead is
// measured on, sized like the synthetic default (20,000 users, 3 scenarios
// of 3,000 items): its four categorical fields (user, item, item category,
// user segment), and the same data reduced to user and item ids, where the
// meta layers are large next to a narrow bottom representation.
var metaBenchData = []struct {
	name  string
	vocab []int64 // per field, out-of-vocabulary row included; field 0 is the user
}{
	{"synthetic", []int64{20001, 9001, 13, 13}},
	{"user+item", []int64{20001, 9001}},
}

var metaModelFlag = flag.String("model", "", "YAML laid over the default model section that BenchmarkMetaOverhead measures, e.g. '{meta: {generator: {hidden: [8]}}, mmoe: {expert: {hidden: [512, 256]}}}'")

// BenchmarkMetaOverhead measures what LLM4MSR's meta networks (defaults,
// both levels) add to every registered backbone, at batch 4096, on both
// shapes of metaBenchData, with 64-dimensional knowledge and users drawn
// uniformly (a batch holds about 3,700 distinct users, the costly case):
//
//   - training: a full step (batch copied in from Go slices as the trainer
//     does, embedding lookup, meta networks, backbone, BCE, backward, Adam);
//   - scoring: a forward pass in evaluation mode without gradients on a
//     frozen model (Model.Freeze), probabilities copied out, as evaluation
//     and prediction run.
//
// Bare and LLM4MSR steps alternate one by one, so each pair runs under the
// same load; it prints the fastest step of each in wall ms and the median
// over pairs of the ratio, in wall time and in the process's CPU time (user
// + system, all threads), which is the steadier on a machine busy with
// other work:
//
//	go test -run '^$' -bench MetaOverhead -benchtime 1x ./model/
//
// (-bench 'MetaOverhead/star/' or -args -backbones=star,mmoe measures some
// backbones only; -args -model='{meta: {head: factorized}}' or
// -model='{mmoe: {expert: {hidden: [512, 256]}}}' other settings, in the
// model section's YAML).
func BenchmarkMetaOverhead(b *testing.B) {
	defer setUpBench(b)()
	const pairs, batch = 15, 4096
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "MetaOverhead: batch %d, %d alternating pairs; × = median LLM4MSR / bare, wall time (CPU time)\n", batch, pairs)
	fmt.Fprintln(w, "backbone\tdata\ttrain bare ms\tLLM4MSR ms\toverhead ×\tscore bare ms\tLLM4MSR ms\toverhead ×\t")
	for _, name := range benchedBackbones(b) {
		for _, d := range metaBenchData {
			b.Run(name+"/"+d.name, func(b *testing.B) {
				var benches [2]metaBench
				for v, levels := range []string{"none", "both"} {
					benches[v] = newMetaBench(b, name, levels, d.vocab, batch)
				}
				defer func() {
					for _, bench := range benches {
						bench.close()
					}
				}()
				train := comparePairs(b, benches[0].train, benches[1].train, pairs*b.N)
				var score pairResult
				func() {
					for _, bench := range benches {
						thaw, err := bench.model.Freeze()
						if err != nil {
							b.Fatal(err)
						}
						defer thaw()
					}
					score = comparePairs(b, benches[0].score, benches[1].score, pairs*b.N)
				}()
				fmt.Fprintf(w, "%s\t%s\t%.2f\t%.2f\t%.2f (%.2f)\t%.2f\t%.2f\t%.2f (%.2f)\t\n", name, d.name,
					train.baseMs, train.otherMs, train.wallX, train.cpuX,
					score.baseMs, score.otherMs, score.wallX, score.cpuX)
				b.ReportMetric(train.wallX, "train-x")
				b.ReportMetric(train.cpuX, "train-cpu-x")
				b.ReportMetric(score.wallX, "score-x")
				b.ReportMetric(score.cpuX, "score-cpu-x")
			})
		}
	}
	w.Flush()
}

// pairResult is the fastest step of each side (wall ms) and the median ratio other/base.
type pairResult struct {
	baseMs, otherMs float64
	wallX, cpuX     float64
}

// comparePairs warms both steps up, then runs them alternately n times.
func comparePairs(b *testing.B, base, other func() error, n int) pairResult {
	steps := [2]func() error{base, other}
	for range 3 {
		for _, step := range steps {
			if err := step(); err != nil {
				b.Fatal(err)
			}
		}
	}
	res := pairResult{baseMs: math.Inf(1), otherMs: math.Inf(1)}
	wallX, cpuX := make([]float64, n), make([]float64, n)
	for i := range n {
		var wall, cpu [2]float64
		for v, step := range steps {
			start, c := time.Now(), processCPU(b)
			if err := step(); err != nil {
				b.Fatal(err)
			}
			wall[v], cpu[v] = time.Since(start).Seconds()*1e3, float64(processCPU(b)-c)/1e6
		}
		res.baseMs, res.otherMs = min(res.baseMs, wall[0]), min(res.otherMs, wall[1])
		wallX[i], cpuX[i] = wall[1]/wall[0], cpu[1]/max(cpu[0], 1e-3)
	}
	res.wallX, res.cpuX = median(wallX), median(cpuX)
	return res
}

func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// processCPU is the CPU time the process has used, every thread's.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// metaBench is one model with its training step and its scoring of a fixed batch.
type metaBench struct {
	model        *Model
	input        func() Batch // the fixed batch, copied in from Go slices
	train, score func() error
	close        func()
}

func newMetaBench(b *testing.B, backbone, levels string, vocab []int64, batch int) metaBench {
	const knowledgeDim, scenarios = 64, 3
	if err := torch.ManualSeed(0); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	cfg := DefaultConfig()
	if *metaModelFlag != "" {
		if err := yaml.Unmarshal([]byte(*metaModelFlag), &cfg); err != nil {
			b.Fatalf("-model: %v", err)
		}
	}
	cfg.Backbone, cfg.Meta.Levels = backbone, MetaLevels(levels)
	spec := Spec{Scenarios: scenarios, VocabSizes: vocab}
	var know *Knowledge
	if levels != "none" {
		vec := func(n int64) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			return v
		}
		known := make([]bool, vocab[0])
		for i := 1; i < len(known); i++ {
			known[i] = true
		}
		var err error
		if know, err = NewKnowledge(vec(scenarios*knowledgeDim), vec(vocab[0]*knowledgeDim), known, knowledgeDim, torch.CPU); err != nil {
			b.Fatal(err)
		}
	}
	m, err := New(cfg, spec, know, torch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	opt := newAdam(b, m.Store, torch.DefaultOptimOptions(torch.Adam).LR)
	fields := int64(len(vocab))
	counts := benchCounts(int64(batch))
	cat := make([]int64, int64(batch)*fields)
	scen := make([]int64, 0, batch)
	for s, c := range counts {
		for range c {
			scen = append(scen, int64(s))
		}
	}
	for i := range int64(batch) {
		for f := range fields {
			cat[i*fields+f] = 1 + r.Int64N(vocab[f]-1)
		}
	}
	labels := make([]float32, batch)
	for i := range labels {
		if r.Float64() < 0.3 {
			labels[i] = 1
		}
	}
	// Like the trainer, copy the batch from Go slices inside every step.
	input := func() Batch {
		return Batch{Cat: torch.FromSlice(cat, int64(batch), fields), Scenario: torch.FromSlice(scen), Counts: counts}
	}
	train := func() error {
		sc := torch.NewScope()
		defer sc.Close()
		loss := torch.BCEWithLogits(m.Forward(input()), torch.FromSlice(labels), nil, nil, torch.ReduceMean)
		if err := loss.Backward(); err != nil {
			return err
		}
		if err := opt.Step(); err != nil {
			return err
		}
		return opt.ZeroGrad()
	}
	score := func() (err error) {
		torch.NoGrad(func() {
			sc := torch.NewScope()
			defer sc.Close()
			_, err = m.Forward(input()).Sigmoid().Float32s()
		})
		return err
	}
	return metaBench{model: m, input: input, train: train, score: score, close: func() { opt.Close(); m.Close() }}
}
