package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
)

// BenchmarkDataParallel measures data-parallel training on this machine, in
// one run:
//
//   - the gradient all-reduce per step of every registered bare backbone (default
//     configs, default synthetic vocabularies), 2 ranks over Gloo on loopback;
//
//   - end-to-end samples/s of Shared-Bottom on the default synthetic data, one
//     epoch at global batch 1024: 1 rank with 2 threads against 2 ranks with
//     1 thread each, the latter also with the all-reduce overlapped with the
//     backward pass (dist.overlap, buckets small enough to start early);
//
//   - PyTorch DDP (python3-torch, torchrun, Gloo, 2 ranks x 1 thread) training
//     the same model shapes (testdata/ddp_bench.py), and the ratio.
//
//     go test -run '^$' -bench DataParallel -benchtime 1x ./train/
func BenchmarkDataParallel(b *testing.B) {
	b.Setenv("GLOO_SOCKET_IFNAME", "lo")
	cfg := DefaultConfig()
	sp, err := data.Load(cfg.Data)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		fmt.Println("gradient all-reduce per step, 2 ranks, Gloo over loopback:")
		for _, backbone := range model.BackboneNames() {
			ms, mb, err := allReduceStep(cfg, backbone, sp.Vocabs)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("  %-14s %6.1f MB of gradients  %7.2f ms/step\n", backbone, mb, ms)
		}
		run := func(world, threads int, overlapBucketMB float64) float64 {
			c := cfg
			if overlapBucketMB > 0 {
				c.Dist.Overlap, c.Dist.BucketMB = true, overlapBucketMB
			}
			c.Model.Backbone, c.Model.Meta.Levels = "shared_bottom", "none"
			c.Train.Epochs, c.Train.EarlyStopping.Patience = 1, 0
			c.Train.BatchSize = 1024 / world
			c.Threads = threads
			c.Out = b.TempDir()
			errs, logs := launchRanks(b, world, "train", c)
			for r, err := range errs {
				if err != nil {
					b.Fatalf("rank %d: %v\n%s", r, err, logs[r])
				}
			}
			var res Result
			js, err := os.ReadFile(filepath.Join(c.Out, "summary.json"))
			if err == nil {
				err = json.Unmarshal(js, &res)
			}
			if err != nil {
				b.Fatal(err)
			}
			return res.SamplesPerSec
		}
		one := run(1, 2, 0)
		two := run(2, 1, 0)
		overlapped := run(2, 1, 0.25)
		train := int(float64(sp.Train.Len()))
		py, err := pytorchDDP(b, train, 512, sp.Vocabs)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("Shared-Bottom, default synthetic data, global batch 1024, one epoch (%d rows):\n", train)
		fmt.Printf("  msrtrain 1 rank x 2 threads   %8.0f samples/s\n", one)
		fmt.Printf("  msrtrain 2 ranks x 1 thread   %8.0f samples/s  (%.2fx the single rank)\n", two, two/one)
		fmt.Printf("  ... all-reduce overlapped with backward, 0.25 MB buckets %8.0f samples/s  (%.2fx not overlapped)\n", overlapped, overlapped/two)
		fmt.Printf("  PyTorch DDP 2 ranks x 1 thread %7.0f samples/s  (msrtrain/PyTorch %.2fx)\n", py, two/py)
	}
}

// allReduceStep builds two copies of a bare backbone, gives every parameter
// a gradient and times AverageGrads between two in-process ranks.
func allReduceStep(cfg Config, backbone string, vocabs *data.Vocabs) (msPerStep, mb float64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mc := cfg.Model
	mc.Backbone, mc.Meta.Levels = backbone, "none"
	const world, steps = 2, 20
	var params [world][]*torch.Tensor
	for r := range world {
		m, err := buildModel(mc, vocabs, nil, torch.CPU)
		if err != nil {
			return 0, 0, err
		}
		defer m.Close()
		_, ps := m.Store.ParameterTensors()
		for _, p := range ps {
			s := p.Sum(false)
			err := s.Backward()
			s.Close()
			if err != nil {
				return 0, 0, err
			}
			if r == 0 {
				mb += float64(p.Numel()*4) / (1 << 20)
			}
		}
		params[r] = ps
	}
	host, err := torch.NewStore(torch.StoreOptions{Host: "127.0.0.1", Server: true, WorldSize: world, Timeout: time.Minute})
	if err != nil {
		return 0, 0, err
	}
	defer host.Close()
	var wg sync.WaitGroup
	times := make([]time.Duration, world)
	errs := make([]error, world)
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			// A client per rank: one TCPStore client serialises its calls,
			// so two ranks blocking on one would deadlock the rendezvous.
			s, err := torch.NewStore(torch.StoreOptions{Host: "127.0.0.1", Port: host.Port(), Timeout: time.Minute})
			if err != nil {
				errs[r] = err
				return
			}
			defer s.Close()
			g, err := torch.NewProcessGroup(torch.Gloo, s, r, world, time.Minute)
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			bucket := int64(cfg.Dist.BucketMB * (1 << 20))
			if errs[r] = g.AverageGrads(params[r], bucket, nil); errs[r] != nil { // warm-up
				return
			}
			start := time.Now()
			for range steps {
				if errs[r] = g.AverageGrads(params[r], bucket, nil); errs[r] != nil {
					return
				}
			}
			times[r] = time.Since(start)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, 0, err
		}
	}
	return float64(max(times[0], times[1]).Microseconds()) / 1000 / steps, mb, nil
}

// pytorchDDP runs testdata/ddp_bench.py under torchrun with 2 ranks and
// returns its samples/s.
func pytorchDDP(b *testing.B, rows, batch int, vocabs *data.Vocabs) (float64, error) {
	out := filepath.Join(b.TempDir(), "samples_per_sec")
	var sizes []string
	for _, n := range vocabs.Sizes() {
		sizes = append(sizes, strconv.Itoa(n))
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "ddp_bench.py"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/torchrun", "--redirects", "2", "--tee", "2", "--nproc_per_node", "2",
		"--master_addr", "127.0.0.1", "--master_port", strconv.Itoa(freePort(b)), "--no_python",
		"/usr/bin/python3", script, strconv.Itoa(rows), strconv.Itoa(batch), strconv.Itoa(len(vocabs.Scenarios)),
		strconv.Itoa(len(vocabs.Numeric)), strings.Join(sizes, ","), out)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("torchrun ddp_bench.py: %w\n%s", err, msg)
	}
	v, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(v)), 64)
}
