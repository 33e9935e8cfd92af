package train

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train/knowledge"
)

// loadedKnowledge is what LoadModel rebuilds of a run: its test AUC, its
// scenario and user knowledge vectors, and whether they are parameters.
type loadedKnowledge struct {
	auc        float64
	scen, user []float32
	inStore    bool
}

func loadKnowledge(t *testing.T, dir string) loadedKnowledge {
	t.Helper()
	got, err := onTorchThread(func() (loadedKnowledge, error) {
		var out loadedKnowledge
		l, err := LoadModel(dir, "cpu", 1)
		if err != nil {
			return out, err
		}
		defer l.Close()
		rep, err := l.Evaluate(data.Test)
		if err != nil {
			return out, err
		}
		out.auc = *rep.Overall.AUC
		k := l.Model.Meta.Knowledge
		if out.scen, err = k.Scenario.Float32s(); err != nil {
			return out, err
		}
		out.user, err = k.User.Float32s()
		_, out.inStore = l.Model.Store.Get("meta.knowledge.user")
		return out, err
	})
	require.NoError(t, err)
	return got
}

// drawn is what IDKnowledge draws for cfg and the vocabularies of run dir.
func drawn(t *testing.T, cfg Config, dir string) (scenario, user []float32) {
	t.Helper()
	type pair struct{ s, u []float32 }
	p, err := onTorchThread(func() (pair, error) {
		ckDir, err := CheckpointDir(dir, "best")
		if err != nil {
			return pair{}, err
		}
		ck, err := ReadCheckpoint(ckDir)
		if err != nil {
			return pair{}, err
		}
		k, err := knowledge.IDKnowledge(cfg.Knowledge, cfg.Seed, ck.Vocabs, torch.CPU)
		if err != nil {
			return pair{}, err
		}
		defer k.Close()
		s, err := k.Scenario.Float32s()
		if err != nil {
			return pair{}, err
		}
		u, err := k.User.Float32s()
		return pair{s, u}, err
	})
	require.NoError(t, err)
	return p.s, p.u
}

// TestLearnedKnowledgeTrainsAndResumes: the learned encoder's vectors start
// from the seed's draw, move with training, are saved and restored exactly
// (LoadModel scores like the run), and a resumed run ends where an
// uninterrupted one does.
func TestLearnedKnowledgeTrainsAndResumes(t *testing.T) {
	cfg := tinyConfig(t, "knowledge.encoder=learned", "knowledge.learned.dim=16")
	res := trainTiny(t, context.Background(), cfg, false)
	assert.NoFileExists(t, cfg.Knowledge.StoreDir(cfg.Out)+"/index.json", "learned knowledge keeps no store")
	got := loadKnowledge(t, cfg.Out)
	assert.Equal(t, testAUC(t, res), got.auc, "the restored model scores like the run")
	assert.True(t, got.inStore, "learned vectors are parameters of the model")
	scen, user := drawn(t, cfg, cfg.Out)
	assert.Greater(t, maxDiff(scen, got.scen), 1e-4, "scenario vectors did not move")
	assert.Greater(t, maxDiff(user, got.user), 1e-4, "user vectors did not move")
	requireExactResume(t, cfg, res)
}

// TestRandomKnowledgeIsFixedBySeed: the random encoder's vectors are the
// seed's draw, the same for the same seed and different for another, and
// training leaves them as drawn (they are no parameters).
func TestRandomKnowledgeIsFixedBySeed(t *testing.T) {
	cfg := tinyConfig(t, "knowledge.encoder=random", "knowledge.random.dim=16")
	trainTiny(t, context.Background(), cfg, false)
	got := loadKnowledge(t, cfg.Out)
	assert.False(t, got.inStore)
	scen, user := drawn(t, cfg, cfg.Out)
	assert.Equal(t, scen, got.scen, "scenario vectors moved")
	assert.Equal(t, user, got.user, "user vectors moved")
	again, _ := drawn(t, cfg, cfg.Out)
	assert.Equal(t, scen, again, "the same seed drew other vectors")
	other := cfg
	other.Seed++
	otherScen, _ := drawn(t, other, cfg.Out)
	assert.Greater(t, maxDiff(scen, otherScen), 1e-3, "another seed drew the same vectors")
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return 1e9
	}
	var d float64
	for i := range a {
		d = max(d, float64(max(a[i]-b[i], b[i]-a[i])))
	}
	return d
}
