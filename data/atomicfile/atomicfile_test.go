package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testUmask is not the usual 022, so that a file with the right mode did
// not get it by chance; it is set before the package reads the umask.
const testUmask = 0o027

func TestMain(m *testing.M) {
	syscall.Umask(testUmask)
	os.Exit(m.Run())
}

func TestWriteFollowsUmask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	require.NoError(t, WriteJSON(path, map[string]int{"steps": 3}))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "0666 less the umask %03o, as os.Create gives", testUmask)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"steps\": 3\n}\n", string(b))
}

func TestWriteReplacesOrKeeps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, WriteBytes(path, []byte("old")))
	require.NoError(t, WriteBytes(path, []byte("new")))
	b, _ := os.ReadFile(path)
	assert.Equal(t, "new", string(b))

	bad := errors.New("render failed")
	err := Write(path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return bad
	})
	assert.ErrorIs(t, err, bad)
	b, _ = os.ReadFile(path)
	assert.Equal(t, "new", string(b), "a failed write leaves the old file")
	left, _ := filepath.Glob(filepath.Join(dir, TempGlob))
	assert.Empty(t, left, "a failed write removes its temporary file")
}

func TestOutput(t *testing.T) {
	var stdout bytes.Buffer
	require.NoError(t, Output("-", &stdout, func(w io.Writer) error { _, err := io.WriteString(w, "row,score\n"); return err }))
	assert.Equal(t, "row,score\n", stdout.String())

	// A pipe named by path (as /dev/stdout is when output is piped) is
	// written in place: an fsync there would fail with EINVAL.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	got := make(chan string)
	go func() { b, _ := io.ReadAll(r); got <- string(b) }()
	err = Output(fmt.Sprintf("/proc/self/fd/%d", w.Fd()), nil, func(w io.Writer) error { _, err := io.WriteString(w, "piped\n"); return err })
	w.Close()
	require.NoError(t, err)
	assert.Equal(t, "piped\n", <-got)

	path := filepath.Join(t.TempDir(), "scores.csv")
	require.NoError(t, Output(path, nil, func(w io.Writer) error { _, err := io.WriteString(w, "file\n"); return err }))
	b, _ := os.ReadFile(path)
	assert.Equal(t, "file\n", string(b))
	fi, _ := os.Stat(path)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}
