package torch

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDevice(t *testing.T) {
	cases := []struct {
		in   string
		want Device
		err  string
	}{
		{"cpu", CPU, ""},
		{"cuda", CUDA(0), ""},
		{"cuda:0", CUDA(0), ""},
		{"cuda:3", CUDA(3), ""},
		{"cuda:-1", Device{}, "non-negative integer"},
		{"cuda:x", Device{}, "non-negative integer"},
		{"gpu", Device{}, "want cpu, cuda or cuda:N"},
		{"", Device{}, "want cpu, cuda or cuda:N"},
	}
	for _, c := range cases {
		got, err := ParseDevice(c.in)
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	assert.Equal(t, "cpu", CPU.String())
	assert.Equal(t, "cuda:2", CUDA(2).String())
	assert.True(t, CUDA(1).IsCUDA())
	assert.False(t, CPU.IsCUDA())
}

// This machine's libtorch is CPU-only.
func TestDevicesOnCPUBuild(t *testing.T) {
	built, n := CUDAInfo()
	if built || n > 0 {
		t.Skipf("this libtorch has CUDA (built=%v, %d GPUs); the CPU-only checks do not apply", built, n)
	}
	assert.False(t, CUDAAvailable())
	assert.NoError(t, CheckDevice(CPU))
	err := CheckDevice(CUDA(0))
	assert.ErrorContains(t, err, "device cuda:0: this libtorch")
	assert.ErrorContains(t, err, "has no CUDA support")
	dev, err := ResolveDevice("auto")
	require.NoError(t, err)
	assert.Equal(t, CPU, dev)
	dev, err = ResolveDevice("")
	require.NoError(t, err)
	assert.Equal(t, CPU, dev)
	dev, err = ResolveDevice("cpu")
	require.NoError(t, err)
	assert.Equal(t, CPU, dev)
	_, err = ResolveDevice("cuda:1")
	assert.ErrorContains(t, err, "no CUDA support")
	_, err = ResolveDevice("tpu")
	assert.ErrorContains(t, err, "want cpu, cuda or cuda:N")
	assert.NoError(t, Synchronize(CPU))
	_, err = CUDADeviceName(0)
	assert.Error(t, err)
}

func TestVersions(t *testing.T) {
	require.NoError(t, CheckVersion())
	loaded, err := LoadedVersion()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(loaded, "1.13."), "loaded libtorch %q", loaded)
	assert.True(t, strings.HasPrefix(CompiledVersion(), "1.13."), "compiled against %q", CompiledVersion())
	lib, err := LoadedLibrary()
	require.NoError(t, err)
	assert.True(t, strings.Contains(lib, "libtorch_cpu.so"), lib)
	assert.Equal(t, "1.13", majorMinor(BuildVersion()))
	assert.True(t, strings.Contains(BuildConfig(), "PyTorch built with"), BuildConfig())
}

func TestThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := Threads()
	defer SetThreads(prev, 0)
	require.NoError(t, SetThreads(2, 1))
	assert.Equal(t, 2, Threads())
	if b := BLASThreads(); b != -1 {
		assert.Equal(t, 1, b)
	}
	require.NoError(t, SetThreads(1, 0)) // 0 leaves the BLAS alone
	assert.Equal(t, 1, Threads())
}

func TestSetCPUThreadsGivesTheCoresToTheBLAS(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prevIntra, prevBLAS := Threads(), BLASThreads()
	defer SetThreads(prevIntra, prevBLAS)
	if BLASThreads() < 0 {
		t.Skip("the BLAS has no thread pool of its own")
	}
	for _, tc := range []struct{ n, wantBLAS int }{{1, 1}, {0, runtime.NumCPU()}} {
		require.NoError(t, SetThreads(2, 2)) // from a state the policy must undo
		require.NoError(t, SetCPUThreads(tc.n))
		assert.Equal(t, 1, Threads(), "intra-op threads for n=%d", tc.n)
		assert.Equal(t, tc.wantBLAS, BLASThreads(), "BLAS threads for n=%d", tc.n)
	}
}

// TestBLASCore: an OpenBLAS that chooses its kernels at run time names
// them, and names the ones OPENBLAS_CORETYPE asks for. The test runs
// itself again with the variable set to kernels every x86-64 CPU can run.
func TestBLASCore(t *testing.T) {
	if os.Getenv("MSR_TEST_BLAS_CORE_CHILD") != "" {
		fmt.Printf("kernels=%s\n", BLASCore())
		return
	}
	if _, open, err := LoadedBLAS(); err != nil || !open {
		t.Skip("the BLAS is not OpenBLAS")
	}
	if BLASCore() == "" {
		t.Skip("this OpenBLAS was built for one CPU and names no kernels")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the kernels asked for below are x86-64's")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBLASCore$")
	cmd.Env = append(os.Environ(), "MSR_TEST_BLAS_CORE_CHILD=1", "OPENBLAS_CORETYPE=Sandybridge")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "kernels=Sandybridge")
}

// TestBenchAddHelpersFreeWhatTheyMake: the benchmark helpers free every
// sum they make, the last partial batch of 100 included. Their results are
// C handles the Go side never sees, so the test watches the resident
// memory: calls of 50 additions (only a partial batch) of 64 KiB tensors,
// 4,000 results in all, would hold 256 MiB if any leaked, and hold at most
// 100 at a time when none does.
func TestBenchAddHelpersFreeWhatTheyMake(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const floats = 1 << 14
	x := Ones([]int64{floats}, Float32, CPU)
	y := Ones([]int64{floats}, Float32, CPU)
	defer x.Close()
	defer y.Close()
	live := LiveTensors()
	round := func() {
		_, err := BenchAddCrossing(x, y, 50)
		require.NoError(t, err)
		_, err = BenchAddLoop(x, y, 50)
		require.NoError(t, err)
	}
	round() // the allocator's first growth is not a leak
	before := residentBytes(t)
	for range 40 {
		round()
	}
	_, err := BenchAddCrossing(x, y, 250) // not a multiple of the 100 held at a time
	require.NoError(t, err)
	_, err = BenchAddLoop(x, y, 250)
	require.NoError(t, err)
	grown := residentBytes(t) - before
	assert.Less(t, grown, int64(64<<20), "resident memory grew by %d MiB over 4,500 sums of 64 KiB", grown>>20)
	assert.Equal(t, live, LiveTensors())
	for _, in := range []*Tensor{x, y} {
		v, err := in.Float32s()
		require.NoError(t, err)
		assert.Equal(t, float32(floats), sum32(v), "the inputs are left as they were")
	}

	bad := x.Reshape(7) // 16,384 elements cannot take shape [7]
	defer bad.Close()
	_, err = BenchAddCrossing(bad, y, 10)
	require.Error(t, err)
	_, err = BenchAddLoop(bad, y, 10)
	require.Error(t, err)
}

func sum32(v []float32) float32 {
	var s float32
	for _, x := range v {
		s += x
	}
	return s
}
