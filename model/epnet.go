package model

import (
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// EPNetConfig is the EPNet backbone's section, model.epnet.
type EPNetConfig struct {
	// ScenarioEmbeddingDim is the width of the learned scenario embedding in E_d (default 16, Scenario-Wise-Rec's scripts).
	ScenarioEmbeddingDim int64 `yaml:"scenario_embedding_dim"`
	// Gate is the Gate NU's hidden width and scale γ (default: hidden = the gated width, γ = 2).
	Gate GateNUConfig `yaml:"gate"`
	// Tower is the shared network after the personalised embedding, before its logit
	// (default [128, 64, 32], relu, then → 1: the fcn_dims of Scenario-Wise-Rec's
	// scripts, which its code never builds). Structure scenario_wise_rec has no
	// tower and does not read it.
	Tower nn.MLPConfig `yaml:"tower"`
	// Structure is paper (default: the personalised embedding feeds a tower)
	// or scenario_wise_rec (a gated logistic regression).
	Structure Structure `yaml:"structure"`
}

// DefaultEPNetConfig: a 16-wide scenario embedding, Gate NU with γ = 2 and
// hidden width = gated width, tower [128, 64, 32] → 1 with ReLU: the paper's structure.
func DefaultEPNetConfig() EPNetConfig {
	return EPNetConfig{
		Structure:            StructurePaper,
		ScenarioEmbeddingDim: 16,
		Gate:                 DefaultGateNUConfig(),
		Tower:                nn.MLPConfig{Hidden: []int64{128, 64, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.epnet").
func (c EPNetConfig) Validate(key string) error {
	if err := atLeast(key+".scenario_embedding_dim", c.ScenarioEmbeddingDim, 1); err != nil {
		return err
	}
	if err := c.Gate.Validate(key + ".gate"); err != nil {
		return err
	}
	if err := StructureValues.Check(key+".structure", c.Structure); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// NeededRoles: EPNet reads the scenario-side fields when the data has
// them, and needs none (the scenario embedding is always there).
func (c EPNetConfig) NeededRoles(key string) (string, []Role) { return key, nil }

// EPNet is the Embedding Personalized Network of PEPNet (Chang et al.,
// "PEPNet: Parameter and Embedding Personalized Network for Infusing with
// Personalized Prior Information", KDD 2023, arXiv 2302.01115, §3.3). A
// Gate NU conditioned on the scenario-side features E_d rescales every
// element of the shared bottom representation E, so each scenario selects
// and weighs the features it needs; a shared network maps the result to a
// logit. For a sample of scenario s:
//
//	E_d  = e_s ‖ E(F_d)                         e_s: learned scenario embedding; F_d: scenario-side fields
//	δ    = γ · σ(W₂ ReLU(W₁ (E_d ‖ ∅(E)) + b₁) + b₂)    the Gate NU; ∅ stops the gradient; γ = 2
//	O_ep = δ ⊙ E
//	ŷ    = t(O_ep)                              t: the shared tower, ending in one logit
//
// E is the input X, so with LLM4MSR's meta networks the gate also weighs
// the meta layers' outputs (concat fusion) or the fused sum (residual).
// F_d are the fields of role scenario (Input.Fields, before the meta
// layers); without any, E_d is the scenario embedding alone, which is what
// Scenario-Wise-Rec feeds it (the domain indicator's embedding). The only
// per-scenario parameter is e_s, looked up per row; gate and tower are shared.
//
// Structure. The paper's EPNet personalises the embedding that the rest
// of the network reads, so the default (model.epnet.structure = paper)
// follows it with a shared tower, model.epnet.tower. Scenario-Wise-Rec
// (scenario_wise_rec/models/multi_domain/epnet.py) passes its fcn_dims
// positionally as its MLP's output_layer flag, so its MLP is one Linear to
// the logit and its EPNet a gated logistic regression, ŷ = w·O_ep + b:
// structure scenario_wise_rec builds exactly that (no tower; the tower
// section is not read). Otherwise they agree; its MLP would put BatchNorm
// after every hidden layer, here model.epnet.tower.batch_norm, off by
// default as in the other backbones.
//
// Parameters: "scenario_embedding.weight" [S, d_s], "gate.{hidden,out}.*",
// "tower.*" (paper), "out.*".
type EPNet struct {
	fields    FieldLayout
	embedding *torch.Tensor // [S, ScenarioEmbeddingDim]
	gate      *gateNU
	tower     *nn.MLP
	out       *nn.Linear
}

func newEPNet(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.EPNet
	m := &EPNet{fields: in.Fields}
	m.embedding = p.Sub("scenario_embedding").Param("weight", []int64{int64(in.Scenarios), c.ScenarioEmbeddingDim}, nn.Normal(1))
	domain := c.ScenarioEmbeddingDim + in.Fields.Width(RoleScenario)
	m.gate = newGateNU(p.Sub("gate"), domain+in.Width, in.Width, c.Gate)
	tower := c.Tower
	if c.Structure == StructureScenarioWiseRec {
		tower.Hidden = nil
	}
	tower.OutputActivation = true
	m.tower = nn.NewMLP(p.Sub("tower"), in.Width, tower)
	m.out = nn.NewLinear(p.Sub("out"), m.tower.Out, 1, true)
	return m
}

// Forward returns one logit per row [B].
func (m *EPNet) Forward(in Input) *torch.Tensor {
	domain := scenarioSide(in, m.embedding, m.fields)
	delta := m.gate.Forward(torch.Cat([]*torch.Tensor{domain, in.X.Detach()}, 1))
	return m.out.Forward(m.tower.Forward(delta.Mul(in.X))).View(-1)
}

// scenarioSide is E_d: each row's scenario embedding, followed by its
// scenario-side fields when the data has some.
func scenarioSide(in Input, embedding *torch.Tensor, fields FieldLayout) *torch.Tensor {
	e := torch.Embedding(embedding, in.Scenario)
	if f := fields.Select(in.Fields, RoleScenario); f != nil {
		return torch.Cat([]*torch.Tensor{e, f}, 1)
	}
	return e
}

// GateNUConfig configures a Gate Neural Unit (PEPNet §3.2).
type GateNUConfig struct {
	// Hidden is the width of its first layer; 0 means the width of what it gates (Scenario-Wise-Rec's choice).
	Hidden int64 `yaml:"hidden"`
	// Scale is γ, the upper bound of the gate: δ ∈ (0, γ) (default 2, the paper's).
	Scale float64 `yaml:"scale"`
}

// DefaultGateNUConfig: hidden width = gated width, γ = 2.
func DefaultGateNUConfig() GateNUConfig { return GateNUConfig{Scale: 2} }

// Validate checks the section; key is its path ("model.epnet.gate").
func (c GateNUConfig) Validate(key string) error {
	if err := atLeast(key+".hidden", c.Hidden, 0); err != nil {
		return err
	}
	if !(c.Scale > 0) {
		return fmt.Errorf("%s.scale = %g: must be > 0", key, c.Scale)
	}
	return nil
}

// gateNU is PEPNet's Gate Neural Unit, shared by EPNet and PPNet:
// δ = γ · σ(W₂ ReLU(W₁ x + b₁) + b₂). The first layer crosses the prior
// with the features, the second turns it into one gate per gated value.
type gateNU struct {
	hidden, out *nn.Linear
	scale       float64
}

// newGateNU creates "<p>.hidden.*" and "<p>.out.*" for in inputs and out gates.
func newGateNU(p nn.Path, in, out int64, c GateNUConfig) *gateNU {
	h := c.Hidden
	if h == 0 {
		h = out
	}
	return &gateNU{hidden: nn.NewLinear(p.Sub("hidden"), in, h, true), out: nn.NewLinear(p.Sub("out"), h, out, true), scale: c.Scale}
}

// Forward maps x [n, in] to gates [n, out] in (0, γ).
func (g *gateNU) Forward(x *torch.Tensor) *torch.Tensor {
	return g.out.Forward(g.hidden.Forward(x).Relu()).Sigmoid().MulScalar(g.scale)
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *EPNet) Script(s *nn.Script, in ScriptInput) string {
	domain := scriptScenarioSide(s, in, m.embedding, m.fields)
	delta := m.gate.Script(s, s.Let("torch.cat([%s, %s], 1)", domain, in.X))
	return s.Let("%s.view(-1)", m.out.Script(s, m.tower.Script(s, s.Let("%s * %s", delta, in.X))))
}

// scriptScenarioSide emits scenarioSide.
func scriptScenarioSide(s *nn.Script, in ScriptInput, embedding *torch.Tensor, fields FieldLayout) string {
	e := s.Let("torch.embedding(%s, %s)", s.Ref(embedding), in.Scenario)
	if f := fields.script(s, in.Fields, RoleScenario); f != "" {
		return s.Let("torch.cat([%s, %s], 1)", e, f)
	}
	return e
}

// Script emits Forward.
func (g *gateNU) Script(s *nn.Script, x string) string {
	return s.Let("torch.sigmoid(%s) * %s", g.out.Script(s, s.Let("torch.relu(%s)", g.hidden.Script(s, x))), nn.Float(g.scale))
}
