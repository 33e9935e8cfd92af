// Package bundle tests the GPU bundle (make gpu-bundle, link.sh) end to end
// on the CPU: the archive is built, unpacked elsewhere, linked with g++ alone
// against this machine's libtorch, and the result trains.
package bundle

import (
	"os"
	"os/exec"
	"path/filepath"
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
	out := run(t, dir, env, "./link.sh")
	assert.Contains(t, out, "libtorch: ")

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
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s in %s:\n%s", name, strings.Join(args, " "), dir, out)
	return string(out)
}
