package rundir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadJSONLSkipsTornLastLine(t *testing.T) {
	d := Dir(t.TempDir())
	require.NoError(t, os.WriteFile(d.Steps(), []byte(`{"step":10,"epoch":1,"loss":0.5,"lr":0.001}`+"\n"+`{"step":20,"ep`), 0o644))
	steps, err := d.ReadSteps()
	require.NoError(t, err)
	assert.Equal(t, []Step{{Step: 10, Epoch: 1, Loss: 0.5, LR: 0.001}}, steps)

	require.NoError(t, os.WriteFile(d.Steps(), []byte("{bad\n"+`{"step":20}`+"\n"), 0o644))
	_, err = d.ReadSteps()
	assert.ErrorContains(t, err, StepsFile+":1:")

	steps, err = Dir(t.TempDir()).ReadSteps()
	assert.NoError(t, err)
	assert.Empty(t, steps)
}

// TestRecordsRoundTrip: what a run appends and writes reads back as the
// same typed records, under the run directory's file names.
func TestRecordsRoundTrip(t *testing.T) {
	d := Dir(t.TempDir())
	for range 2 { // a resumed run appends to the same logs
		log, err := d.AppendEpochs()
		require.NoError(t, err)
		require.NoError(t, log.Append(Epoch{Epoch: 1, Step: 38, TrainLoss: 0.5, LR: 1e-3}))
		require.NoError(t, log.Close())
	}
	epochs, err := d.ReadEpochs()
	require.NoError(t, err)
	assert.Equal(t, []Epoch{{Epoch: 1, Step: 38, TrainLoss: 0.5, LR: 1e-3}, {Epoch: 1, Step: 38, TrainLoss: 0.5, LR: 1e-3}}, epochs)
	b, err := os.ReadFile(filepath.Join(string(d), "metrics.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"train_loss":0.5`)

	var discard *Log[Step]
	assert.NoError(t, discard.Append(Step{Step: 1}), "a nil log discards")

	none, err := d.ReadSummary()
	require.NoError(t, err)
	assert.Nil(t, none, "no summary.json: the run has not finished")
	want := &Summary{Out: string(d), BestEpoch: 2, Steps: 76, Scenarios: []string{"video"}, Baseline: &Summary{Steps: 76}}
	require.NoError(t, d.WriteSummary(want))
	got, err := d.ReadSummary()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.FileExists(t, filepath.Join(string(d), "summary.json"))

	assert.False(t, d.HasRun())
	require.NoError(t, os.MkdirAll(d.Checkpoints(), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(string(d), "checkpoints", "latest"), []byte("step-00000038\n"), 0o644))
	assert.True(t, d.HasRun())
	assert.Equal(t, d, OfCheckpoint(filepath.Join(d.Checkpoints(), "step-00000038")))
	assert.Equal(t, filepath.Join(string(d), "baseline", "report.html"), d.Baseline().Report())
}
