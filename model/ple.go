package model

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
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
	// SharedGate is what the shared gate of every level but the last mixes (default all, the paper's).
	SharedGate PLESharedGate `yaml:"shared_gate"`
}

// PLESharedGate is what PLE's shared gate mixes.
type PLESharedGate string

// The shared gates.
const (
	// SharedGateAll mixes every scenario's specific experts and the shared
	// ones, as the paper's shared gate mixes every task's.
	SharedGateAll PLESharedGate = "all"
	// SharedGateOwn mixes only the row's own scenario's experts and the
	// shared ones, so the shared path depends on the row's scenario.
	SharedGateOwn PLESharedGate = "own"
)

// PLESharedGateValues are model.ple.shared_gate's values.
var PLESharedGateValues = choice.New("PLE shared gate", SharedGateAll, SharedGateOwn)

// UnmarshalYAML accepts one of PLESharedGateValues.
func (g *PLESharedGate) UnmarshalYAML(n *yaml.Node) error { return PLESharedGateValues.Decode(n, g) }

// DefaultPLEConfig: 2 levels of 2 specific and 2 shared experts of [128,
// 64], the paper's shared gate over all of them, towers [64, 32] → 1, ReLU.
func DefaultPLEConfig() PLEConfig {
	return PLEConfig{
		Levels: 2, SpecificExperts: 2, SharedExperts: 2, SharedGate: SharedGateAll,
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
	if err := PLESharedGateValues.Check(key+".shared_gate", c.SharedGate); err != nil {
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
// level carries one representation per task plus a shared one; here every
// scenario is a task whose tower sees only its own rows. With E^l_{t,k}
// scenario t's experts and E^l_k the shared experts of level l, a row
// carries the paths a^l_t of every scenario t and the shared path c^l
// (a^0_t = c^0 = x), and level l computes
//
//	a^l_t = Σ_k softmax(W^l_t a^{l-1}_t + b^l_t)_k · [E^l_{t,1..Ks}(a^{l-1}_t), E^l_{1..Kc}(c^{l-1})]_k
//	c^l   = Σ_k softmax(W^l_sh c^{l-1} + b^l_sh)_k · [E^l_{1,1..Ks}(a^{l-1}_1), …, E^l_{S,1..Ks}(a^{l-1}_S), E^l_{1..Kc}(c^{l-1})]_k
//	ŷ     = t_s(a^L_s)                       for a row of scenario s
//
// The shared gate (every level but the last) mixes all S·Ks scenario
// experts and the Kc shared ones, as the paper's mixes every task's experts
// (and as Scenario-Wise-Rec's does). A row's prediction needs only its own
// path a^L_s, but c^l needs every scenario's experts on every row, and
// those read every scenario's path. So every level but the last runs every
// scenario's experts on the whole batch (S times the specific experts'
// work of the last level); the levels whose paths feed a later shared gate
// (all but the last two) also run every scenario's gate on the whole batch;
// from the level before the last on, a row carries its own path only, and
// the last level runs each scenario's experts on that scenario's rows.
//
// model.ple.shared_gate = own is a cheaper variant that departs from the
// paper: the shared gate mixes the row's own scenario's Ks experts and the
// shared ones (Ks + Kc outputs), so a row never runs another scenario's
// experts and the shared path depends on the row's scenario.
//
// The shared experts and the scenario gates (one Linear with S·K outputs,
// K = Ks + Kc, from which a row picks its own scenario's K, or whose
// scenario t's K columns run on path t) run on the whole batch.
type PLE struct {
	k         int64 // Ks + Kc experts per row per level
	scenarios int
	ownGate   bool // model.ple.shared_gate = own
	levels    []*pleLevel
	towers    *scenarioTowers
}

type pleLevel struct {
	specific   []*expertStack // per scenario, Ks experts each
	shared     *expertStack   // Kc experts
	gates      *nn.Linear     // [S·K, in]: scenario gates
	sharedGate *nn.Linear     // [S·Ks + Kc, in], or [K, in] with the own variant; nil on the last level
}

// newPLE creates "levels.<l>.specific.<s>.<layer>.*", "levels.<l>.shared.<layer>.*",
// "levels.<l>.gates.*", "levels.<l>.shared_gate.*" (all levels but the last)
// and "towers.<s>.*" under p.
func newPLE(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.PLE
	ks, kc := int64(c.SpecificExperts), int64(c.SharedExperts)
	m := &PLE{k: ks + kc, scenarios: in.Scenarios, ownGate: c.SharedGate == SharedGateOwn}
	sharedGateWidth := int64(in.Scenarios)*ks + kc
	if m.ownGate {
		sharedGateWidth = m.k
	}
	width := in.Width
	for l := 0; l < c.Levels; l++ {
		lp := p.Sub("levels").Index(l)
		lv := &pleLevel{shared: newExpertStack(lp.Sub("shared"), kc, width, c.Expert)}
		for s := 0; s < in.Scenarios; s++ {
			lv.specific = append(lv.specific, newExpertStack(lp.Sub("specific").Index(s), ks, width, c.Expert))
		}
		lv.gates = nn.NewLinear(lp.Sub("gates"), width, int64(in.Scenarios)*m.k, true)
		if l < c.Levels-1 {
			lv.sharedGate = nn.NewLinear(lp.Sub("shared_gate"), width, sharedGateWidth, true)
		}
		m.levels = append(m.levels, lv)
		width = lv.shared.Out
	}
	m.towers = newScenarioTowers(p.Sub("towers"), width, in.Scenarios, c.Tower)
	return m
}

// Forward returns one logit per row [B].
func (m *PLE) Forward(in Input) *torch.Tensor {
	if m.ownGate {
		return m.forwardOwnGate(in)
	}
	// paths[t] is a_t for every row while a later shared gate needs every
	// scenario's experts; nil while every path is still x. own is each
	// row's own scenario's path once no shared gate is left to feed.
	var paths []*torch.Tensor
	path := func(t int) *torch.Tensor {
		if paths == nil {
			return in.X
		}
		return paths[t]
	}
	own, c := in.X, in.X
	for l, lv := range m.levels {
		if lv.sharedGate == nil { // the last level
			own, _ = m.ownLevel(in, lv, own, c)
			continue
		}
		specific := make([]*torch.Tensor, m.scenarios) // [Ks, B, h] each
		for t := range specific {
			specific[t] = lv.specific[t].Forward(path(t))
		}
		shared := lv.shared.Forward(c) // [Kc, B, h]
		nextC := mix(torch.Cat(append(specific, shared), 0), lv.sharedGate.Forward(c).Softmax(1))
		if l+1 < len(m.levels)-1 { // the next level's shared gate reads every path
			next := make([]*torch.Tensor, m.scenarios)
			for t := range next {
				w, b := lv.gates.Weight.Narrow(0, int64(t)*m.k, m.k), lv.gates.Bias.Narrow(0, int64(t)*m.k, m.k)
				next[t] = mix(torch.Cat([]*torch.Tensor{specific[t], shared}, 0), torch.Linear(path(t), w, b).Softmax(1))
			}
			paths = next
		} else {
			if paths != nil {
				own = eachSegment(in, 0, func(seg Segment) *torch.Tensor { return seg.Rows(paths[seg.Scenario]) })
			}
			mine := eachSegment(in, 1, func(seg Segment) *torch.Tensor {
				return specific[seg.Scenario].Narrow(1, seg.Start, seg.Len)
			}) // [Ks, B, h]: each row's own scenario's experts
			experts := torch.Cat([]*torch.Tensor{mine, shared}, 0)
			own = mix(experts, pickScenario(in, lv.gates.Forward(own), m.k).Softmax(1))
		}
		c = nextC
	}
	return m.towers.Forward(in, own)
}

// ownLevel is a level on each row's own path a: its scenario's experts on
// its rows only, the shared experts on c, mixed by its scenario's gate. It
// also returns the experts [K, B, h] it mixed.
func (m *PLE) ownLevel(in Input, lv *pleLevel, a, c *torch.Tensor) (next, experts *torch.Tensor) {
	specific := eachSegment(in, 1, func(seg Segment) *torch.Tensor {
		return lv.specific[seg.Scenario].Forward(seg.Rows(a))
	}) // [Ks, B, h]
	experts = torch.Cat([]*torch.Tensor{specific, lv.shared.Forward(c)}, 0)
	return mix(experts, pickScenario(in, lv.gates.Forward(a), m.k).Softmax(1)), experts
}

// forwardOwnGate is the own variant: the shared gate mixes the row's own
// scenario's experts and the shared ones.
func (m *PLE) forwardOwnGate(in Input) *torch.Tensor {
	a, c := in.X, in.X
	for _, lv := range m.levels {
		next, experts := m.ownLevel(in, lv, a, c)
		if lv.sharedGate != nil {
			c = mix(experts, lv.sharedGate.Forward(c).Softmax(1))
		}
		a = next
	}
	return m.towers.Forward(in, a)
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *PLE) Script(s *nn.Script, in ScriptInput) string {
	if m.ownGate {
		return m.scriptOwnGate(s, in)
	}
	var paths []string
	path := func(t int) string {
		if paths == nil {
			return in.X
		}
		return paths[t]
	}
	softmax := func(x string) string { return s.Let("torch.softmax(%s, 1)", x) }
	own, c := in.X, in.X
	for l, lv := range m.levels {
		if lv.sharedGate == nil { // the last level
			own, _ = m.scriptOwnLevel(s, in, lv, own, c)
			continue
		}
		specific := make([]string, m.scenarios)
		for t := range specific {
			specific[t] = lv.specific[t].Script(s, path(t))
		}
		shared := lv.shared.Script(s, c)
		nextC := scriptMix(s, s.Let("torch.cat([%s], 0)", strings.Join(append(slices.Clone(specific), shared), ", ")), softmax(lv.sharedGate.Script(s, c)))
		if l+1 < len(m.levels)-1 {
			next := make([]string, m.scenarios)
			for t := range next {
				gate := s.Let("torch.linear(%s, %s.narrow(0, %d, %d), %s.narrow(0, %d, %d))",
					path(t), s.Ref(lv.gates.Weight), int64(t)*m.k, m.k, s.Ref(lv.gates.Bias), int64(t)*m.k, m.k)
				next[t] = scriptMix(s, s.Let("torch.cat([%s, %s], 0)", specific[t], shared), softmax(gate))
			}
			paths = next
		} else {
			if paths != nil {
				own = scriptEachSegment(s, in, 0, func(seg scriptSegment) string { return seg.Rows(paths[seg.Scenario]) })
			}
			mine := scriptEachSegment(s, in, 1, func(seg scriptSegment) string {
				return s.Let("%s.narrow(1, %s, %s)", specific[seg.Scenario], seg.Start, seg.Len)
			})
			own = scriptMix(s, s.Let("torch.cat([%s, %s], 0)", mine, shared), softmax(scriptPickScenario(s, in, lv.gates.Script(s, own), m.k)))
		}
		c = nextC
	}
	return m.towers.Script(s, in, own)
}

// scriptOwnLevel emits ownLevel.
func (m *PLE) scriptOwnLevel(s *nn.Script, in ScriptInput, lv *pleLevel, a, c string) (next, experts string) {
	specific := scriptEachSegment(s, in, 1, func(seg scriptSegment) string {
		return lv.specific[seg.Scenario].Script(s, seg.Rows(a))
	})
	experts = s.Let("torch.cat([%s, %s], 0)", specific, lv.shared.Script(s, c))
	return scriptMix(s, experts, s.Let("torch.softmax(%s, 1)", scriptPickScenario(s, in, lv.gates.Script(s, a), m.k))), experts
}

// scriptOwnGate emits forwardOwnGate.
func (m *PLE) scriptOwnGate(s *nn.Script, in ScriptInput) string {
	a, c := in.X, in.X
	for _, lv := range m.levels {
		next, experts := m.scriptOwnLevel(s, in, lv, a, c)
		if lv.sharedGate != nil {
			c = scriptMix(s, experts, s.Let("torch.softmax(%s, 1)", lv.sharedGate.Script(s, c)))
		}
		a = next
	}
	return m.towers.Script(s, in, a)
}
