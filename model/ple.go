package model

import (
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// PLEConfig is the PLE backbone's section, model.ple.
type PLEConfig struct {
	// Levels is the number of stacked CGC levels (default 2).
	Levels int `yaml:"levels"`
	// SpecificExperts is the number of experts each scenario owns per level (default 2).
	SpecificExperts int `yaml:"specific_experts"`
	// SharedExperts is the number of experts all scenarios share per level (default 2).
	SharedExperts int `yaml:"shared_experts"`
	// Expert is each expert's MLP (default [128, 64], relu); its last layer is activated too.
	Expert nn.MLPConfig `yaml:"expert"`
	// Tower is each scenario's MLP before its logit (default [64, 32], relu, then → 1).
	Tower nn.MLPConfig `yaml:"tower"`
}

// DefaultPLEConfig: 2 levels of 2 specific and 2 shared experts of [128, 64], towers [64, 32] → 1, ReLU.
func DefaultPLEConfig() PLEConfig {
	return PLEConfig{
		Levels: 2, SpecificExperts: 2, SharedExperts: 2,
		Expert: nn.MLPConfig{Hidden: []int64{128, 64}, Activation: nn.ReLU},
		Tower:  nn.MLPConfig{Hidden: []int64{64, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.ple").
func (c PLEConfig) Validate(key string) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"levels", c.Levels}, {"specific_experts", c.SpecificExperts}, {"shared_experts", c.SharedExperts}} {
		if err := atLeast(key+"."+f.name, int64(f.v), 1); err != nil {
			return err
		}
	}
	if err := validateMLP(key+".expert", c.Expert, true); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// PLE is Progressive Layered Extraction (Tang et al., "Progressive Layered
// Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
// Recommendations", RecSys 2020): L stacked Customized Gate Control (CGC)
// levels, each with Ks experts per scenario and Kc shared experts.
//
// Multi-scenario form. In multi-task PLE every sample has every task, so each
// level carries one representation per task plus a shared one. Here a sample
// belongs to one scenario s, so at level l it carries two: its own
// scenario's path a^l and the shared path c^l (a^0 = c^0 = x). With
// E^l_{s,k} scenario s's experts and E^l_{k} the shared experts of level l,
// and their outputs stacked as
//
//	e^l = [E^l_{s,1}(a^{l-1}) … E^l_{s,Ks}(a^{l-1}), E^l_1(c^{l-1}) … E^l_Kc(c^{l-1})]
//
// the level computes
//
//	a^l = Σ_k softmax(W^l_s a^{l-1} + b^l_s)_k · e^l_k           (scenario gate of s)
//	c^l = Σ_k softmax(W^l_sh c^{l-1} + b^l_sh)_k · e^l_k         (shared gate, levels < L)
//	ŷ   = t_s(a^L)
//
// The shared gate mixes the sample's own scenario's experts and the shared
// ones, like the scenario gate: the other scenarios' experts were never
// meant for this sample, and running them would compute S times the work.
// Each scenario's experts run on its own rows only (as one stack); the
// shared experts and all scenarios' gates (one Linear with S·K outputs,
// K = Ks + Kc, each row picking its own scenario's K) run on the whole batch.
type PLE struct {
	k      int64 // Ks + Kc experts per row per level
	levels []*pleLevel
	towers *scenarioTowers
}

type pleLevel struct {
	specific   []*expertStack // per scenario, Ks experts each
	shared     *expertStack   // Kc experts
	gates      *nn.Linear     // [S·K, in]: scenario gates
	sharedGate *nn.Linear     // [K, in]; nil on the last level
}

// newPLE creates "levels.<l>.specific.<s>.<layer>.*", "levels.<l>.shared.<layer>.*",
// "levels.<l>.gates.*", "levels.<l>.shared_gate.*" (all levels but the last)
// and "towers.<s>.*" under p.
func newPLE(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.PLE
	ks, kc := int64(c.SpecificExperts), int64(c.SharedExperts)
	m := &PLE{k: ks + kc}
	width := in.Width
	for l := 0; l < c.Levels; l++ {
		lp := p.Sub("levels").Index(l)
		lv := &pleLevel{shared: newExpertStack(lp.Sub("shared"), kc, width, c.Expert)}
		for s := 0; s < in.Scenarios; s++ {
			lv.specific = append(lv.specific, newExpertStack(lp.Sub("specific").Index(s), ks, width, c.Expert))
		}
		lv.gates = nn.NewLinear(lp.Sub("gates"), width, int64(in.Scenarios)*m.k, true)
		if l < c.Levels-1 {
			lv.sharedGate = nn.NewLinear(lp.Sub("shared_gate"), width, m.k, true)
		}
		m.levels = append(m.levels, lv)
		width = lv.shared.Out
	}
	m.towers = newScenarioTowers(p.Sub("towers"), width, in.Scenarios, c.Tower)
	return m
}

// Forward returns one logit per row [B].
func (m *PLE) Forward(in Input) *torch.Tensor {
	a, c := in.X, in.X
	for _, lv := range m.levels {
		specific := eachSegment(in, 1, func(seg Segment) *torch.Tensor {
			return lv.specific[seg.Scenario].Forward(seg.Rows(a))
		}) // [Ks, B, h]
		experts := torch.Cat([]*torch.Tensor{specific, lv.shared.Forward(c)}, 0) // [K, B, h]
		next := mix(experts, pickScenario(in, lv.gates.Forward(a), m.k).Softmax(1))
		if lv.sharedGate != nil {
			c = mix(experts, lv.sharedGate.Forward(c).Softmax(1))
		}
		a = next
	}
	return m.towers.Forward(in, a)
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *PLE) Script(s *nn.Script, in ScriptInput) string {
	a, c := in.X, in.X
	for _, lv := range m.levels {
		specific := scriptEachSegment(s, in, 1, func(seg scriptSegment) string {
			return lv.specific[seg.Scenario].Script(s, seg.Rows(a))
		})
		experts := s.Let("torch.cat([%s, %s], 0)", specific, lv.shared.Script(s, c))
		next := scriptMix(s, experts, s.Let("torch.softmax(%s, 1)", scriptPickScenario(s, in, lv.gates.Script(s, a), m.k)))
		if lv.sharedGate != nil {
			c = scriptMix(s, experts, s.Let("torch.softmax(%s, 1)", lv.sharedGate.Script(s, c)))
		}
		a = next
	}
	return m.towers.Script(s, in, a)
}
