package model

import (
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// SARNetConfig is the SAR-Net backbone's section, model.sarnet.
type SARNetConfig struct {
	// SharedExperts is the number of experts every scenario shares (default 8).
	SharedExperts int `yaml:"shared_experts"`
	// SpecificExperts is the number of experts each scenario owns (default 2).
	SpecificExperts int `yaml:"specific_experts"`
	// Expert is each debias expert's network (default [16], no activation: one linear layer).
	Expert nn.MLPConfig `yaml:"expert"`
	// Tower is the shared MLP from the gated expert mixture to the logit (default [32, 32], relu, then → 1).
	Tower nn.MLPConfig `yaml:"tower"`
}

// DefaultSARNetConfig: 8 shared and 2 specific linear experts of width 16,
// tower [32, 32] → 1 with ReLU. The paper gives no sizes; these are
// Scenario-Wise-Rec's (its Sarnet defaults and example scripts).
func DefaultSARNetConfig() SARNetConfig {
	return SARNetConfig{
		SharedExperts: 8, SpecificExperts: 2,
		Expert: nn.MLPConfig{Hidden: []int64{16}, Activation: nn.Identity},
		Tower:  nn.MLPConfig{Hidden: []int64{32, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.sarnet").
func (c SARNetConfig) Validate(key string) error {
	if err := atLeast(key+".shared_experts", int64(c.SharedExperts), 1); err != nil {
		return err
	}
	if err := atLeast(key+".specific_experts", int64(c.SpecificExperts), 1); err != nil {
		return err
	}
	if err := validateMLP(key+".expert", c.Expert, true); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// SARNet is the Scenario-Aware Ranking Network (Shen et al., "SAR-Net: A
// Scenario-Aware Ranking Network for Personalized Fair Recommendation in
// Hundreds of Travel Scenarios", CIKM 2021, arXiv 2110.06475). For a sample
// x of scenario s, with Kc shared experts E_k, Ks experts E_{s,k} of its own
// scenario and K = Kc + Ks:
//
// Scenario-specific linear transformation (element-wise):
//
//	x̃ = x ⊙ w_s + b_s
//
// Debias expert networks, shared and scenario-specific, on x̃:
//
//	e = [E_1(x̃) … E_Kc(x̃), E_{s,1}(x̃) … E_{s,Ks}(x̃)]
//
// Multi-scenario gating and the tower:
//
//	g = softmax(W_g x̃ + b_g) ∈ R^K
//	ŷ = t(Σ_k g_k · e_k)
//
// Differences from the paper. The paper's two cross-scenario attention
// modules weight the user's behaviour sequence by scenario and item
// features; msrtrain's backbones see one bottom representation per sample
// and no sequence, so that stage is the identity here (the meta networks
// before the backbone play its part of injecting scenario knowledge). Its
// fairness coefficient reweighs the experts' outputs by a per-sample
// promotion signal that the datasets do not carry, so the experts are
// plain (as in Scenario-Wise-Rec, whose experts have no fairness input
// either). Scenario-Wise-Rec normalises each expert's input with its own
// BatchNorm and initialises w_s Xavier-uniform and b_s U(0, 1); here
// expert.batch_norm normalises after each expert layer, and w_s = 1, b_s = 0
// start every scenario from the untransformed input.
//
// Routing: w_s and b_s are looked up per row (an embedding lookup), the
// shared experts and the gate run on the whole batch, and each scenario's
// experts run on its own rows only, as one stack.
type SARNet struct {
	weight, bias *torch.Tensor // w_s, b_s: [S, D]
	shared       *expertStack
	specific     []*expertStack // per scenario
	gate         *nn.Linear     // [Kc+Ks, D]
	tower        *nn.MLP
}

// newSARNet creates "scenario_transform.{weight, bias}", "shared_experts.<layer>.*",
// "specific_experts.<s>.<layer>.*", "gate.*" and "tower.*" under p.
func newSARNet(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	inDim, scenarios := in.Width, in.Scenarios
	c := cfg.SARNet
	tp := p.Sub("scenario_transform")
	sd := []int64{int64(scenarios), inDim}
	m := &SARNet{
		weight: tp.Param("weight", sd, nn.Ones),
		bias:   tp.Param("bias", sd, nn.Zeros),
		shared: newExpertStack(p.Sub("shared_experts"), int64(c.SharedExperts), inDim, c.Expert),
		gate:   nn.NewLinear(p.Sub("gate"), inDim, int64(c.SharedExperts+c.SpecificExperts), true),
	}
	for s := 0; s < scenarios; s++ {
		m.specific = append(m.specific, newExpertStack(p.Sub("specific_experts").Index(s), int64(c.SpecificExperts), inDim, c.Expert))
	}
	m.tower = nn.NewMLP(p.Sub("tower"), m.shared.Out, towerConfig(c.Tower))
	return m
}

// Forward returns one logit per row [B].
func (m *SARNet) Forward(in Input) *torch.Tensor {
	x := in.X.Mul(torch.Embedding(m.weight, in.Scenario)).Add(torch.Embedding(m.bias, in.Scenario)) // x̃
	specific := eachSegment(in, 1, func(seg Segment) *torch.Tensor {
		return m.specific[seg.Scenario].Forward(seg.Rows(x))
	}) // [Ks, B, h]
	experts := torch.Cat([]*torch.Tensor{m.shared.Forward(x), specific}, 0) // [K, B, h]
	return m.tower.Forward(mix(experts, m.gate.Forward(x).Softmax(1))).View(-1)
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *SARNet) Script(s *nn.Script, in ScriptInput) string {
	x := s.Let("%s * torch.embedding(%s, %s) + torch.embedding(%s, %s)", in.X, s.Ref(m.weight), in.Scenario, s.Ref(m.bias), in.Scenario)
	specific := scriptEachSegment(s, in, 1, func(seg scriptSegment) string {
		return m.specific[seg.Scenario].Script(s, seg.Rows(x))
	})
	experts := s.Let("torch.cat([%s, %s], 0)", m.shared.Script(s, x), specific)
	gate := s.Let("torch.softmax(%s, 1)", m.gate.Script(s, x))
	return s.Let("%s.view(-1)", m.tower.Script(s, scriptMix(s, experts, gate)))
}
