package torch

// Benchmarks for `make bench` (go test -run '^$' -bench . -benchtime 1x ./cgo/torch/).
// Each runs a fixed amount of work per b.N iteration and prints its own
// numbers, so that one iteration (-benchtime 1x) gives stable figures.

import (
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/msrtrain/msrtrain/cgo/pybench"
)

const (
	benchAddIters   = 200_000 // additions per measurement
	benchAddRounds  = 5       // measurements; the fastest counts
	benchAddPerScop = 100     // Go ops per scope, about one training step's worth
)

// goAddLoop times iters additions through the Go binding, each result owned
// by a scope that is closed every benchAddPerScop ops, as in a training loop.
func goAddLoop(a, b *Tensor, iters int) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < iters; i += benchAddPerScop {
		s := NewScope()
		for j := 0; j < benchAddPerScop; j++ {
			if r := a.Add(b); r.err != nil {
				s.Close()
				return 0, r.err
			}
		}
		s.Close()
	}
	return time.Since(start), nil
}

// BenchmarkAddOverhead compares the Go path of one small op with the same op
// in a C++ loop inside the shim: the difference is what cgo, the handle and
// the scope bookkeeping cost per op. Between them it times a bare cgo call
// per op with no Go bookkeeping at all, the floor for any binding that
// crosses into C once per op.
func BenchmarkAddOverhead(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := SetThreads(1, 1); err != nil {
		b.Fatal(err)
	}
	x := FromSlice([]float32{1, 2, 3, 4, 5, 6, 7, 8})
	y := FromSlice([]float32{8, 7, 6, 5, 4, 3, 2, 1})
	defer x.Close()
	defer y.Close()
	for n := 0; n < b.N; n++ {
		// Warm both paths, then alternate them so that drift hits both alike.
		if _, err := goAddLoop(x, y, benchAddIters/10); err != nil {
			b.Fatal(err)
		}
		if _, err := BenchAddLoop(x, y, benchAddIters/10); err != nil {
			b.Fatal(err)
		}
		bestGo, bestBare, bestCpp := math.Inf(1), math.Inf(1), math.Inf(1)
		for r := 0; r < benchAddRounds; r++ {
			d, err := goAddLoop(x, y, benchAddIters)
			if err != nil {
				b.Fatal(err)
			}
			bestGo = math.Min(bestGo, d.Seconds())
			d, err = BenchAddCrossing(x, y, benchAddIters)
			if err != nil {
				b.Fatal(err)
			}
			bestBare = math.Min(bestBare, d.Seconds())
			s, err := BenchAddLoop(x, y, benchAddIters)
			if err != nil {
				b.Fatal(err)
			}
			bestCpp = math.Min(bestCpp, s)
		}
		goUs := bestGo / benchAddIters * 1e6
		bareUs := bestBare / benchAddIters * 1e6
		cppUs := bestCpp / benchAddIters * 1e6
		fmt.Printf("add of 8 floats: Go %.3f µs/op, bare cgo call %.3f µs/op, C++ loop %.3f µs/op; Go/C++ %.3f, bare/C++ %.3f\n",
			goUs, bareUs, cppUs, goUs/cppUs, bareUs/cppUs)
		b.ReportMetric(goUs, "go-µs/op")
		b.ReportMetric(bareUs, "bare-µs/op")
		b.ReportMetric(cppUs, "cpp-µs/op")
		b.ReportMetric(goUs/cppUs, "go/cpp")
	}
}

// mlp is the benchmark model: Linear layers with ReLU between them.
type mlp struct {
	params []*Tensor // w0, b0, w1, b1, ...
}

// newMLP initialises like torch.nn.Linear: kaiming_uniform(a=√5) weights, U(±1/√fan_in) biases.
func newMLP(sizes []int64) (*mlp, error) {
	m := &mlp{}
	for i := 0; i+1 < len(sizes); i++ {
		w := Empty([]int64{sizes[i+1], sizes[i]}, Float32, CPU)
		bias := Empty([]int64{sizes[i+1]}, Float32, CPU)
		m.params = append(m.params, w, bias)
		bound := 1 / math.Sqrt(float64(sizes[i]))
		for _, err := range []error{w.Init(InitKaimingUniform, math.Sqrt(5), 0), bias.Init(InitUniform, -bound, bound),
			w.SetRequiresGrad(true), bias.SetRequiresGrad(true)} {
			if err != nil {
				m.Close()
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *mlp) forward(x *Tensor) *Tensor {
	h := x
	for i := 0; i < len(m.params); i += 2 {
		h = Linear(h, m.params[i], m.params[i+1])
		if i+2 < len(m.params) {
			h = h.Relu()
		}
	}
	return h
}

func (m *mlp) names() []string {
	n := make([]string, len(m.params))
	for i := range n {
		n[i] = "p" + strconv.Itoa(i)
	}
	return n
}

func (m *mlp) Close() {
	for _, p := range m.params {
		p.Close()
	}
}

// mlpStep is one training step inside its own scope: forward, BCE-with-logits
// loss, backward, optimizer step, gradients dropped. It mirrors testdata/mlp_step.py.
func mlpStep(m *mlp, opt *Optimizer, x, y *Tensor) error {
	s := NewScope()
	defer s.Close()
	if err := opt.ZeroGrad(); err != nil {
		return err
	}
	loss := BCEWithLogits(m.forward(x), y, nil, nil, ReduceMean)
	if err := loss.Backward(); err != nil {
		return err
	}
	return opt.Step()
}

// BenchmarkMLPStep times one training step (batch 2048, 256→256→128→1, ReLU,
// BCE with logits, Adam) in Go and the same step in PyTorch run by
// python3-torch on this machine, with the same thread and allocator
// settings. Rounds alternate between the two and the fastest round of each
// counts, so that load from elsewhere on the machine hits both alike.
func BenchmarkMLPStep(b *testing.B) {
	const warmup, steps, rounds = 5, 60, 5
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// As msrtrain sets itself up (train.Setup); PyTorch gets the same settings.
	if err := SetUpProcess(0); err != nil {
		b.Fatal(err)
	}
	threads := fmt.Sprintf("intra-op %d, BLAS %d threads", Threads(), BLASThreads())
	if err := ManualSeed(0); err != nil {
		b.Fatal(err)
	}
	m, err := newMLP([]int64{256, 256, 128, 1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	opt, err := NewOptimizer(Adam)
	if err != nil {
		b.Fatal(err)
	}
	defer opt.Close()
	if err := opt.AddGroup(m.names(), m.params, DefaultOptimOptions(Adam)); err != nil {
		b.Fatal(err)
	}
	x := Randn([]int64{2048, 256}, Float32, CPU)
	y := Rand([]int64{2048, 1}, Float32, CPU).LtScalar(0.3).ToDType(Float32)
	if err := y.Err(); err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	defer y.Close()
	goRound := func(n int) (float64, error) {
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := mlpStep(m, opt, x, y); err != nil {
				return 0, err
			}
		}
		return time.Since(start).Seconds() / float64(n) * 1e3, nil
	}
	if _, err := goRound(warmup); err != nil {
		b.Fatal(err)
	}
	// testdata/mlp_step.py prints "ready" after its warm-up, then times N steps per request line N.
	py, pyErr := pybench.Start(filepath.Join("testdata", "mlp_step.py"),
		pybench.Settings{IntraOpThreads: Threads(), BLASThreads: BLASThreads(), Tunables: AllocatorTunables()},
		strconv.Itoa(warmup))
	if pyErr == nil {
		defer py.Close()
	}

	for n := 0; n < b.N; n++ {
		goMs, pyMs := math.Inf(1), math.Inf(1)
		for r := 0; r < rounds; r++ {
			pybench.Settle()
			g, err := goRound(steps)
			if err != nil {
				b.Fatal(err)
			}
			goMs = math.Min(goMs, g)
			if pyErr == nil {
				p, err := py.Measure(strconv.Itoa(steps))
				if err != nil {
					b.Fatal(err)
				}
				pyMs = math.Min(pyMs, p)
			}
		}
		b.ReportMetric(goMs, "go-ms/step")
		if pyErr != nil {
			fmt.Printf("MLP step (batch 2048, 256→256→128→1, Adam, %s): Go %.3f ms/step; Python baseline skipped: %v\n", threads, goMs, pyErr)
			continue
		}
		fmt.Printf("MLP step (batch 2048, 256→256→128→1, Adam, %s): Go %.3f ms/step, PyTorch %.3f ms/step, Go/Python %.3f\n",
			threads, goMs, pyMs, goMs/pyMs)
		b.ReportMetric(pyMs, "py-ms/step")
		b.ReportMetric(goMs/pyMs, "go/py")
	}
}

// BenchmarkGeneratedLayer times LLM4MSR's user-level meta layer, forward
// and backward, at batch 4096 (in 64, out 16, head width G 16): the fused
// GeneratedLayer against the same layer written as libtorch ops (the
// stacked head slices, a product, a broadcast weighting over G+1, a sum,
// the bias as a Linear of h), alternated step by step, fastest of each:
//
//	go test -run '^$' -bench GeneratedLayer -benchtime 1x ./cgo/torch/
func BenchmarkGeneratedLayer(b *testing.B) {
	const rows, in, out, gens, steps = 4096, 64, 16, 16, 200
	const scale = 0.125
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := SetUpProcess(0); err != nil {
		b.Fatal(err)
	}
	perKey := int64(in*out + out)
	weight := Randn([]int64{perKey, gens}, Float32, CPU)
	bias := Randn([]int64{perKey}, Float32, CPU)
	z := Randn([]int64{rows, in}, Float32, CPU)
	h := Randn([]int64{rows, gens}, Float32, CPU)
	for _, t := range []*Tensor{weight, bias, z, h} {
		defer t.Close()
		if err := t.SetRequiresGrad(true); err != nil {
			b.Fatal(err)
		}
	}
	ops := func() *Tensor {
		basis := Cat([]*Tensor{weight.Narrow(0, 0, in*out), bias.Narrow(0, 0, in*out).Unsqueeze(1)}, 1).
			View(in, out, gens+1).Permute(0, 2, 1).Reshape(in, (gens+1)*out)
		hTilde := Cat([]*Tensor{h, Ones([]int64{rows, 1}, Float32, CPU)}, 1).Unsqueeze(2)
		layerBias := Linear(h, weight.Narrow(0, in*out, out), bias.Narrow(0, in*out, out))
		return z.Matmul(basis).View(-1, gens+1, out).Mul(hTilde).Sum(false, 1).MulScalar(scale).Add(layerBias)
	}
	fused := func() *Tensor { return GeneratedLayer(z, weight, bias, h, in, out, 0, scale) }
	step := func(layer func() *Tensor) (float64, error) {
		s := NewScope()
		defer s.Close()
		start := time.Now()
		if err := layer().Relu().Sum(false).Backward(); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds() * 1e3, nil
	}
	for n := 0; n < b.N; n++ {
		best := [2]float64{math.Inf(1), math.Inf(1)}
		for range steps {
			for i, layer := range []func() *Tensor{ops, fused} {
				ms, err := step(layer)
				if err != nil {
					b.Fatal(err)
				}
				best[i] = math.Min(best[i], ms)
			}
		}
		b.ReportMetric(best[1], "fused-ms")
		b.ReportMetric(best[0], "ops-ms")
		fmt.Printf("GeneratedLayer (batch %d, in %d, out %d, G %d, forward and backward, intra-op %d, BLAS %d threads): fused %.3f ms, libtorch ops %.3f ms, fused/ops %.3f\n",
			rows, in, out, gens, Threads(), BLASThreads(), best[1], best[0], best[1]/best[0])
	}
}

// BenchmarkSparseStep times the two halves of a sparse embedding update
// that grow with the table, for tables of 25k and 10M rows × 16: gathering
// a batch's distinct rows (GatherRows) and a row-wise optimizer's step over
// them, each for 32,768 ids drawn uniformly (8 fields × batch 4096, the
// shape BenchmarkEmbeddingStep trains). The sizes and optimizers are asked
// in turn for several rounds and the fastest round of each counts:
//
//	go test -run '^$' -bench SparseStep -benchtime 1x ./cgo/torch/
func BenchmarkSparseStep(b *testing.B) {
	const dim, lookups, pool, steps, rounds = 16, 32768, 8, 40, 4
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := SetUpProcess(0); err != nil {
		b.Fatal(err)
	}
	type config struct {
		rows     int64
		kind     SparseKind
		table    *Tensor
		opt      *SparseOptimizer
		batches  []*Tensor
		gatherMs float64
		stepMs   float64
		distinct int64
	}
	var configs []*config
	for _, rows := range []int64{25_000, 10_000_000} {
		for _, kind := range []SparseKind{SparseRowWiseAdagrad, SparseAdam} {
			c := &config{rows: rows, kind: kind, gatherMs: math.Inf(1), stepMs: math.Inf(1)}
			c.table = Randn([]int64{rows, dim}, Float32, CPU)
			var err error
			if c.opt, err = NewSparseOptimizer(kind, "table", c.table, DefaultSparseOptions(kind)); err != nil {
				b.Fatal(err)
			}
			for range pool {
				c.batches = append(c.batches, Randint(0, rows, []int64{lookups}, CPU))
			}
			configs = append(configs, c)
		}
	}
	defer func() {
		for _, c := range configs {
			c.opt.Close()
			c.table.Close()
			for _, t := range c.batches {
				t.Close()
			}
		}
	}()
	run := func(c *config) error {
		var gather, step time.Duration
		for i := range steps {
			s := NewScope()
			start := time.Now()
			rows, ids, _ := GatherRows(c.table, c.batches[i%pool])
			if err := rows.Err(); err != nil {
				s.Close()
				return err
			}
			gathered := time.Now()
			grad := Randn(rows.Shape(), Float32, CPU)
			stepStart := time.Now()
			if err := c.opt.Step(ids, grad, true); err != nil {
				s.Close()
				return err
			}
			gather, step = gather+gathered.Sub(start), step+time.Since(stepStart)
			c.distinct = ids.Shape()[0]
			s.Close()
		}
		c.gatherMs = math.Min(c.gatherMs, gather.Seconds()*1e3/steps)
		c.stepMs = math.Min(c.stepMs, step.Seconds()*1e3/steps)
		return nil
	}
	for n := 0; n < b.N; n++ {
		for range rounds {
			for _, c := range configs {
				if err := run(c); err != nil {
					b.Fatal(err)
				}
			}
		}
		for _, c := range configs {
			fmt.Printf("SparseStep: %d rows × %d, %s, %d distinct of %d ids: gather %.3f ms, step %.3f ms\n",
				c.rows, dim, c.kind, c.distinct, lookups, c.gatherMs, c.stepMs)
			b.ReportMetric(c.stepMs, fmt.Sprintf("%s/%d-step-ms", c.kind, c.rows))
		}
	}
}
