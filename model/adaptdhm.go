package model

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
	"github.com/msrtrain/msrtrain/model/nn"
)

// AdaptDHMConfig is the AdaptDHM backbone's section, model.adaptdhm.
type AdaptDHMConfig struct {
	// Hidden are the hierarchical network's layers before its last layer to one logit (default [64, 64]).
	Hidden []int64 `yaml:"hidden"`
	// Activation follows every hidden layer (default relu).
	Activation nn.Activation `yaml:"activation"`
	// Dropout follows every hidden layer's activation in training (default 0).
	Dropout float64 `yaml:"dropout"`
	// Clusters is the number of distributions K the routing finds (default 3).
	Clusters int `yaml:"clusters"`
	// Beta is the weight the cluster centres keep at each update, in [0, 1) (default 0.9).
	Beta float64 `yaml:"beta"`
	// RoutingIterations is the number of centre updates per training batch (default 3).
	RoutingIterations int `yaml:"routing_iterations"`
	// ScenarioEmbeddingDim is the width of the scenario embedding joined to the input (default 16).
	ScenarioEmbeddingDim int64 `yaml:"scenario_embedding_dim"`
	// CenterUpdate is what a centre moves towards: the routed mean (default, the paper's) or sum.
	CenterUpdate CenterUpdate `yaml:"center_update"`
}

// CenterUpdate is what AdaptDHM's cluster centres move towards at each routing iteration.
type CenterUpdate string

// The centre updates.
const (
	// CenterMean: the mean of the batch's rows weighted by their routing
	// to the cluster, Σ_i r_ik z_i / Σ_i r_ik: a moving average (the paper's).
	CenterMean CenterUpdate = "mean"
	// CenterSum: the weighted sum Σ_i r_ik z_i (Scenario-Wise-Rec's). It
	// grows with the batch, so at batch 512 it outweighs β·c_k about a
	// hundredfold and the centre follows the last batch almost wholly.
	CenterSum CenterUpdate = "sum"
)

// CenterUpdateValues are model.adaptdhm.center_update's values.
var CenterUpdateValues = choice.New("AdaptDHM centre update", CenterMean, CenterSum)

// UnmarshalYAML accepts one of CenterUpdateValues.
func (u *CenterUpdate) UnmarshalYAML(n *yaml.Node) error { return CenterUpdateValues.Decode(n, u) }

// DefaultAdaptDHMConfig: 3 clusters, β = 0.9, 3 routing iterations,
// hierarchical layers [64, 64] → 1 with ReLU, a 16-wide scenario embedding,
// no dropout: Scenario-Wise-Rec's example scripts (the paper gives no
// sizes); centres move towards the routed mean, as in the paper.
func DefaultAdaptDHMConfig() AdaptDHMConfig {
	return AdaptDHMConfig{
		Hidden: []int64{64, 64}, Activation: nn.ReLU,
		Clusters: 3, Beta: 0.9, RoutingIterations: 3, ScenarioEmbeddingDim: 16, CenterUpdate: CenterMean,
	}
}

// Validate checks the section; key is its path in the config ("model.adaptdhm").
func (c AdaptDHMConfig) Validate(key string) error {
	if err := (nn.MLPConfig{Hidden: c.Hidden, Activation: c.Activation, Dropout: c.Dropout}).Validate(key); err != nil {
		return err
	}
	if err := atLeast(key+".clusters", int64(c.Clusters), 1); err != nil {
		return err
	}
	if !(c.Beta >= 0 && c.Beta < 1) {
		return fmt.Errorf("%s.beta = %g: must be in [0, 1)", key, c.Beta)
	}
	if err := atLeast(key+".routing_iterations", int64(c.RoutingIterations), 1); err != nil {
		return err
	}
	if err := CenterUpdateValues.Check(key+".center_update", c.CenterUpdate); err != nil {
		return err
	}
	return atLeast(key+".scenario_embedding_dim", c.ScenarioEmbeddingDim, 1)
}

// AdaptDHM is the Adaptive Distribution Hierarchical Model (Li et al.,
// "AdaptDHM: Adaptive Distribution Hierarchical Model for Multi-Domain CTR
// Prediction", 2022, arXiv 2211.12105). Samples are not split by their
// given scenario but routed to one of K learnt distributions (clusters),
// each with its own network on top of a shared one. For a sample with
// input z = [x ‖ e_s] (the bottom representation and its scenario's
// embedding):
//
// Distribution adaptation (dynamic routing, no gradient), with unit cluster
// centres c_1 … c_K, repeated T times on each training batch:
//
//	r_ik = softmax_k(z_i · c_k)
//	c_k  ← normalize(β c_k + (1 − β) Σ_i r_ik z_i / Σ_i r_ik)
//
// a moving average of the batch's mean routed to each cluster
// (model.adaptdhm.center_update = sum drops the division, as
// Scenario-Wise-Rec does; see CenterSum),
// then each sample goes to its closest distribution k(i) = argmax_k z_i · c_k
// (in evaluation the centres stay as they are).
//
// Hierarchical network: the shared layers modulated by the cluster's, as
// STAR's star topology,
//
//	W^l_k* = W^l ⊙ W^l_k,   b^l_k* = b^l + b^l_k
//	h^l    = φ(W^l_k* h^{l−1} + b^l_k*)   (h^0 = z; no φ on the last layer, which has one output)
//
// Differences. Scenario-Wise-Rec passes the scenario feature's embedding
// among the input features; here it is a learnt table indexed by the
// scenario. Its centres are a plain attribute, lost on saving; here they
// are a buffer ("centers") in the state dict. It creates biases that its
// forward never uses; here the biases take part, as in the paper's
// fully-connected layers. Its cluster factors start Xavier-uniform; here
// W_k = 1, b_k = 0, so every cluster starts from the shared network.
//
// Routing: each cluster's rows are gathered, run through their cluster's
// layers only, and put back in row order; nothing runs for a cluster
// without rows. Grouping the rows reads the assignment on the host (one
// device synchronisation per step on an accelerator).
type AdaptDHM struct {
	store      *nn.Store
	embedding  *torch.Tensor // [S, E]: "scenario_embedding.weight"
	centers    *torch.Tensor // [K, D+E] buffer, unit rows
	layers     []*starLinear
	act        nn.Activation
	drop       *nn.Dropout
	beta       float64
	iterations int
	update     CenterUpdate
}

// newAdaptDHM creates "scenario_embedding.weight", the "centers" buffer and
// "layers.<l>.{weight, bias, cluster_weight, cluster_bias}" under p.
func newAdaptDHM(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	inDim, scenarios := in.Width, in.Scenarios
	c := cfg.AdaptDHM
	width := inDim + c.ScenarioEmbeddingDim
	m := &AdaptDHM{
		store:      p.Store(),
		embedding:  p.Sub("scenario_embedding").Param("weight", []int64{int64(scenarios), c.ScenarioEmbeddingDim}, nn.Normal(1)),
		act:        c.Activation,
		beta:       c.Beta,
		iterations: c.RoutingIterations,
		update:     c.CenterUpdate,
	}
	m.centers = p.Buffer("centers", []int64{int64(c.Clusters), width}, nn.Normal(1))
	for l, h := range append(append([]int64(nil), c.Hidden...), 1) {
		m.layers = append(m.layers, newStarLinear(p.Sub("layers").Index(l), width, h, c.Clusters, "cluster"))
		width = h
	}
	if c.Dropout > 0 {
		m.drop = nn.NewDropout(p, c.Dropout)
	}
	return m
}

// Forward returns one logit per row [B].
func (m *AdaptDHM) Forward(in Input) *torch.Tensor {
	z := m.input(in)
	cluster, err := m.route(z)
	if err != nil {
		return torch.Failed(fmt.Errorf("adaptdhm: routing: %w", err))
	}
	rows := make([][]int64, m.centers.Shape()[0])
	for i, k := range cluster {
		rows[k] = append(rows[k], int64(i))
	}
	index := func(v []int64) *torch.Tensor {
		return torch.FromSlice(v, int64(len(v))).ToDevice(z.Device(), false)
	}
	var outs []*torch.Tensor
	order := make([]int64, 0, len(cluster))
	for k, r := range rows {
		switch {
		case len(r) == 0:
			continue
		case len(r) == len(cluster): // one cluster takes the whole batch: no gather
			return m.network(k, z).View(-1)
		}
		outs = append(outs, m.network(k, z.IndexSelect(0, index(r))))
		order = append(order, r...)
	}
	back := make([]int64, len(order)) // back[row] is the row's position in the joined outputs
	for pos, row := range order {
		back[row] = int64(pos)
	}
	return torch.Cat(outs, 0).IndexSelect(0, index(back)).View(-1)
}

// input is z = [x ‖ e_s].
func (m *AdaptDHM) input(in Input) *torch.Tensor {
	return torch.Cat([]*torch.Tensor{in.X, torch.Embedding(m.embedding, in.Scenario)}, 1)
}

// route updates the centres in training and returns each row's cluster.
func (m *AdaptDHM) route(z *torch.Tensor) ([]int64, error) {
	var err error
	torch.NoGrad(func() {
		z = z.Detach()
		if m.store.Training() {
			for i := 0; i < m.iterations && err == nil; i++ {
				c := m.unitCenters()
				r := z.Mm(c.T()).Softmax(1) // [B, K]
				routed := r.T().Mm(z)       // [K, D]: Σ_i r_ik z_i
				if m.update == CenterMean {
					routed = routed.Div(r.Sum(false, 0).Unsqueeze(1).ClampMin(1e-12))
				}
				err = m.centers.CopyFrom(unitRows(c.MulScalar(m.beta).Add(routed.MulScalar(1 - m.beta))))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	nearest := m.nearest(z)
	if nearest.Device() == torch.Meta {
		// The meta device (placement tests) has no values to route by: rows
		// take the clusters in turn, so every cluster's network runs.
		clusters := m.centers.Shape()[0]
		cluster := make([]int64, nearest.Numel())
		for i := range cluster {
			cluster[i] = int64(i) % clusters
		}
		return cluster, nil
	}
	return nearest.Int64s()
}

// unitCenters is the centres scaled to unit length: they are stored so
// after every update, and the initial Gaussian rows become uniform
// directions on the sphere.
func (m *AdaptDHM) unitCenters() *torch.Tensor { return unitRows(m.centers) }

// unitRows scales every row of c to unit length (an ε guards a zero row, as F.normalize's).
func unitRows(c *torch.Tensor) *torch.Tensor { return c.Div(c.Norm(true, 1).ClampMin(1e-12)) }

// nearest is argmax_k z_i · c_k for every row [B].
func (m *AdaptDHM) nearest(z *torch.Tensor) *torch.Tensor {
	var k *torch.Tensor
	torch.NoGrad(func() { k = z.Detach().Mm(m.unitCenters().T()).Argmax(false, 1) })
	return k
}

// network runs cluster k's hierarchical layers on rows z, giving [n, 1].
func (m *AdaptDHM) network(k int, z *torch.Tensor) *torch.Tensor {
	h := z
	last := len(m.layers) - 1
	for l, layer := range m.layers {
		ki := int64(k)
		h = torch.Linear(h, layer.weight.Mul(layer.scenarioWeight.Select(0, ki)), layer.bias.Add(layer.scenarioBias.Select(0, ki)))
		if l < last {
			h = m.act.Apply(h)
			if m.drop != nil {
				h = m.drop.Forward(h)
			}
		}
	}
	return h
}

// Script emits Forward in evaluation mode as TorchScript (see nn.Script):
// the centres stay as they are, each row goes to its nearest cluster, and
// each cluster with rows runs its network on them.
func (m *AdaptDHM) Script(s *nn.Script, in ScriptInput) string {
	z := s.Let("torch.cat([%s, torch.embedding(%s, %s)], 1)", in.X, s.Ref(m.embedding), in.Scenario)
	c := s.Ref(m.centers)
	unit := s.Let("%s / torch.norm(%s, 2, [1], True).clamp_min(1e-12)", c, c)
	cluster := s.Let("%s.mm(%s.t()).argmax(1)", z, unit)
	y := s.Let("torch.zeros(%s, 1, dtype=%s.dtype, device=%s.device)", in.Rows, z, z)
	for k := range m.centers.Shape()[0] {
		idx := s.Let("(%s == %d).nonzero().view(-1)", cluster, k)
		s.Block(fmt.Sprintf("if %s.size(0) > 0:", idx), func() {
			s.Line("%s.index_copy_(0, %s, %s)", y, idx, m.scriptNetwork(s, int(k), s.Let("%s.index_select(0, %s)", z, idx)))
		})
	}
	return s.Let("%s.view(-1)", y)
}

// scriptNetwork emits network.
func (m *AdaptDHM) scriptNetwork(s *nn.Script, k int, z string) string {
	h := z
	last := len(m.layers) - 1
	for l, layer := range m.layers {
		h = s.Let("torch.linear(%s, %s * %s.select(0, %d), %s + %s.select(0, %d))", h,
			s.Ref(layer.weight), s.Ref(layer.scenarioWeight), k, s.Ref(layer.bias), s.Ref(layer.scenarioBias), k)
		if l < last {
			h = m.act.Script(s, h)
		}
	}
	return h
}
