package model

import (
	"fmt"
	"math"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// BenchmarkAdamStep times one Adam step over every backbone's parameters
// (default config, input 128, gradients from one batch of 256) with the
// parameters in one group, which the optimizer keeps in flat buffers, beside
// the same parameters each in a group of its own, which it updates one tensor
// at a time. Both run alternately in the same process; it prints µs/step and
// the ratio:
//
//	go test -run '^$' -bench AdamStep -benchtime 1x ./model/
func BenchmarkAdamStep(b *testing.B) {
	const rounds, stepsPerRound = 5, 300
	defer setUpBench(b)()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "backbone\ttensors\tscalars\tone group µs\tper tensor µs\tratio\t")
	for n := 0; n < b.N; n++ {
		for _, name := range BackboneNames() {
			flatUs, perTensorUs, tensors, scalars := adamStepTimes(b, name, rounds, stepsPerRound)
			fmt.Fprintf(w, "%s\t%d\t%d\t%.1f\t%.1f\t%.2f\t\n", name, tensors, scalars, flatUs, perTensorUs, flatUs/perTensorUs)
			b.ReportMetric(flatUs/perTensorUs, name+"-flat/per-tensor")
		}
	}
	w.Flush()
}

// adamStepTimes builds two copies of a backbone with gradients from one
// batch and returns the best µs per Adam step of each layout.
func adamStepTimes(b *testing.B, name string, rounds, steps int) (flatUs, perTensorUs float64, tensors int, scalars int64) {
	var opts [2]*torch.Optimizer
	for v := range opts {
		if err := torch.ManualSeed(0); err != nil {
			b.Fatal(err)
		}
		store := nn.NewStore(torch.CPU)
		defer store.Close()
		bb, err := NewBackbone(name, store.Root(), testShape(128, 3), DefaultBackboneConfig())
		if err != nil {
			b.Fatal(err)
		}
		names, params := store.ParameterTensors()
		tensors, scalars = len(params), store.NumParameters()
		adam := torch.DefaultOptimOptions(torch.Adam)
		var opt *torch.Optimizer
		if v == 0 {
			opt = newAdam(b, store, adam.LR) // one group: flat buffers
		} else {
			if opt, err = torch.NewOptimizer(torch.Adam); err != nil {
				b.Fatal(err)
			}
			for i := range params {
				if err := opt.AddGroup(names[i:i+1], params[i:i+1], adam); err != nil {
					b.Fatal(err)
				}
			}
		}
		defer opt.Close()
		s := torch.NewScope()
		y := torch.Rand([]int64{256}, torch.Float32, torch.CPU).LtScalar(0.3).ToDType(torch.Float32)
		loss := torch.BCEWithLogits(bb.Forward(makeInput(benchCounts(256), 128)), y, nil, nil, torch.ReduceMean)
		err = loss.Backward()
		s.Close()
		if err != nil {
			b.Fatal(err)
		}
		opts[v] = opt
	}
	best := [2]float64{math.Inf(1), math.Inf(1)}
	for r := 0; r < rounds; r++ {
		for v, opt := range opts {
			start := time.Now()
			for i := 0; i < steps; i++ {
				if err := opt.Step(); err != nil {
					b.Fatal(err)
				}
			}
			best[v] = math.Min(best[v], time.Since(start).Seconds()/float64(steps)*1e6)
		}
	}
	return best[0], best[1], tensors, scalars
}
