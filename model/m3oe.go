package model

import (
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// M3oEConfig is the M3oE backbone's section, model.m3oe.
type M3oEConfig struct {
	// Bottom is the star bottom: a star layer of width Bottom[0], then an MLP
	// over the rest, plus a skip connection to the last width (default [128, 64];
	// empty: the experts read x directly; otherwise at least two widths).
	Bottom []int64 `yaml:"bottom"`
	// Activation follows the bottom's MLP and its skip connection (default relu).
	Activation nn.Activation `yaml:"activation"`
	// Experts is the number of shared experts (default 4).
	Experts int `yaml:"experts"`
	// Expert is every expert's MLP, shared, domain and task (default [32], relu); its last layer is activated too.
	Expert nn.MLPConfig `yaml:"expert"`
	// Tower is each scenario's MLP before its logit (default [32], relu, then → 1).
	Tower nn.MLPConfig `yaml:"tower"`
	// Structure is paper (default) or scenario_wise_rec (see M3oE).
	Structure Structure `yaml:"structure"`
}

// DefaultM3oEConfig: star bottom [128, 64], 4 shared experts, one domain
// expert per scenario and one task expert, each one layer 64 → 32 with
// ReLU, towers [32] → 1, the paper's structure: the widths of
// Scenario-Wise-Rec's example scripts (fcn_dims [128, 64, 64, 32]: a star
// layer to 128, the bottom MLP to 64, experts from 64 to 32; expert_num 4;
// its tower's hidden layer is as wide as the experts' output).
func DefaultM3oEConfig() M3oEConfig {
	return M3oEConfig{
		Bottom: []int64{128, 64}, Activation: nn.ReLU, Experts: 4,
		Expert:    nn.MLPConfig{Hidden: []int64{32}, Activation: nn.ReLU},
		Tower:     nn.MLPConfig{Hidden: []int64{32}, Activation: nn.ReLU},
		Structure: StructurePaper,
	}
}

// Validate checks the section; key is its path in the config ("model.m3oe").
func (c M3oEConfig) Validate(key string) error {
	if len(c.Bottom) == 1 {
		return fmt.Errorf("%s.bottom = %v: needs a star layer and at least one MLP layer, or nothing", key, c.Bottom)
	}
	if err := (nn.MLPConfig{Hidden: c.Bottom, Activation: c.Activation}).Validate(key + ".bottom"); err != nil {
		return err
	}
	if err := atLeast(key+".experts", int64(c.Experts), 1); err != nil {
		return err
	}
	if err := validateMLP(key+".expert", c.Expert, true); err != nil {
		return err
	}
	if err := StructureValues.Check(key+".structure", c.Structure); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// M3oE is the Multi-Domain Multi-Task Mixture-of-Experts framework (Zhang
// et al., "M3oE: Multi-Domain Multi-Task Mixture-of Experts Recommendation
// Framework", SIGIR 2024, arXiv 2404.18465) with one task, click-through.
// For a sample x of scenario (domain) d among S, with σ the logistic function:
//
// Star bottom (from the released code), a star-topology layer then an MLP,
// with a skip connection:
//
//	z = MLP(x (W ⊙ W_d)ᵀ + b + b_d) + φ(W_skip x + b_skip)
//
// Three expert modules on z: K shared experts S_k, one expert D_j per
// domain, one expert T per task. Domain balance mixes a sample's own domain
// expert with the others':
//
//	D̃_d = β D_d(z) + (1 − β)/(S − 1) Σ_{j≠d} D_j(z)      (D̃_d = β D_d(z) when S = 1)
//
// Two-level fusion: domain d's gate over the shared experts, plus the
// balanced domain expert and the task expert, each scaled by a learnt weight:
//
//	f = Σ_k softmax(W_d z + b_d)_k · S_k(z) + α_D D̃_d + α_T T(z)
//	ŷ = t_d(f)
//
// β = σ(β'), α_D = σ(α'_D), α_T = σ(α'_T) are scalars, each logit starting
// at 1 ("balance", "domain_weight", "task_weight").
//
// Differences. The paper searches β and α with AutoML on a bi-level
// objective; they are trained jointly with the model here, as in
// Scenario-Wise-Rec (with its sigmoid relaxation). With one task the task
// balance has no other tasks to mix, so T enters with its fusion weight
// only. The star factors start at W_d = 1, b_d = 0, as STAR's
// (Scenario-Wise-Rec starts W and W_d Xavier-uniform).
//
// Structure. model.m3oe.structure = paper (default) is the above, with
// the MLP sections' batch_norm option to normalise. scenario_wise_rec
// builds Scenario-Wise-Rec's module (scenario_wise_rec/models/multi_domain/m3oe.py)
// from the same sections: a LayerNorm after every layer of the bottom MLP,
// the skip connection, the experts and the towers' hidden layers, no task
// expert (f has no α_T T(z) term and there is no "task_weight"), and gates
// that read a detached z, so they learn nothing from the loss through z.
// At the defaults its trainable parameters are those of the peer's module
// that take part in its forward pass (the peer also creates two scalar
// task weights that its forward never reads).
//
// Routing: the shared experts, every domain expert (the balance mixes all of
// them into every sample, so each is needed on every row) and the task
// expert run as one stack on the whole batch; the star layer and the tower
// of domain d run on domain d's rows only, and every domain's gate is one
// Linear from which each row picks its own (as MMoE's).
type M3oE struct {
	star                              *starLinear // nil without a bottom
	bottom, skip                      *nn.MLP
	experts                           *expertStack // K shared, then S domain, then 1 task expert
	k, scenarios                      int64
	gates                             *nn.Linear    // [S·K, width]
	balance, domainWeight, taskWeight *torch.Tensor // taskWeight nil without a task expert
	towers                            *scenarioTowers
	detachGates                       bool // the gates read a detached z (scenario_wise_rec)
}

// newM3oE creates "star.{weight, bias, scenario_weight, scenario_bias}", "bottom.*" and
// "skip.*" (with a bottom), "experts.<layer>.*" (shared experts 0 … K−1, domain experts
// K … K+S−1, the task expert K+S in the paper's structure), "gates.*", "balance",
// "domain_weight", "task_weight" (paper) and "towers.<s>.*" under p.
func newM3oE(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	inDim, scenarios := in.Width, in.Scenarios
	c := cfg.M3oE
	peer := c.Structure == StructureScenarioWiseRec
	m := &M3oE{k: int64(c.Experts), scenarios: int64(scenarios), detachGates: peer}
	expert, tower := c.Expert, c.Tower
	expert.LayerNorm, tower.LayerNorm = peer, peer
	width := inDim
	if len(c.Bottom) > 0 {
		m.star = newStarLinear(p.Sub("star"), inDim, c.Bottom[0], scenarios, "scenario")
		mlp := nn.MLPConfig{Hidden: c.Bottom[1:], Activation: c.Activation, OutputActivation: true, LayerNorm: peer}
		m.bottom = nn.NewMLP(p.Sub("bottom"), c.Bottom[0], mlp)
		last := c.Bottom[len(c.Bottom)-1]
		m.skip = nn.NewMLP(p.Sub("skip"), inDim, nn.MLPConfig{Hidden: []int64{last}, Activation: c.Activation, OutputActivation: true, LayerNorm: peer})
		width = last
	}
	experts := m.k + m.scenarios
	if !peer {
		experts++ // the task expert
	}
	m.experts = newExpertStack(p.Sub("experts"), experts, width, expert)
	m.gates = nn.NewLinear(p.Sub("gates"), width, m.scenarios*m.k, true)
	m.balance = p.Param("balance", []int64{1}, nn.Ones)
	m.domainWeight = p.Param("domain_weight", []int64{1}, nn.Ones)
	if !peer {
		m.taskWeight = p.Param("task_weight", []int64{1}, nn.Ones)
	}
	m.towers = newScenarioTowers(p.Sub("towers"), m.experts.Out, scenarios, tower)
	return m
}

// Forward returns one logit per row [B].
func (m *M3oE) Forward(in Input) *torch.Tensor {
	z := in.X
	if m.star != nil {
		w, b := m.star.effective()
		star := eachSegment(in, 0, func(seg Segment) *torch.Tensor {
			s := int64(seg.Scenario)
			return torch.Linear(seg.Rows(in.X), w.Select(0, s), b.Select(0, s))
		})
		z = m.bottom.Forward(star).Add(m.skip.Forward(in.X))
	}
	experts := m.experts.Forward(z) // [K+S(+1), B, h]
	gateIn := z
	if m.detachGates {
		gateIn = z.Detach()
	}
	shared := mix(experts.Narrow(0, 0, m.k), pickScenario(in, m.gates.Forward(gateIn), m.k).Softmax(1))
	domains := experts.Narrow(0, m.k, m.scenarios) // [S, B, h]
	beta := m.balance.Sigmoid()
	// β D_d + (1−β)/(S−1) Σ_{j≠d} D_j = (β − c) D_d + c Σ_j D_j with c = (1−β)/(S−1).
	own := eachSegment(in, 0, func(seg Segment) *torch.Tensor {
		return domains.Select(0, int64(seg.Scenario)).Narrow(0, seg.Start, seg.Len)
	})
	balanced := own.Mul(beta)
	if m.scenarios > 1 {
		c := beta.RSubScalar(1).DivScalar(float64(m.scenarios - 1))
		balanced = own.Mul(beta.Sub(c)).Add(domains.Sum(false, 0).Mul(c))
	}
	f := shared.Add(balanced.Mul(m.domainWeight.Sigmoid()))
	if m.taskWeight != nil {
		f = f.Add(experts.Select(0, m.k+m.scenarios).Mul(m.taskWeight.Sigmoid()))
	}
	return m.towers.Forward(in, f)
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *M3oE) Script(s *nn.Script, in ScriptInput) string {
	z := in.X
	if m.star != nil {
		w, b := m.star.scriptEffective(s)
		star := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
			return s.Let("torch.linear(%s, %s.select(0, %d), %s.select(0, %d))", seg.Rows(in.X), w, seg.Scenario, b, seg.Scenario)
		})
		z = s.Let("%s + %s", m.bottom.Script(s, star), m.skip.Script(s, in.X))
	}
	experts := m.experts.Script(s, z)
	// The detached gate input of scenario_wise_rec only stops gradients: the same values here.
	gate := s.Let("torch.softmax(%s, 1)", scriptPickScenario(s, in, m.gates.Script(s, z), m.k))
	shared := scriptMix(s, s.Let("%s.narrow(0, 0, %d)", experts, m.k), gate)
	domains := s.Let("%s.narrow(0, %d, %d)", experts, m.k, m.scenarios)
	beta := s.Let("torch.sigmoid(%s)", s.Ref(m.balance))
	own := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		return s.Let("%s.select(0, %d).narrow(0, %s, %s)", domains, seg.Scenario, seg.Start, seg.Len)
	})
	balanced := s.Let("%s * %s", own, beta)
	if m.scenarios > 1 {
		c := s.Let("(1 - %s) / %s", beta, nn.Float(float64(m.scenarios-1)))
		balanced = s.Let("%s * (%s - %s) + %s.sum(0) * %s", own, beta, c, domains, c)
	}
	f := s.Let("%s + %s * torch.sigmoid(%s)", shared, balanced, s.Ref(m.domainWeight))
	if m.taskWeight != nil {
		f = s.Let("%s + %s.select(0, %d) * torch.sigmoid(%s)", f, experts, m.k+m.scenarios, s.Ref(m.taskWeight))
	}
	return m.towers.Script(s, in, f)
}
