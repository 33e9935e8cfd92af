package train

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// WriteEnvironment writes what `msrtrain info` shows after its version line
// (a run records it at the start of training, so that a report made later
// shows the machine that trained):
// the Go version, the libtorch compiled against and loaded, the thread
// counts, the BLAS and the CUDA devices.
func WriteEnvironment(w io.Writer) error {
	var b strings.Builder
	loaded, _ := torch.LoadedVersion()
	if loaded == "" {
		loaded = "unknown version"
	}
	lib, _ := torch.LoadedLibrary()
	fmt.Fprintf(&b, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "libtorch: compiled against %s (distribution %s), loaded %s from %s\n", torch.CompiledVersion(), torch.BuildVersion(), loaded, lib)
	if err := torch.CheckVersion(); err != nil {
		fmt.Fprintf(&b, "  WARNING: %v\n", err)
	}
	fmt.Fprintf(&b, "threads: libtorch intra-op %d, OpenBLAS %d (of %d CPUs)\n", torch.Threads(), torch.BLASThreads(), runtime.NumCPU())
	if blas, open, err := torch.LoadedBLAS(); err != nil {
		fmt.Fprintf(&b, "BLAS: %v\n", err)
	} else if open {
		fmt.Fprintf(&b, "BLAS: OpenBLAS, %s", blas)
		if core := torch.BLASCore(); core != "" {
			fmt.Fprintf(&b, ", %s kernels", core)
			if os.Getenv("OPENBLAS_CORETYPE") != "" {
				fmt.Fprint(&b, " (chosen by OPENBLAS_CORETYPE)")
			}
		}
		fmt.Fprintln(&b)
	} else {
		fmt.Fprintf(&b, "BLAS: %s\n  WARNING: not OpenBLAS; matrix products may run ~60x slower: install libopenblas0-pthread (make setup)\n", blas)
	}
	built, n := torch.CUDAInfo()
	fmt.Fprintf(&b, "CUDA: libtorch_cuda loaded: %v, devices: %d\n", built, n)
	for i := range n {
		name, err := torch.CUDADeviceName(i)
		if err != nil {
			name = err.Error()
		}
		fmt.Fprintf(&b, "  cuda:%d %s\n", i, name)
	}
	for _, line := range strings.Split(torch.BuildConfig(), "\n") {
		if strings.Contains(line, "BLAS") || strings.Contains(line, "OpenMP") || strings.Contains(line, "LAPACK") {
			fmt.Fprintln(&b, "build:", strings.TrimSpace(line))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
