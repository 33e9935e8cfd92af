package model

import (
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// M2MConfig is the M2M backbone's section, model.m2m.
type M2MConfig struct {
	// EncoderLayers is the number of Transformer encoder layers over the input (default 2; 0 feeds the experts x).
	EncoderLayers int `yaml:"encoder_layers"`
	// EncoderFeedforward is the width of each encoder layer's feed-forward network (default 16).
	EncoderFeedforward int64 `yaml:"encoder_feedforward"`
	// Experts is the number of expert networks K (default 4).
	Experts int `yaml:"experts"`
	// Expert is each expert's MLP (default [16], leaky_relu); its last width h is the width of the knowledge vectors.
	Expert nn.MLPConfig `yaml:"expert"`
	// ScenarioEmbeddingDim is the width of the scenario and task embeddings (default 16).
	ScenarioEmbeddingDim int64 `yaml:"scenario_embedding_dim"`
	// TowerLayers is the number of meta units in the meta tower (default 1).
	TowerLayers int `yaml:"tower_layers"`
	// Activation follows the knowledge networks, the meta attention and every meta unit (default leaky_relu).
	Activation nn.Activation `yaml:"activation"`
	// Output is the shared MLP from the meta tower to the logit (default [64, 32], relu, then → 1).
	Output nn.MLPConfig `yaml:"output"`
}

// DefaultM2MConfig: 2 encoder layers with a 16-wide feed-forward network,
// 4 experts of [16] with LeakyReLU, 16-wide scenario and task embeddings,
// one meta unit in the tower, output [64, 32] → 1: Scenario-Wise-Rec's M2M
// defaults and example scripts (the paper gives no sizes).
func DefaultM2MConfig() M2MConfig {
	return M2MConfig{
		EncoderLayers: 2, EncoderFeedforward: 16,
		Experts: 4, Expert: nn.MLPConfig{Hidden: []int64{16}, Activation: nn.LeakyReLU},
		ScenarioEmbeddingDim: 16, TowerLayers: 1, Activation: nn.LeakyReLU,
		Output: nn.MLPConfig{Hidden: []int64{64, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.m2m").
func (c M2MConfig) Validate(key string) error {
	for _, f := range []struct {
		name     string
		v, least int64
	}{
		{"encoder_layers", int64(c.EncoderLayers), 0},
		{"encoder_feedforward", c.EncoderFeedforward, 1},
		{"experts", int64(c.Experts), 1},
		{"scenario_embedding_dim", c.ScenarioEmbeddingDim, 1},
		{"tower_layers", int64(c.TowerLayers), 0},
	} {
		if err := atLeast(key+"."+f.name, f.v, f.least); err != nil {
			return err
		}
	}
	if _, err := nn.ParseActivation(string(c.Activation)); err != nil {
		return fmt.Errorf("%s.activation: %w", key, err)
	}
	if err := validateMLP(key+".expert", c.Expert, true); err != nil {
		return err
	}
	return validateMLP(key+".output", c.Output, false)
}

// M2M is the multi-scenario multi-task meta learning model (Zhang et al.,
// "Leaving No One Behind: A Multi-Scenario Multi-Task Meta Learning
// Approach for Advertiser Modeling", WSDM 2022, doi 10.1145/3488560.3498479),
// with one task, click-through. For a sample x of scenario s, with φ the
// activation:
//
// Backbone: Transformer encoder layers, then K expert MLPs:
//
//	u   = Encoder(x),   e_k = f_k(u) ∈ R^h
//
// Scenario and task knowledge, from their embeddings:
//
//	E_s = φ(W_S emb_s + b_S),   E_t = φ(W_T emb_t + b_T)   ∈ R^h
//
// A meta unit's weights are generated from the scenario knowledge:
// W(E_s) = reshape(V E_s + v₀), b(E_s) = U E_s + u₀. Meta attention
// weighs the experts:
//
//	a_k = vᵀ φ(W_a(E_s)ᵀ [e_k ‖ E_t] + b_a(E_s))
//	r   = Σ_k softmax(a)_k · e_k
//
// Meta tower, L residual meta units, then the output MLP:
//
//	o^0 = r,   o^l = φ(W_l(E_s)ᵀ o^{l−1} + b_l(E_s) + o^{l−1}),   ŷ = t(o^L)
//
// Differences. The paper encodes the advertiser's behaviour sequence; a
// backbone here sees one bottom representation per sample, so the encoder
// runs on a sequence of one token. Its attention over one key is then its
// value projection, so each encoder layer is
// LN(x + W_o W_v x) followed by LN(h + FFN(h)), and the query and key
// projections, which would get no gradient, are left out. (Scenario-Wise-Rec
// passes the [B, D] batch to nn.Transformer as one unbatched sequence, so
// every sample attends to the other samples of its batch and a prediction
// depends on the batch it comes in; its decoder layers are not in the
// paper.) The paper generates meta weights linearly from E_s;
// Scenario-Wise-Rec passes them through BatchNorm and LeakyReLU. Its task
// knowledge reads the scenario embedding; here the task has its own.
// Dropout is left out of the encoder (PyTorch's 0.1 default).
//
// Routing: the encoder and the experts run on the whole batch. E_s depends
// only on the scenario, so every scenario's meta weights are generated once
// per step ([S, …]) rather than once per sample, and each scenario's rows
// run the attention and the tower with their own scenario's weights only.
type M2M struct {
	encoder           []*encoderLayer
	experts           *expertStack
	scenarioEmbedding *torch.Tensor // [S, E]
	taskEmbedding     *torch.Tensor // [1, E]
	scenarioKnowledge *nn.Linear    // E → h
	taskKnowledge     *nn.Linear    // E → h
	attention         metaUnit      // [e_k ‖ E_t] (2h) → 2h
	v                 *torch.Tensor // [2h]
	tower             []metaUnit    // h → h
	output            *nn.MLP
	act               nn.Activation
	h                 int64
}

// newM2M creates "encoder.<l>.{value, out, norm1, ff1, ff2, norm2}.*",
// "experts.<layer>.*", "scenario_embedding.weight", "task_embedding.weight",
// "scenario_knowledge.*", "task_knowledge.*", "attention.{weight, bias}.*",
// "attention.v", "tower.<l>.{weight, bias}.*" and "output.*" under p.
func newM2M(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	inDim, scenarios := in.Width, in.Scenarios
	c := cfg.M2M
	m := &M2M{act: c.Activation}
	for l := 0; l < c.EncoderLayers; l++ {
		m.encoder = append(m.encoder, newEncoderLayer(p.Sub("encoder").Index(l), inDim, c.EncoderFeedforward))
	}
	m.experts = newExpertStack(p.Sub("experts"), int64(c.Experts), inDim, c.Expert)
	h, e := m.experts.Out, c.ScenarioEmbeddingDim
	m.h = h
	m.scenarioEmbedding = p.Sub("scenario_embedding").Param("weight", []int64{int64(scenarios), e}, nn.Normal(1))
	m.taskEmbedding = p.Sub("task_embedding").Param("weight", []int64{1, e}, nn.Normal(1))
	m.scenarioKnowledge = nn.NewLinear(p.Sub("scenario_knowledge"), e, h, true)
	m.taskKnowledge = nn.NewLinear(p.Sub("task_knowledge"), e, h, true)
	ap := p.Sub("attention")
	m.attention = newMetaUnit(ap, h, 2*h, 2*h)
	m.v = ap.Param("v", []int64{2 * h}, nn.Ones)
	for l := 0; l < c.TowerLayers; l++ {
		m.tower = append(m.tower, newMetaUnit(p.Sub("tower").Index(l), h, h, h))
	}
	m.output = nn.NewMLP(p.Sub("output"), h, towerConfig(c.Output))
	return m
}

// Forward returns one logit per row [B].
func (m *M2M) Forward(in Input) *torch.Tensor {
	u := in.X
	for _, l := range m.encoder {
		u = l.Forward(u)
	}
	experts := m.experts.Forward(u) // [K, B, h]
	scenario := m.act.Apply(m.scenarioKnowledge.Forward(m.scenarioEmbedding))
	task := m.act.Apply(m.taskKnowledge.Forward(m.taskEmbedding)).View(-1) // [h]
	attW, attB := m.attention.generate(scenario)                           // [S, 2h, 2h], [S, 2h]
	// [e_k ‖ E_t]·W = e_k·W[:h] + E_t·W[h:]: the task half is one vector per scenario.
	expertW := attW.Narrow(1, 0, m.h)                           // [S, h, 2h]
	taskTerm := task.Matmul(attW.Narrow(1, m.h, m.h)).Add(attB) // [S, 2h]
	towers := make([][2]*torch.Tensor, len(m.tower))
	for l, unit := range m.tower {
		towers[l][0], towers[l][1] = unit.generate(scenario)
	}
	o := eachSegment(in, 0, func(seg Segment) *torch.Tensor {
		s := int64(seg.Scenario)
		e := experts.Narrow(1, seg.Start, seg.Len) // [K, n, h]
		a := m.act.Apply(e.Matmul(expertW.Select(0, s)).Add(taskTerm.Select(0, s))).Matmul(m.v)
		o := mix(e, a.Softmax(0).T()) // [n, h]
		for _, w := range towers {
			o = m.act.Apply(o.Matmul(w[0].Select(0, s)).Add(w[1].Select(0, s)).Add(o))
		}
		return o
	})
	return m.output.Forward(o).View(-1)
}

// metaUnit generates a layer's weight [in, out] and bias [out] from a knowledge vector.
type metaUnit struct {
	weight, bias *nn.Linear
	in, out      int64
}

func newMetaUnit(p nn.Path, knowledge, in, out int64) metaUnit {
	return metaUnit{
		weight: nn.NewLinear(p.Sub("weight"), knowledge, in*out, true),
		bias:   nn.NewLinear(p.Sub("bias"), knowledge, out, true),
		in:     in, out: out,
	}
}

// generate maps knowledge [S, k] to every scenario's weight [S, in, out] and bias [S, out].
func (u metaUnit) generate(knowledge *torch.Tensor) (w, b *torch.Tensor) {
	return u.weight.Forward(knowledge).View(-1, u.in, u.out), u.bias.Forward(knowledge)
}

// encoderLayer is a post-norm Transformer encoder layer (PyTorch's
// nn.TransformerEncoderLayer, ReLU, no dropout) on a sequence of one token,
// where self-attention is the value projection followed by the output one.
type encoderLayer struct {
	value, out, ff1, ff2 *nn.Linear
	norm1, norm2         *nn.LayerNorm
}

func newEncoderLayer(p nn.Path, dim, feedforward int64) *encoderLayer {
	return &encoderLayer{
		value: nn.NewLinear(p.Sub("value"), dim, dim, true),
		out:   nn.NewLinear(p.Sub("out"), dim, dim, true),
		norm1: nn.NewLayerNorm(p.Sub("norm1"), dim),
		ff1:   nn.NewLinear(p.Sub("ff1"), dim, feedforward, true),
		ff2:   nn.NewLinear(p.Sub("ff2"), feedforward, dim, true),
		norm2: nn.NewLayerNorm(p.Sub("norm2"), dim),
	}
}

// Forward maps x [B, D] to [B, D].
func (l *encoderLayer) Forward(x *torch.Tensor) *torch.Tensor {
	h := l.norm1.Forward(x.Add(l.out.Forward(l.value.Forward(x))))
	return l.norm2.Forward(h.Add(l.ff2.Forward(l.ff1.Forward(h).Relu())))
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *M2M) Script(s *nn.Script, in ScriptInput) string {
	u := in.X
	for _, l := range m.encoder {
		u = l.Script(s, u)
	}
	experts := m.experts.Script(s, u)
	scenario := m.act.Script(s, m.scenarioKnowledge.Script(s, s.Ref(m.scenarioEmbedding)))
	task := s.Let("%s.view(-1)", m.act.Script(s, m.taskKnowledge.Script(s, s.Ref(m.taskEmbedding))))
	attW, attB := m.attention.script(s, scenario)
	expertW := s.Let("%s.narrow(1, 0, %d)", attW, m.h)
	taskTerm := s.Let("%s.matmul(%s.narrow(1, %d, %d)) + %s", task, attW, m.h, m.h, attB)
	towers := make([][2]string, len(m.tower))
	for l, unit := range m.tower {
		towers[l][0], towers[l][1] = unit.script(s, scenario)
	}
	o := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		sc := seg.Scenario
		e := s.Let("%s.narrow(1, %s, %s)", experts, seg.Start, seg.Len)
		logits := m.act.Script(s, s.Let("%s.matmul(%s.select(0, %d)) + %s.select(0, %d)", e, expertW, sc, taskTerm, sc))
		a := s.Let("%s.matmul(%s)", logits, s.Ref(m.v))
		o := scriptMix(s, e, s.Let("torch.softmax(%s, 0).t()", a))
		for _, w := range towers {
			o = m.act.Script(s, s.Let("%s.matmul(%s.select(0, %d)) + %s.select(0, %d) + %s", o, w[0], sc, w[1], sc, o))
		}
		return o
	})
	return s.Let("%s.view(-1)", m.output.Script(s, o))
}

// script emits generate.
func (u metaUnit) script(s *nn.Script, knowledge string) (w, b string) {
	return s.Let("%s.view(-1, %d, %d)", u.weight.Script(s, knowledge), u.in, u.out), u.bias.Script(s, knowledge)
}

// Script emits Forward.
func (l *encoderLayer) Script(s *nn.Script, x string) string {
	h := l.norm1.Script(s, s.Let("%s + %s", x, l.out.Script(s, l.value.Script(s, x))))
	ff := l.ff2.Script(s, s.Let("torch.relu(%s)", l.ff1.Script(s, h)))
	return l.norm2.Script(s, s.Let("%s + %s", h, ff))
}
