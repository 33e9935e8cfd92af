package model

import (
	"math/rand/v2"
	"strings"
	"testing"

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
	randVec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
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

// TestMetaWeightsDifferAndGradientsFlow checks the paper's mechanism: the
// generated layers depend on the knowledge vector, gradients reach the
// projection, generator, head and fallback, and the frozen knowledge gets none.
func TestMetaWeightsDifferAndGradientsFlow(t *testing.T) {
	store, m := metaFixture(t, DefaultMetaConfig(), 10)
	scope := torch.NewScope()
	defer scope.Close()

	g := m.scenario.generate(m.Knowledge.Scenario)
	w, err := g.w[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	per := len(w) / 3
	if d := maxAbsDiff(w[:per], w[per:2*per]); d < 1e-4 {
		t.Errorf("scenarios 0 and 1 got the same meta weights (max diff %g)", d)
	}
	ug := m.user.generate(m.Knowledge.User.IndexSelect(0, torch.FromSlice([]int64{1, 2})))
	uw, _ := ug.w[0].Float32s()
	if d := maxAbsDiff(uw[:len(uw)/2], uw[len(uw)/2:]); d < 1e-4 {
		t.Errorf("users 1 and 2 got the same meta weights (max diff %g)", d)
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
}

// TestMetaMatchesPerSampleGeneration checks that generating once per
// distinct user and indexing equals generating for every row.
func TestMetaMatchesPerSampleGeneration(t *testing.T) {
	cfg := DefaultMetaConfig()
	cfg.Levels = "user"
	cfg.Layers = []int64{7, 5}
	_, m := metaFixture(t, cfg, 10)
	scope := torch.NewScope()
	defer scope.Close()
	users := []int64{3, 1, 3, 5, 1, 0}
	x := torch.Randn([]int64{int64(len(users)), 10}, torch.Float32, torch.CPU)
	got, err := m.userLayers(x, torch.FromSlice(users)).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		known := m.Knowledge.UserKnown.Narrow(0, u, 1)
		k := m.Knowledge.User.Narrow(0, u, 1).Mul(known).Add(m.UserFallback.Mul(known.RSubScalar(1)))
		g := m.user.generate(k)
		z := x.Narrow(0, int64(i), 1)
		for l := range g.w {
			z = m.act(z.Matmul(g.w[l].Select(0, 0)).Add(g.b[l]))
		}
		want, err := z.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(got[i*5:(i+1)*5], want); d > 1e-5 {
			t.Errorf("row %d (user %d): batched and per-sample meta layers differ by %g", i, u, d)
		}
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
