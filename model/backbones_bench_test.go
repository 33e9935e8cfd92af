package model

import (
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/msrtrain/msrtrain/cgo/pybench"
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// BenchmarkBackboneStep times one training step (forward, BCE with logits,
// backward, Adam step, all inside a Scope) of every backbone with its
// default config, input width 128 (8 fields × 16 dims), 3 scenarios holding
// 50/30/20% of the rows, at batch 256, 2048 and 8192; beside the same models
// in PyTorch (testdata/backbones_bench.py: same shapes, math and grouped
// routing) run by python3-torch with the same thread and allocator
// settings, in two variants: "idiomatic" (nn.Modules, one Linear per expert
// and per gate, as a PyTorch user writes it) and "mirrored" (op for op what
// the Go code runs, so that ratio is the binding's per-op advantage alone). Go and PyTorch are
// measured alternately, benchRounds times each, and the fastest round of
// each is reported, which keeps other load on the machine from favouring
// either side. It prints a table; run it with
//
//	go test -run '^$' -bench BackboneStep -benchtime 1x ./model/
//
// and for some backbones only, add -args -backbones=sarnet,m2m.
func BenchmarkBackboneStep(b *testing.B) {
	const (
		inDim       = 128
		benchRounds = 5
		minSeconds  = 0.7 // per measurement, after warm-up
	)
	defer setUpBench(b)()
	py := startBackbonesBaseline(b)
	var rows []benchRow
	for n := 0; n < b.N; n++ {
		rows = rows[:0]
		for _, name := range benchedBackbones(b) {
			for _, batch := range []int64{256, 2048, 8192} {
				row := benchRow{name: name, batch: batch}
				step, closeStep := newBenchStep(b, name, inDim, batch, torch.CPU)
				for r := 0; r < benchRounds; r++ {
					pybench.Settle()
					ms := timeSteps(b, step, minSeconds)
					if r == 0 || ms < row.goMs {
						row.goMs = ms
					}
					if py != nil {
						for v, variant := range []string{"idiomatic", "mirrored"} {
							ms, err := py.Measure(fmt.Sprintf("%s %s %d %g", variant, name, batch, minSeconds))
							if err != nil {
								b.Fatal(err)
							}
							if r == 0 || ms < row.pyMs[v] {
								row.pyMs[v] = ms
							}
						}
					}
				}
				closeStep()
				rows = append(rows, row)
				b.ReportMetric(row.goMs, fmt.Sprintf("%s/%d-go-ms/step", name, batch))
				if py != nil {
					b.ReportMetric(row.pyMs[0]/row.goMs, fmt.Sprintf("%s/%d-speedup", name, batch))
				}
			}
		}
	}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "backbone\tbatch\tGo ms/step\tPyTorch ms/step\tspeed-up\tPyTorch mirrored\tspeed-up\t\n")
	for _, r := range rows {
		if py == nil {
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t-\t-\t-\t-\t\n", r.name, r.batch, r.goMs)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.2f×\t%.3f\t%.2f×\t\n", r.name, r.batch, r.goMs,
			r.pyMs[0], r.pyMs[0]/r.goMs, r.pyMs[1], r.pyMs[1]/r.goMs)
	}
	tw.Flush()
	// Printed rather than logged: go test cuts benchmark logs to a few lines without -v.
	fmt.Printf("BackboneStep: training step, default configs, input 128, 3 scenarios, intra-op %d and BLAS %d threads, best of %d rounds:\n%s",
		torch.Threads(), torch.BLASThreads(), benchRounds, sb.String())
}

var backbonesFlag = flag.String("backbones", "", "comma-separated backbones that BenchmarkBackboneStep and BenchmarkMetaOverhead measure (default: every registered one)")

// benchedBackbones is the -backbones list, or every registered backbone.
func benchedBackbones(b *testing.B) []string {
	if *backbonesFlag == "" {
		return BackboneNames()
	}
	names := strings.Split(*backbonesFlag, ",")
	for _, n := range names {
		if !IsBackbone(n) {
			b.Fatalf("-backbones: %q is not a backbone; want some of %s", n, strings.Join(BackboneNames(), ", "))
		}
	}
	return names
}

// setUpBench locks the benchmark to its OS thread and sets the process up
// as msrtrain does (train.Setup), so that the baselines can be given the
// same settings; it returns the unlock.
func setUpBench(b *testing.B) (unlock func()) {
	runtime.LockOSThread()
	if err := torch.SetUpProcess(0); err != nil {
		runtime.UnlockOSThread()
		b.Fatal(err)
	}
	return runtime.UnlockOSThread
}

type benchRow struct {
	name  string
	batch int64
	goMs  float64
	pyMs  [2]float64 // idiomatic, mirrored
}

// newBenchStep builds a backbone, an Adam optimizer and a fixed batch on
// dev, and returns a function that runs one training step (and, on a GPU,
// waits for it).
func newBenchStep(b *testing.B, name string, inDim, batch int64, dev torch.Device) (step func() error, done func()) {
	if err := torch.ManualSeed(0); err != nil {
		b.Fatal(err)
	}
	store := nn.NewStore(dev)
	bb, err := NewBackbone(name, store.Root(), Shape{Width: inDim, Scenarios: 3, Fields: benchFields}, DefaultBackboneConfig())
	if err != nil {
		b.Fatal(err)
	}
	opt := newAdam(b, store, torch.DefaultOptimOptions(torch.Adam).LR)
	counts := benchCounts(batch)
	data := torch.NewScope()
	in := makeInput(counts, inDim)
	in.X, in.Scenario = in.X.ToDevice(dev, false), in.Scenario.ToDevice(dev, false)
	in.Fields = in.X.View(batch, int64(len(benchFields.Roles)), benchFields.Dim)
	y := torch.Rand([]int64{batch}, torch.Float32, torch.CPU).LtScalar(0.3).ToDType(torch.Float32).ToDevice(dev, false)
	if err := y.Err(); err != nil {
		b.Fatal(err)
	}
	step = trainingStep(opt, func() *torch.Tensor { return bb.Forward(in) }, y, dev)
	return step, func() { data.Close(); opt.Close(); store.Close() }
}

// trainingStep is one step of forward, BCE with logits against y, backward
// and the optimizer, in a scope, then a wait for dev (a no-op on the CPU).
func trainingStep(opt *torch.Optimizer, forward func() *torch.Tensor, y *torch.Tensor, dev torch.Device) func() error {
	return func() error {
		sc := torch.NewScope()
		defer sc.Close()
		loss := torch.BCEWithLogits(forward(), y, nil, nil, torch.ReduceMean)
		if err := opt.ZeroGrad(); err != nil {
			return err
		}
		if err := loss.Backward(); err != nil {
			return err
		}
		if err := opt.Step(); err != nil {
			return err
		}
		return torch.Synchronize(dev)
	}
}

// benchFields: the benchmarks' input is 8 fields of 16 values, the
// first the user, the second the item, as in the full model.
var benchFields = FieldLayout{Roles: DefaultRoles(8), Dim: 16}

// benchCounts splits a batch 50/30/20 over 3 scenarios, as the Python side does.
func benchCounts(batch int64) []int64 {
	c := []int64{batch * 5 / 10, batch * 3 / 10, batch * 2 / 10}
	c[0] += batch - c[0] - c[1] - c[2]
	return c
}

// timeSteps runs 3 warm-up steps, then steps until minSeconds have passed
// (at least 5), and returns milliseconds per step.
func timeSteps(b *testing.B, step func() error, minSeconds float64) float64 {
	for i := 0; i < 3; i++ {
		if err := step(); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	steps := 0
	for steps < 5 || time.Since(start).Seconds() < minSeconds {
		if err := step(); err != nil {
			b.Fatal(err)
		}
		steps++
	}
	return time.Since(start).Seconds() * 1e3 / float64(steps)
}

// startBackbonesBaseline starts testdata/backbones_bench.py with the Go
// side's thread and allocator settings; nil, logged, when it cannot run.
func startBackbonesBaseline(b *testing.B) *pybench.Process {
	py, err := pybench.Start(filepath.Join("testdata", "backbones_bench.py"),
		pybench.Settings{IntraOpThreads: torch.Threads(), BLASThreads: torch.BLASThreads(), Tunables: torch.AllocatorTunables()})
	if err != nil {
		b.Logf("PyTorch baseline skipped: %v", err)
		return nil
	}
	b.Cleanup(func() { py.Close() })
	b.Logf("PyTorch baseline: %s", py.Banner)
	return py
}
