package model

import (
	"fmt"
	"math"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// HAMURConfig is the HAMUR backbone's section, model.hamur. Defaults are
// Scenario-Wise-Rec's scripts' (HamurSmall), which the paper's backbones match.
type HAMURConfig struct {
	// Network is each scenario's backbone MLP before its logit; the adapter
	// follows its last layer (default [256, 128], relu).
	Network nn.MLPConfig `yaml:"network"`
	// Hyper is the shared hyper-network's hidden layers, before its k×k output (default [64], relu).
	Hyper nn.MLPConfig `yaml:"hyper"`
	// Rank is k, the size of the instance matrix M(x) (default 35).
	Rank int64 `yaml:"rank"`
	// AdapterDim is the adapter's bottleneck width (default 32).
	AdapterDim int64 `yaml:"adapter_dim"`
	// DomainNorm normalises the adapter's output per scenario (default true, the paper's).
	DomainNorm bool `yaml:"domain_norm"`
}

// DefaultHAMURConfig: per-scenario network [256, 128] with ReLU, one
// adapter of bottleneck 32 after it, hyper-network [64] → 35×35.
func DefaultHAMURConfig() HAMURConfig {
	return HAMURConfig{
		Network:    nn.MLPConfig{Hidden: []int64{256, 128}, Activation: nn.ReLU},
		Hyper:      nn.MLPConfig{Hidden: []int64{64}, Activation: nn.ReLU},
		Rank:       35,
		AdapterDim: 32,
		DomainNorm: true,
	}
}

// Validate checks the section; key is its path in the config ("model.hamur").
func (c HAMURConfig) Validate(key string) error {
	if err := validateMLP(key+".network", c.Network, true); err != nil {
		return err
	}
	if err := validateMLP(key+".hyper", c.Hyper, false); err != nil {
		return err
	}
	if err := atLeast(key+".rank", c.Rank, 1); err != nil {
		return err
	}
	return atLeast(key+".adapter_dim", c.AdapterDim, 1)
}

// HAMUR is the Hyper Adapter for Multi-Domain Recommendation (Li et al.,
// CIKM 2023, arXiv 2309.06217). Each scenario has its own backbone network
// and its own adapter cell; the adapter's weights are generated per
// instance from a hyper-network shared by all scenarios, through a low-rank
// factorisation, so scenarios share knowledge only through the generator.
// For a sample x of scenario s:
//
//	h   = f_s(x)                                  scenario s's MLP, width d
//	M   = reshape(H(x), k, k)                     the shared hyper-network's instance matrix
//	W↓  = U↓_s M V↓_s  [d, a],   W↑ = U↑_s M V↑_s  [a, d]
//	a   = σ(h W↓ + b↓_s)                          down-projection, non-linearity
//	u   = a W↑                                    up-projection
//	h'  = h + DN_s(u)                             domain norm, short-cut
//	ŷ   = w_s·h' + c_s
//
// DN_s is a batch normalisation over scenario s's rows with its own scale,
// shift and running statistics (used in evaluation, and for a training
// segment of one row); model.hamur.domain_norm: false leaves it out. The
// up-projection has no bias: the norm subtracts the mean, so a bias there
// would get no gradient; DN_s's shift takes its place. The per-row weights
// are never built: h W↓ = ((h U↓_s) M) V↓_s, two matmuls around a
// broadcast product with M. Network, adapter and logit run on their scenario's rows only;
// the hyper-network once on the whole batch. With LLM4MSR's meta networks x
// is X after the meta layers, so both the networks and the generated
// adapters see the knowledge.
//
// Departures from Scenario-Wise-Rec (scenario_wise_rec/models/multi_domain/hamur.py,
// HamurSmall), where the paper is followed: its U, V, b and norm are shared by all
// domains, where the paper's adapter is domain-specific; its norm uses the
// statistics of the whole batch (every domain's rows, as it runs every
// domain on every row) in training and evaluation alike; U and V start at
// ones (here uniform, as a Linear's weights); its hyper-network ends in
// BatchNorm and ReLU, which makes every M non-negative (here M is the output
// of a Linear); its MLPs put BatchNorm after every layer
// (model.hamur.network.batch_norm, off by default).
//
// Parameters: "networks.<s>.*", "out.<s>.*", "hyper.*", "hyper_out.*",
// "adapter.{down_u, down_v, down_bias, up_u, up_v}" stacked [S, …],
// "adapter.norm.{weight, bias}" [S, d] and buffers "adapter.norm.running_{mean,var}" [S, d].
type HAMUR struct {
	networks []*nn.MLP
	out      []*nn.Linear
	hyper    *nn.MLP
	hyperOut *nn.Linear
	adapter  *hyperAdapter
	rank     int64
}

func newHAMUR(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.HAMUR
	m := &HAMUR{rank: c.Rank}
	network := c.Network
	network.OutputActivation = true
	for s := 0; s < in.Scenarios; s++ {
		m.networks = append(m.networks, nn.NewMLP(p.Sub("networks").Index(s), in.Width, network))
		m.out = append(m.out, nn.NewLinear(p.Sub("out").Index(s), m.networks[s].Out, 1, true))
	}
	hyper := c.Hyper
	hyper.OutputActivation = true
	m.hyper = nn.NewMLP(p.Sub("hyper"), in.Width, hyper)
	m.hyperOut = nn.NewLinear(p.Sub("hyper_out"), m.hyper.Out, c.Rank*c.Rank, true)
	m.adapter = newHyperAdapter(p.Sub("adapter"), m.networks[0].Out, c.AdapterDim, c.Rank, in.Scenarios, c.DomainNorm)
	return m
}

// Forward returns one logit per row [B].
func (m *HAMUR) Forward(in Input) *torch.Tensor {
	instance := m.hyperOut.Forward(m.hyper.Forward(in.X)).View(-1, m.rank, m.rank) // [B, k, k]
	return eachSegment(in, 0, func(seg Segment) *torch.Tensor {
		h := m.networks[seg.Scenario].Forward(seg.Rows(in.X))
		return m.out[seg.Scenario].Forward(m.adapter.Forward(seg, h, seg.Rows(instance)))
	}).View(-1)
}

// hyperAdapter is HAMUR's adapter cell, one per scenario, stacked.
type hyperAdapter struct {
	downU, downV, downBias *torch.Tensor // [S, d, k], [S, k, a], [S, a]
	upU, upV               *torch.Tensor // [S, a, k], [S, k, d]
	norm                   *scenarioNorm // nil without domain norm
}

func newHyperAdapter(p nn.Path, d, a, k int64, scenarios int, domainNorm bool) *hyperAdapter {
	s := int64(scenarios)
	// U and V are initialised like a Linear's weight (U(±1/√fan_in)) and the biases at 0.
	u := func(name string, in, out int64) *torch.Tensor {
		return p.Param(name, []int64{s, in, out}, nn.Uniform(1/math.Sqrt(float64(in))))
	}
	h := &hyperAdapter{
		downU: u("down_u", d, k), downV: u("down_v", k, a), downBias: p.Param("down_bias", []int64{s, a}, nn.Zeros),
		upU: u("up_u", a, k), upV: u("up_v", k, d),
	}
	if domainNorm {
		h.norm = newScenarioNorm(p.Sub("norm"), d, scenarios)
	}
	return h
}

// Forward applies scenario seg.Scenario's adapter to its rows h [n, d], with their instance matrices [n, k, k].
func (a *hyperAdapter) Forward(seg Segment, h, instance *torch.Tensor) *torch.Tensor {
	s := int64(seg.Scenario)
	down := lowRank(h, a.downU.Select(0, s), instance, a.downV.Select(0, s)).Add(a.downBias.Select(0, s)).Sigmoid()
	up := lowRank(down, a.upU.Select(0, s), instance, a.upV.Select(0, s))
	if a.norm != nil {
		up = a.norm.Forward(seg, up)
	}
	return h.Add(up)
}

// lowRank is each row of x [n, in] times its own U M_i V: ((x U) M_i) V.
// The middle product is a broadcast multiply summed over k: a batched
// matmul of n [1, k]·[k, k] products runs on libtorch's naive per-element
// kernel (see mix).
func lowRank(x, u, instance, v *torch.Tensor) *torch.Tensor {
	return x.Matmul(u).Unsqueeze(2).Mul(instance).Sum(false, 1).Matmul(v)
}

// scenarioNorm is a batch normalisation per scenario: scale, shift and
// running statistics of its own, statistics of its own rows.
type scenarioNorm struct {
	store                   *nn.Store
	weight, bias            *torch.Tensor // [S, D]
	runningMean, runningVar *torch.Tensor // [S, D] buffers
}

func newScenarioNorm(p nn.Path, features int64, scenarios int) *scenarioNorm {
	sd := []int64{int64(scenarios), features}
	return &scenarioNorm{
		store:       p.Store(),
		weight:      p.Param("weight", sd, nn.Ones),
		bias:        p.Param("bias", sd, nn.Zeros),
		runningMean: p.Buffer("running_mean", sd, nn.Zeros),
		runningVar:  p.Buffer("running_var", sd, nn.Ones),
	}
}

// Forward normalises one scenario's rows x: with their own statistics in
// training (running statistics for a single row, which has no variance),
// with the scenario's running statistics in evaluation.
func (n *scenarioNorm) Forward(seg Segment, x *torch.Tensor) *torch.Tensor {
	s := int64(seg.Scenario)
	return n.store.BatchNorm(x, n.weight.Select(0, s), n.bias.Select(0, s),
		n.runningMean.Select(0, s), n.runningVar.Select(0, s), 0.1, 1e-5)
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *HAMUR) Script(s *nn.Script, in ScriptInput) string {
	instance := s.Let("%s.view(-1, %d, %d)", m.hyperOut.Script(s, m.hyper.Script(s, in.X)), m.rank, m.rank)
	out := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		h := m.networks[seg.Scenario].Script(s, seg.Rows(in.X))
		return m.out[seg.Scenario].Script(s, m.adapter.Script(s, seg, h, seg.Rows(instance)))
	})
	return s.Let("%s.view(-1)", out)
}

// Script emits Forward.
func (a *hyperAdapter) Script(s *nn.Script, seg scriptSegment, h, instance string) string {
	sel := func(t *torch.Tensor) string { return fmt.Sprintf("%s.select(0, %d)", s.Ref(t), seg.Scenario) }
	down := s.Let("torch.sigmoid(%s + %s)", scriptLowRank(s, h, sel(a.downU), instance, sel(a.downV)), sel(a.downBias))
	up := scriptLowRank(s, down, sel(a.upU), instance, sel(a.upV))
	if a.norm != nil {
		n := a.norm
		up = nn.ScriptBatchNorm(s, up, sel(n.weight), sel(n.bias), sel(n.runningMean), sel(n.runningVar), 0.1, 1e-5)
	}
	return s.Let("%s + %s", h, up)
}

// scriptLowRank emits lowRank.
func scriptLowRank(s *nn.Script, x, u, instance, v string) string {
	return s.Let("%s.matmul(%s).unsqueeze(2).mul(%s).sum(1).matmul(%s)", x, u, instance, v)
}
