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
	}
	for _, name := range BackboneNames() {
		for _, levels := range []string{"none", "both"} {
			for _, v := range variants {
				t.Run(name+"/meta="+levels+"/"+v.name, func(t *testing.T) {
					cfg := DefaultConfig()
					cfg.Backbone, cfg.Meta.Levels = name, levels
					cfg.BackboneConfig = v.cfg(cfg.BackboneConfig)
					placementStep(t, cfg)
				})
			}
		}
	}
}

func placementStep(t *testing.T, cfg Config) {
	scope := torch.NewScope()
	defer scope.Close()
	const users, knowledgeDim = 20, 8
	spec := Spec{VocabSizes: []int64{users, 15, 10}, Numeric: 2, Scenarios: 3}
	var know *Knowledge
	if cfg.Meta.Levels != "none" {
		known := make([]bool, users)
		for u := range known {
			known[u] = u%3 != 0
		}
		var err error
		know, err = NewKnowledge(make([]float32, spec.Scenarios*knowledgeDim), make([]float32, users*knowledgeDim), known, knowledgeDim, torch.Meta)
		require.NoError(t, err)
	}
	m, err := New(cfg, spec, know, torch.Meta)
	require.NoError(t, err)
	defer m.Close()
	for _, v := range m.Store.Vars() {
		require.Equal(t, torch.Meta, v.Tensor.Device(), v.Name)
	}

	// A batch built on the host, grouped by scenario, scenario 1 absent.
	counts := []int64{3, 0, 5}
	const rows = 8
	cat := make([]int64, 0, rows*3)
	var scen []int64
	for i := range int64(rows) {
		cat = append(cat, i%users, i%15, i%10)
		scen = append(scen, map[bool]int64{true: 0, false: 2}[i < counts[0]])
	}
	toMeta := func(x *torch.Tensor) *torch.Tensor { return x.ToDevice(torch.Meta, false) }
	batch := Batch{
		Cat:      toMeta(torch.FromSlice(cat, rows, 3)),
		Num:      toMeta(torch.Randn([]int64{rows, 2}, torch.Float32, torch.CPU)),
		Scenario: toMeta(torch.FromSlice(scen)),
		Counts:   counts,
	}
	label := toMeta(torch.FromSlice(make([]float32, rows)))

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
