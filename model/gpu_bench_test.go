package model

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// BenchmarkGPUThroughput trains the whole model (embeddings, meta networks,
// backbone) of every registered backbone on cuda:0, with the meta networks
// off and on, at batch 4096 and 32768, and prints samples per second; and
// beside it the bare backbone's step against the same backbone in PyTorch
// on the same GPU in the same run (testdata/backbones_bench.py, which has
// the four original backbones; "-" for the others). A step is forward,
// BCE, backward and Adam, then a synchronize, since the trainer reads each
// step's loss. It skips without a GPU; `make gpu-check` runs it:
//
//	go test -run '^$' -bench GPUThroughput -benchtime 1x ./model/
func BenchmarkGPUThroughput(b *testing.B) {
	if !torch.CUDAAvailable() {
		b.Skip("no CUDA GPU visible")
	}
	defer setUpBench(b)()
	dev := torch.CUDA(0)
	b.Setenv("MSR_BENCH_DEVICE", dev.String())
	py := startBackbonesBaseline(b)
	spec := Spec{VocabSizes: []int64{20000, 5000, 1000, 100, 50, 20, 10, 5}, Numeric: 4, Scenarios: 3}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "backbone\tbatch\tmodel samples/s\twith meta networks\tratio\tbackbone alone\tPyTorch backbone\tspeed-up\t\n")
	for n := 0; n < b.N; n++ {
		for _, name := range BackboneNames() {
			for _, batch := range []int64{4096, 32768} {
				var rate [2]float64
				for i, levels := range []MetaLevels{LevelsNone, LevelsBoth} {
					cfg := DefaultConfig()
					cfg.Backbone, cfg.Meta.Levels = name, levels
					ms := gpuStepMs(b, cfg, spec, batch, dev)
					rate[i] = float64(batch) / ms * 1e3
					b.ReportMetric(rate[i], fmt.Sprintf("%s/%d/meta=%s-samples/s", name, batch, levels))
				}
				step, closeStep := newBenchStep(b, name, 128, batch, dev)
				goRate := float64(batch) / timeSteps(b, step, 1) * 1e3
				closeStep()
				pyCol := "-\t-"
				if py != nil {
					ms, err := py.Measure(fmt.Sprintf("idiomatic %s %d 1", name, batch))
					if err != nil {
						b.Fatal(err)
					}
					if pyRate := float64(batch) / ms * 1e3; !math.IsNaN(pyRate) {
						pyCol = fmt.Sprintf("%.0f\t%.2f×", pyRate, goRate/pyRate)
					}
				}
				fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%.0f\t%s\t\n", name, batch, rate[0], rate[1], rate[1]/rate[0], goRate, pyCol)
			}
		}
	}
	tw.Flush()
	gpu, _ := torch.CUDADeviceName(0)
	fmt.Printf("GPUThroughput: training samples/s on %s, default configs, %d fields, 3 scenarios:\n%s", gpu, len(spec.VocabSizes), sb.String())
}

// gpuStepMs builds the model on dev with a fixed batch and returns milliseconds per training step.
func gpuStepMs(b *testing.B, cfg Config, spec Spec, batch int64, dev torch.Device) float64 {
	if err := torch.ManualSeed(0); err != nil {
		b.Fatal(err)
	}
	m, err := New(cfg, spec, testKnowledge(b, cfg, spec, dev), dev)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	opt := newAdam(b, m.Store, torch.DefaultOptimOptions(torch.Adam).LR)
	defer opt.Close()
	data := torch.NewScope()
	defer data.Close()
	in, y := deviceBatch(spec, benchCounts(batch), dev)
	step := trainingStep(opt, func() *torch.Tensor { return m.Forward(in) }, y, dev)
	return timeSteps(b, step, 1)
}
