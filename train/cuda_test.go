package train

// CUDA tests: written and kept compiling on CPU-only machines, where they
// skip; `make test-gpu` (and `make gpu-check`) runs them on a GPU machine.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/rundir"
)

func requireGPUs(t *testing.T, n int) {
	t.Helper()
	if _, visible := torch.CUDAInfo(); visible < n {
		t.Skipf("needs %d CUDA GPU(s), %d visible", n, visible)
	}
}

// cudaParamTolerance bounds |CPU - GPU| for every parameter after the steps
// of TestCUDAStepsMatchCPU. SGD keeps the difference proportional to the
// kernels' float32 rounding (cuBLAS and OpenBLAS sum in different orders);
// Adam's first steps move each weight by about lr whatever its gradient's
// size, so a gradient that is zero up to rounding would differ by 2·lr.
const cudaParamTolerance = 1e-4

// A few SGD steps of every backbone, meta networks off and on, on cuda:0
// end with the parameters the same steps reach on the CPU.
func TestCUDAStepsMatchCPU(t *testing.T) {
	requireGPUs(t, 1)
	for _, backbone := range model.BackboneNames() {
		for _, levels := range []string{"none", "both"} {
			t.Run(backbone+"/meta="+levels, func(t *testing.T) {
				params := map[string]map[string][]float32{}
				for _, dev := range []string{"cpu", "cuda:0"} {
					cfg := tinyConfig(t, "model.backbone="+backbone, "model.meta.levels="+levels, "device="+dev,
						"data.synthetic.rows=1500", "train.epochs=1", "train.optimizer=sgd", "train.lr=0.05")
					trainTiny(t, context.Background(), cfg, false)
					params[dev] = checkpointParams(t, cfg.Out)
				}
				require.Equal(t, len(params["cpu"]), len(params["cuda:0"]))
				for name, cpu := range params["cpu"] {
					gpu := params["cuda:0"][name]
					require.Len(t, gpu, len(cpu), name)
					for i := range cpu {
						require.InDelta(t, cpu[i], gpu[i], cudaParamTolerance, "%s[%d]", name, i)
					}
				}
			})
		}
	}
}

// checkpointParams reads every tensor of a run's best checkpoint to the host.
func checkpointParams(t *testing.T, out string) map[string][]float32 {
	t.Helper()
	values, err := onTorchThread(func() (map[string][]float32, error) {
		l, err := LoadModel(out, "cpu", 1)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		got := map[string][]float32{}
		for name, x := range l.Model.Store.StateDict() {
			if got[name], err = x.Float32s(); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		return got, nil
	})
	require.NoError(t, err)
	return values
}

// Batches go to the GPU through pinned memory with an asynchronous copy
// while the grouper's host buffers are refilled for the next batch: each
// batch on the device must still hold its own rows.
func TestCUDAPinnedBatches(t *testing.T) {
	requireGPUs(t, 1)
	cfg := tinyConfig(t, "device=cuda:0", "data.synthetic.rows=1500")
	_, err := onTorchThread(func() (struct{}, error) {
		if _, err := Setup(&cfg); err != nil {
			return struct{}{}, err
		}
		sp, err := data.Load(cfg.Data)
		if err != nil {
			return struct{}{}, err
		}
		src, err := sp.Source(data.Train, data.BatchOptions{Size: 256})
		if err != nil {
			return struct{}{}, err
		}
		g := newGrouper(sp.Vocabs.Schema(), torch.CUDA(0))
		scope := torch.NewScope()
		defer scope.Close()
		it := src.Epoch(0, 0)
		defer it.Close()
		var onDevice []*torch.Tensor
		var want [][]int64
		for range 4 {
			b, ok := it.Next()
			if !ok {
				return struct{}{}, errors.New("the split has fewer than 4 batches")
			}
			g.group(b)
			batch, _ := g.tensors()
			assert.Equal(t, torch.CUDA(0), batch.Cat.Device())
			onDevice = append(onDevice, batch.Cat)
			want = append(want, slices.Clone(g.cat))
			it.Release(b) // the next batch overwrites the Go buffers while the copies may be in flight
		}
		if err := torch.Synchronize(torch.CUDA(0)); err != nil {
			return struct{}{}, err
		}
		for i, x := range onDevice {
			got, err := x.Int64s()
			if err != nil {
				return struct{}{}, err
			}
			assert.Equal(t, want[i], got, "batch %d", i)
		}
		return struct{}{}, nil
	})
	require.NoError(t, err)
}

// A CUDA out-of-memory error comes back as torch.ErrOutOfMemory, from a
// plain allocation and from a training step, and training continues at a
// smaller batch once memory is free again.
func TestCUDAOutOfMemoryThenSmallerBatch(t *testing.T) {
	requireGPUs(t, 1)
	cfg := tinyConfig(t, "device=cuda:0", "data.synthetic.rows=3000", "train.batch_size=1024")
	_, err := onTorchThread(func() (struct{}, error) {
		dev, err := Setup(&cfg)
		if err != nil {
			return struct{}{}, err
		}
		r := &run{cfg: cfg, dev: dev, log: io.Discard, opts: RunOptions{Log: io.Discard}}
		if err := r.prepare(context.Background(), nil); err != nil {
			return struct{}{}, err
		}
		defer r.close()
		src, err := r.trainSource()
		if err != nil {
			return struct{}{}, err
		}
		it := src.Epoch(0, 0)
		defer it.Close()
		b, ok := it.Next()
		if !ok {
			return struct{}{}, errors.New("no training batch")
		}
		defer it.Release(b)

		// Fill the GPU: blocks of 1 GiB, then 64 MiB, then 1 MiB, until each size fails.
		var hog []*torch.Tensor
		for _, floats := range []int64{1 << 28, 1 << 24, 1 << 18} {
			for {
				x := torch.Empty([]int64{floats}, torch.Float32, dev)
				if err := x.Err(); err != nil {
					if !errors.Is(err, torch.ErrOutOfMemory) {
						return struct{}{}, fmt.Errorf("filling the GPU: %w, want an out-of-memory error", err)
					}
					break
				}
				hog = append(hog, x)
			}
		}
		_, err = r.step(b, 100)
		for _, x := range hog {
			x.Close()
		}

		if !errors.Is(err, torch.ErrOutOfMemory) {
			return struct{}{}, fmt.Errorf("a step on a full GPU (%d blocks held): %v, want an out-of-memory error", len(hog), err)
		}

		// The same run goes on with half the batch.
		half := *b
		half.Size = b.Size / 2
		loss, err := r.step(&half, 100)
		if err != nil {
			return struct{}{}, fmt.Errorf("the step at half the batch after the out-of-memory error: %w", err)
		}
		assert.False(t, math.IsNaN(loss))
		return struct{}{}, nil
	})
	require.NoError(t, err)
}

// TestCUDADataParallelNCCL: on two GPUs, 2 ranks over NCCL (each on
// cuda:LOCAL_RANK) with batch B take the steps that one process on cuda:0
// takes with batch 2B, as TestDataParallelMatchesOneProcess checks over
// Gloo on the CPU; the GPUs' kernels sum in other orders than the CPU's, so
// parameters agree within cudaParamTolerance rather than 1e-5.
func TestCUDADataParallelNCCL(t *testing.T) {
	requireGPUs(t, 2)
	require.True(t, torch.NCCL.Compiled(), "two GPUs are visible but this libtorch has no NCCL: build against a CUDA libtorch with NCCL")
	for _, meta := range []string{"none", "both"} {
		t.Run("meta "+meta, func(t *testing.T) {
			one := distConfig(t, 256, "model.meta.levels="+meta, "device=cuda:0")
			oneRes := trainTiny(t, context.Background(), one, false)

			two := distConfig(t, 128, "model.meta.levels="+meta, "device=cuda", "dist.backend=nccl")
			errs, logs := launchRanks(t, 2, "train", two)
			requireRanksOK(t, errs, logs)
			twoRes, err := rundir.Dir(two.Out).ReadSummary()
			require.NoError(t, err)
			require.NotNil(t, twoRes, "the job wrote no summary.json")
			assert.Equal(t, oneRes.Steps, twoRes.Steps)
			assert.Equal(t, 2, twoRes.WorldSize)
			assert.Equal(t, 256, twoRes.GlobalBatch)
			diff := maxAbsDiff(t, latestParams(t, one.Out), latestParams(t, two.Out))
			assert.Less(t, diff, cudaParamTolerance, "largest parameter difference after %d steps", oneRes.Steps)
			assert.InDelta(t, *oneRes.Test.Overall.AUC, *twoRes.Test.Overall.AUC, 1e-3)
		})
	}
}
