package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// TestPLESharedGateMixesEveryScenario: with rows of scenario 0 only, the
// paper's shared gate still mixes scenarios 1 and 2's experts of the first
// level into the shared path, so their weights get gradients and moving
// them moves the output; the own variant never runs them.
func TestPLESharedGateMixesEveryScenario(t *testing.T) {
	lockThread(t)
	const dim = 10
	for _, gate := range []PLESharedGate{SharedGateAll, SharedGateOwn} {
		cfg := smallBackboneConfig()
		cfg.PLE.SharedGate = gate
		sc := torch.NewScope()
		store, bb := buildBackbone(t, "ple", dim, testScenarios, cfg, 3)
		in := makeInput([]int64{6, 0, 0}, dim)
		out := bb.Forward(in)
		before := values(t, out)
		require.NoError(t, out.Sum(false).Backward())
		for _, s := range []string{"1", "2"} {
			name := "backbone.levels.0.specific." + s + ".0.weight"
			w, ok := store.Get(name)
			require.True(t, ok, name)
			var moved float64
			if g := w.Grad(); g != nil {
				moved, _ = g.Abs().Sum(false).Item()
			}
			if gate == SharedGateAll {
				assert.Greater(t, moved, 1e-6, "%s: no gradient reaches another scenario's expert through the shared gate", name)
			} else {
				assert.Zero(t, moved, "%s: the own variant must not run another scenario's experts", name)
			}
			// Perturbing that expert moves (all) or leaves (own) the output.
			torch.NoGrad(func() { require.NoError(t, w.CopyFrom(w.AddScalar(0.5))) })
		}
		after := values(t, bb.Forward(in))
		d := maxAbsDiff(before, after)
		if gate == SharedGateAll {
			assert.Greater(t, d, 1e-4, "perturbing scenarios 1 and 2's experts left scenario 0's output as it was")
		} else {
			assert.Zero(t, d)
		}
		sc.Close()
		store.Close()
	}
}

// TestScenarioWiseRecParameterCounts counts, at the defaults, input width
// 128 and 3 scenarios, the trainable parameters of Scenario-Wise-Rec's
// modules as its code writes them, and compares with the scenario_wise_rec
// structure (no role-scenario fields: E_d is the scenario embedding alone,
// as the peer's domain indicator).
func TestScenarioWiseRecParameterCounts(t *testing.T) {
	lockThread(t)
	const in, s = 128, 3
	linear := func(i, o int64) int64 { return i*o + o }
	layerNorm := func(n int64) int64 { return 2 * n }
	// epnet.py: the domain embedding (16 wide), GateNU(sce + agn, agn) with hidden = agn,
	// MLP(agn, fcn_dims) = MLP(agn, output_layer=truthy, dims=None): one Linear(agn, 1).
	epnet := int64(s*16) + linear(16+in, in) + linear(in, in) + linear(in, 1)
	// m3oe.py with fcn_dims [128, 64, 64, 32], expert_num 4: star [in → 128] shared
	// and per domain (weights and biases), star_mlp Mlp_N([128, 64]), skip_conn
	// Mlp_N([in, 64]), experts and domain experts Mlp_N([64, 32]), gates Linear(64, 4),
	// towers Linear(32, 32) + LayerNorm + Linear(32, 1), and the two scalars its
	// forward reads (exp_d, bal_d; exp_t and bal_t are created and never read).
	star := int64(1+s) * (in*128 + 128)
	mlpN := func(i, o int64) int64 { return linear(i, o) + layerNorm(o) }
	m3oe := star + mlpN(128, 64) + mlpN(in, 64) + (4+s)*mlpN(64, 32) + s*linear(64, 4) +
		s*(linear(32, 32)+layerNorm(32)+linear(32, 1)) + 2
	for name, want := range map[string]int64{"epnet": epnet, "m3oe": m3oe} {
		cfg := DefaultBackboneConfig()
		cfg.EPNet.Structure, cfg.M3oE.Structure = StructureScenarioWiseRec, StructureScenarioWiseRec
		store := nn.NewStore(torch.CPU)
		_, err := NewBackbone(name, store.Root().Sub("backbone"), Shape{Width: in, Scenarios: s}, cfg)
		require.NoError(t, err, name)
		assert.Equal(t, want, store.NumParameters(), name)
		store.Close()
	}
}

// TestAdaptDHMCenterUpdate runs one routing iteration on known centres and
// rows and compares the centres with the moving average computed by hand
// (in float64): towards the routed mean by default, the routed sum with
// center_update = sum.
func TestAdaptDHMCenterUpdate(t *testing.T) {
	lockThread(t)
	const dim, beta = 3, 0.9
	rows := [][]float64{{1, 0, 0, 0}, {0.8, 0.6, 0, 0}, {0, 0, 1, 0}, {0, -1, 0, 0}}
	centers := [][]float64{{1, 0, 0, 0}, {0, 0, 1, 0}}
	for _, update := range []CenterUpdate{CenterMean, CenterSum} {
		cfg := smallBackboneConfig()
		c := &cfg.AdaptDHM
		c.Clusters, c.RoutingIterations, c.Beta, c.CenterUpdate, c.ScenarioEmbeddingDim = 2, 1, beta, update, 1
		store, bb := buildBackbone(t, "adaptdhm", dim, 1, cfg, 5)
		m := bb.(checkedBackbone).inner.(*AdaptDHM)
		sc := torch.NewScope()
		// z = [x ‖ e_s]: a zero embedding makes the rows' last component 0, as written above.
		torch.NoGrad(func() {
			require.NoError(t, m.embedding.CopyFrom(torch.Zeros([]int64{1, 1}, torch.Float32, torch.CPU)))
			require.NoError(t, m.centers.CopyFrom(torch.FromSlice(rowMajor(centers), 2, 4)))
		})
		var x []float64
		for _, r := range rows {
			x = append(x, r[:dim]...)
		}
		in := Input{X: torch.FromSlice(toFloat32(x), int64(len(rows)), dim), Scenario: torch.FromSlice([]int64{0, 0, 0, 0}), Counts: []int64{4}}
		require.NoError(t, bb.Forward(in).Err())

		// By hand: r_ik = softmax_k(z_i · c_k); c_k ← normalize(β c_k + (1 − β) u_k), u_k the
		// routed mean Σ_i r_ik z_i / Σ_i r_ik or the routed sum Σ_i r_ik z_i.
		want := make([][]float64, len(centers))
		for k, ck := range centers {
			u, mass := make([]float64, 4), 0.0
			for _, z := range rows {
				e0, e1 := math.Exp(dot64(z, centers[0])), math.Exp(dot64(z, centers[1]))
				r := []float64{e0 / (e0 + e1), e1 / (e0 + e1)}[k]
				mass += r
				for j := range u {
					u[j] += r * z[j]
				}
			}
			if update == CenterMean {
				for j := range u {
					u[j] /= mass
				}
			}
			next, norm := make([]float64, 4), 0.0
			for j := range next {
				next[j] = beta*ck[j] + (1-beta)*u[j]
				norm += next[j] * next[j]
			}
			for j := range next {
				next[j] /= math.Sqrt(norm)
			}
			want[k] = next
		}
		got := values(t, m.centers)
		assert.InDeltaSlice(t, rowMajor(want), got, 1e-6, "center_update %s", update)
		sc.Close()
		store.Close()
	}
}

// rowMajor lays rows out as one float32 slice.
func rowMajor(rows [][]float64) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, toFloat32(r)...)
	}
	return out
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
