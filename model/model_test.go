package model

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/stretchr/testify/require"
)

// TestEveryBackboneWithEveryMetaLevel builds the whole model (embeddings,
// meta networks, backbone) for every registered backbone at every meta
// level, with a scenario absent from the batch, and checks that the logits
// are finite, one per row, and that a backward pass gives every parameter a
// finite gradient and the backbone's and meta networks' parameters a
// non-zero one in total.
func TestEveryBackboneWithEveryMetaLevel(t *testing.T) {
	lockThread(t)
	for _, name := range BackboneNames() {
		for _, levels := range []string{"none", "scenario", "user", "both"} {
			t.Run(name+"/"+levels, func(t *testing.T) {
				sc := torch.NewScope()
				defer sc.Close()
				cfg := DefaultMetaConfig()
				cfg.Levels = MetaLevels(levels)
				m, batch := modelFixture(t, name, cfg, false)
				b := batch.Scenario.Shape()[0]
				y := m.Forward(batch)
				require.NoError(t, y.Err())
				require.Equal(t, []int64{b}, y.Shape())
				require.NoError(t, y.Square().Sum(false).Backward())
				var backbone, meta float64
				for _, v := range m.Store.Parameters() {
					g := v.Tensor.Grad()
					if g == nil {
						continue // embedding rows of absent ids, for example, may have none
					}
					n, err := g.Abs().Sum(false).Item()
					require.NoError(t, err)
					require.Falsef(t, math.IsNaN(n) || math.IsInf(n, 0), "%s: gradient norm %g", v.Name, n)
					switch {
					case strings.HasPrefix(v.Name, "backbone."):
						backbone += n
					case strings.HasPrefix(v.Name, "meta."):
						meta += n
					}
				}
				require.Positive(t, backbone, "no gradient reaches the backbone")
				if levels != "none" {
					require.Positive(t, meta, "no gradient reaches the meta networks")
				}
			})
		}
	}
}

// normals draws n standard normal values.
func normals(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// modelFixture is a small model of backbone name with the meta networks
// configured by meta, over random knowledge (learned when asked), and a
// batch with a scenario absent (rows of scenarios 0 and 2 only).
func modelFixture(t *testing.T, name string, meta MetaConfig, learned bool) (*Model, Batch) {
	t.Helper()
	const users, knowledgeDim, scenarios, dim = 12, 8, 3, 6
	r := rand.New(rand.NewPCG(5, 6))
	vec := func(n int) []float32 { return normals(r, n) }
	known := make([]bool, users)
	for i := range known {
		known[i] = i%4 != 0
	}
	require.NoError(t, torch.ManualSeed(9))
	cfg := DefaultConfig()
	cfg.Backbone, cfg.EmbeddingDim, cfg.Meta = name, dim, meta
	cfg.BackboneConfig = smallBackboneConfig()
	var know *Knowledge
	if meta.Levels.Enabled() {
		var err error
		know, err = NewKnowledge(vec(scenarios*knowledgeDim), vec(users*knowledgeDim), known, knowledgeDim, torch.CPU)
		require.NoError(t, err)
		know.Learned = learned
	}
	m, err := New(cfg, Spec{VocabSizes: []int64{users, 7, 5}, Numeric: 2, Scenarios: scenarios}, know, torch.CPU)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	counts := []int64{6, 0, 8}
	var scen, cat []int64
	for s, n := range counts {
		for range n {
			scen = append(scen, int64(s))
			cat = append(cat, r.Int64N(users), r.Int64N(7), r.Int64N(5))
		}
	}
	b := int64(len(scen))
	batch := Batch{Cat: torch.FromSlice(cat, b, 3), Num: torch.FromSlice(vec(int(b)*2), b, 2), Scenario: torch.FromSlice(scen), Counts: counts}
	return m, batch
}

// trainModel runs a few Adam steps on random labels.
func trainModel(t *testing.T, m *Model, b Batch, steps int) {
	t.Helper()
	opt := newAdam(t, m.Store, 1e-2)
	defer opt.Close()
	y := torch.FromSlice([]float32{1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1})
	for range steps {
		sc := torch.NewScope()
		adamStep(t, opt, torch.BCEWithLogits(m.Forward(b), y, nil, nil, torch.ReduceMean))
		sc.Close()
	}
}

// TestPlacementsTrainAndFreeze: with the scenario-level layers at the
// bottom and as a branch, every backbone trains (the branch's read-out gets
// gradients and moves the logit), and the frozen scoring path of eval and
// predict (Model.Freeze) gives the training path's logits in evaluation mode.
func TestPlacementsTrainAndFreeze(t *testing.T) {
	lockThread(t)
	for _, name := range BackboneNames() {
		for _, placement := range MetaPlacementValues.Values() {
			t.Run(name+"/"+string(placement), func(t *testing.T) {
				sc := torch.NewScope()
				defer sc.Close()
				meta := DefaultMetaConfig()
				meta.Placement = placement
				m, b := modelFixture(t, name, meta, false)
				_, branch := m.Store.Get("meta.scenario.logit.weight")
				require.Equal(t, placement == PlacementBranch, branch, "the branch's read-out exists only as a branch")
				trainModel(t, m, b, 3)
				var live, frozen *torch.Tensor
				m.Store.SetTraining(false)
				torch.NoGrad(func() { live = m.Forward(b) })
				thaw, err := m.Freeze()
				require.NoError(t, err)
				torch.NoGrad(func() { frozen = m.Forward(b) })
				thaw()
				require.NoError(t, frozen.Err())
				d := maxAbsDiff(values(t, live), values(t, frozen))
				require.LessOrEqual(t, d, 1e-5, "frozen and training-path logits differ")
				if placement == PlacementBranch {
					// The branch's term is part of the logit: zeroing its read-out moves it.
					w, _ := m.Store.Get("meta.scenario.logit.weight")
					torch.NoGrad(func() { require.NoError(t, w.CopyFrom(w.MulScalar(0))) })
					var without *torch.Tensor
					torch.NoGrad(func() { without = m.Forward(b) })
					require.Greater(t, maxAbsDiff(values(t, live), values(t, without)), 1e-4)
				}
			})
		}
	}
}

// TestLearnedKnowledgeIsAParameter: learned knowledge vectors become
// parameters of the model that start from the given values and move with
// training; frozen ones stay out of the store and do not move.
func TestLearnedKnowledgeIsAParameter(t *testing.T) {
	lockThread(t)
	for _, learned := range []bool{false, true} {
		sc := torch.NewScope()
		m, b := modelFixture(t, "mmoe", DefaultMetaConfig(), learned)
		before := map[string][]float32{"scenario": values(t, m.Meta.Knowledge.Scenario.Clone()), "user": values(t, m.Meta.Knowledge.User.Clone())}
		trainModel(t, m, b, 3)
		for level, k := range map[string]*torch.Tensor{"scenario": m.Meta.Knowledge.Scenario, "user": m.Meta.Knowledge.User} {
			param, inStore := m.Store.Get("meta.knowledge." + level)
			require.Equal(t, learned, inStore, level)
			moved := maxAbsDiff(before[level], values(t, k))
			if learned {
				require.Same(t, param, k)
				require.Greater(t, moved, 1e-4, "learned %s vectors did not move", level)
			} else {
				require.Zero(t, moved, "frozen %s vectors moved", level)
			}
		}
		sc.Close()
	}
}
