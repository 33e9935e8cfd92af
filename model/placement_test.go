package model

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// Every registered backbone, with the meta networks off and on, takes one
// training step (forward, backward, a look at every gradient, an Adam
// update) and one evaluation forward with the model on libtorch's meta
// device and the batch moved there as the trainer moves it to CUDA. Under
// torch.CheckPlacement a tensor the model makes on the CPU fails here, as it
// would fail the run on a GPU, without one.
func TestPlacementOnMeta(t *testing.T) {
	lockThread(t)
	restore := torch.CheckPlacement()
	defer restore()
	variants := []struct {
		name string
		cfg  func(BackboneConfig) BackboneConfig
	}{
		{"defaults", func(c BackboneConfig) BackboneConfig { return c }},
		{"norm+dropout", func(c BackboneConfig) BackboneConfig { return withNormAndDropout(c, 0.1) }},
		{"other settings", func(c BackboneConfig) BackboneConfig {
			c.PLE.SharedGate, c.AdaptDHM.CenterUpdate = SharedGateOwn, CenterSum
			c.EPNet.Structure, c.M3oE.Structure = StructureScenarioWiseRec, StructureScenarioWiseRec
			return c
		}},
	}
	for _, name := range BackboneNames() {
		for _, levels := range []MetaLevels{LevelsNone, LevelsBoth} {
			for _, v := range variants {
				t.Run(name+"/meta="+string(levels)+"/"+v.name, func(t *testing.T) {
					cfg := DefaultConfig()
					cfg.Backbone, cfg.Meta.Levels = name, levels
					cfg.BackboneConfig = v.cfg(cfg.BackboneConfig)
					placementStep(t, cfg)
				})
			}
		}
		t.Run(name+"/meta=both/branch", func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Backbone, cfg.Meta.Placement = name, PlacementBranch
			placementStep(t, cfg)
		})
	}
}

func placementStep(t *testing.T, cfg Config) {
	scope := torch.NewScope()
	defer scope.Close()
	spec := Spec{VocabSizes: []int64{20, 15, 10}, Numeric: 2, Scenarios: 3}
	know := testKnowledge(t, cfg, spec, torch.Meta)
	m, err := New(cfg, spec, know, torch.Meta)
	require.NoError(t, err)
	defer m.Close()
	for _, v := range m.Store.Vars() {
		require.Equal(t, torch.Meta, v.Tensor.Device(), v.Name)
	}

	// Scenario 1 absent: the routing's empty segments run too.
	counts := []int64{3, 0, 5}
	const rows = 8
	batch, label := deviceBatch(spec, counts, torch.Meta)
	m.Store.SetTraining(true)
	logits := m.Forward(batch)
	require.NoError(t, logits.Err())
	assert.Equal(t, []int64{rows}, logits.Shape())
	assert.Equal(t, torch.Meta, logits.Device())
	loss := torch.BCEWithLogits(logits, label, nil, nil, torch.ReduceMean)
	require.NoError(t, loss.Backward())
	names, params := m.Store.ParameterTensors()
	withGrad := 0
	for i, p := range params {
		if g := p.Grad(); g != nil && g.Defined() {
			assert.Equal(t, torch.Meta, g.Device(), names[i])
			assert.Equal(t, p.Shape(), g.Shape(), names[i])
			withGrad++
		}
	}
	assert.Positive(t, withGrad)
	opt, err := torch.NewOptimizer(torch.Adam)
	require.NoError(t, err)
	defer opt.Close()
	require.NoError(t, opt.AddGroup(names, params, torch.DefaultOptimOptions(torch.Adam)))
	require.NoError(t, opt.Step())
	require.NoError(t, opt.ZeroGrad())
	for i, p := range params {
		require.Equal(t, torch.Meta, p.Device(), names[i])
	}

	m.Store.SetTraining(false)
	torch.NoGrad(func() {
		probs := m.Forward(batch).Sigmoid()
		require.NoError(t, probs.Err())
		assert.Equal(t, []int64{rows}, probs.Shape())
		assert.Equal(t, torch.Meta, probs.Device())
	})
}

// testKnowledge is zero knowledge vectors on dev for spec's scenarios and
// users (every third user without one), or nil with the meta networks off.
func testKnowledge(t testing.TB, cfg Config, spec Spec, dev torch.Device) *Knowledge {
	t.Helper()
	if cfg.Meta.Levels == "none" {
		return nil
	}
	const dim = 8
	users := spec.VocabSizes[0]
	known := make([]bool, users)
	for u := range known {
		known[u] = u%3 != 0
	}
	know, err := NewKnowledge(make([]float32, int64(spec.Scenarios)*dim), make([]float32, users*dim), known, dim, dev)
	require.NoError(t, err)
	return know
}

// deviceBatch builds a batch grouped by scenario as counts say on the host
// and moves it to dev as the trainer does, with zero labels.
func deviceBatch(spec Spec, counts []int64, dev torch.Device) (Batch, *torch.Tensor) {
	fields := int64(len(spec.VocabSizes))
	var cat, scen []int64
	for s, n := range counts {
		for range n {
			row := int64(len(scen))
			for f, size := range spec.VocabSizes {
				cat = append(cat, (row+int64(f))%size)
			}
			scen = append(scen, int64(s))
		}
	}
	rows := int64(len(scen))
	to := func(x *torch.Tensor) *torch.Tensor { return x.ToDevice(dev, false) }
	return Batch{
		Cat:      to(torch.FromSlice(cat, rows, fields)),
		Num:      to(torch.Randn([]int64{rows, int64(spec.Numeric)}, torch.Float32, torch.CPU)),
		Scenario: to(torch.FromSlice(scen)),
		Counts:   counts,
	}, to(torch.FromSlice(make([]float32, rows)))
}
