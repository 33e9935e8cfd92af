package model

import (
	"fmt"
	"math"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// STARConfig is the STAR backbone's section, model.star.
type STARConfig struct {
	// Hidden are the star-topology layers before the final star layer to one logit (default [128, 64]).
	Hidden []int64 `yaml:"hidden"`
	// Activation follows every hidden layer (default relu).
	Activation nn.Activation `yaml:"activation"`
	// PartitionedNorm normalises the input per scenario (default true).
	PartitionedNorm bool `yaml:"partitioned_norm"`
	// AuxHidden are the auxiliary network's layers before its logit (default [32]).
	AuxHidden []int64 `yaml:"aux_hidden"`
	// ScenarioEmbeddingDim is the width of the auxiliary network's scenario embedding (default 8).
	ScenarioEmbeddingDim int64 `yaml:"scenario_embedding_dim"`
	// Dropout follows every hidden layer's activation in training, main and auxiliary network (default 0).
	Dropout float64 `yaml:"dropout"`
}

// DefaultSTARConfig: partitioned normalisation, star layers [128, 64] → 1 with ReLU,
// auxiliary network [8-dim scenario embedding ‖ x] → [32] → 1, no dropout.
func DefaultSTARConfig() STARConfig {
	return STARConfig{
		Hidden: []int64{128, 64}, Activation: nn.ReLU, PartitionedNorm: true,
		AuxHidden: []int64{32}, ScenarioEmbeddingDim: 8,
	}
}

// Validate checks the section; key is its path in the config ("model.star").
func (c STARConfig) Validate(key string) error {
	if err := c.main().Validate(key); err != nil {
		return err
	}
	for i, h := range c.AuxHidden {
		if h <= 0 {
			return fmt.Errorf("%s.aux_hidden[%d] = %d: layer sizes must be positive", key, i, h)
		}
	}
	return atLeast(key+".scenario_embedding_dim", c.ScenarioEmbeddingDim, 1)
}

// main is the star network's shape as an MLP section (for validation).
func (c STARConfig) main() nn.MLPConfig {
	return nn.MLPConfig{Hidden: c.Hidden, Activation: c.Activation, Dropout: c.Dropout}
}

// aux is the auxiliary network's MLP: AuxHidden then one logit.
func (c STARConfig) aux() nn.MLPConfig {
	return towerConfig(nn.MLPConfig{Hidden: c.AuxHidden, Activation: c.Activation, Dropout: c.Dropout})
}

// STAR is the Star Topology Adaptive Recommender (Sheng et al., "One Model
// to Serve All: Star Topology Adaptive Recommender for Multi-Domain CTR
// Prediction", CIKM 2021). For a sample x of scenario s:
//
// Partitioned normalisation, with statistics of scenario s's rows of the
// batch in training (μ_s, σ²_s) and scenario s's running statistics in
// evaluation:
//
//	z = (γ ⊙ γ_s) ⊙ (x − μ_s) / sqrt(σ²_s + ε) + (β + β_s)
//
// Star-topology fully connected layers, where every layer's weights are the
// shared ones modulated by scenario s's:
//
//	W^l_s* = W^l ⊙ W^l_s,   b^l_s* = b^l + b^l_s
//	h^l    = φ(W^l_s* h^{l-1} + b^l_s*)   (h^0 = z; no φ on the last layer, which has one output)
//
// and an auxiliary network fed the scenario indicator, whose logit is added:
//
//	ŷ = h^L + a([e_s ‖ x])
//
// Scenario parameters are stacked ([S, …]); each step forms every scenario's
// W ⊙ W_s with one broadcast multiply per layer (S·out·in flops, negligible
// next to the B·out·in of the layer), then each scenario's rows run through
// their own weights: no sample touches another scenario's network. A
// training batch in which a scenario has one row normalises that row with
// the running statistics, since one value has no variance.
type STAR struct {
	pn        *partitionedNorm // nil when disabled
	layers    []*starLinear
	act       nn.Activation
	drop      *nn.Dropout
	embedding *torch.Tensor // [S, ScenarioEmbeddingDim]: "aux.scenario_embedding.weight"
	aux       *nn.MLP
}

// newSTAR creates "pn.*" (with partitioned normalisation), "layers.<l>.{weight, bias,
// scenario_weight, scenario_bias}", "aux.scenario_embedding.weight" and "aux.mlp.*" under p.
func newSTAR(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.STAR
	m := &STAR{act: c.Activation}
	if c.PartitionedNorm {
		m.pn = newPartitionedNorm(p.Sub("pn"), in.Width, in.Scenarios)
	}
	width := in.Width
	for l, h := range append(append([]int64(nil), c.Hidden...), 1) {
		m.layers = append(m.layers, newStarLinear(p.Sub("layers").Index(l), width, h, in.Scenarios, "scenario"))
		width = h
	}
	if c.Dropout > 0 {
		m.drop = nn.NewDropout(p, c.Dropout)
	}
	ap := p.Sub("aux")
	m.embedding = ap.Sub("scenario_embedding").Param("weight", []int64{int64(in.Scenarios), c.ScenarioEmbeddingDim}, nn.Normal(1))
	m.aux = nn.NewMLP(ap.Sub("mlp"), in.Width+c.ScenarioEmbeddingDim, c.aux())
	return m
}

// Forward returns one logit per row [B].
func (m *STAR) Forward(in Input) *torch.Tensor {
	var norm func(seg Segment, x *torch.Tensor) *torch.Tensor
	if m.pn != nil {
		norm = m.pn.forSegments()
	}
	weights := make([]*torch.Tensor, len(m.layers))
	biases := make([]*torch.Tensor, len(m.layers))
	for l, layer := range m.layers {
		weights[l], biases[l] = layer.effective()
	}
	last := len(m.layers) - 1
	// Each scenario's rows go through its normalisation and its layers in
	// one pass: normalising every segment, joining them and splitting them
	// again costs backward time (docs/benchmarks.md).
	main := eachSegment(in, 0, func(seg Segment) *torch.Tensor {
		s := int64(seg.Scenario)
		h := seg.Rows(in.X)
		if norm != nil {
			h = norm(seg, h)
		}
		for l := range m.layers {
			h = torch.Linear(h, weights[l].Select(0, s), biases[l].Select(0, s))
			if l < last {
				h = m.act.Apply(h)
				if m.drop != nil {
					h = m.drop.Forward(h)
				}
			}
		}
		return h
	})
	aux := m.aux.Forward(torch.Cat([]*torch.Tensor{in.X, torch.Embedding(m.embedding, in.Scenario)}, 1))
	return main.Add(aux).View(-1)
}

// starLinear is one star-topology layer: shared weight and bias plus one
// multiplicative weight and one additive bias per part (a scenario for STAR,
// a cluster for AdaptDHM).
type starLinear struct {
	weight, bias                 *torch.Tensor // [out, in], [out]
	scenarioWeight, scenarioBias *torch.Tensor // [S, out, in], [S, out]
}

// newStarLinear creates "weight", "bias", "<part>_weight" and "<part>_bias" under p.
func newStarLinear(p nn.Path, in, out int64, parts int, part string) *starLinear {
	s := int64(parts)
	return &starLinear{
		weight: p.Param("weight", []int64{out, in}, nn.KaimingUniform(math.Sqrt(5))),
		bias:   p.Param("bias", []int64{out}, nn.Uniform(1/math.Sqrt(float64(in)))),
		// Part factors start neutral (W_s = 1, b_s = 0), so every part
		// starts from the shared network and departs from it as it learns.
		scenarioWeight: p.Param(part+"_weight", []int64{s, out, in}, nn.Ones),
		scenarioBias:   p.Param(part+"_bias", []int64{s, out}, nn.Zeros),
	}
}

// effective returns every scenario's W ⊙ W_s [S, out, in] and b + b_s [S, out].
func (l *starLinear) effective() (w, b *torch.Tensor) {
	return l.scenarioWeight.Mul(l.weight), l.scenarioBias.Add(l.bias)
}

// partitionedNorm is STAR's per-scenario batch normalisation with shared
// and scenario scale and shift, and running statistics per scenario.
type partitionedNorm struct {
	store                        *nn.Store
	weight, bias                 *torch.Tensor // γ, β [D]
	scenarioWeight, scenarioBias *torch.Tensor // γ_s, β_s [S, D]
	runningMean, runningVar      *torch.Tensor // [S, D] buffers
	momentum, eps                float64
}

func newPartitionedNorm(p nn.Path, features int64, scenarios int) *partitionedNorm {
	sd := []int64{int64(scenarios), features}
	return &partitionedNorm{
		store:          p.Store(),
		weight:         p.Param("weight", []int64{features}, nn.Ones),
		bias:           p.Param("bias", []int64{features}, nn.Zeros),
		scenarioWeight: p.Param("scenario_weight", sd, nn.Ones),
		scenarioBias:   p.Param("scenario_bias", sd, nn.Zeros),
		runningMean:    p.Buffer("running_mean", sd, nn.Zeros),
		runningVar:     p.Buffer("running_var", sd, nn.Ones),
		momentum:       0.1, eps: 1e-5,
	}
}

// forSegments returns the normalisation of one scenario's rows with that
// scenario's statistics, γ·γ_s and β+β_s formed once per forward pass.
func (n *partitionedNorm) forSegments() func(seg Segment, x *torch.Tensor) *torch.Tensor {
	gamma := n.scenarioWeight.Mul(n.weight) // [S, D]
	beta := n.scenarioBias.Add(n.bias)
	return func(seg Segment, x *torch.Tensor) *torch.Tensor {
		s := int64(seg.Scenario)
		return n.store.BatchNorm(x, gamma.Select(0, s), beta.Select(0, s),
			n.runningMean.Select(0, s), n.runningVar.Select(0, s), n.momentum, n.eps)
	}
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *STAR) Script(s *nn.Script, in ScriptInput) string {
	var norm func(seg scriptSegment, x string) string
	if m.pn != nil {
		norm = m.pn.scriptSegments(s)
	}
	weights := make([]string, len(m.layers))
	biases := make([]string, len(m.layers))
	for l, layer := range m.layers {
		weights[l], biases[l] = layer.scriptEffective(s)
	}
	last := len(m.layers) - 1
	main := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		h := seg.Rows(in.X)
		if norm != nil {
			h = norm(seg, h)
		}
		for l := range m.layers {
			h = s.Let("torch.linear(%s, %s.select(0, %d), %s.select(0, %d))", h, weights[l], seg.Scenario, biases[l], seg.Scenario)
			if l < last {
				h = m.act.Script(s, h)
			}
		}
		return h
	})
	aux := m.aux.Script(s, s.Let("torch.cat([%s, torch.embedding(%s, %s)], 1)", in.X, s.Ref(m.embedding), in.Scenario))
	return s.Let("(%s + %s).view(-1)", main, aux)
}

// scriptEffective emits effective: every part's W ⊙ W_s and b + b_s.
func (l *starLinear) scriptEffective(s *nn.Script) (w, b string) {
	return s.Let("%s * %s", s.Ref(l.scenarioWeight), s.Ref(l.weight)), s.Let("%s + %s", s.Ref(l.scenarioBias), s.Ref(l.bias))
}

// scriptSegments emits forSegments: γ·γ_s and β+β_s once, then each
// segment's normalisation with its scenario's running statistics.
func (n *partitionedNorm) scriptSegments(s *nn.Script) func(seg scriptSegment, x string) string {
	gamma := s.Let("%s * %s", s.Ref(n.scenarioWeight), s.Ref(n.weight))
	beta := s.Let("%s + %s", s.Ref(n.scenarioBias), s.Ref(n.bias))
	return func(seg scriptSegment, x string) string {
		sel := func(t string) string { return fmt.Sprintf("%s.select(0, %d)", t, seg.Scenario) }
		return nn.ScriptBatchNorm(s, x, sel(gamma), sel(beta), sel(s.Ref(n.runningMean)), sel(s.Ref(n.runningVar)), n.momentum, n.eps)
	}
}
