package model

import (
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// MMoEConfig is the MMoE backbone's section, model.mmoe.
type MMoEConfig struct {
	// Experts is the number of shared experts E (default 4).
	Experts int `yaml:"experts"`
	// Expert is each expert's MLP (default [128, 64], relu); its last layer is activated too.
	Expert nn.MLPConfig `yaml:"expert"`
	// Tower is each scenario's MLP before its logit (default [64, 32], relu, then → 1).
	Tower nn.MLPConfig `yaml:"tower"`
}

// DefaultMMoEConfig: 4 experts of [128, 64], towers [64, 32] → 1, ReLU.
func DefaultMMoEConfig() MMoEConfig {
	return MMoEConfig{
		Experts: 4,
		Expert:  nn.MLPConfig{Hidden: []int64{128, 64}, Activation: nn.ReLU},
		Tower:   nn.MLPConfig{Hidden: []int64{64, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.mmoe").
func (c MMoEConfig) Validate(key string) error {
	if err := atLeast(key+".experts", int64(c.Experts), 1); err != nil {
		return err
	}
	if err := validateMLP(key+".expert", c.Expert, true); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// MMoE is the Multi-gate Mixture-of-Experts (Ma et al., "Modeling Task
// Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts",
// KDD 2018) with one gate and one tower per scenario. For a sample x of
// scenario s, with E shared experts f_1 … f_E:
//
//	g_s(x) = softmax(W_s x + b_s)            ∈ R^E
//	h      = Σ_e g_s(x)_e · f_e(x)
//	ŷ      = t_s(h)
//
// The E experts run as one stack (one Linear, then one batched matmul per
// layer). All scenarios' gates are one Linear with S·E outputs, from which
// each row picks its own scenario's E logits (a gather), so gates and the
// mixture take a fixed number of ops whatever the number of scenarios; tower
// s runs on scenario s's rows only.
type MMoE struct {
	experts *expertStack
	gates   *nn.Linear // [S·E, in]: scenario s's gate is rows s·E … s·E+E-1
	towers  *scenarioTowers
}

// newMMoE creates "experts.<layer>.*", "gates.*" and "towers.<s>.*" under p.
func newMMoE(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.MMoE
	e := int64(c.Experts)
	m := &MMoE{
		experts: newExpertStack(p.Sub("experts"), e, in.Width, c.Expert),
		gates:   nn.NewLinear(p.Sub("gates"), in.Width, int64(in.Scenarios)*e, true),
	}
	m.towers = newScenarioTowers(p.Sub("towers"), m.experts.Out, in.Scenarios, c.Tower)
	return m
}

// Forward returns one logit per row [B].
func (m *MMoE) Forward(in Input) *torch.Tensor {
	experts := m.experts.Forward(in.X)                                      // [E, B, h]
	gate := pickScenario(in, m.gates.Forward(in.X), m.experts.n).Softmax(1) // [B, E]
	return m.towers.Forward(in, mix(experts, gate))
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *MMoE) Script(s *nn.Script, in ScriptInput) string {
	experts := m.experts.Script(s, in.X)
	gate := s.Let("torch.softmax(%s, 1)", scriptPickScenario(s, in, m.gates.Script(s, in.X), m.experts.n))
	return m.towers.Script(s, in, scriptMix(s, experts, gate))
}
