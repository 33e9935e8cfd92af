// Package bundle tests the GPU bundle (make gpu-bundle, link.sh) end to end
// on the CPU: the archive is built, unpacked elsewhere, linked with g++ alone
// against this machine's libtorch, and the result trains.
package bundle

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noGoPath is a PATH with the system's tools and no Go toolchain, as on a
// GPU machine that only has a PyTorch.
const noGoPath = "/usr/sbin:/usr/bin:/sbin:/bin"

func TestBundleLinksAndTrainsWithoutGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bundle and compiles the shim: minutes")
	}
	for _, dir := range filepath.SplitList(noGoPath) {
		_, err := os.Stat(filepath.Join(dir, "go"))
		require.True(t, os.IsNotExist(err), "%s/go exists: the link step would not prove it needs no Go", dir)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	run(t, root, os.Environ(), "make", "gpu-bundle")

	unpacked := t.TempDir()
	run(t, unpacked, os.Environ(), "tar", "-xzf", filepath.Join(root, "build", "msrtrain-gpu-bundle.tar.gz"))
	dir := filepath.Join(unpacked, "msrtrain-gpu-bundle")
	// Only PATH and HOME: no CGO flags, no GOPATH, no LIBTORCH from this
	// session; python3 on that PATH is Debian's, whose torch package
	// carries libtorch's headers and libraries, as a CUDA PyTorch would.
	env := []string{"PATH=" + noGoPath, "HOME=" + unpacked}
	shimFiles, err := filepath.Glob(filepath.Join(dir, "cgo", "shim", "*.cpp"))
	require.NoError(t, err)
	seeded := seedShimObjects(t, root, dir, env)
	out := run(t, dir, env, "./link.sh")
	assert.Contains(t, out, "libtorch: ")
	// build_info.cpp is never seeded: link.sh compiles it with the flags it
	// found, and info below shows the distribution version they carry.
	compiled := len(shimFiles)
	if seeded {
		compiled = 1
	}
	assert.Contains(t, out, fmt.Sprintf("compiled %d of %d shim files", compiled, len(shimFiles)))

	info := run(t, dir, env, "./msrtrain", "info")
	assert.Regexp(t, `libtorch: compiled against 1\.13\.\d+ \(distribution 1\.13[^)]*\), loaded 1\.13`, info)

	runDir := filepath.Join(unpacked, "run")
	run(t, dir, env, "./msrtrain", "--device", "cpu", "--threads", "1", "--out", runDir, "train",
		"--set", "data.synthetic.rows=3000", "--set", "data.synthetic.users=200", "--set", "data.synthetic.items_per_scenario=40",
		"--set", "train.epochs=1", "--set", "train.batch_size=256", "--set", "model.star.hidden=[16]",
		"--set", "model.meta.layers=[8]", "--set", "model.meta.generator.hidden=[8]", "--set", "knowledge.hash.dim=8")
	summary, err := os.ReadFile(filepath.Join(runDir, "summary.json"))
	require.NoError(t, err)
	assert.Contains(t, string(summary), `"auc"`)

	again := run(t, dir, env, "./link.sh")
	assert.Contains(t, again, fmt.Sprintf("compiled 0 of %d shim files", len(shimFiles)), "a second link against the same libtorch")
}

// seedShimObjects copies the shim objects that make build compiled into the
// unpacked bundle, with the flags stamp link.sh leaves, when link.sh will
// find the libtorch make compiled them against (the same libtorch_cpu.so
// file): link.sh then compiles only build_info.cpp, the file that carries the
// distribution's version, instead of ten files against torch/torch.h. It
// reports whether it seeded; elsewhere link.sh compiles everything.
func seedShimObjects(t *testing.T, root, bundle string, env []string) bool {
	t.Helper()
	made, err := os.ReadFile(filepath.Join(root, "build", "torch.mk"))
	require.NoError(t, err, "make build writes build/torch.mk")
	makeLib := regexp.MustCompile(`(?m)^TORCH_LIBDIR := (.*)$`).FindSubmatch(made)
	require.NotNil(t, makeLib, "no TORCH_LIBDIR in build/torch.mk:\n%s", made)
	// The bundle's own finder, as link.sh runs it.
	found := run(t, bundle, env, "bash", "-c", `mkdir -p build && cgo/find_libtorch.sh build/torch.sh sh && . build/torch.sh && printf '%s\n%s' "$TORCH_LIBDIR" "$SHIM_CXXFLAGS"`)
	libdir, flags, ok := strings.Cut(found, "\n")
	require.True(t, ok, "find_libtorch.sh: %s", found)
	same := func(a, b string) bool {
		ra, errA := filepath.EvalSymlinks(filepath.Join(a, "libtorch_cpu.so"))
		rb, errB := filepath.EvalSymlinks(filepath.Join(b, "libtorch_cpu.so"))
		return errA == nil && errB == nil && ra == rb
	}
	if !same(string(makeLib[1]), libdir) {
		t.Logf("link.sh finds libtorch in %s, make build used %s: link.sh compiles every shim file", libdir, makeLib[1])
		return false
	}
	objs, err := filepath.Glob(filepath.Join(root, "build", "shim", "*.o"))
	require.NoError(t, err)
	require.NotEmpty(t, objs, "make build leaves the shim's objects in build/shim")
	dst := filepath.Join(bundle, "build", "shim")
	require.NoError(t, os.MkdirAll(dst, 0o755))
	for _, obj := range objs {
		if filepath.Base(obj) == "build_info.o" {
			continue
		}
		b, err := os.ReadFile(obj)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, filepath.Base(obj)), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dst, "cxxflags"), []byte(flags), 0o644))
	return true
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s in %s:\n%s", name, strings.Join(args, " "), dir, out)
	return string(out)
}
