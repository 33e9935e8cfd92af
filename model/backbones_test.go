package model

import (
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shared helpers and table-driven tests over the four backbones.

const testScenarios = 3

// smallBackboneConfig is every backbone with small layers, so that tests run fast
// while still covering multi-layer experts, several levels and towers.
func smallBackboneConfig() BackboneConfig {
	mlp := func(h ...int64) nn.MLPConfig { return nn.MLPConfig{Hidden: h, Activation: nn.ReLU} }
	return BackboneConfig{
		SharedBottom: SharedBottomConfig{Bottom: mlp(16, 12), Tower: mlp(8, 4)},
		MMoE:         MMoEConfig{Experts: 3, Expert: mlp(16, 12), Tower: mlp(8)},
		PLE:          PLEConfig{Levels: 2, SpecificExperts: 2, SharedExperts: 3, Expert: mlp(16, 12), Tower: mlp(8), SharedGate: SharedGateAll},
		STAR: STARConfig{Hidden: []int64{16, 8}, Activation: nn.ReLU, PartitionedNorm: true,
			AuxHidden: []int64{6}, ScenarioEmbeddingDim: 4},

		SARNet: SARNetConfig{SharedExperts: 3, SpecificExperts: 2, Expert: mlp(12, 8), Tower: mlp(6)},
		M2M: M2MConfig{EncoderLayers: 2, EncoderFeedforward: 6, Experts: 3, Expert: mlp(12, 8),
			ScenarioEmbeddingDim: 4, TowerLayers: 2, Activation: nn.LeakyReLU, Output: mlp(6)},
		AdaptDHM: AdaptDHMConfig{Hidden: []int64{16, 8}, Activation: nn.ReLU, Clusters: 3, Beta: 0.9,
			RoutingIterations: 3, ScenarioEmbeddingDim: 4, CenterUpdate: CenterMean},
		M3oE: M3oEConfig{Bottom: []int64{16, 12}, Activation: nn.ReLU, Experts: 3, Expert: mlp(12, 8), Tower: mlp(8), Structure: StructurePaper},

		EPNet: EPNetConfig{ScenarioEmbeddingDim: 3, Gate: GateNUConfig{Hidden: 5, Scale: 2}, Tower: mlp(12, 6), Structure: StructurePaper},
		PPNet: PPNetConfig{IDRoles: []Role{RoleUser, RoleItem}, Gate: DefaultGateNUConfig(), Tower: mlp(12, 6)},
		AdaSparse: AdaSparseConfig{ScenarioEmbeddingDim: 3, Network: mlp(12, 6), Form: PrunerFusion,
			Epsilon: 0.01, Beta: 2, Alpha: 1, AlphaStep: 1e-3},
		HAMUR: HAMURConfig{Network: mlp(12, 8), Hyper: mlp(6), Rank: 3, AdapterDim: 4, DomainNorm: true},
	}
}

// withNormAndDropout turns on BatchNorm and dropout wherever a section has them.
func withNormAndDropout(cfg BackboneConfig, rate float64) BackboneConfig {
	on := func(c *nn.MLPConfig) { c.BatchNorm, c.Dropout = true, rate }
	on(&cfg.SharedBottom.Bottom)
	on(&cfg.SharedBottom.Tower)
	on(&cfg.MMoE.Expert)
	on(&cfg.MMoE.Tower)
	on(&cfg.PLE.Expert)
	on(&cfg.PLE.Tower)
	cfg.STAR.Dropout = rate

	on(&cfg.SARNet.Expert)
	on(&cfg.SARNet.Tower)
	on(&cfg.M2M.Expert)
	on(&cfg.M2M.Output)
	cfg.AdaptDHM.Dropout = rate
	on(&cfg.M3oE.Expert)
	on(&cfg.M3oE.Tower)

	on(&cfg.EPNet.Tower)
	on(&cfg.PPNet.Tower)
	on(&cfg.AdaSparse.Network)
	on(&cfg.HAMUR.Network)
	on(&cfg.HAMUR.Hyper)
	return cfg
}

// lockThread keeps a test's torch work on one OS thread (grad mode is thread-local).
func lockThread(t testing.TB) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// buildBackbone creates a backbone in a fresh store seeded with seed.
func buildBackbone(t testing.TB, name string, inDim int64, scenarios int, cfg BackboneConfig, seed uint64) (*nn.Store, Backbone) {
	t.Helper()
	if err := torch.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	store := nn.NewStore(torch.CPU)
	bb, err := NewBackbone(name, store.Root().Sub("backbone"), testShape(inDim, scenarios), cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(store.Close)
	return store, bb
}

// testFields is the layout of the tests' Input.Fields: a user, an item, a
// scenario-side and a context field, 4 values each, so that backbones reading
// any role find it.
var testFields = FieldLayout{Roles: []Role{RoleUser, RoleItem, RoleScenario, RoleContext}, Dim: 4}

// testShape is the shape the tests build backbones for.
func testShape(width int64, scenarios int) Shape {
	return Shape{Width: width, Scenarios: scenarios, Fields: testFields}
}

// makeInput draws x ~ N(0, 1) [B, dim] and fields ~ N(0, 1) laid out as
// testFields, with rows grouped by scenario as counts say.
func makeInput(counts []int64, dim int64) Input {
	var scen []int64
	for s, n := range counts {
		for i := int64(0); i < n; i++ {
			scen = append(scen, int64(s))
		}
	}
	b := int64(len(scen))
	return Input{
		X:        torch.Randn([]int64{b, dim}, torch.Float32, torch.CPU),
		Scenario: torch.FromSlice(scen, b),
		Counts:   counts,
		Fields:   torch.Randn([]int64{b, int64(len(testFields.Roles)), testFields.Dim}, torch.Float32, torch.CPU),
	}
}

func values(t testing.TB, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// maxAbsDiff is the largest |a_i − b_i|, +Inf when the lengths differ or either side has a NaN.
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		x := math.Abs(float64(a[i] - b[i]))
		if math.IsNaN(x) {
			return math.Inf(1)
		}
		d = math.Max(d, x)
	}
	return d
}

func TestBackboneShapes(t *testing.T) {
	lockThread(t)
	const dim = 10
	cases := []struct {
		name   string
		counts []int64
	}{
		{"one scenario", []int64{0, 7, 0}},
		{"all scenarios", []int64{3, 4, 5}},
		{"scenario absent", []int64{4, 0, 6}},
		{"single-row segment", []int64{1, 5, 3}},
	}
	for _, name := range BackboneNames() {
		for _, c := range cases {
			for _, training := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/training=%v", name, c.name, training), func(t *testing.T) {
					sc := torch.NewScope()
					defer sc.Close()
					store, bb := buildBackbone(t, name, dim, testScenarios, smallBackboneConfig(), 1)
					store.SetTraining(training)
					in := makeInput(c.counts, dim)
					y := bb.Forward(in)
					if err := y.Err(); err != nil {
						t.Fatal(err)
					}
					if got, want := y.Shape(), []int64{in.rows()}; !slices.Equal(got, want) {
						t.Fatalf("logits %v, want %v", got, want)
					}
					for i, v := range values(t, y) {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							t.Fatalf("logit %d = %v", i, v)
						}
					}
				})
			}
		}
	}
}

func TestBackboneRejectsBadInput(t *testing.T) {
	lockThread(t)
	for _, name := range BackboneNames() {
		sc := torch.NewScope()
		_, bb := buildBackbone(t, name, 10, testScenarios, smallBackboneConfig(), 1)
		for _, tc := range []struct {
			in   Input
			want string
		}{
			{makeInput([]int64{2, 3}, 10), "counts for 2 scenarios, the backbone was built for 3"},
			{Input{X: torch.Randn([]int64{4, 10}, torch.Float32, torch.CPU), Scenario: torch.FromSlice([]int64{0, 0, 1, 1}), Counts: []int64{2, 1, 0}}, "want [3, width]"},
			{makeInput([]int64{0, 0, 0}, 10), "empty batch"},
		} {
			if err := bb.Forward(tc.in).Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: counts %v on %v: error %v, want %q", name, tc.in.Counts, tc.in.X.Shape(), err, tc.want)
			}
		}
		sc.Close()
	}
}

// TestBackboneGradients: over a batch that covers every scenario, every
// parameter gets a non-zero gradient (no dead parameters), with BatchNorm on too.
func TestBackboneGradients(t *testing.T) {
	lockThread(t)
	for _, variant := range []struct {
		name string
		cfg  BackboneConfig
	}{{"plain", smallBackboneConfig()}, {"batch_norm", withNormAndDropout(smallBackboneConfig(), 0)}} {
		for _, name := range BackboneNames() {
			t.Run(name+"/"+variant.name, func(t *testing.T) {
				sc := torch.NewScope()
				defer sc.Close()
				store, bb := buildBackbone(t, name, 10, testScenarios, variant.cfg, 2)
				in := makeInput([]int64{5, 6, 7}, 10)
				if err := bb.Forward(in).Square().Sum(false).Backward(); err != nil {
					t.Fatal(err)
				}
				for _, v := range store.Parameters() {
					g := v.Tensor.Grad()
					if g == nil {
						t.Errorf("%s has no gradient", v.Name)
						continue
					}
					if n, err := g.Abs().Sum(false).Item(); err != nil || n == 0 {
						t.Errorf("%s: gradient norm %g (%v)", v.Name, n, err)
					}
				}
			})
		}
	}
}

// TestSTARScenarioGradients: scenario s's own parameters (star weights and
// biases, partitioned-norm scale and shift) get gradient from scenario s's
// rows only: a loss over one scenario's rows leaves every other scenario's slice at zero.
func TestSTARScenarioGradients(t *testing.T) {
	lockThread(t)
	counts := []int64{5, 6, 7}
	for s := 0; s < testScenarios; s++ {
		sc := torch.NewScope()
		store, bb := buildBackbone(t, "star", 10, testScenarios, smallBackboneConfig(), 3)
		in := makeInput(counts, 10)
		mask := in.Scenario.EqScalar(float64(s)).ToDType(torch.Float32)
		if err := bb.Forward(in).Mul(mask).Sum(false).Backward(); err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, v := range store.Parameters() {
			if !isScenarioParam(v.Name) {
				continue
			}
			checked++
			for o := 0; o < testScenarios; o++ {
				n, err := v.Tensor.Grad().Select(0, int64(o)).Abs().Sum(false).Item()
				if err != nil {
					t.Fatal(err)
				}
				if (o == s) != (n > 0) {
					t.Errorf("loss on scenario %d: %s[%d] has gradient norm %g", s, v.Name, o, n)
				}
			}
		}
		if checked != 2+2*3+1 { // pn, 3 star layers, the auxiliary scenario embedding
			t.Errorf("checked %d scenario parameters, want 9", checked)
		}
		sc.Close()
	}
}

// isScenarioParam says whether a STAR parameter is stacked per scenario.
func isScenarioParam(name string) bool {
	for _, suffix := range []string{".scenario_weight", ".scenario_bias", ".scenario_embedding.weight"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// mlpParams is the closed-form count of an MLP: Σ (in·h + h), plus 2h for
// each BatchNorm and each LayerNorm (after every layer but a tower's last).
func mlpParams(in int64, c nn.MLPConfig) int64 {
	var n int64
	for i, h := range c.Hidden {
		n += in*h + h
		if c.OutputActivation || i < len(c.Hidden)-1 {
			for _, on := range []bool{c.BatchNorm, c.LayerNorm} {
				if on {
					n += 2 * h
				}
			}
		}
		in = h
	}
	return n
}

func last(h []int64, or int64) int64 {
	if len(h) == 0 {
		return or
	}
	return h[len(h)-1]
}

// closedFormParams counts each backbone's trainable scalars from its config alone.
func closedFormParams(name string, in, s int64, cfg BackboneConfig) int64 {
	tower := func(in int64, c nn.MLPConfig) int64 { return s * mlpParams(in, towerConfig(c)) }
	expert := func(in int64, c nn.MLPConfig) int64 { c.OutputActivation = true; return mlpParams(in, c) }
	switch name {
	case "shared_bottom":
		c := cfg.SharedBottom
		c.Bottom.OutputActivation = true
		return mlpParams(in, c.Bottom) + tower(last(c.Bottom.Hidden, in), c.Tower)
	case "mmoe":
		c := cfg.MMoE
		e := int64(c.Experts)
		return e*expert(in, c.Expert) + (in*s*e + s*e) + tower(last(c.Expert.Hidden, in), c.Tower)
	case "ple":
		c := cfg.PLE
		k := int64(c.SpecificExperts + c.SharedExperts)
		var n int64
		shared := s*int64(c.SpecificExperts) + int64(c.SharedExperts) // every expert of the level
		if c.SharedGate == SharedGateOwn {
			shared = k
		}
		for l := 0; l < c.Levels; l++ {
			n += (s*int64(c.SpecificExperts) + int64(c.SharedExperts)) * expert(in, c.Expert)
			n += in*s*k + s*k // scenario gates
			if l < c.Levels-1 {
				n += in*shared + shared // shared gate
			}
			in = last(c.Expert.Hidden, in)
		}
		return n + tower(in, c.Tower)
	case "star":
		c := cfg.STAR
		x := in
		var n int64
		if c.PartitionedNorm {
			n += 2*in + 2*s*in
		}
		for _, h := range append(append([]int64(nil), c.Hidden...), 1) {
			n += (1 + s) * (in*h + h)
			in = h
		}
		return n + s*c.ScenarioEmbeddingDim + mlpParams(x+c.ScenarioEmbeddingDim, c.aux())

	case "sarnet":
		c := cfg.SARNet
		h := last(c.Expert.Hidden, in)
		experts := int64(c.SharedExperts) + s*int64(c.SpecificExperts)
		return 2*s*in + experts*expert(in, c.Expert) + (in*int64(c.SharedExperts+c.SpecificExperts) + int64(c.SharedExperts+c.SpecificExperts)) +
			mlpParams(h, towerConfig(c.Tower))
	case "m2m":
		c := cfg.M2M
		linear := func(i, o int64) int64 { return i*o + o }
		n := int64(c.EncoderLayers) * (2*linear(in, in) + linear(in, c.EncoderFeedforward) + linear(c.EncoderFeedforward, in) + 4*in)
		n += int64(c.Experts) * expert(in, c.Expert)
		h, e := last(c.Expert.Hidden, in), c.ScenarioEmbeddingDim
		n += (s+1)*e + 2*linear(e, h)
		n += linear(h, 4*h*h) + linear(h, 2*h) + 2*h
		n += int64(c.TowerLayers) * (linear(h, h*h) + linear(h, h))
		return n + mlpParams(h, towerConfig(c.Output))
	case "adaptdhm":
		c := cfg.AdaptDHM
		k := int64(c.Clusters)
		n := s * c.ScenarioEmbeddingDim
		in += c.ScenarioEmbeddingDim
		for _, h := range append(append([]int64(nil), c.Hidden...), 1) {
			n += (1 + k) * (in*h + h)
			in = h
		}
		return n
	case "m3oe":
		c := cfg.M3oE
		peer := c.Structure == StructureScenarioWiseRec
		c.Expert.LayerNorm, c.Tower.LayerNorm = peer, peer
		var n int64
		x := in
		if len(c.Bottom) > 0 {
			n += (1 + s) * (in*c.Bottom[0] + c.Bottom[0])
			n += mlpParams(c.Bottom[0], nn.MLPConfig{Hidden: c.Bottom[1:], OutputActivation: true, LayerNorm: peer})
			x = last(c.Bottom, in)
			n += mlpParams(in, nn.MLPConfig{Hidden: []int64{x}, OutputActivation: true, LayerNorm: peer}) // skip
		}
		k := int64(c.Experts)
		experts, scalars := k+s+1, int64(3) // the task expert; balance, domain and task weights
		if peer {
			experts, scalars = k+s, 2
		}
		n += experts * expert(x, c.Expert)
		n += x*s*k + s*k + scalars
		return n + tower(last(c.Expert.Hidden, x), c.Tower)

	case "epnet":
		c := cfg.EPNet
		domain := c.ScenarioEmbeddingDim + testFields.Width(RoleScenario)
		if c.Structure == StructureScenarioWiseRec {
			c.Tower.Hidden = nil // one Linear to the logit
		}
		return s*c.ScenarioEmbeddingDim + gateNUParams(domain+in, in, c.Gate) + mlpParams(in, towerConfig(c.Tower))
	case "ppnet":
		c := cfg.PPNet
		gateIn := testFields.Width(c.IDRoles...) + in
		n := mlpParams(in, towerConfig(c.Tower))
		for _, w := range append([]int64{in}, c.Tower.Hidden...) {
			n += gateNUParams(gateIn, w, c.Gate)
		}
		return s * n
	case "adasparse":
		c := cfg.AdaSparse
		domain := c.ScenarioEmbeddingDim + testFields.Width(RoleScenario)
		n := s*c.ScenarioEmbeddingDim + (domain+in)*in + mlpParams(domain+in, towerConfig(c.Network))
		for _, h := range c.Network.Hidden {
			n += (domain + h) * h
		}
		return n
	case "hamur":
		c := cfg.HAMUR
		d, k, a := last(c.Network.Hidden, in), c.Rank, c.AdapterDim
		hyper := c.Hyper
		hyper.OutputActivation = true
		return s*(expert(in, c.Network)+d+1) + mlpParams(in, hyper) + last(c.Hyper.Hidden, in)*k*k + k*k +
			s*(d*k+k*a+a+a*k+k*d) + map[bool]int64{true: 2 * s * d}[c.DomainNorm]
	}
	panic(name)
}

// gateNUParams is a Gate NU's count: in → hidden → out, hidden defaulting to out.
func gateNUParams(in, out int64, c GateNUConfig) int64 {
	h := c.Hidden
	if h == 0 {
		h = out
	}
	return in*h + h + h*out + out
}

// TestBackboneParameterCounts compares the store's count with the closed
// form for the small configs, the defaults, and BatchNorm variants.
func TestBackboneParameterCounts(t *testing.T) {
	lockThread(t)
	noPN := smallBackboneConfig()
	noPN.STAR.PartitionedNorm = false
	// Optional parts off: M2M's encoder and meta tower, M3oE's star bottom.
	noPN.M2M.EncoderLayers, noPN.M2M.TowerLayers = 0, 0
	noPN.M3oE.Bottom = nil
	// The other settings: Scenario-Wise-Rec's EPNet and M3oE, PLE's own-scenario shared gate.
	peer := func(cfg BackboneConfig) BackboneConfig {
		cfg.EPNet.Structure, cfg.M3oE.Structure = StructureScenarioWiseRec, StructureScenarioWiseRec
		cfg.PLE.SharedGate = SharedGateOwn
		return cfg
	}
	for _, variant := range []struct {
		name string
		cfg  BackboneConfig
	}{
		{"small", smallBackboneConfig()},
		{"default", DefaultBackboneConfig()},
		{"batch_norm", withNormAndDropout(smallBackboneConfig(), 0.1)},
		{"no_pn_or_optional_parts", noPN},
		{"other_settings", peer(smallBackboneConfig())},
		{"other_settings_default", peer(DefaultBackboneConfig())},
		{"other_settings_3_levels", func() BackboneConfig { c := peer(smallBackboneConfig()); c.PLE.Levels = 3; return c }()},
	} {
		for _, name := range BackboneNames() {
			for _, shape := range []struct{ in, s int64 }{{10, 3}, {128, 5}, {7, 1}} {
				store, _ := buildBackbone(t, name, shape.in, int(shape.s), variant.cfg, 1)
				got, want := store.NumParameters(), closedFormParams(name, shape.in, shape.s, variant.cfg)
				if got != want {
					t.Errorf("%s/%s in=%d scenarios=%d: %d parameters, closed form %d", name, variant.name, shape.in, shape.s, got, want)
				}
				store.Close()
			}
		}
	}
}

// trainSteps runs a few Adam steps on random labels so that parameters and
// running statistics leave their initial values.
func trainSteps(t testing.TB, store *nn.Store, bb Backbone, dim int64, steps int) {
	t.Helper()
	opt := newAdam(t, store, 1e-2)
	defer opt.Close()
	for i := 0; i < steps; i++ {
		sc := torch.NewScope()
		in := makeInput([]int64{6, 7, 8}, dim)
		y := torch.Rand([]int64{in.rows()}, torch.Float32, torch.CPU).GtScalar(0.5).ToDType(torch.Float32)
		adamStep(t, opt, torch.BCEWithLogits(bb.Forward(in), y, nil, nil, torch.ReduceMean))
		sc.Close()
	}
}

// TestBackboneStateDict: a state dict saved from a trained backbone and
// loaded into a fresh one (built from another seed) reproduces its outputs
// exactly, running statistics included.
func TestBackboneStateDict(t *testing.T) {
	lockThread(t)
	const dim = 10
	cfg := withNormAndDropout(smallBackboneConfig(), 0.2)
	for _, name := range BackboneNames() {
		t.Run(name, func(t *testing.T) {
			src, bb := buildBackbone(t, name, dim, testScenarios, cfg, 5)
			trainSteps(t, src, bb, dim, 5)
			saved := map[string]*torch.Tensor{}
			torch.NoGrad(func() {
				for name, v := range src.StateDict() {
					saved[name] = v.Detach().Clone()
				}
			})
			defer func() {
				for _, v := range saved {
					v.Close()
				}
			}()
			dst, fresh := buildBackbone(t, name, dim, testScenarios, cfg, 6)
			sc := torch.NewScope()
			defer sc.Close()
			src.SetTraining(false)
			dst.SetTraining(false)
			in := makeInput([]int64{4, 5, 6}, dim)
			want := values(t, bb.Forward(in))
			if d := maxAbsDiff(values(t, fresh.Forward(in)), want); d == 0 {
				t.Fatal("a model from another seed gives the same outputs: the test cannot tell")
			}
			if err := dst.LoadStateDict(saved); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(values(t, fresh.Forward(in)), want); d != 0 {
				t.Errorf("after loading, outputs differ by %g", d)
			}
		})
	}
}

// TestBackboneTrainEval: with BatchNorm (partitioned normalisation for STAR)
// and dropout, evaluation is deterministic and differs from training, and
// two training passes differ (fresh dropout masks); without dropout and
// normalisation, both modes give the same outputs.
func TestBackboneTrainEval(t *testing.T) {
	lockThread(t)
	const dim = 10
	plain := smallBackboneConfig()
	plain.STAR.PartitionedNorm = false
	plain.AdaSparse.AlphaStep = 0 // α anneals with every training pass
	plain.HAMUR.DomainNorm = false
	for _, name := range BackboneNames() {
		t.Run(name, func(t *testing.T) {
			sc := torch.NewScope()
			defer sc.Close()
			in := makeInput([]int64{6, 7, 8}, dim)
			store, bb := buildBackbone(t, name, dim, testScenarios, withNormAndDropout(smallBackboneConfig(), 0.3), 7)
			train1, train2 := values(t, bb.Forward(in)), values(t, bb.Forward(in))
			store.SetTraining(false)
			eval1, eval2 := values(t, bb.Forward(in)), values(t, bb.Forward(in))
			if d := maxAbsDiff(eval1, eval2); d != 0 {
				t.Errorf("evaluation is not deterministic: %g", d)
			}
			if d := maxAbsDiff(train1, eval1); d < 1e-4 {
				t.Errorf("training and evaluation agree (%g) despite normalisation and dropout", d)
			}
			if d := maxAbsDiff(train1, train2); d < 1e-4 {
				t.Errorf("two training passes agree (%g) despite dropout", d)
			}

			store, bb = buildBackbone(t, name, dim, testScenarios, plain, 7)
			train := values(t, bb.Forward(in))
			store.SetTraining(false)
			if d := maxAbsDiff(train, values(t, bb.Forward(in))); d != 0 {
				t.Errorf("without normalisation or dropout, modes differ by %g", d)
			}
		})
	}
}

// TestSyncedBatchStatsInOneProcess: with synchronised batch statistics
// over a single rank (the sum over ranks is the identity) and a scenario
// absent from the batch but, as if another rank had rows of it, run with
// no rows, every backbone with every normalisation on gives the output and
// the parameter gradients of the ordinary mode.
func TestSyncedBatchStatsInOneProcess(t *testing.T) {
	lockThread(t)
	const dim = 10
	cfg := withNormAndDropout(smallBackboneConfig(), 0)
	for _, name := range BackboneNames() {
		t.Run(name, func(t *testing.T) {
			sc := torch.NewScope()
			defer sc.Close()
			require.NoError(t, torch.ManualSeed(11))
			in := makeInput([]int64{6, 0, 8}, dim)
			var outs [2][]float32
			var grads [2]map[string][]float32
			for i, synced := range []bool{false, true} {
				grads[i] = map[string][]float32{}
				store, bb := buildBackbone(t, name, dim, testScenarios, cfg, 7)
				run := in
				if synced {
					store.SyncBatchStats(func(t *torch.Tensor) *torch.Tensor { return t })
					run.OnAnyRank = []bool{true, true, true} // another rank has scenario 1
				}
				y := bb.Forward(run)
				outs[i] = values(t, y)
				require.NoError(t, y.Square().Sum(false).Backward())
				for _, v := range store.Parameters() {
					if g := v.Tensor.Grad(); g != nil {
						grads[i][v.Name] = values(t, g)
					}
				}
			}
			assert.Less(t, maxAbsDiff(outs[0], outs[1]), 1e-5, "outputs")
			// The absent scenario's own layers now run on no rows: a zero
			// gradient where the ordinary mode leaves none.
			for name, synced := range grads[1] {
				plain, ok := grads[0][name]
				if !ok {
					plain = make([]float32, len(synced))
				}
				assert.Less(t, maxAbsDiff(plain, synced), 1e-4, "gradient of %s", name)
			}
			assert.Subset(t, slices.Collect(maps.Keys(grads[1])), slices.Collect(maps.Keys(grads[0])))
		})
	}
}

// newAdam creates an Adam optimizer over every parameter of store with learning rate lr.
func newAdam(tb testing.TB, store *nn.Store, lr float64) *torch.Optimizer {
	tb.Helper()
	names, params := store.ParameterTensors()
	opt, err := torch.NewOptimizer(torch.Adam)
	if err != nil {
		tb.Fatal(err)
	}
	opts := torch.DefaultOptimOptions(torch.Adam)
	opts.LR = lr
	if err := opt.AddGroup(names, params, opts); err != nil {
		opt.Close()
		tb.Fatal(err)
	}
	return opt
}

// adamStep takes one optimizer step on a loss: zero the gradients, backward, step.
func adamStep(tb testing.TB, opt *torch.Optimizer, loss *torch.Tensor) {
	tb.Helper()
	if err := opt.ZeroGrad(); err != nil {
		tb.Fatal(err)
	}
	if err := loss.Backward(); err != nil {
		tb.Fatal(err)
	}
	if err := opt.Step(); err != nil {
		tb.Fatal(err)
	}
}

// TestAdaSparseFactors: each form of the weighting factors, with factors
// below ε pruned to exactly 0.
func TestAdaSparseFactors(t *testing.T) {
	lockThread(t)
	sc := torch.NewScope()
	defer sc.Close()
	v := torch.FromSlice([]float32{-8, 0, 1}, 1, 3)
	alpha := torch.FromSlice([]float32{2}, 1)
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	c := DefaultAdaSparseConfig() // ε 0.01, β 2
	for _, tc := range []struct {
		form PrunerForm
		want []float64
	}{
		{PrunerBinarization, []float64{0, sig(0), sig(2)}},    // σ(−16) < ε
		{PrunerScaling, []float64{0, 2 * sig(0), 2 * sig(1)}}, // 2σ(−8) < ε
		{PrunerFusion, []float64{0, 2 * sig(0), 2 * sig(2)}},
	} {
		c.Form = tc.form
		got := values(t, pruneFactors(v, alpha, c))
		require.Len(t, got, 3)
		for i := range got {
			assert.InDelta(t, tc.want[i], got[i], 1e-6, "%s factor %d", tc.form, i)
		}
	}
}
