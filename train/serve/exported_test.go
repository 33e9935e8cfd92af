package serve

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/train/export"
)

// An exported directory serves the scores predict gives the checkpoint it
// came from (within 1e-5: the TorchScript module rounds differently), and
// a server loading with AnyLoader reloads from it to a checkpoint.
func TestExportedDirectoryServesPredictScores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "exported")
	require.NoError(t, onTorchThread(func() error {
		_, err := export.Export(export.Options{Checkpoint: fx.runA, Out: dir, Threads: 1})
		return err
	}))
	require.NoError(t, IsModelPath(dir))
	ts := startServer(t, Options{Checkpoint: dir, Load: AnyLoader("cpu", 1)})
	all := allRows()
	for _, part := range [][]int{all[:1], all[1:8], all} {
		r, err := score(ts.url, part)
		require.NoError(t, err)
		assert.Equal(t, dir, r.Model)
		require.Len(t, r.Scores, len(part))
		for i, k := range part {
			assert.InDelta(t, fx.wantA[k], r.Scores[i], 1e-5, "row %d (fixture row %d)", i, k)
		}
	}
	name, err := ts.Reload(fx.runB)
	require.NoError(t, err)
	assert.Equal(t, fx.nameB, name)
	r, err := score(ts.url, all)
	require.NoError(t, err)
	require.NoError(t, checkScores(r, all))
	assert.Error(t, IsModelPath(t.TempDir()), "an empty directory is neither")
}
