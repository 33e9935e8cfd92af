package model

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"text/tabwriter"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

var scoringThreadsFlag = flag.Int("scoring-threads", 1, "CPU threads BenchmarkScoringCost scores with")

// BenchmarkScoringCost measures frozen scoring (Model.Freeze: evaluation
// mode, no gradients, the scenarios' and users' tables computed up front,
// probabilities copied out, as eval, predict and a server score) of
// LLM4MSR (default meta networks: both levels, full head, concat) against
// the bare backbone, every backbone at its defaults, batch 4096 on the
// synthetic shape (4 fields of 16, 20,000 users), the two alternating in
// one process; it prints the median ratio over the pairs, in wall time and
// (in brackets) CPU time. Beside it, the floor the meta networks cannot go
// under at these widths, measured the same way:
//
//   - widened: the LLM4MSR model's backbone, which reads the fused input
//     (x and 32 more columns with concat), fed x and zeros in the meta
//     layers' place, so that the meta networks cost nothing;
//   - floor: widened plus two [B, in]·[in, out] products, the in·out
//     multiply-adds per row each level's layer costs even when built in
//     advance, at the speed of one dense matrix product (no per-row weights).
//
// Then the user level's layer alone, two ways of keeping a frozen user's
// layer: its generator output h (G numbers, what Freeze keeps) applied
// through the head (torch.GeneratedLayer, in·out·(G+1) multiply-adds a
// row), and the built layer (in·out + out numbers) gathered per row and
// applied by a batched product (in·out a row, G+1 times the memory).
//
//	go test -run '^$' -bench ScoringCost -benchtime 1x ./model/
//
// It runs on one CPU thread (-args -scoring-threads=N for more), where CPU
// time is wall time without the waits of other processes and of spinning
// BLAS threads, so the CPU-time ratio holds on a machine busy with other
// work. -args -backbones=star,mmoe measures some backbones only.
func BenchmarkScoringCost(b *testing.B) {
	defer setUpBench(b)()
	if err := torch.SetCPUThreads(*scoringThreadsFlag); err != nil {
		b.Fatal(err)
	}
	const pairs, batch = 21, 4096
	vocab := metaBenchData[0].vocab
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "ScoringCost: batch %d, %d alternating pairs, %d thread(s); × = median / bare, wall time (CPU time)\n", batch, pairs, *scoringThreadsFlag)
	fmt.Fprintln(w, "backbone\tbare ms\tLLM4MSR ms\t×\twidened ms\twidened ×\tfloor ×\t")
	for _, name := range benchedBackbones(b) {
		b.Run(name, func(b *testing.B) {
			bare := newMetaBench(b, name, "none", vocab, batch)
			defer bare.close()
			meta := newMetaBench(b, name, "both", vocab, batch)
			defer meta.close()
			for _, m := range []*Model{bare.model, meta.model} {
				thaw, err := m.Freeze()
				if err != nil {
					b.Fatal(err)
				}
				defer thaw()
			}
			widened := widenedScore(b, meta, false)
			floor := widenedScore(b, meta, true)
			full := comparePairs(b, bare.score, meta.score, pairs*b.N)
			wide := comparePairs(b, bare.score, widened, pairs*b.N)
			low := comparePairs(b, bare.score, floor, pairs*b.N)
			fmt.Fprintf(w, "%s\t%.2f\t%.2f\t%.2f (%.2f)\t%.2f\t%.2f (%.2f)\t%.2f (%.2f)\t\n", name,
				full.baseMs, full.otherMs, full.wallX, full.cpuX, wide.otherMs, wide.wallX, wide.cpuX, low.wallX, low.cpuX)
			b.ReportMetric(full.wallX, "score-x")
			b.ReportMetric(low.wallX, "floor-x")
		})
	}
	w.Flush()
	userLayerCost(b, pairs, batch, vocab[0])
}

// widenedScore scores meta's batch with its backbone on x and zeros in the
// meta layers' place; withLayers adds two in×out products per row.
func widenedScore(b *testing.B, meta metaBench, withLayers bool) func() error {
	m := meta.model
	cfg := m.Config.Meta
	in := m.Embedding.OutDim() + int64(m.Spec.Numeric)
	out := cfg.Layers[len(cfg.Layers)-1]
	weight := torch.Randn([]int64{in, out}, torch.Float32, torch.CPU)
	b.Cleanup(func() { weight.Close() })
	return func() (err error) {
		torch.NoGrad(func() {
			sc := torch.NewScope()
			defer sc.Close()
			batch := meta.input()
			fields := m.Embedding.PerField(batch.Cat)
			x := fields.Flatten(1, 2)
			rows := x.Shape()[0]
			pad := torch.Zeros([]int64{rows, m.Meta.OutDim - in}, torch.Float32, torch.CPU)
			if withLayers {
				pad = torch.Cat([]*torch.Tensor{x.Mm(weight).Relu(), x.Mm(weight).Relu()}, 1)
			}
			input := Input{X: torch.Cat([]*torch.Tensor{x, pad}, 1), Scenario: batch.Scenario, Counts: batch.Counts, Fields: fields}
			_, err = m.Backbone.Forward(input).Sigmoid().Float32s()
		})
		return err
	}
}

// userLayerCost times the user level's layer alone, from the h table and from built layers.
func userLayerCost(b *testing.B, pairs int, batch, users int64) {
	cfg := DefaultMetaConfig()
	in, out, gens := int64(64), cfg.Layers[0], cfg.Generator.Hidden[len(cfg.Generator.Hidden)-1]
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]int64, batch)
	for i := range ids {
		ids[i] = 1 + r.Int64N(users-1)
	}
	per := in*out + out
	headW := torch.Randn([]int64{per, gens}, torch.Float32, torch.CPU)
	headB := torch.Randn([]int64{per}, torch.Float32, torch.CPU)
	table := torch.Randn([]int64{users, gens}, torch.Float32, torch.CPU)
	var built *torch.Tensor
	torch.NoGrad(func() { built = torch.Linear(table, headW, headB) }) // [users, in·out + out]
	z := torch.Randn([]int64{batch, in}, torch.Float32, torch.CPU)
	b.Cleanup(func() {
		for _, t := range []*torch.Tensor{headW, headB, table, built, z} {
			t.Close()
		}
	})
	scale := 1 / float64(in)
	step := func(f func(users *torch.Tensor) *torch.Tensor) func() error {
		return func() (err error) {
			torch.NoGrad(func() {
				sc := torch.NewScope()
				defer sc.Close()
				_, err = f(torch.FromSlice(ids)).Float32s()
			})
			return err
		}
	}
	fromHidden := step(func(users *torch.Tensor) *torch.Tensor {
		return torch.GeneratedLayer(z, headW, headB, table.IndexSelect(0, users), in, out, 0, scale)
	})
	fromBuilt := step(func(users *torch.Tensor) *torch.Tensor {
		layers := built.IndexSelect(0, users)
		w := layers.Narrow(1, 0, in*out).MulScalar(scale).View(batch, in, out)
		return z.Unsqueeze(1).Matmul(w).View(batch, out).Add(layers.Narrow(1, in*out, out))
	})
	res := comparePairs(b, fromHidden, fromBuilt, pairs*b.N)
	fmt.Printf("ScoringCost, the user level's layer (in %d, out %d, G %d, %d users, batch %d): from h %.2f ms, from built layers %.2f ms, %.2f× (CPU %.2f×)\n",
		in, out, gens, users, batch, res.baseMs, res.otherMs, res.wallX, res.cpuX)
}
