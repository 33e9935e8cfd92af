package model

import (
	"fmt"
	"math"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
	"github.com/msrtrain/msrtrain/model/nn"
	"go.yaml.in/yaml/v3"
)

// PrunerForm is the form of AdaSparse's weighting factors.
type PrunerForm string

// The forms of AdaSparse §3.3.
const (
	PrunerBinarization PrunerForm = "binarization" // π = σ(α·v), annealed towards a 0/1 step as α grows
	PrunerScaling      PrunerForm = "scaling"      // π = β·σ(v)
	PrunerFusion       PrunerForm = "fusion"       // π = β·σ(α·v)
)

// PrunerFormValues are model.adasparse.form's values.
var PrunerFormValues = choice.New("pruner form", PrunerBinarization, PrunerScaling, PrunerFusion)

// UnmarshalYAML accepts one of PrunerFormValues.
func (f *PrunerForm) UnmarshalYAML(n *yaml.Node) error { return PrunerFormValues.Decode(n, f) }

// AdaSparseConfig is the AdaSparse backbone's section, model.adasparse.
// Defaults are Scenario-Wise-Rec's scripts' (the paper tunes them per dataset).
type AdaSparseConfig struct {
	// ScenarioEmbeddingDim is the width of the learned scenario embedding in e_d (default 16).
	ScenarioEmbeddingDim int64 `yaml:"scenario_embedding_dim"`
	// Network is the pruned network before its logit (default [32, 32], relu, dropout 0.2).
	Network nn.MLPConfig `yaml:"network"`
	// Form of the weighting factors: binarization, scaling or fusion (default fusion).
	Form PrunerForm `yaml:"form"`
	// Epsilon: factors below it prune their neuron to exactly 0 (default 0.01).
	Epsilon float64 `yaml:"epsilon"`
	// Beta is the upper bound of the scaling and fusion factors (default 2).
	Beta float64 `yaml:"beta"`
	// Alpha is the sigmoid's initial sharpness in binarization and fusion (default 1).
	Alpha float64 `yaml:"alpha"`
	// AlphaStep is added to α after every training forward pass (default 1e-4).
	AlphaStep float64 `yaml:"alpha_step"`
}

// DefaultAdaSparseConfig: 16-wide scenario embedding, network [32, 32] →
// 1 with ReLU and dropout 0.2, fusion factors with ε = 0.01, β = 2, α from 1
// by 1e-4 per training step.
func DefaultAdaSparseConfig() AdaSparseConfig {
	return AdaSparseConfig{
		ScenarioEmbeddingDim: 16,
		Network:              nn.MLPConfig{Hidden: []int64{32, 32}, Activation: nn.ReLU, Dropout: 0.2},
		Form:                 PrunerFusion,
		Epsilon:              0.01, Beta: 2, Alpha: 1, AlphaStep: 1e-4,
	}
}

// Validate checks the section; key is its path in the config ("model.adasparse").
func (c AdaSparseConfig) Validate(key string) error {
	if err := atLeast(key+".scenario_embedding_dim", c.ScenarioEmbeddingDim, 1); err != nil {
		return err
	}
	if err := validateMLP(key+".network", c.Network, false); err != nil {
		return err
	}
	if err := PrunerFormValues.Check(key+".form", c.Form); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		v    float64
		ok   bool
		want string
	}{
		{"epsilon", c.Epsilon, c.Epsilon >= 0 && c.Epsilon < 1, "in [0, 1)"},
		{"beta", c.Beta, c.Beta > 0, "> 0"},
		{"alpha", c.Alpha, c.Alpha > 0, "> 0"},
		{"alpha_step", c.AlphaStep, c.AlphaStep >= 0, ">= 0"},
	} {
		if !v.ok || math.IsInf(v.v, 0) {
			return fmt.Errorf("%s.%s = %g: must be %s", key, v.name, v.v, v.want)
		}
	}
	return nil
}

// NeededRoles: AdaSparse reads the scenario-side fields when the data has
// them, and needs none (the scenario embedding is always there).
func (c AdaSparseConfig) NeededRoles(key string) (string, []Role) { return key, nil }

// AdaSparse learns an adaptively sparse network per scenario (Yang et al.,
// "AdaSparse: Learning Adaptively Sparse Structures for Multi-Domain
// Click-Through Rate Prediction", CIKM 2022, arXiv 2206.13108). One network
// is shared; a domain-adaptive pruner per layer turns the scenario-aware
// features e_d into neuron-level weighting factors π that switch neurons
// off (π = 0) or rescale them, so each scenario runs its own sparse
// sub-network. For a sample of scenario s with domain-agnostic input E (= X):
//
//	e_d  = e_s ‖ E(F_d)                       e_s: learned scenario embedding; F_d: scenario-side fields
//	v^l  = W^l_p (e_d ‖ h^l)                  the pruner of layer l (a Linear without bias)
//	π^l  = g(v^l) ⊙ 1[g(v^l) ≥ ε]             g: σ(α·v) | β·σ(v) | β·σ(α·v) (binarization | scaling | fusion)
//	h^0  = E,  z^0 = e_d ‖ π^0 ⊙ h^0
//	h^{l+1} = f(W^l z^l + b^l),  z^{l+1} = π^{l+1} ⊙ h^{l+1}
//	ŷ = w_o·z^{L+1} + b_o
//
// α grows by alpha_step after every training forward pass, so binarization
// and fusion approach a hard 0/1 (resp. 0/β) mask as training goes on; α is
// a buffer ("alpha"), saved with the model so a resumed run continues its
// schedule. e_d is looked up per row, everything else is shared, so there is
// nothing to route. E is X: with LLM4MSR's meta networks it carries the
// meta layers' outputs, which the pruners weigh like any other input.
// Without scenario-side fields e_d is the scenario embedding alone, which is
// what Scenario-Wise-Rec feeds it.
//
// Departures from Scenario-Wise-Rec (scenario_wise_rec/models/multi_domain/adasparse.py),
// where the paper is followed: it multiplies g(v) by sign(g(v) − ε), so a
// pruned neuron is negated instead of zeroed and binarization's factors
// (sign alone) pass no gradient to the pruner; it advances α in evaluation
// too. Its MLP puts BatchNorm after every layer (here
// model.adasparse.network.batch_norm, off by default). Neither has the
// paper's optional sparsity-ratio regulariser: the backbone interface has
// no auxiliary loss, so the sparsity is what the task loss and ε make it.
//
// Parameters: "scenario_embedding.weight" [S, d_s], "pruners.<l>.weight"
// [width_l, d_e + width_l], "network.*", "out.*", buffer "alpha" [1].
type AdaSparse struct {
	store     *nn.Store
	fields    FieldLayout
	embedding *torch.Tensor // [S, ScenarioEmbeddingDim]
	pruners   []*nn.Linear  // len(layers)+1: the input's, then each layer's output's
	layers    []*nn.MLP     // one Linear → BatchNorm? → f → Dropout? each
	out       *nn.Linear
	alpha     *torch.Tensor // [1] buffer
	cfg       AdaSparseConfig
}

func newAdaSparse(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.AdaSparse
	m := &AdaSparse{store: p.Store(), fields: in.Fields, cfg: c}
	m.embedding = p.Sub("scenario_embedding").Param("weight", []int64{int64(in.Scenarios), c.ScenarioEmbeddingDim}, nn.Normal(1))
	domain := c.ScenarioEmbeddingDim + in.Fields.Width(RoleScenario)
	width := in.Width
	m.pruners = append(m.pruners, nn.NewLinear(p.Sub("pruners").Index(0), domain+width, width, false))
	width += domain
	for l, h := range c.Network.Hidden {
		layer := c.Network
		layer.Hidden, layer.OutputActivation = []int64{h}, true
		m.layers = append(m.layers, nn.NewMLP(p.Sub("network").Index(l), width, layer))
		m.pruners = append(m.pruners, nn.NewLinear(p.Sub("pruners").Index(l+1), domain+h, h, false))
		width = h
	}
	m.out = nn.NewLinear(p.Sub("out"), width, 1, true)
	m.alpha = p.Buffer("alpha", []int64{1}, nn.Init{Kind: torch.InitConstant, P1: c.Alpha})
	return m
}

// Forward returns one logit per row [B].
func (m *AdaSparse) Forward(in Input) *torch.Tensor {
	domain := scenarioSide(in, m.embedding, m.fields)
	alpha := m.alpha.Clone() // autograd keeps this pass's α, which the update below would overwrite
	z := torch.Cat([]*torch.Tensor{domain, m.prune(0, domain, in.X, alpha)}, 1)
	for l, layer := range m.layers {
		z = m.prune(l+1, domain, layer.Forward(z), alpha)
	}
	y := m.out.Forward(z).View(-1)
	if m.store.Training() && m.cfg.AlphaStep > 0 {
		torch.NoGrad(func() {
			if err := m.alpha.CopyFrom(m.alpha.AddScalar(m.cfg.AlphaStep)); err != nil {
				y = torch.Failed(fmt.Errorf("adasparse: advancing alpha: %w", err))
			}
		})
	}
	return y
}

// prune returns π^l ⊙ h for the rows' scenario-aware features e_d.
func (m *AdaSparse) prune(l int, domain, h, alpha *torch.Tensor) *torch.Tensor {
	return pruneFactors(m.pruners[l].Forward(torch.Cat([]*torch.Tensor{domain, h}, 1)), alpha, m.cfg).Mul(h)
}

// pruneFactors turns pruner outputs v into weighting factors π.
func pruneFactors(v, alpha *torch.Tensor, c AdaSparseConfig) *torch.Tensor {
	var g *torch.Tensor
	switch c.Form {
	case PrunerBinarization:
		g = v.Mul(alpha).Sigmoid()
	case PrunerScaling:
		g = v.Sigmoid().MulScalar(c.Beta)
	default:
		g = v.Mul(alpha).Sigmoid().MulScalar(c.Beta)
	}
	return g.Mul(g.GeScalar(c.Epsilon).ToDType(g.DType()))
}

// Script emits Forward in evaluation mode (α as it stands) as TorchScript (see nn.Script).
func (m *AdaSparse) Script(s *nn.Script, in ScriptInput) string {
	domain := scriptScenarioSide(s, in, m.embedding, m.fields)
	alpha := s.Ref(m.alpha)
	z := s.Let("torch.cat([%s, %s], 1)", domain, m.scriptPrune(s, 0, domain, in.X, alpha))
	for l, layer := range m.layers {
		z = m.scriptPrune(s, l+1, domain, layer.Script(s, z), alpha)
	}
	return s.Let("%s.view(-1)", m.out.Script(s, z))
}

// scriptPrune emits prune.
func (m *AdaSparse) scriptPrune(s *nn.Script, l int, domain, h, alpha string) string {
	v := m.pruners[l].Script(s, s.Let("torch.cat([%s, %s], 1)", domain, h))
	var g string
	switch m.cfg.Form {
	case PrunerBinarization:
		g = s.Let("torch.sigmoid(%s * %s)", v, alpha)
	case PrunerScaling:
		g = s.Let("torch.sigmoid(%s) * %s", v, nn.Float(m.cfg.Beta))
	default:
		g = s.Let("torch.sigmoid(%s * %s) * %s", v, alpha, nn.Float(m.cfg.Beta))
	}
	return s.Let("%s * (%s >= %s).to(%s.dtype) * %s", g, g, nn.Float(m.cfg.Epsilon), g, h)
}
