package torch

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestScopeCloseFrees(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := LiveTensors()
	s := NewScope()
	x := Ones([]int64{4}, Float32, CPU)
	y := x.MulScalar(2).Relu()
	assert.Equal(t, base+3, LiveTensors())
	assert.Equal(t, 3, s.Len())
	assert.ErrorContains(t, y.Close(), "belongs to a scope")
	s.Close()
	assert.Equal(t, base, LiveTensors())
	assert.False(t, x.Defined())
	s.Close() // closing twice is harmless
	assert.Equal(t, base, LiveTensors())
}

func TestScopeKeep(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := LiveTensors()
	outer := NewScope()
	inner := NewScope()
	a := Ones([]int64{2}, Float32, CPU)
	b := a.AddScalar(1)
	inner.Keep(b, nil)
	assert.Equal(t, 1, inner.Len())
	inner.Close()
	assert.Equal(t, base+1, LiveTensors(), "the kept tensor moved to the outer scope")
	v, err := b.Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{2, 2}, v)
	assert.ErrorContains(t, a.Relu().Err(), "scope was closed")
	assert.Equal(t, 1, outer.Len())

	// Keep at the top level hands the tensor to the caller.
	outer.Keep(b)
	outer.Close()
	assert.Equal(t, base+1, LiveTensors())
	v, err = b.Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{2, 2}, v)
	require.NoError(t, b.Close())
	assert.Equal(t, base, LiveTensors())
	require.NoError(t, b.Close(), "closing twice is harmless")
}

func TestScopeOutOfOrderClosePanics(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := LiveTensors()
	outer := NewScope()
	inner := NewScope()
	Ones([]int64{2}, Float32, CPU)
	assert.Panics(t, outer.Close)
	// Nothing was freed or unlinked by the refused close; the right order still works.
	assert.Equal(t, base+1, LiveTensors())
	inner.Close()
	outer.Close()
	assert.Equal(t, base, LiveTensors())
}

// Tensors made outside any scope are the caller's; helpers that make
// temporaries (Item, LoadState) must not leave handles behind.
func TestNoScopeOwnership(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base := LiveTensors()
	x := FromSlice([]float64{1.5})
	v, err := x.Item()
	require.NoError(t, err)
	assert.Equal(t, 1.5, v)
	assert.Equal(t, base+1, LiveTensors(), "Item must free its temporary")
	require.NoError(t, x.Close())
	assert.Equal(t, base, LiveTensors())
}

// residentBytes reads the resident set size from /proc/self/statm.
func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// A long run of small training steps with scopes must not grow: 100,000
// forward/backward/Adam steps of a 16→16→1 MLP, batch 32.
func TestTrainingLoopDoesNotLeak(t *testing.T) {
	steps := 100_000
	if testing.Short() {
		steps = 10_000
	}
	const warm = 1000
	// The test's goroutine runs all the torch work, locked to its thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	{
		require.NoError(t, SetThreads(1, 1))
		require.NoError(t, ManualSeed(1))
		base := LiveTensors()
		leakedBefore := LeakedTensors()
		m, err := newMLP([]int64{16, 16, 1})
		require.NoError(t, err)
		opt, err := NewOptimizer(Adam)
		require.NoError(t, err)
		require.NoError(t, opt.AddGroup(m.names(), m.params, DefaultOptimOptions(Adam)))
		x := Randn([]int64{32, 16}, Float32, CPU)
		y := Rand([]int64{32, 1}, Float32, CPU)
		var rssWarm int64
		var first, last float64
		for i := 0; i < steps; i++ {
			if i == warm {
				runtime.GC()
				rssWarm = residentBytes(t)
			}
			s := NewScope()
			require.NoError(t, opt.ZeroGrad())
			loss := BCEWithLogits(m.forward(x), y, nil, nil, ReduceMean)
			require.NoError(t, loss.Backward())
			require.NoError(t, opt.Step())
			if i == 0 || i == steps-1 {
				v, err := loss.Item()
				require.NoError(t, err)
				if i == 0 {
					first = v
				} else {
					last = v
				}
			}
			s.Close()
		}
		runtime.GC()
		rssEnd := residentBytes(t)
		t.Logf("%d steps: RSS %.1f MiB after %d, %.1f MiB at the end (%+.2f%%); loss %.4f -> %.4f",
			steps, float64(rssWarm)/(1<<20), warm, float64(rssEnd)/(1<<20), 100*float64(rssEnd-rssWarm)/float64(rssWarm), first, last)
		assert.Less(t, float64(rssEnd), 1.05*float64(rssWarm), "resident memory grew by 5% or more")
		assert.Less(t, last, first, "the loop should also have trained")
		require.NoError(t, x.Close())
		require.NoError(t, y.Close())
		opt.Close()
		m.Close()
		assert.Equal(t, base, LiveTensors(), "live handles after the run")
		assert.Equal(t, leakedBefore, LeakedTensors())
	}
}
