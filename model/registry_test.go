package model

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestBackboneNames: the registry lists its backbones sorted, and each has
// a section of BackboneConfig whose YAML key is its name (and no section is
// left without a backbone).
func TestBackboneNames(t *testing.T) {
	names := BackboneNames()
	assert.True(t, sort.StringsAreSorted(names), "BackboneNames() = %v", names)
	var keys []string
	typ := reflect.TypeFor[BackboneConfig]()
	for i := range typ.NumField() {
		keys = append(keys, strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0])
	}
	sort.Strings(keys)
	assert.Equal(t, keys, names, "BackboneConfig's YAML keys and the registry's names")
	assert.Subset(t, names, []string{"shared_bottom", "mmoe", "ple", "star", "sarnet", "m2m", "adaptdhm", "m3oe", "epnet", "ppnet", "adasparse", "hamur"})
}

func TestNewBackboneUnknownName(t *testing.T) {
	store := nn.NewStore(torch.CPU)
	defer store.Close()
	_, err := NewBackbone("moe", store.Root(), testShape(8, 2), DefaultBackboneConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"moe"`)
	for _, want := range BackboneNames() {
		assert.Contains(t, err.Error(), want)
	}
}

func TestDefaultBackboneConfig(t *testing.T) {
	cfg := DefaultBackboneConfig()
	require.NoError(t, cfg.Validate())
	if cfg.MMoE.Experts != 4 || cfg.PLE.Levels != 2 || cfg.PLE.SpecificExperts != 2 || cfg.PLE.SharedExperts != 2 ||
		!cfg.STAR.PartitionedNorm || len(cfg.STAR.Hidden) != 2 || len(cfg.SharedBottom.Tower.Hidden) != 2 {
		t.Errorf("defaults changed without updating their documentation: %+v", cfg)
	}
	// The documented defaults of EPNet, PPNet, AdaSparse and HAMUR.
	assert.Equal(t, EPNetConfig{ScenarioEmbeddingDim: 16, Gate: GateNUConfig{Scale: 2},
		Tower: nn.MLPConfig{Hidden: []int64{128, 64, 32}, Activation: nn.ReLU}, Structure: StructurePaper}, cfg.EPNet)
	// The paper's forms by default: PLE's shared gate over every expert, M3oE's
	// task expert on experts of one layer, AdaptDHM's moving average of the routed mean.
	assert.Equal(t, SharedGateAll, cfg.PLE.SharedGate)
	assert.Equal(t, StructurePaper, cfg.M3oE.Structure)
	assert.Equal(t, []int64{32}, cfg.M3oE.Expert.Hidden)
	assert.Equal(t, CenterMean, cfg.AdaptDHM.CenterUpdate)
	assert.Equal(t, PPNetConfig{IDRoles: []Role{RoleUser, RoleItem}, Gate: GateNUConfig{Scale: 2},
		Tower: nn.MLPConfig{Hidden: []int64{128, 64, 32}, Activation: nn.ReLU}}, cfg.PPNet)
	assert.Equal(t, AdaSparseConfig{ScenarioEmbeddingDim: 16, Network: nn.MLPConfig{Hidden: []int64{32, 32}, Activation: nn.ReLU, Dropout: 0.2},
		Form: PrunerFusion, Epsilon: 0.01, Beta: 2, Alpha: 1, AlphaStep: 1e-4}, cfg.AdaSparse)
	assert.Equal(t, HAMURConfig{Network: nn.MLPConfig{Hidden: []int64{256, 128}, Activation: nn.ReLU},
		Hyper: nn.MLPConfig{Hidden: []int64{64}, Activation: nn.ReLU}, Rank: 35, AdapterDim: 32, DomainNorm: true}, cfg.HAMUR)
	// Defaults are fresh values: changing one config does not change the next.
	cfg.MMoE.Expert.Hidden[0] = 1
	if DefaultBackboneConfig().MMoE.Expert.Hidden[0] != 128 {
		t.Error("DefaultBackboneConfig shares slices between calls")
	}
}

// TestBackboneConfigValidate: every bad value is refused, by Validate and by
// the builder, with an error that names its key; nothing panics.
func TestBackboneConfigValidate(t *testing.T) {
	cases := []struct {
		backbone string
		edit     func(*BackboneConfig)
		want     string
	}{
		{"mmoe", func(c *BackboneConfig) { c.MMoE.Experts = 0 }, "model.mmoe.experts = 0: must be >= 1"},
		{"mmoe", func(c *BackboneConfig) { c.MMoE.Expert.Hidden = nil }, "model.mmoe.expert.hidden is empty"},
		{"mmoe", func(c *BackboneConfig) { c.MMoE.Tower.Dropout = 1 }, "model.mmoe.tower.dropout"},
		{"ple", func(c *BackboneConfig) { c.PLE.Levels = 0 }, "model.ple.levels = 0"},
		{"ple", func(c *BackboneConfig) { c.PLE.SpecificExperts = -1 }, "model.ple.specific_experts = -1"},
		{"ple", func(c *BackboneConfig) { c.PLE.SharedExperts = 0 }, "model.ple.shared_experts = 0"},
		{"ple", func(c *BackboneConfig) { c.PLE.Expert.Hidden = []int64{8, 0} }, "model.ple.expert.hidden[1] = 0"},
		{"shared_bottom", func(c *BackboneConfig) { c.SharedBottom.Bottom.Activation = "swish" }, "model.shared_bottom.bottom.activation"},
		{"shared_bottom", func(c *BackboneConfig) { c.SharedBottom.Tower.Hidden = []int64{-3} }, "model.shared_bottom.tower.hidden[0] = -3"},
		{"star", func(c *BackboneConfig) { c.STAR.Hidden = []int64{0} }, "model.star.hidden[0] = 0"},
		{"star", func(c *BackboneConfig) { c.STAR.AuxHidden = []int64{4, -1} }, "model.star.aux_hidden[1] = -1"},
		{"star", func(c *BackboneConfig) { c.STAR.ScenarioEmbeddingDim = 0 }, "model.star.scenario_embedding_dim = 0"},
		{"star", func(c *BackboneConfig) { c.STAR.Dropout = -0.1 }, "model.star.dropout"},
		{"star", func(c *BackboneConfig) { c.STAR.Activation = "bogus" }, "model.star.activation"},

		{"sarnet", func(c *BackboneConfig) { c.SARNet.SharedExperts = 0 }, "model.sarnet.shared_experts = 0: must be >= 1"},
		{"sarnet", func(c *BackboneConfig) { c.SARNet.SpecificExperts = -2 }, "model.sarnet.specific_experts = -2"},
		{"sarnet", func(c *BackboneConfig) { c.SARNet.Expert.Hidden = nil }, "model.sarnet.expert.hidden is empty"},
		{"sarnet", func(c *BackboneConfig) { c.SARNet.Tower.Dropout = 2 }, "model.sarnet.tower.dropout"},
		{"m2m", func(c *BackboneConfig) { c.M2M.EncoderLayers = -1 }, "model.m2m.encoder_layers = -1: must be >= 0"},
		{"m2m", func(c *BackboneConfig) { c.M2M.EncoderFeedforward = 0 }, "model.m2m.encoder_feedforward = 0"},
		{"m2m", func(c *BackboneConfig) { c.M2M.Experts = 0 }, "model.m2m.experts = 0"},
		{"m2m", func(c *BackboneConfig) { c.M2M.ScenarioEmbeddingDim = 0 }, "model.m2m.scenario_embedding_dim = 0"},
		{"m2m", func(c *BackboneConfig) { c.M2M.TowerLayers = -1 }, "model.m2m.tower_layers = -1"},
		{"m2m", func(c *BackboneConfig) { c.M2M.Activation = "bogus" }, "model.m2m.activation"},
		{"m2m", func(c *BackboneConfig) { c.M2M.Expert.Hidden = nil }, "model.m2m.expert.hidden is empty"},
		{"m2m", func(c *BackboneConfig) { c.M2M.Output.Hidden = []int64{0} }, "model.m2m.output.hidden[0] = 0"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.Hidden = []int64{8, -1} }, "model.adaptdhm.hidden[1] = -1"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.Clusters = 0 }, "model.adaptdhm.clusters = 0"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.Beta = 1 }, "model.adaptdhm.beta = 1: must be in [0, 1)"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.RoutingIterations = 0 }, "model.adaptdhm.routing_iterations = 0"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.ScenarioEmbeddingDim = 0 }, "model.adaptdhm.scenario_embedding_dim = 0"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.Dropout = 1 }, "model.adaptdhm.dropout"},
		{"adaptdhm", func(c *BackboneConfig) { c.AdaptDHM.CenterUpdate = "median" }, `model.adaptdhm.center_update = "median": want mean or sum`},
		{"ple", func(c *BackboneConfig) { c.PLE.SharedGate = "none" }, `model.ple.shared_gate = "none": want all or own`},
		{"epnet", func(c *BackboneConfig) { c.EPNet.Structure = "peer" }, `model.epnet.structure = "peer": want paper or scenario_wise_rec`},
		{"m3oe", func(c *BackboneConfig) { c.M3oE.Structure = "" }, `model.m3oe.structure = "": want paper or scenario_wise_rec`},
		{"m3oe", func(c *BackboneConfig) { c.M3oE.Bottom = []int64{64} }, "model.m3oe.bottom = [64]: needs a star layer"},
		{"m3oe", func(c *BackboneConfig) { c.M3oE.Bottom = []int64{64, 0} }, "model.m3oe.bottom.hidden[1] = 0"},
		{"m3oe", func(c *BackboneConfig) { c.M3oE.Experts = 0 }, "model.m3oe.experts = 0"},
		{"m3oe", func(c *BackboneConfig) { c.M3oE.Expert.Hidden = nil }, "model.m3oe.expert.hidden is empty"},
		{"m3oe", func(c *BackboneConfig) { c.M3oE.Tower.Activation = "bogus" }, "model.m3oe.tower.activation"},

		{"epnet", func(c *BackboneConfig) { c.EPNet.ScenarioEmbeddingDim = 0 }, "model.epnet.scenario_embedding_dim = 0"},
		{"epnet", func(c *BackboneConfig) { c.EPNet.Gate.Scale = 0 }, "model.epnet.gate.scale = 0: must be > 0"},
		{"epnet", func(c *BackboneConfig) { c.EPNet.Gate.Hidden = -1 }, "model.epnet.gate.hidden = -1"},
		{"epnet", func(c *BackboneConfig) { c.EPNet.Tower.Hidden = []int64{0} }, "model.epnet.tower.hidden[0] = 0"},
		{"ppnet", func(c *BackboneConfig) { c.PPNet.IDRoles = nil }, "model.ppnet.id_roles is empty"},
		{"ppnet", func(c *BackboneConfig) { c.PPNet.IDRoles = []Role{RoleUser, "author"} }, `model.ppnet.id_roles[1] = "author": want one of user, item, scenario, context`},
		{"ppnet", func(c *BackboneConfig) { c.PPNet.Tower.Dropout = 1 }, "model.ppnet.tower.dropout"},
		{"adasparse", func(c *BackboneConfig) { c.AdaSparse.Form = "hard" }, `model.adasparse.form = "hard": want binarization, scaling or fusion`},
		{"adasparse", func(c *BackboneConfig) { c.AdaSparse.Epsilon = 1 }, "model.adasparse.epsilon = 1: must be in [0, 1)"},
		{"adasparse", func(c *BackboneConfig) { c.AdaSparse.Beta = 0 }, "model.adasparse.beta = 0: must be > 0"},
		{"adasparse", func(c *BackboneConfig) { c.AdaSparse.Alpha = -1 }, "model.adasparse.alpha = -1: must be > 0"},
		{"adasparse", func(c *BackboneConfig) { c.AdaSparse.AlphaStep = -1e-4 }, "model.adasparse.alpha_step = -0.0001: must be >= 0"},
		{"adasparse", func(c *BackboneConfig) { c.AdaSparse.ScenarioEmbeddingDim = 0 }, "model.adasparse.scenario_embedding_dim = 0"},
		{"hamur", func(c *BackboneConfig) { c.HAMUR.Network.Hidden = nil }, "model.hamur.network.hidden is empty"},
		{"hamur", func(c *BackboneConfig) { c.HAMUR.Hyper.Activation = "swish" }, "model.hamur.hyper.activation"},
		{"hamur", func(c *BackboneConfig) { c.HAMUR.Rank = 0 }, "model.hamur.rank = 0: must be >= 1"},
		{"hamur", func(c *BackboneConfig) { c.HAMUR.AdapterDim = 0 }, "model.hamur.adapter_dim = 0: must be >= 1"},
	}
	for _, c := range cases {
		cfg := DefaultBackboneConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate: got %v, want an error containing %q", err, c.want)
		}
		store := nn.NewStore(torch.CPU)
		if _, err := NewBackbone(c.backbone, store.Root(), testShape(8, 2), cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewBackbone(%s): got %v, want an error containing %q", c.backbone, err, c.want)
		}
		store.Close()
	}
	for _, name := range BackboneNames() {
		store := nn.NewStore(torch.CPU)
		if _, err := NewBackbone(name, store.Root(), testShape(0, 2), DefaultBackboneConfig()); err == nil {
			t.Errorf("%s: input width 0 accepted", name)
		}
		if _, err := NewBackbone(name, store.Root(), testShape(8, 0), DefaultBackboneConfig()); err == nil {
			t.Errorf("%s: 0 scenarios accepted", name)
		}
		store.Close()
	}
}

// TestBackboneConfigYAML: snake_case keys override the defaults and leave the rest alone.
func TestBackboneConfigYAML(t *testing.T) {
	cfg := DefaultBackboneConfig()
	doc := `
mmoe:
  experts: 6
  expert: {hidden: [32], activation: gelu, batch_norm: true, dropout: 0.1}
ple:
  levels: 3
  specific_experts: 1
  shared_experts: 4
star:
  hidden: [256, 128, 64]
  partitioned_norm: false
  aux_hidden: []
  scenario_embedding_dim: 4
shared_bottom:
  tower: {hidden: [16]}
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.MMoE.Experts != 6 || cfg.MMoE.Expert.Activation != nn.GELU || !cfg.MMoE.Expert.BatchNorm || cfg.MMoE.Expert.Dropout != 0.1 ||
		cfg.PLE.Levels != 3 || cfg.PLE.SpecificExperts != 1 || cfg.PLE.SharedExperts != 4 ||
		len(cfg.STAR.Hidden) != 3 || cfg.STAR.PartitionedNorm || len(cfg.STAR.AuxHidden) != 0 || cfg.STAR.ScenarioEmbeddingDim != 4 ||
		len(cfg.SharedBottom.Tower.Hidden) != 1 {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if len(cfg.SharedBottom.Bottom.Hidden) != 2 || len(cfg.MMoE.Tower.Hidden) != 2 || cfg.STAR.Activation != nn.ReLU {
		t.Errorf("keys absent from the YAML lost their defaults: %+v", cfg)
	}
}

// TestNewBackboneSectionsYAML: the sections of SAR-Net, M2M, AdaptDHM and
// M3oE read their snake_case keys and keep their defaults elsewhere.
func TestNewBackboneSectionsYAML(t *testing.T) {
	cfg := DefaultBackboneConfig()
	doc := `
sarnet: {shared_experts: 4, specific_experts: 1, expert: {hidden: [32], activation: relu}}
m2m: {encoder_layers: 0, experts: 6, scenario_embedding_dim: 8, tower_layers: 2, activation: tanh}
adaptdhm: {hidden: [32], clusters: 5, beta: 0.5, routing_iterations: 1, scenario_embedding_dim: 4, dropout: 0.1}
m3oe: {bottom: [], experts: 2, tower: {hidden: [8, 4]}}
`
	require.NoError(t, yaml.Unmarshal([]byte(doc), &cfg))
	require.NoError(t, cfg.Validate())
	def := DefaultBackboneConfig()

	assert.Equal(t, SARNetConfig{SharedExperts: 4, SpecificExperts: 1,
		Expert: nn.MLPConfig{Hidden: []int64{32}, Activation: nn.ReLU}, Tower: def.SARNet.Tower}, cfg.SARNet)
	want := def.M2M
	want.EncoderLayers, want.Experts, want.ScenarioEmbeddingDim, want.TowerLayers, want.Activation = 0, 6, 8, 2, nn.Tanh
	assert.Equal(t, want, cfg.M2M)
	assert.Equal(t, AdaptDHMConfig{Hidden: []int64{32}, Activation: nn.ReLU, Dropout: 0.1, Clusters: 5, Beta: 0.5,
		RoutingIterations: 1, ScenarioEmbeddingDim: 4, CenterUpdate: CenterMean}, cfg.AdaptDHM)
	assert.Equal(t, M3oEConfig{Bottom: []int64{}, Activation: nn.ReLU, Experts: 2, Expert: def.M3oE.Expert,
		Tower: nn.MLPConfig{Hidden: []int64{8, 4}, Activation: nn.ReLU}, Structure: StructurePaper}, cfg.M3oE)
}

// TestBackboneRolesYAML: the new sections read their keys, typed options
// refuse unknown values naming the line.
func TestBackboneRolesYAML(t *testing.T) {
	cfg := DefaultBackboneConfig()
	doc := `
ppnet: {id_roles: [user], gate: {hidden: 8, scale: 1.5}}
adasparse: {form: scaling, epsilon: 0.05}
hamur: {rank: 8, adapter_dim: 16, domain_norm: false}
epnet: {scenario_embedding_dim: 4}
`
	require.NoError(t, yaml.Unmarshal([]byte(doc), &cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, []Role{RoleUser}, cfg.PPNet.IDRoles)
	assert.Equal(t, GateNUConfig{Hidden: 8, Scale: 1.5}, cfg.PPNet.Gate)
	assert.Equal(t, PrunerScaling, cfg.AdaSparse.Form)
	assert.Equal(t, 0.05, cfg.AdaSparse.Epsilon)
	assert.Equal(t, 2.0, cfg.AdaSparse.Beta, "keys absent from the YAML keep their defaults")
	assert.Equal(t, HAMURConfig{Network: DefaultHAMURConfig().Network, Hyper: DefaultHAMURConfig().Hyper, Rank: 8, AdapterDim: 16}, cfg.HAMUR)
	assert.Equal(t, int64(4), cfg.EPNet.ScenarioEmbeddingDim)

	err := yaml.Unmarshal([]byte("adasparse:\n  form: hard"), &cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `line 2: unknown pruner form "hard": want binarization, scaling or fusion`)
}

// TestBackboneNeedsItsRoles: a backbone that reads fields by role is
// refused data without them, naming the key, and batches without Fields.
func TestBackboneNeedsItsRoles(t *testing.T) {
	lockThread(t)
	store := nn.NewStore(torch.CPU)
	defer store.Close()
	onlyUsers := Shape{Width: 8, Scenarios: 2, Fields: FieldLayout{Roles: DefaultRoles(1), Dim: 4}}
	_, err := NewBackbone("ppnet", store.Root().Sub("a"), onlyUsers, DefaultBackboneConfig())
	require.Error(t, err)
	assert.Equal(t, `model.ppnet.id_roles needs a field with role "item"; the data has fields with roles user`, err.Error())

	cfg := DefaultBackboneConfig()
	cfg.PPNet.IDRoles = []Role{RoleUser}
	bb, err := NewBackbone("ppnet", store.Root().Sub("b"), onlyUsers, cfg)
	require.NoError(t, err)
	sc := torch.NewScope()
	defer sc.Close()
	in := makeInput([]int64{2, 3}, 8)
	in.Fields = nil
	assert.ErrorContains(t, bb.Forward(in).Err(), "reads fields by role, and the input has no Fields")
	in.Fields = torch.Randn([]int64{5, 2, 4}, torch.Float32, torch.CPU)
	assert.ErrorContains(t, bb.Forward(in).Err(), "input fields are [5 2 4], want [5 1 4]")
	in.Fields = torch.Randn([]int64{5, 1, 4}, torch.Float32, torch.CPU)
	assert.NoError(t, bb.Forward(in).Err())

	// EPNet and AdaSparse need no role: without scenario-side fields they
	// gate with the scenario embedding alone, and take inputs without Fields.
	for _, name := range []string{"epnet", "adasparse"} {
		bb, err := NewBackbone(name, store.Root().Sub(name), Shape{Width: 8, Scenarios: 2}, DefaultBackboneConfig())
		require.NoError(t, err)
		in := makeInput([]int64{2, 3}, 8)
		in.Fields = nil
		assert.NoError(t, bb.Forward(in).Err(), name)
	}
}
