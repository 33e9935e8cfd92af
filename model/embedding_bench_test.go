package model

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/msrtrain/msrtrain/cgo/pybench"
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
)

var embeddingRowsFlag = flag.String("embedding-rows", "25000,1000000,10000000",
	"comma-separated table sizes, in rows of 16, that BenchmarkEmbeddingStep compares with the first")

// embeddingBenchSizes is the -embedding-rows list.
func embeddingBenchSizes(b *testing.B) []int64 {
	var sizes []int64
	for _, f := range strings.Split(*embeddingRowsFlag, ",") {
		rows, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || rows < embeddingBenchFields {
			b.Fatalf("-embedding-rows: %q is not a table size of at least %d rows", f, embeddingBenchFields)
		}
		sizes = append(sizes, rows)
	}
	return sizes
}

// embeddingBenchTables is roughly each configuration's peak resident
// memory in copies of its table (rows × 16 floats), from the peaks
// measured at 10M rows (at 100M for row-wise Adagrad, where the process's
// own 0.2 GB no longer counts): the table and a float per row for row-wise
// Adagrad, two moments more for Adam, and PyTorch's gradient and
// temporaries on top. A
// configuration that would not fit in the memory still available is left
// out (it prints "-") rather than swapping or being killed.
var embeddingBenchTables = map[string]float64{
	"go rowwise_adagrad": 1.1, "go adam": 3.2, "py sparse": 3.4, "py dense": 7.2,
}

// procKB reads the field key ("MemAvailable", "VmHWM") of a /proc file
// whose lines read "key: value kB"; ok is false where the file or the field
// is missing.
func procKB(path, key string) (kb float64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key+":" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb, err == nil
		}
	}
	return 0, false
}

const (
	embeddingBenchFields = 8
	embeddingBenchDim    = 16
	embeddingBenchBatch  = 4096
	embeddingBenchPool   = 16 // distinct batches cycled through
	embeddingWorkerArg   = "embedding-bench-worker"
	// embeddingBenchDefault is train's default embedding optimizer, the one the goals are about.
	embeddingBenchDefault = "go rowwise_adagrad"
)

// BenchmarkEmbeddingStep times a training step of the whole model without
// meta networks (model.meta.levels=none: one table of N rows × 16 over 8
// fields, STAR or MMoE, BCE, backward, the updates) at batch 4096 for
// tables of 25k, 1M and 10M rows (or the -embedding-rows sizes), with ids
// drawn uniformly (about every lookup a distinct row at 1M rows and more:
// the worst case for a sparse update), and reports each process's peak
// resident memory. Go runs with the row-wise optimizers "rowwise_adagrad"
// (the default) and "adam"; PyTorch (testdata/embedding_bench.py,
// python3-torch, same threads and allocator settings) with
// nn.Embedding(sparse=True) + SparseAdam and with one dense Adam. Every
// configuration runs in its own process, so memory is its own; all of a
// backbone's processes are asked in turn, best of a few rounds each.
// Configurations that would not fit in the memory available are left out.
// It prints a table with samples/s relative to the first size and Go's
// speed-up over PyTorch's sparse path:
//
//	go test -run '^$' -bench EmbeddingStep -benchtime 1x ./model/
//	go test -run '^$' -bench EmbeddingStep -benchtime 1x ./model/ -args -embedding-rows=25000,10000000,100000000
func BenchmarkEmbeddingStep(b *testing.B) {
	const rounds, minSeconds = 5, 1.0
	sizes := embeddingBenchSizes(b)
	defer setUpBench(b)()
	set := pybench.Settings{IntraOpThreads: torch.Threads(), BLASThreads: torch.BLASThreads(), Tunables: torch.AllocatorTunables()}
	type result struct{ ms, rssMB float64 }
	type row struct {
		backbone string
		rows     int64
		res      map[string]result // by variant: go rowwise_adagrad, go adam, py sparse, py dense
	}
	var table []row
	for n := 0; n < b.N; n++ {
		table = table[:0]
		for _, name := range []string{"star", "mmoe"} {
			// Every size and variant of a backbone runs at once, asked in
			// turn, round after round: the machine's drift over a minute
			// then reaches all of them alike, and the ratios between sizes
			// (the goal) compare like with like.
			type worker struct {
				proc  *pybench.Process
				row   int
				label string
			}
			var workers []worker
			rowsAt := len(table)
			// Starting a worker waits for its banner, which comes after
			// its first steps, so the memory available already leaves out
			// the workers started before it.
			fits := func(label string, rows int64) bool {
				need := embeddingBenchTables[label] * float64(rows) * embeddingBenchDim * 4
				freeKB, ok := procKB("/proc/meminfo", "MemAvailable")
				free := freeKB * 1024
				if !ok || need < 0.8*free {
					return true
				}
				b.Logf("%s, %s at %d rows skipped: needs about %.1f GB, %.1f GB available", name, label, rows, need/1e9, free/1e9)
				return false
			}
			for _, rows := range sizes {
				table = append(table, row{backbone: name, rows: rows, res: map[string]result{}})
				for _, pair := range [][2]string{{"rowwise_adagrad", "sparse"}, {"adam", "dense"}} {
					if label := "go " + pair[0]; fits(label, rows) {
						goSide, err := pybench.StartCommand("Go worker", set, os.Args[0], "--", embeddingWorkerArg, name, strconv.FormatInt(rows, 10), strconv.Itoa(embeddingBenchBatch), pair[0])
						if err != nil {
							b.Fatal(err)
						}
						workers = append(workers, worker{goSide, len(table) - 1, label})
					} else if label == embeddingBenchDefault {
						b.Fatalf("%s at %d rows does not fit in the memory available: the default optimizer is what the comparison is about", name, rows)
					}
					if !fits("py "+pair[1], rows) {
						continue
					}
					py, err := pybench.Start(filepath.Join("testdata", "embedding_bench.py"), set,
						name, strconv.FormatInt(rows, 10), strconv.Itoa(embeddingBenchBatch), pair[1])
					if err != nil {
						b.Logf("PyTorch baseline skipped: %v", err)
						continue
					}
					workers = append(workers, worker{py, len(table) - 1, "py " + pair[1]})
				}
			}
			for range rounds {
				for _, w := range workers {
					answer, err := w.proc.Ask(fmt.Sprint(minSeconds))
					if err != nil {
						b.Fatal(err)
					}
					res := table[w.row].res
					best, seen := res[w.label]
					if !seen || answer["ms_per_step"] < best.ms {
						best.ms = answer["ms_per_step"]
					}
					best.rssMB = answer["peak_rss_mb"]
					res[w.label] = best
				}
			}
			for _, w := range workers {
				w.proc.Close()
			}
			for _, r := range table[rowsAt:] {
				b.ReportMetric(r.res[embeddingBenchDefault].ms, fmt.Sprintf("%s/%d-go-ms/step", name, r.rows))
			}
		}
	}
	sps := func(ms float64) float64 { return embeddingBenchBatch / ms * 1e3 }
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "backbone\trows\tGo rowwise_adagrad samples/s\tvs %d rows\tpeak MB\tGo adam samples/s\tpeak MB\tPyTorch sparse samples/s\tpeak MB\tPyTorch dense samples/s\tpeak MB\tGo rowwise_adagrad / PyTorch sparse\tGo adam / PyTorch sparse\t\n", sizes[0])
	for _, r := range table {
		base := table[0]
		for _, t := range table {
			if t.backbone == r.backbone && t.rows == sizes[0] {
				base = t
			}
		}
		cell := func(v string) string {
			res, ok := r.res[v]
			if !ok {
				return "-\t-"
			}
			return fmt.Sprintf("%.0f\t%.0f", sps(res.ms), res.rssMB)
		}
		ratio := func(v string) string {
			py, ok := r.res["py sparse"]
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.2f×", py.ms/r.res[v].ms)
		}
		def := r.res[embeddingBenchDefault]
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.backbone, r.rows, sps(def.ms),
			base.res[embeddingBenchDefault].ms/def.ms, def.rssMB, cell("go adam"), cell("py sparse"), cell("py dense"),
			ratio(embeddingBenchDefault), ratio("go adam"))
	}
	tw.Flush()
	fmt.Printf("EmbeddingStep: training step without meta networks, 8 fields × 16, batch %d, uniform ids, intra-op %d and BLAS %d threads, best of %d rounds; peak resident memory per process:\n%s",
		embeddingBenchBatch, torch.Threads(), torch.BLASThreads(), rounds, sb.String())
}

// TestMain runs the package's tests, unless BenchmarkEmbeddingStep started
// this process as its Go worker (arguments after "--":
// embedding-bench-worker BACKBONE ROWS BATCH OPTIMIZER); then it is that
// worker and runs no test.
func TestMain(m *testing.M) {
	flag.Parse()
	if args := flag.Args(); len(args) > 0 && args[0] == embeddingWorkerArg {
		if err := embeddingBenchWorker(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "embedding bench worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// The tests' models are small: a second libtorch thread only spins on a
	// shared machine. Benchmarks keep libtorch's default.
	if flag.Lookup("test.bench").Value.String() == "" {
		if err := torch.SetThreads(1, 1); err != nil {
			fmt.Fprintln(os.Stderr, "model tests:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// embeddingBenchWorker is the Go side of BenchmarkEmbeddingStep, in a
// process of its own per configuration; it answers the benchmark's
// requests as the PyTorch script does.
func embeddingBenchWorker(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("want BACKBONE ROWS BATCH OPTIMIZER, got %q", args)
	}
	runtime.LockOSThread()
	if err := torch.SetUpProcess(0); err != nil {
		return err
	}
	rows, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		return err
	}
	batch, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil {
		return err
	}
	rowWise := choice.FromKinds[string]("row-wise optimizer", torch.SparseKinds())
	name, err := rowWise.Parse(args[3])
	if err != nil {
		return err
	}
	kind, _ := rowWise.Kind(name)
	step, done, err := newEmbeddingBenchStep(args[0], rows, batch, kind)
	if err != nil {
		return err
	}
	defer done()
	for range 3 {
		if err := step(); err != nil {
			return err
		}
	}
	fmt.Printf("ready %s %d rows %s\n", args[0], rows, kind)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		minSeconds, err := strconv.ParseFloat(strings.TrimSpace(in.Text()), 64)
		if err != nil {
			return err
		}
		start, steps := time.Now(), 0
		for steps < 5 || time.Since(start).Seconds() < minSeconds {
			if err := step(); err != nil {
				return err
			}
			steps++
		}
		ms := time.Since(start).Seconds() * 1e3 / float64(steps)
		fmt.Printf("ms_per_step %.6f steps %d peak_rss_mb %.1f\n", ms, steps, peakRSSMB())
	}
	return in.Err()
}

// newEmbeddingBenchStep builds the model without meta networks over a
// table of rows × 16 in 8 fields, the row-wise optimizer for the table and
// Adam for the rest, and a pool of batches; it returns one training step.
func newEmbeddingBenchStep(backbone string, rows, batch int64, kind torch.SparseKind) (step func() error, done func(), err error) {
	if err := torch.ManualSeed(0); err != nil {
		return nil, nil, err
	}
	cfg := DefaultConfig()
	cfg.Backbone, cfg.Meta.Levels, cfg.EmbeddingDim = backbone, "none", embeddingBenchDim
	perField := rows / embeddingBenchFields
	spec := Spec{Scenarios: 3}
	for range embeddingBenchFields {
		spec.VocabSizes = append(spec.VocabSizes, perField)
	}
	m, err := New(cfg, spec, nil, torch.CPU)
	if err != nil {
		return nil, nil, err
	}
	if err := m.Embedding.SetSparse(true); err != nil {
		return nil, nil, err
	}
	sparse, err := torch.NewSparseOptimizer(kind, m.Embedding.Name(), m.Embedding.Weight, torch.DefaultSparseOptions(kind))
	if err != nil {
		return nil, nil, err
	}
	dense, err := torch.NewOptimizer(torch.Adam)
	if err != nil {
		return nil, nil, err
	}
	names, params := m.Store.ParameterTensors()
	if err := dense.AddGroup(names, params, torch.DefaultOptimOptions(torch.Adam)); err != nil {
		return nil, nil, err
	}
	opt, err := torch.NewCombinedOptimizer(dense, sparse)
	if err != nil {
		return nil, nil, err
	}
	counts := benchCounts(batch)
	var scen []int64
	for s, n := range counts {
		for range n {
			scen = append(scen, int64(s))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := torch.NewScope()
	pool := make([]Batch, embeddingBenchPool)
	for i := range pool {
		ids := make([]int64, batch*embeddingBenchFields)
		for j := range ids {
			ids[j] = rng.Int64N(perField)
		}
		pool[i] = Batch{Cat: torch.FromSlice(ids, batch, embeddingBenchFields), Scenario: torch.FromSlice(scen, batch), Counts: counts}
	}
	y := torch.Rand([]int64{batch}, torch.Float32, torch.CPU).LtScalar(0.3).ToDType(torch.Float32)
	k := 0
	step = func() error {
		sc := torch.NewScope()
		defer sc.Close()
		loss := torch.BCEWithLogits(m.Forward(pool[k%len(pool)]), y, nil, nil, torch.ReduceMean)
		k++
		if err := loss.Backward(); err != nil {
			return err
		}
		g, ok, err := m.Embedding.TakeSparseGrad()
		if err != nil || !ok {
			return fmt.Errorf("no sparse gradient (%v)", err)
		}
		if err := opt.Step(g); err != nil {
			return err
		}
		return opt.ZeroGrad()
	}
	return step, func() { data.Close(); opt.Close(); m.Close() }, nil
}

// peakRSSMB is the process's peak resident memory (VmHWM) in MiB; 0 where /proc is missing.
func peakRSSMB() float64 {
	kb, _ := procKB("/proc/self/status", "VmHWM")
	return kb / 1024
}
