package model

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// metaFixture builds a Meta over random knowledge: 3 scenarios, 6 users of
// whom user 5 has no vector.
func metaFixture(t *testing.T, cfg MetaConfig, inDim int64) (*nn.Store, *Meta) {
	t.Helper()
	if err := torch.ManualSeed(7); err != nil {
		t.Fatal(err)
	}
	const dim = 12
	r := rand.New(rand.NewPCG(1, 2))
	randVec := func(n int) []float32 { return normals(r, n) }
	known := []bool{false, true, true, true, true, false}
	user := randVec(len(known) * dim)
	for i, k := range known {
		if !k {
			clear(user[i*dim : (i+1)*dim])
		}
	}
	know, err := NewKnowledge(randVec(3*dim), user, known, dim, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	store := nn.NewStore(torch.CPU)
	m, err := NewMeta(store.Root().Sub("meta"), inDim, know, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(); know.Close() })
	return store, m
}

func TestMetaOutputShapesAndFusion(t *testing.T) {
	tests := []struct {
		levels, fusion string
		layers         []int64
		wantWidth      int64
	}{
		{"both", "concat", []int64{8, 4}, 10 + 4 + 4},
		{"scenario", "concat", []int64{4}, 10 + 4},
		{"user", "concat", []int64{6}, 10 + 6},
		{"both", "residual", []int64{10}, 10},
	}
	for _, tc := range tests {
		cfg := DefaultMetaConfig()
		cfg.Levels, cfg.Fusion, cfg.Layers = MetaLevels(tc.levels), Fusion(tc.fusion), tc.layers
		_, m := metaFixture(t, cfg, 10)
		if m.OutDim != tc.wantWidth {
			t.Errorf("%s/%s: OutDim %d, want %d", tc.levels, tc.fusion, m.OutDim, tc.wantWidth)
		}
		scope := torch.NewScope()
		in := Input{X: torch.Randn([]int64{5, 10}, torch.Float32, torch.CPU), Scenario: torch.FromSlice([]int64{0, 0, 2, 2, 2}), Counts: []int64{2, 0, 3}}
		out := m.Forward(in, torch.FromSlice([]int64{1, 2, 1, 5, 0}))
		if err := out.Err(); err != nil {
			t.Fatalf("%s/%s: %v", tc.levels, tc.fusion, err)
		}
		if got := out.Shape(); got[0] != 5 || got[1] != tc.wantWidth {
			t.Errorf("%s/%s: shape %v, want [5 %d]", tc.levels, tc.fusion, got, tc.wantWidth)
		}
		scope.Close()
	}
}

// metaHeadCases are the heads every meta test runs with.
var metaHeadCases = []MetaHead{MetaHeadFactorized, MetaHeadFull}

// TestMetaWeightsDifferAndGradientsFlow checks the paper's mechanism: the
// generated layers depend on the knowledge vector, gradients reach the
// projection, generator, head, factors and fallback, and the frozen knowledge gets none.
func TestMetaWeightsDifferAndGradientsFlow(t *testing.T) {
	for _, head := range metaHeadCases {
		t.Run(string(head), func(t *testing.T) {
			cfg := DefaultMetaConfig()
			cfg.Head = head
			store, m := metaFixture(t, cfg, 10)
			scope := torch.NewScope()
			defer scope.Close()

			for level, k := range map[string]*torch.Tensor{
				"scenario": m.Knowledge.Scenario.Narrow(0, 0, 2),
				"user":     m.Knowledge.User.Narrow(0, 1, 2),
			} {
				net := map[string]*metaNet{"scenario": m.scenario, "user": m.user}[level]
				x := torch.Randn([]int64{1, 10}, torch.Float32, torch.CPU)
				a, b := plainMetaLayers(net, k.Narrow(0, 0, 1), x), plainMetaLayers(net, k.Narrow(0, 1, 1), x)
				if d := tensorMaxAbsDiff(t, a, b); d < 1e-4 {
					t.Errorf("two %ss' meta layers give the same output (max diff %g)", level, d)
				}
			}

			in := Input{X: torch.Randn([]int64{6, 10}, torch.Float32, torch.CPU), Scenario: torch.FromSlice([]int64{0, 0, 1, 1, 2, 2}), Counts: []int64{2, 2, 2}}
			out := m.Forward(in, torch.FromSlice([]int64{1, 2, 3, 4, 5, 0})) // users 5 and 0 have no vector
			if err := out.Square().Sum(false).Backward(); err != nil {
				t.Fatal(err)
			}
			for _, v := range store.Parameters() {
				gr := v.Tensor.Grad()
				if gr == nil {
					t.Errorf("%s received no gradient", v.Name)
					continue
				}
				n, _ := gr.Abs().Sum(false).Item()
				if n == 0 {
					t.Errorf("%s has an all-zero gradient", v.Name)
				}
			}
			for name, k := range map[string]*torch.Tensor{"scenario": m.Knowledge.Scenario, "user": m.Knowledge.User} {
				if k.RequiresGrad() || k.Grad() != nil {
					t.Errorf("the %s knowledge vectors are trainable or received a gradient", name)
				}
			}
		})
	}
}

// plainMetaLayers runs a level's meta layers on rows x for one knowledge
// vector k [1, K] the plain way: build W_l and b_l explicitly, then
// z_l = act(z_{l-1}·W_l + b_l), with z_0 = x or, factorized, x·P.
func plainMetaLayers(net *metaNet, k, x *torch.Tensor) *torch.Tensor {
	flat := net.head.Forward(net.hidden(k)).Select(0, 0)
	z := x
	if net.inProj != nil {
		z = x.Matmul(net.inProj)
	}
	for _, l := range net.layers {
		w := flat.Narrow(0, l.off, l.in*l.out).View(l.in, l.out).MulScalar(l.scale)
		z = net.act.Apply(z.Matmul(w).Add(flat.Narrow(0, l.bias(), l.out)))
	}
	return z
}

// plainMetaForward is Meta.Forward computed row by row from each row's own
// knowledge vectors: no grouping by scenario, no distinct users, no linearity trick.
func plainMetaForward(m *Meta, x *torch.Tensor, scenarios, users []int64) *torch.Tensor {
	rows := make([]*torch.Tensor, len(users))
	for i, u := range users {
		xi := x.Narrow(0, int64(i), 1)
		parts := []*torch.Tensor{xi}
		if m.scenario != nil {
			parts = append(parts, plainMetaLayers(m.scenario, m.Knowledge.Scenario.Narrow(0, scenarios[i], 1), xi))
		}
		if m.user != nil {
			known := m.Knowledge.UserKnown.Narrow(0, u, 1)
			k := m.Knowledge.User.Narrow(0, u, 1).Mul(known).Add(m.UserFallback.Mul(known.RSubScalar(1)))
			parts = append(parts, plainMetaLayers(m.user, k, xi))
		}
		if m.cfg.Fusion == "residual" {
			rows[i] = parts[0]
			for _, p := range parts[1:] {
				rows[i] = rows[i].Add(p)
			}
		} else {
			rows[i] = torch.Cat(parts, 1)
		}
	}
	return torch.Cat(rows, 0)
}

func tensorMaxAbsDiff(t *testing.T, a, b *torch.Tensor) float64 {
	t.Helper()
	av, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	bv, err := b.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return maxAbsDiff(av, bv)
}

// metaCases are every level setting with both fusions and both heads, on
// two meta layers (the residual's last as wide as the input, 10).
func metaCases() []MetaConfig {
	var cases []MetaConfig
	for _, head := range metaHeadCases {
		for _, levels := range []MetaLevels{LevelsScenario, LevelsUser, LevelsBoth} {
			for _, fusion := range []Fusion{FusionConcat, FusionResidual} {
				cfg := DefaultMetaConfig()
				cfg.Head, cfg.Levels, cfg.Fusion, cfg.Rank = head, levels, fusion, 3
				cfg.Layers = []int64{7, 5}
				if fusion == FusionResidual {
					cfg.Layers = []int64{7, 10}
				}
				cases = append(cases, cfg)
			}
		}
	}
	return cases
}

func metaCaseName(c MetaConfig) string {
	return string(c.Head) + "/" + string(c.Levels) + "/" + string(c.Fusion)
}

// The batch of the equivalence tests: users repeat, user 5 has no vector,
// user 0 is out of vocabulary, scenario 1 is absent.
var (
	metaTestScenarios = []int64{0, 0, 0, 2, 2, 2}
	metaTestCounts    = []int64{3, 0, 3}
	metaTestUsers     = []int64{3, 1, 3, 5, 1, 0}
)

// TestMetaMatchesPlainComputation checks that the batched meta layers (the
// full head through its linearity, the factorized head's shared factors,
// one generator run per scenario and per distinct user) equal building
// every row's layers from its own knowledge vectors, in outputs and in
// every parameter's gradient.
func TestMetaMatchesPlainComputation(t *testing.T) {
	for _, cfg := range metaCases() {
		t.Run(metaCaseName(cfg), func(t *testing.T) {
			store, m := metaFixture(t, cfg, 10)
			scope := torch.NewScope()
			defer scope.Close()
			x := torch.Randn([]int64{int64(len(metaTestUsers)), 10}, torch.Float32, torch.CPU)
			weight := torch.Randn([]int64{int64(len(metaTestUsers)), m.OutDim}, torch.Float32, torch.CPU)
			grads := func(out *torch.Tensor) map[string][]float32 {
				if err := torch.ZeroGrad(paramTensors(store)...); err != nil {
					t.Fatal(err)
				}
				if err := out.Mul(weight).Sum(false).Backward(); err != nil {
					t.Fatal(err)
				}
				g := map[string][]float32{}
				for _, v := range store.Parameters() {
					if gr := v.Tensor.Grad(); gr != nil {
						g[v.Name], _ = gr.Clone().Float32s()
					}
				}
				return g
			}
			in := Input{X: x, Scenario: torch.FromSlice(metaTestScenarios), Counts: metaTestCounts}
			got := m.Forward(in, torch.FromSlice(metaTestUsers))
			want := plainMetaForward(m, x, metaTestScenarios, metaTestUsers)
			if d := tensorMaxAbsDiff(t, got, want); d > 1e-5 {
				t.Errorf("outputs differ by %g", d)
			}
			gotGrad, wantGrad := grads(got), grads(want)
			if len(gotGrad) != len(wantGrad) || len(gotGrad) == 0 {
				t.Fatalf("%d parameters with gradients, the plain computation %d", len(gotGrad), len(wantGrad))
			}
			for name, w := range wantGrad {
				if d := maxAbsDiff(gotGrad[name], w); d > 1e-5 {
					t.Errorf("%s: gradients differ by %g", name, d)
				}
			}
		})
	}
}

func paramTensors(s *nn.Store) []*torch.Tensor {
	_, ts := s.ParameterTensors()
	return ts
}

// TestMetaFrozenMatchesTraining checks that scoring with the layers
// precomputed for every scenario and user (Freeze) equals the training-time
// computation, and that thaw returns to it.
func TestMetaFrozenMatchesTraining(t *testing.T) {
	for _, cfg := range metaCases() {
		t.Run(metaCaseName(cfg), func(t *testing.T) {
			store, m := metaFixture(t, cfg, 10)
			store.SetTraining(false)
			in := Input{X: torch.Randn([]int64{int64(len(metaTestUsers)), 10}, torch.Float32, torch.CPU), Scenario: torch.FromSlice(metaTestScenarios), Counts: metaTestCounts}
			defer in.X.Close()
			var live, frozen, thawed *torch.Tensor
			torch.NoGrad(func() {
				live = m.Forward(in, torch.FromSlice(metaTestUsers))
				thaw, err := m.Freeze(FreezeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				frozen = m.Forward(in, torch.FromSlice(metaTestUsers))
				thaw()
				thawed = m.Forward(in, torch.FromSlice(metaTestUsers))
			})
			if d := tensorMaxAbsDiff(t, live, frozen); d > 1e-5 {
				t.Errorf("frozen and training-time meta layers differ by %g", d)
			}
			if d := tensorMaxAbsDiff(t, live, thawed); d != 0 {
				t.Errorf("after thaw the output moved by %g", d)
			}
			if m.frozen != nil {
				t.Error("thaw left the precomputed layers in place")
			}
		})
	}
}

func TestMetaConfigErrors(t *testing.T) {
	tests := []struct {
		edit func(*MetaConfig)
		want string
	}{
		{func(c *MetaConfig) { c.Levels = "all" }, `model.meta.levels = "all"`},
		{func(c *MetaConfig) { c.ProjectionDim = 0 }, "model.meta.projection_dim = 0"},
		{func(c *MetaConfig) { c.Layers = nil }, "model.meta.layers"},
		{func(c *MetaConfig) { c.Layers = []int64{8, -1} }, "model.meta.layers[1] = -1"},
		{func(c *MetaConfig) { c.Fusion = "sum" }, `model.meta.fusion = "sum"`},
		{func(c *MetaConfig) { c.Head = "lowrank" }, `model.meta.head = "lowrank": want full or factorized`},
		{func(c *MetaConfig) { c.Head, c.Rank = MetaHeadFactorized, 0 }, "model.meta.rank = 0"},
		{func(c *MetaConfig) { c.Generator.Dropout = 1 }, "model.meta.generator.dropout"},
	}
	for _, tc := range tests {
		cfg := DefaultMetaConfig()
		tc.edit(&cfg)
		err := cfg.Validate("model.meta")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to mention %q", err, tc.want)
		}
	}
	cfg := DefaultMetaConfig()
	cfg.Fusion = "residual"
	if _, err := NewMeta(nn.NewStore(torch.CPU).Root(), 10, &Knowledge{Dim: 4}, cfg); err == nil || !strings.Contains(err.Error(), "residual") {
		t.Errorf("residual fusion with a mismatched width: %v", err)
	}
	if _, err := NewMeta(nn.NewStore(torch.CPU).Root(), 10, nil, DefaultMetaConfig()); err == nil {
		t.Error("meta networks without knowledge should be refused")
	}
}

// TestMetaUserCacheMatchesFullTable: with room for fewer users than a
// batch holds, the recent-users cache scores as the table of every user
// does, batch after batch, and evicts the least recently used.
func TestMetaUserCacheMatchesFullTable(t *testing.T) {
	lockThread(t)
	cfg := DefaultMetaConfig()
	cfg.Layers = []int64{7, 5}
	store, m := metaFixture(t, cfg, 10)
	store.SetTraining(false)
	batches := [][]int64{{3, 1, 3, 5, 1, 0}, {1, 1, 2}, {2, 4}, {1, 3}, {4, 4, 4}}
	x := torch.Randn([]int64{6, 10}, torch.Float32, torch.CPU)
	defer x.Close()
	score := func(o FreezeOptions) ([][]float32, CacheStats) {
		var out [][]float32
		thaw, err := m.Freeze(o)
		require.NoError(t, err)
		defer thaw()
		torch.NoGrad(func() {
			for _, users := range batches {
				sc := torch.NewScope()
				n := int64(len(users))
				in := Input{X: x.Narrow(0, 0, n), Scenario: torch.Zeros([]int64{n}, torch.Int64, torch.CPU), Counts: []int64{n, 0, 0}}
				out = append(out, values(t, m.Forward(in, torch.FromSlice(users))))
				sc.Close()
			}
		})
		return out, m.CacheStats()
	}
	full, fullStats := score(FreezeOptions{})
	assert.Equal(t, CacheStats{Users: 6, Bytes: 6 * 4 * 16, AllUsers: true}, fullStats)
	recent, stats := score(FreezeOptions{UserCacheBytes: 2 * 4 * 16})
	for i := range full {
		assert.LessOrEqual(t, maxAbsDiff(full[i], recent[i]), 1e-6, "batch %d", i)
	}
	// Batch 1: 4 distinct users, 2 kept (0, 1); batch 2: 1 hit; batch 3: 2 hit;
	// batch 4: 1 and 3 miss, evicting 2 and 4; batch 5: 4 misses.
	assert.Equal(t, CacheStats{Users: 2, Bytes: 2 * 4 * 16, Hits: 2, Misses: 9}, stats)
	assert.Equal(t, CacheStats{}, m.CacheStats(), "thawed")
}
