package model

import (
	"fmt"
	"slices"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// PPNetConfig is the PPNet backbone's section, model.ppnet.
type PPNetConfig struct {
	// IDRoles are the roles of the id fields whose embeddings form the prior
	// O_prior (default [user, item]; the paper's third, the author id, has no
	// counterpart in msrtrain's schemas).
	IDRoles []Role `yaml:"id_roles"`
	// Gate is every Gate NU's hidden width and scale γ (default: hidden = the gated width, γ = 2).
	Gate GateNUConfig `yaml:"gate"`
	// Tower is each scenario's network before its logit (default [128, 64, 32], relu,
	// then → 1; Scenario-Wise-Rec's scripts).
	Tower nn.MLPConfig `yaml:"tower"`
}

// DefaultPPNetConfig: prior from the user and item ids, Gate NUs with γ = 2
// and hidden width = gated width, towers [128, 64, 32] → 1 with ReLU.
func DefaultPPNetConfig() PPNetConfig {
	return PPNetConfig{
		IDRoles: []Role{RoleUser, RoleItem},
		Gate:    DefaultGateNUConfig(),
		Tower:   nn.MLPConfig{Hidden: []int64{128, 64, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.ppnet").
func (c PPNetConfig) Validate(key string) error {
	if len(c.IDRoles) == 0 {
		return fmt.Errorf("%s.id_roles is empty: the prior needs at least one id field", key)
	}
	for i, r := range c.IDRoles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("%s.id_roles[%d] = %q: want one of %s", key, i, r, roleList(Roles))
		}
	}
	if err := c.Gate.Validate(key + ".gate"); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// NeededRoles: PPNet cannot do without its id fields.
func (c PPNetConfig) NeededRoles(key string) (string, []Role) { return key + ".id_roles", c.IDRoles }

// PPNet is the Parameter Personalized Network of PEPNet (Chang et al.,
// "PEPNet: Parameter and Embedding Personalized Network for Infusing with
// Personalized Prior Information", KDD 2023, arXiv 2302.01115, §3.4), with
// the paper's per-task towers as per-scenario towers, as Scenario-Wise-Rec
// does. Gate NUs fed the personal prior rescale the input of every layer of
// the tower, so each user–item pair gets its own effective parameters. For a
// sample of scenario s with input E (= X):
//
//	O_prior = E_user ‖ E_item                          id embeddings (model.ppnet.id_roles)
//	δ^l_s   = U^l_s(O_prior ‖ ∅(E))                    Gate NU of layer l of tower s; ∅ stops the gradient
//	H^0 = E,  H^{l+1} = f((δ^l_s ⊙ H^l) W^l_s + b^l_s)  no f after the last layer, which has one output
//	ŷ = H^{L+1}
//
// O_prior comes from Input.Fields, the embeddings before the meta layers:
// the ids personalise the tower's parameters while LLM4MSR's meta layers
// personalise its input X. In PEPNet the gate input also holds ∅(O_ep), the
// EPNet output; PPNet alone has E in its place. Gates and towers are per
// scenario and run on their own scenario's rows only.
//
// Departures from Scenario-Wise-Rec (scenario_wise_rec/models/multi_domain/ppnet.py),
// where the paper is followed: it gates each layer's output rather than its
// input (so the logit layer's input is gated but the tower's input is not),
// and its tower starts from the gate input (ids ‖ ∅(E)) instead of E, so no
// gradient reaches E through the tower.
//
// Parameters: "towers.<s>.layers.<l>.*" (each a one-layer MLP section),
// "towers.<s>.out.*" (→ 1), "towers.<s>.gates.<l>.{hidden,out}.*" for l = 0 … L.
type PPNet struct {
	idRoles []Role
	fields  FieldLayout
	towers  []*ppTower
}

// ppTower is one scenario's gated tower.
type ppTower struct {
	layers []*nn.MLP // one Linear → BatchNorm? → f → Dropout? each
	out    *nn.Linear
	gates  []*gateNU // len(layers)+1: the last gates the logit layer's input
}

func newPPNet(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.PPNet
	m := &PPNet{idRoles: c.IDRoles, fields: in.Fields}
	gateIn := in.Fields.Width(c.IDRoles...) + in.Width
	for s := 0; s < in.Scenarios; s++ {
		tp := p.Sub("towers").Index(s)
		t := &ppTower{}
		width := in.Width
		for l, h := range c.Tower.Hidden {
			t.gates = append(t.gates, newGateNU(tp.Sub("gates").Index(l), gateIn, width, c.Gate))
			layer := c.Tower
			layer.Hidden, layer.OutputActivation = []int64{h}, true
			t.layers = append(t.layers, nn.NewMLP(tp.Sub("layers").Index(l), width, layer))
			width = h
		}
		t.gates = append(t.gates, newGateNU(tp.Sub("gates").Index(len(c.Tower.Hidden)), gateIn, width, c.Gate))
		t.out = nn.NewLinear(tp.Sub("out"), width, 1, true)
		m.towers = append(m.towers, t)
	}
	return m
}

// Forward returns one logit per row [B].
func (m *PPNet) Forward(in Input) *torch.Tensor {
	gateIn := torch.Cat([]*torch.Tensor{m.fields.Select(in.Fields, m.idRoles...), in.X.Detach()}, 1)
	return eachSegment(in, 0, func(seg Segment) *torch.Tensor {
		return m.towers[seg.Scenario].Forward(seg.Rows(in.X), seg.Rows(gateIn))
	}).View(-1)
}

// Forward maps one scenario's rows h [n, D] to logits [n, 1], with gate input g [n, G].
func (t *ppTower) Forward(h, g *torch.Tensor) *torch.Tensor {
	for l, layer := range t.layers {
		h = layer.Forward(t.gates[l].Forward(g).Mul(h))
	}
	return t.out.Forward(t.gates[len(t.layers)].Forward(g).Mul(h))
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *PPNet) Script(s *nn.Script, in ScriptInput) string {
	gateIn := s.Let("torch.cat([%s, %s], 1)", m.fields.script(s, in.Fields, m.idRoles...), in.X)
	out := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		return m.towers[seg.Scenario].Script(s, seg.Rows(in.X), seg.Rows(gateIn))
	})
	return s.Let("%s.view(-1)", out)
}

// Script emits Forward.
func (t *ppTower) Script(s *nn.Script, h, g string) string {
	for l, layer := range t.layers {
		h = layer.Script(s, s.Let("%s * %s", t.gates[l].Script(s, g), h))
	}
	return t.out.Script(s, s.Let("%s * %s", t.gates[len(t.layers)].Script(s, g), h))
}
