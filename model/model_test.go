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
	const users, knowledgeDim, scenarios, dim = 12, 8, 3, 6
	r := rand.New(rand.NewPCG(3, 4))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	known := make([]bool, users)
	for i := range known {
		known[i] = i%4 != 0
	}
	spec := Spec{VocabSizes: []int64{users, 7, 5}, Numeric: 2, Scenarios: scenarios}
	counts := []int64{5, 0, 7}
	var scen, cat []int64
	for s, n := range counts {
		for range n {
			scen = append(scen, int64(s))
			cat = append(cat, r.Int64N(users), r.Int64N(7), r.Int64N(5))
		}
	}
	b := int64(len(scen))
	for _, name := range BackboneNames() {
		for _, levels := range []string{"none", "scenario", "user", "both"} {
			t.Run(name+"/"+levels, func(t *testing.T) {
				sc := torch.NewScope()
				defer sc.Close()
				require.NoError(t, torch.ManualSeed(5))
				cfg := DefaultConfig()
				cfg.Backbone, cfg.EmbeddingDim, cfg.Meta.Levels = name, dim, MetaLevels(levels)
				cfg.BackboneConfig = smallBackboneConfig()
				var know *Knowledge
				if levels != "none" {
					var err error
					know, err = NewKnowledge(vec(scenarios*knowledgeDim), vec(users*knowledgeDim), known, knowledgeDim, torch.CPU)
					require.NoError(t, err)
				}
				m, err := New(cfg, spec, know, torch.CPU)
				require.NoError(t, err)
				defer m.Close()
				batch := Batch{
					Cat: torch.FromSlice(cat, b, 3), Num: torch.Randn([]int64{b, 2}, torch.Float32, torch.CPU),
					Scenario: torch.FromSlice(scen), Counts: counts,
				}
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
