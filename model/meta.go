package model

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
	"github.com/msrtrain/msrtrain/model/nn"
)

// LLM4MSR's hierarchical meta networks (Wang et al., CIKM 2024, §3.3).
//
// A frozen knowledge vector k (one per scenario, one per user, from an LLM's
// answer to the scenario- and user-level prompts) is turned into the weights
// of small "meta layers" that transform the bottom representation x:
//
//	h        = Generator(Proj(k))                         Proj: K → P, Generator: an MLP
//	W_l, b_l = split(Head(h)),  W_l scaled by 1/√in_l     one Linear emits every layer's weights
//	z_0 = x,  z_l = act(z_{l-1}·W_l + b_l)                the meta layers
//
// The scenario-level and the user-level networks run in parallel at the
// bottom, and their outputs are fused with x before the backbone:
// concat [x, z_scenario, z_user] (default) or the residual x + z_scenario + z_user.
// Scenario weights are generated once per scenario present in a batch;
// user-level layers are applied through the head's linearity without being
// built (userLayers), with the generator run once per distinct user.

// MetaConfig configures the meta networks.
type MetaConfig struct {
	// Levels selects the networks (the ablation switch).
	Levels MetaLevels `yaml:"levels"`
	// ProjectionDim is P, the width the knowledge vector is projected down to.
	ProjectionDim int64 `yaml:"projection_dim"`
	// Generator is the MLP from the projection to the weight head.
	Generator nn.MLPConfig `yaml:"generator"`
	// Layers are the meta layers' output widths; the last is the width of z.
	Layers []int64 `yaml:"layers"`
	// Activation follows every meta layer.
	Activation nn.Activation `yaml:"activation"`
	// Fusion joins x with the meta outputs.
	Fusion Fusion `yaml:"fusion"`
}

// MetaLevels selects which meta networks run: none, scenario, user or both.
type MetaLevels string

// The meta levels.
const (
	LevelsNone     MetaLevels = "none"
	LevelsScenario MetaLevels = "scenario"
	LevelsUser     MetaLevels = "user"
	LevelsBoth     MetaLevels = "both"
)

// MetaLevelValues are model.meta.levels' values.
var MetaLevelValues = choice.New("meta levels", LevelsNone, LevelsScenario, LevelsUser, LevelsBoth)

// UnmarshalYAML accepts one of MetaLevelValues.
func (l *MetaLevels) UnmarshalYAML(n *yaml.Node) error { return MetaLevelValues.Decode(n, l) }

// Enabled reports whether any meta network runs (and so knowledge is needed).
func (l MetaLevels) Enabled() bool { return l != LevelsNone }

// Scenario and User report whether that level's network runs.
func (l MetaLevels) Scenario() bool { return l == LevelsScenario || l == LevelsBoth }
func (l MetaLevels) User() bool     { return l == LevelsUser || l == LevelsBoth }

// Fusion joins the bottom representation x with the meta networks' outputs z.
type Fusion string

// The fusions.
const (
	FusionConcat   Fusion = "concat"   // [x, z_scenario, z_user]
	FusionResidual Fusion = "residual" // x + z_scenario + z_user; the last meta layer must be x's width
)

// FusionValues are model.meta.fusion's values.
var FusionValues = choice.New("fusion", FusionConcat, FusionResidual)

// UnmarshalYAML accepts one of FusionValues.
func (f *Fusion) UnmarshalYAML(n *yaml.Node) error { return FusionValues.Decode(n, f) }

// width is the fused width of x (in wide) and nets outputs (out wide each).
func (f Fusion) width(in, out int64, nets int) int64 {
	if f == FusionResidual {
		return in
	}
	return in + int64(nets)*out
}

// apply fuses parts = [x, z...].
func (f Fusion) apply(parts []*torch.Tensor) *torch.Tensor {
	if f == FusionResidual {
		out := parts[0]
		for _, z := range parts[1:] {
			out = out.Add(z)
		}
		return out
	}
	return torch.Cat(parts, 1)
}

// DefaultMetaConfig: both levels, one meta layer of width 16 generated from
// a 16-wide hidden layer, concatenated. A user-level layer costs
// in × (hidden + 1) × width multiply-adds per row (see userLayers), so these
// widths set the overhead; wider ones gain little AUC for it (README, Benchmarks).
func DefaultMetaConfig() MetaConfig {
	return MetaConfig{
		Levels:        LevelsBoth,
		ProjectionDim: 32,
		Generator:     nn.MLPConfig{Hidden: []int64{16}, Activation: nn.ReLU},
		Layers:        []int64{16},
		Activation:    nn.ReLU,
		Fusion:        FusionConcat,
	}
}

// Validate names the key of the first bad value.
func (c MetaConfig) Validate(field string) error {
	if err := MetaLevelValues.Check(field+".levels", c.Levels); err != nil {
		return err
	}
	if !c.Levels.Enabled() {
		return nil
	}
	if c.ProjectionDim <= 0 {
		return fmt.Errorf("%s.projection_dim = %d: must be positive", field, c.ProjectionDim)
	}
	if len(c.Layers) == 0 {
		return fmt.Errorf("%s.layers: at least one meta layer is needed", field)
	}
	for i, w := range c.Layers {
		if w <= 0 {
			return fmt.Errorf("%s.layers[%d] = %d: must be positive", field, i, w)
		}
	}
	if _, err := nn.ParseActivation(string(c.Activation)); err != nil {
		return fmt.Errorf("%s.activation: %w", field, err)
	}
	if err := FusionValues.Check(field+".fusion", c.Fusion); err != nil {
		return err
	}
	return c.Generator.Validate(field + ".generator")
}

// Knowledge holds the frozen knowledge vectors on the model's device.
type Knowledge struct {
	Scenario  *torch.Tensor // [scenarios, K]
	User      *torch.Tensor // [user vocabulary size, K]; rows of unknown users are zero
	UserKnown *torch.Tensor // [user vocabulary size, 1] float32: 1 where the user has a vector
	Dim       int64
}

// metaNet is one level: projection, generator and a head emitting every meta layer's weights.
type metaNet struct {
	proj    *nn.Linear
	gen     *nn.MLP
	head    *nn.Linear
	in      []int64 // input width of each meta layer
	out     []int64
	scale   []float64
	act     nn.Activation
	perRows int64 // head outputs per knowledge vector
}

func newMetaNet(p nn.Path, knowledgeDim, inDim int64, cfg MetaConfig) *metaNet {
	m := &metaNet{act: cfg.Activation}
	m.proj = nn.NewLinear(p.Sub("proj"), knowledgeDim, cfg.ProjectionDim, true)
	gcfg := cfg.Generator
	gcfg.OutputActivation = true
	m.gen = nn.NewMLP(p.Sub("generator"), cfg.ProjectionDim, gcfg)
	width := inDim
	for _, w := range cfg.Layers {
		m.in = append(m.in, width)
		m.out = append(m.out, w)
		m.scale = append(m.scale, 1/math.Sqrt(float64(width)))
		m.perRows += width*w + w
		width = w
	}
	m.head = nn.NewLinear(p.Sub("head"), m.gen.Out, m.perRows, true)
	return m
}

// generated are the meta layers' weights for n knowledge vectors.
type generated struct {
	w []*torch.Tensor // [n, in, out]
	b []*torch.Tensor // [n, out]
}

// hidden is the generator's output h for knowledge vectors k [n, K]: [n, G].
func (m *metaNet) hidden(k *torch.Tensor) *torch.Tensor { return m.gen.Forward(m.proj.Forward(k)) }

func (m *metaNet) generate(k *torch.Tensor) generated {
	flat := m.head.Forward(m.hidden(k)) // [n, perRows]
	var g generated
	var off int64
	for l := range m.in {
		in, out := m.in[l], m.out[l]
		w := flat.Narrow(1, off, in*out).MulScalar(m.scale[l])
		off += in * out
		g.w = append(g.w, w.Reshape(-1, in, out))
		g.b = append(g.b, flat.Narrow(1, off, out))
		off += out
	}
	return g
}

// Meta holds the two levels and the fallback vector of users without knowledge.
type Meta struct {
	cfg          MetaConfig
	scenario     *metaNet
	user         *metaNet
	UserFallback *torch.Tensor // [1, K], learned
	Knowledge    *Knowledge
	OutDim       int64 // width of the fused representation
	dev          torch.Device
}

// NewMeta builds the networks under p ("meta.scenario.*", "meta.user.*").
func NewMeta(p nn.Path, inDim int64, know *Knowledge, cfg MetaConfig) (*Meta, error) {
	if know == nil {
		return nil, fmt.Errorf("model.meta.levels = %q needs knowledge vectors (see `msrtrain knowledge build`)", cfg.Levels)
	}
	m := &Meta{cfg: cfg, Knowledge: know, dev: p.Store().Device}
	last := cfg.Layers[len(cfg.Layers)-1]
	if cfg.Fusion == FusionResidual && last != inDim {
		return nil, fmt.Errorf("model.meta.fusion = residual needs the last meta layer (%d) to equal the input width (%d)", last, inDim)
	}
	nets := 0
	if cfg.Levels.Scenario() {
		m.scenario = newMetaNet(p.Sub("scenario"), know.Dim, inDim, cfg)
		nets++
	}
	if cfg.Levels.User() {
		m.user = newMetaNet(p.Sub("user"), know.Dim, inDim, cfg)
		m.UserFallback = p.Sub("user").Param("fallback", []int64{1, know.Dim}, nn.Normal(0.01))
		nets++
	}
	m.OutDim = cfg.Fusion.width(inDim, last, nets)
	return m, nil
}

// Forward fuses x with the scenario-level and user-level meta layers' outputs.
// users are the rows' user indices [B] (the user vocabulary's, 0 = unknown).
func (m *Meta) Forward(in Input, users *torch.Tensor) *torch.Tensor {
	parts := []*torch.Tensor{in.X}
	if m.scenario != nil {
		parts = append(parts, m.scenarioLayers(in))
	}
	if m.user != nil {
		parts = append(parts, m.userLayers(in.X, users))
	}
	return m.cfg.Fusion.apply(parts)
}

// scenarioLayers generates each present scenario's layers once and applies them to its rows.
func (m *Meta) scenarioLayers(in Input) *torch.Tensor {
	segs := in.Segments()
	ids := make([]int64, len(segs))
	for i, s := range segs {
		ids[i] = int64(s.Scenario)
	}
	idx := torch.FromSlice(ids).ToDevice(m.dev, false)
	g := m.scenario.generate(m.Knowledge.Scenario.IndexSelect(0, idx))
	outs := make([]*torch.Tensor, len(segs))
	for i, s := range segs {
		z := s.Rows(in.X)
		for l := range g.w {
			z = m.act(torch.Addmm(g.b[l].Select(0, int64(i)), z, g.w[l].Select(0, int64(i)), 1, 1))
		}
		outs[i] = z
	}
	if len(outs) == 1 {
		return outs[0]
	}
	return torch.Cat(outs, 0)
}

// userLayers applies each row's user's meta layers without building them.
// The head is linear, so with h_u the generator's output for user u (G
// wide), a layer's weight is W(u) = s·(Σ_g h_u[g]·H_g + C), where H_g and C
// are the head's weight column g and bias reshaped to [in, out]. Hence
//
//	z·W(u) = s·Σ_g h̃_u[g]·(z·H̃_g),   h̃_u = [h_u, 1],  H̃ = [H_1 … H_G, C]
//
// one matmul of the rows with every H̃_g at once and a weighted sum over
// G+1, rather than a [B, in, out] weight tensor per step (16 MB at batch
// 2048) multiplied into the rows elementwise; the bias b(u) is a Linear of h_u.
// h is computed once per distinct user and then indexed.
func (m *Meta) userLayers(x, users *torch.Tensor) *torch.Tensor {
	if x.Err() != nil {
		return x // its failure flows on, as through any op; it has no shape to ask
	}
	distinct, row := users.Unique()
	known := m.Knowledge.UserKnown.IndexSelect(0, distinct)
	k := m.Knowledge.User.IndexSelect(0, distinct).Mul(known).Add(m.UserFallback.Mul(known.RSubScalar(1)))
	h := m.user.hidden(k).IndexSelect(0, row) // [B, G]
	g := m.user.gen.Out
	ones := torch.Ones([]int64{x.Shape()[0], 1}, x.DType(), m.dev)
	hTilde := torch.Cat([]*torch.Tensor{h, ones}, 1).Unsqueeze(2) // [B, G+1, 1]
	head := m.user.head
	z := x
	var off int64
	for l := range m.user.in {
		in, out := m.user.in[l], m.user.out[l]
		basis := torch.Cat([]*torch.Tensor{
			head.Weight.Narrow(0, off, in*out),            // [in·out, G]
			head.Bias.Narrow(0, off, in*out).Unsqueeze(1), // [in·out, 1]
		}, 1).View(in, out, g+1).Permute(0, 2, 1).Reshape(in, (g+1)*out) // [in, (G+1)·out]
		off += in * out
		bias := torch.Linear(h, head.Weight.Narrow(0, off, out), head.Bias.Narrow(0, off, out)) // [B, out]
		off += out
		zw := z.Matmul(basis).View(-1, g+1, out).Mul(hTilde).Sum(false, 1).MulScalar(m.user.scale[l])
		z = m.act(zw.Add(bias))
	}
	return z
}

func (m *Meta) act(x *torch.Tensor) *torch.Tensor { return m.cfg.Activation.Apply(x) }
