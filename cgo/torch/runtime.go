package torch

/*
#include <stdlib.h>
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// CompiledVersion is the libtorch version of the headers the shim was compiled against ("1.13.0").
func CompiledVersion() string {
	var ma, mi, pa C.int
	C.msr_version_compiled(&ma, &mi, &pa)
	return fmt.Sprintf("%d.%d.%d", int(ma), int(mi), int(pa))
}

// BuildVersion is the libtorch distribution version the Makefile found (for example "1.13.1"), or "unknown".
func BuildVersion() string { return C.GoString(C.msr_torch_distribution()) }

// LoadedLibrary is the path of the libtorch_cpu library this process runs with.
func LoadedLibrary() (string, error) { return loadedLibrary("libtorch_cpu.so") }

// LoadedBLAS is the path of the BLAS library libtorch runs its matrix
// products on, resolved through symbolic links (Debian's alternatives), and
// whether it is OpenBLAS rather than the slow reference implementation.
func LoadedBLAS() (path string, openBLAS bool, err error) {
	for _, fragment := range []string{"libopenblas", "libblas", "libmkl"} {
		if path, err = loadedLibrary(fragment); err == nil {
			if real, e := filepath.EvalSymlinks(path); e == nil {
				path = real
			}
			return path, strings.Contains(path, "openblas") || BLASThreads() >= 0, nil
		}
	}
	return "", false, err
}

func loadedLibrary(fragment string) (string, error) {
	buf := make([]byte, 4096)
	f := C.CString(fragment)
	defer C.free(unsafe.Pointer(f))
	if err := check("loaded library", C.msr_loaded_library(f, bytesPtr(buf), C.int(len(buf)))); err != nil {
		return "", err
	}
	return cstring(buf), nil
}

var sonameVersion = regexp.MustCompile(`libtorch_cpu\.so\.(\d+\.\d+(?:\.\d+)?)$`)
var versionPy = regexp.MustCompile(`__version__\s*=\s*['"]([^'"+]+)`)

// LoadedVersion finds the version of the loaded libtorch: from the library's
// versioned file name (Debian), a libtorch zip's build-version file, or a
// pip wheel's torch/version.py. It returns "" when none of them says.
func LoadedVersion() (string, error) {
	path, err := LoadedLibrary()
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if m := sonameVersion.FindStringSubmatch(path); m != nil {
		return m[1], nil
	}
	root := filepath.Dir(filepath.Dir(path))
	if b, err := os.ReadFile(filepath.Join(root, "build-version")); err == nil {
		return strings.SplitN(strings.TrimSpace(string(b)), "+", 2)[0], nil
	}
	if b, err := os.ReadFile(filepath.Join(root, "version.py")); err == nil {
		if m := versionPy.FindSubmatch(b); m != nil {
			return string(m[1]), nil
		}
	}
	return "", nil
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// CheckVersion refuses to run on a libtorch whose major.minor differs from
// the one the program was compiled against: the C++ ABI is not stable across them.
func CheckVersion() error {
	loaded, err := LoadedVersion()
	if err != nil {
		return err
	}
	if loaded == "" {
		return nil // nothing says; the dynamic linker already matched the soname
	}
	if majorMinor(loaded) != majorMinor(CompiledVersion()) {
		path, _ := LoadedLibrary()
		return fmt.Errorf("libtorch version mismatch: msrtrain was compiled against libtorch %s but loaded %s from %s; rebuild with `make build` against this libtorch, or point LD_LIBRARY_PATH at the one it was built with",
			CompiledVersion(), loaded, path)
	}
	return nil
}

// SetThreads sets libtorch's intra-op threads and the BLAS's own pool
// (values <= 0 leave a setting alone). Call it once at start-up.
func SetThreads(intraOp, blas int) error {
	return check("set threads", C.msr_set_num_threads(C.int(intraOp), C.int(blas)))
}

// SetCPUThreads gives torch work n CPU threads (n <= 0: one per CPU).
// Matrix products are most of a recommendation model's training step, so
// where the BLAS keeps a pool of its own (OpenBLAS) it gets all n and
// libtorch's intra-op pool gets 1: two pools at full width oversubscribe the
// cores, and the BLAS splitting the products beats libtorch splitting the
// ops around them (docs/benchmarks.md). A BLAS without its own pool (MKL
// runs on libtorch's OpenMP threads) gets n through the intra-op pool.
func SetCPUThreads(n int) error {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	if BLASThreads() < 0 {
		return SetThreads(n, 0)
	}
	return SetThreads(1, n)
}

// SetUpProcess applies msrtrain's runtime settings, as train.Setup and the
// benchmarks that mirror it need them: the allocator thresholds
// (TuneAllocator) and the thread policy (SetCPUThreads). Call it once at
// start-up, before the first tensor.
func SetUpProcess(threads int) error {
	if err := TuneAllocator(); err != nil {
		return err
	}
	return SetCPUThreads(threads)
}

// BLASCore names the kernels a run-time dispatching OpenBLAS runs
// ("Haswell", "Cooperlake", ...), as it chose them for this CPU or as
// OPENBLAS_CORETYPE set them; it is empty for any other BLAS.
func BLASCore() string {
	buf := make([]byte, 64)
	C.msr_blas_core(bytesPtr(buf), C.int(len(buf)))
	return cstring(buf)
}

// Threads is libtorch's intra-op thread count.
func Threads() int { return int(C.msr_get_num_threads()) }

// BLASThreads is OpenBLAS's thread count, or -1 when the BLAS in use has no such control.
func BLASThreads() int { return int(C.msr_blas_threads()) }

// ManualSeed seeds libtorch's default generators (CPU and CUDA).
func ManualSeed(seed uint64) error { return check("manual_seed", C.msr_manual_seed(C.uint64_t(seed))) }

// BuildConfig is libtorch's own description of its build (BLAS, OpenMP, CUDA, ...).
func BuildConfig() string {
	buf := make([]byte, 16384)
	if err := check("config", C.msr_config(bytesPtr(buf), C.int(len(buf)))); err != nil {
		return err.Error()
	}
	return cstring(buf)
}

// CUDAInfo reports whether this libtorch has CUDA support loaded and how many GPUs it sees.
func CUDAInfo() (built bool, devices int) {
	var b, d C.int
	C.msr_cuda_info(&b, &d)
	return b != 0, int(d)
}

// CUDAAvailable reports whether at least one GPU can be used.
func CUDAAvailable() bool {
	_, n := CUDAInfo()
	return n > 0
}

// CUDADeviceName is the GPU's marketing name.
func CUDADeviceName(i int) (string, error) {
	buf := make([]byte, 512)
	if err := check("cuda device name", C.msr_cuda_device_name(C.int(i), bytesPtr(buf), C.int(len(buf)))); err != nil {
		return "", err
	}
	return cstring(buf), nil
}

// Synchronize waits for the GPU's queued work (a no-op on the CPU).
func Synchronize(dev Device) error {
	if !dev.IsCUDA() {
		return nil
	}
	return check("synchronize", C.msr_cuda_synchronize(C.int(dev.Index)))
}

// CheckDevice says whether dev can be used and, if not, which of the reasons applies and what to do.
func CheckDevice(dev Device) error {
	if !dev.IsCUDA() {
		return nil
	}
	built, n := CUDAInfo()
	lib, _ := LoadedLibrary()
	switch {
	case !built:
		return fmt.Errorf("device %s: this libtorch (%s) has no CUDA support; build against a CUDA libtorch with `make LIBTORCH=/path/to/libtorch build` (see docs/gpu.md), or use --device cpu", dev, lib)
	case n == 0:
		return fmt.Errorf("device %s: libtorch has CUDA support but sees no GPU; check `nvidia-smi`, the driver, and CUDA_VISIBLE_DEVICES=%q, or use --device cpu", dev, os.Getenv("CUDA_VISIBLE_DEVICES"))
	case dev.Index >= n:
		return fmt.Errorf("device %s: only %d GPU(s) visible (cuda:0..cuda:%d)", dev, n, n-1)
	}
	return nil
}

// ResolveDevice maps "auto" to CUDA when available, else the CPU, and checks other names.
func ResolveDevice(name string) (Device, error) {
	if name == "" || name == "auto" {
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	}
	dev, err := ParseDevice(name)
	if err != nil {
		return Device{}, err
	}
	return dev, CheckDevice(dev)
}

// BenchAddLoop times iters additions of a and b inside C++, the baseline for the Go path's per-op overhead.
func BenchAddLoop(a, b *Tensor, iters int) (float64, error) {
	if bad := firstErr(a, b); bad != nil {
		return 0, bad.err
	}
	var s C.double
	err := check("bench", C.msr_bench_add_loop(a.h, b.h, C.int(iters), &s))
	return float64(s), err
}

// BenchAddCrossing times iters additions of a and b, one cgo call each, with
// nothing on the Go side but the call (results freed per 100, as a scope
// does): what a binding that crosses once per op cannot get below.
func BenchAddCrossing(a, b *Tensor, iters int) (time.Duration, error) {
	if bad := firstErr(a, b); bad != nil {
		return 0, bad.err
	}
	const perScope = 100
	held := make([]C.msr_tensor, perScope)
	start := time.Now()
	for i := 0; i < iters; i += perScope {
		n := min(perScope, iters-i)
		for j := 0; j < n; j++ {
			C.msr_bench_add_once(a.h, b.h, &held[j])
		}
		C.msr_free_tensors(&held[0], C.int(n))
	}
	return time.Since(start), nil
}
