package model

import (
	"math"
	"slices"
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// Naive references: the same math on the same weights, computed the way
// common MSR code does it — every scenario's path on every sample, one
// expert at a time, then a mask keeps each row's own scenario. The routed
// backbones must agree with them to float tolerance.

// naiveSelect runs perScenario(s) on the whole batch for every scenario s and
// keeps, for each row, the output of its own scenario: Σ_s [scenario = s] · y_s.
func naiveSelect(in Input, scenarios int, perScenario func(s int) *torch.Tensor) *torch.Tensor {
	var out *torch.Tensor
	for s := 0; s < scenarios; s++ {
		mask := in.Scenario.EqScalar(float64(s)).ToDType(torch.Float32)
		y := perScenario(s).View(-1).Mul(mask)
		if out == nil {
			out = y
		} else {
			out = out.Add(y)
		}
	}
	return out
}

// naiveExpert runs expert k of a stack on its own, layer by layer (no BatchNorm or dropout).
func naiveExpert(e *expertStack, k int64, x *torch.Tensor) *torch.Tensor {
	h := x
	for _, l := range e.layers {
		h = torch.Linear(h, l.weight.Select(0, k), l.bias.Select(0, k))
		if l.lnWeight != nil {
			h = torch.LayerNorm(h, []int64{l.out}, l.lnWeight.Select(0, k), l.lnBias.Select(0, k), layerNormEps)
		}
		h = e.act.Apply(h)
	}
	return h
}

// naiveMix is Σ_k gate[:, k] · experts[k], one expert at a time.
func naiveMix(experts []*torch.Tensor, gate *torch.Tensor) *torch.Tensor {
	var out *torch.Tensor
	for k, e := range experts {
		y := e.Mul(gate.Narrow(1, int64(k), 1))
		if out == nil {
			out = y
		} else {
			out = out.Add(y)
		}
	}
	return out
}

// naiveGate is gate g of a Linear that stacks several k-wide gates.
func naiveGate(x, w, b *torch.Tensor, g, k int64) *torch.Tensor {
	return torch.Linear(x, w.Narrow(0, g*k, k), b.Narrow(0, g*k, k)).Softmax(1)
}

func naiveSharedBottom(m *SharedBottom, in Input) *torch.Tensor {
	h := m.bottom.Forward(in.X)
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor { return m.towers.towers[s].Forward(h) })
}

func naiveMMoE(m *MMoE, in Input) *torch.Tensor {
	var experts []*torch.Tensor
	for k := int64(0); k < m.experts.n; k++ {
		experts = append(experts, naiveExpert(m.experts, k, in.X))
	}
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		gate := naiveGate(in.X, m.gates.Weight, m.gates.Bias, int64(s), m.experts.n)
		return m.towers.towers[s].Forward(naiveMix(experts, gate))
	})
}

// naivePLE is the paper's multi-task PLE with a task per scenario: every
// row carries every scenario's path and the shared path through every
// level, every expert runs on every row, the shared gate mixes all of
// them, and each row keeps its own scenario's tower.
func naivePLE(m *PLE, in Input) *torch.Tensor {
	if m.ownGate {
		return naivePLEOwnGate(m, in)
	}
	scenarios := len(in.Counts)
	paths := slices.Repeat([]*torch.Tensor{in.X}, scenarios)
	c := in.X
	for _, lv := range m.levels {
		specific := make([][]*torch.Tensor, scenarios)
		var all []*torch.Tensor
		for t := range scenarios {
			specific[t] = naiveExperts(lv.specific[t], paths[t])
			all = append(all, specific[t]...)
		}
		shared := naiveExperts(lv.shared, c)
		next := make([]*torch.Tensor, scenarios)
		for t := range scenarios {
			next[t] = naiveMix(append(slices.Clone(specific[t]), shared...), naiveGate(paths[t], lv.gates.Weight, lv.gates.Bias, int64(t), m.k))
		}
		if lv.sharedGate != nil {
			width := int64(len(all) + len(shared))
			c = naiveMix(append(all, shared...), naiveGate(c, lv.sharedGate.Weight, lv.sharedGate.Bias, 0, width))
		}
		paths = next
	}
	return naiveSelect(in, scenarios, func(s int) *torch.Tensor { return m.towers.towers[s].Forward(paths[s]) })
}

// naivePLEOwnGate runs the own-gate variant as if every row belonged to scenario s.
func naivePLEOwnGate(m *PLE, in Input) *torch.Tensor {
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		a, c := in.X, in.X
		for _, lv := range m.levels {
			var experts []*torch.Tensor
			spec := lv.specific[s]
			for k := int64(0); k < spec.n; k++ {
				experts = append(experts, naiveExpert(spec, k, a))
			}
			for k := int64(0); k < lv.shared.n; k++ {
				experts = append(experts, naiveExpert(lv.shared, k, c))
			}
			next := naiveMix(experts, naiveGate(a, lv.gates.Weight, lv.gates.Bias, int64(s), m.k))
			if lv.sharedGate != nil {
				c = naiveMix(experts, naiveGate(c, lv.sharedGate.Weight, lv.sharedGate.Bias, 0, m.k))
			}
			a = next
		}
		return m.towers.towers[s].Forward(a)
	})
}

// naiveSTAR normalises every row with scenario s's statistics: in training
// the masked mean and (biased) variance of scenario s's rows, in evaluation
// its running statistics.
func naiveSTAR(m *STAR, in Input, training bool) *torch.Tensor {
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		si := int64(s)
		z := in.X
		if n := m.pn; n != nil {
			mean, variance := n.runningMean.Select(0, si), n.runningVar.Select(0, si)
			if training && in.Counts[s] > 1 {
				mask := in.Scenario.EqScalar(float64(s)).ToDType(torch.Float32).Unsqueeze(1)
				rows := float64(in.Counts[s])
				mean = in.X.Mul(mask).Sum(false, 0).DivScalar(rows)
				variance = in.X.Sub(mean).Square().Mul(mask).Sum(false, 0).DivScalar(rows)
			}
			z = in.X.Sub(mean).Div(variance.AddScalar(n.eps).Sqrt()).
				Mul(n.weight.Mul(n.scenarioWeight.Select(0, si))).Add(n.bias.Add(n.scenarioBias.Select(0, si)))
		}
		h := z
		for l, layer := range m.layers {
			h = torch.Linear(h, layer.weight.Mul(layer.scenarioWeight.Select(0, si)), layer.bias.Add(layer.scenarioBias.Select(0, si)))
			if l < len(m.layers)-1 {
				h = m.act.Apply(h)
			}
		}
		e := m.embedding.Select(0, si).Unsqueeze(0).Expand(in.rows(), -1)
		return h.Add(m.aux.Forward(torch.Cat([]*torch.Tensor{in.X, e}, 1)))
	})
}

func naiveForward(t *testing.T, bb Backbone, in Input, training bool) *torch.Tensor {
	if c, ok := bb.(checkedBackbone); ok {
		bb = c.inner
	}
	switch m := bb.(type) {
	case *SharedBottom:
		return naiveSharedBottom(m, in)
	case *MMoE:
		return naiveMMoE(m, in)
	case *PLE:
		return naivePLE(m, in)
	case *STAR:
		return naiveSTAR(m, in, training)

	case *SARNet:
		return naiveSARNet(m, in)
	case *M2M:
		return naiveM2M(m, in)
	case *AdaptDHM:
		return naiveAdaptDHM(t, m, in)
	case *M3oE:
		return naiveM3oE(m, in)

	case *EPNet:
		return naiveEPNet(m, in)
	case *PPNet:
		return naivePPNet(m, in)
	case *AdaSparse:
		return naiveAdaSparse(m, in, training)
	case *HAMUR:
		return naiveHAMUR(m, in, training)
	}
	t.Fatalf("no naive reference for %T", bb)
	return nil
}

// naiveExperts runs every expert of a stack on x, one at a time.
func naiveExperts(e *expertStack, x *torch.Tensor) []*torch.Tensor {
	var out []*torch.Tensor
	for k := int64(0); k < e.n; k++ {
		out = append(out, naiveExpert(e, k, x))
	}
	return out
}

// broadcastRow repeats row s of t [S, D] for every row of the batch.
func broadcastRow(in Input, t *torch.Tensor, s int) *torch.Tensor {
	return t.Select(0, int64(s)).Unsqueeze(0).Expand(in.rows(), -1)
}

func naiveSARNet(m *SARNet, in Input) *torch.Tensor {
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		x := in.X.Mul(broadcastRow(in, m.weight, s)).Add(broadcastRow(in, m.bias, s))
		experts := append(naiveExperts(m.shared, x), naiveExperts(m.specific[s], x)...)
		gate := torch.Linear(x, m.gate.Weight, m.gate.Bias).Softmax(1)
		return m.tower.Forward(naiveMix(experts, gate))
	})
}

// naiveM2M generates scenario s's meta weights from its knowledge vector
// alone and scores each expert on [e_k ‖ E_t] as written in the paper.
func naiveM2M(m *M2M, in Input) *torch.Tensor {
	u := in.X
	for _, l := range m.encoder {
		u = l.Forward(u)
	}
	experts := naiveExperts(m.experts, u)
	b := in.rows()
	task := m.act.Apply(m.taskKnowledge.Forward(m.taskEmbedding)).Expand(b, -1)
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		es := m.act.Apply(m.scenarioKnowledge.Forward(m.scenarioEmbedding.Narrow(0, int64(s), 1))) // [1, h]
		unit := func(u metaUnit, x *torch.Tensor) *torch.Tensor {
			w := u.weight.Forward(es).View(u.in, u.out)
			return x.Mm(w).Add(u.bias.Forward(es))
		}
		var scores []*torch.Tensor
		for _, e := range experts {
			a := m.act.Apply(unit(m.attention, torch.Cat([]*torch.Tensor{e, task}, 1)))
			scores = append(scores, a.Matmul(m.v).Unsqueeze(1))
		}
		o := naiveMix(experts, torch.Cat(scores, 1).Softmax(1))
		for _, t := range m.tower {
			o = m.act.Apply(unit(t, o).Add(o))
		}
		return m.output.Forward(o)
	})
}

// naiveAdaptDHM runs every cluster's network on every row and keeps each
// row's own cluster, assigned by the centres as they are (in training the
// routed pass has just updated them and assigned with the updated ones).
func naiveAdaptDHM(t *testing.T, m *AdaptDHM, in Input) *torch.Tensor {
	z := torch.Cat([]*torch.Tensor{in.X, torch.Embedding(m.embedding, in.Scenario)}, 1)
	clusters := int(m.centers.Shape()[0])
	byCluster := Input{X: z, Scenario: naiveNearest(t, z, m.centers), Counts: make([]int64, clusters)}
	return naiveSelect(byCluster, clusters, func(k int) *torch.Tensor {
		h := z
		for l, layer := range m.layers {
			ki := int64(k)
			h = torch.Linear(h, layer.weight.Mul(layer.scenarioWeight.Select(0, ki)), layer.bias.Add(layer.scenarioBias.Select(0, ki)))
			if l < len(m.layers)-1 {
				h = m.act.Apply(h)
			}
		}
		return h
	})
}

// naiveNearest is each row's cluster, argmax_k z_i · c_k / |c_k|, computed
// in float64 from the values: [B] int64.
func naiveNearest(t *testing.T, z, centers *torch.Tensor) *torch.Tensor {
	zv, cv := values(t, z.Detach()), values(t, centers)
	d := int(z.Shape()[1])
	k := len(cv) / d
	nearest := make([]int64, len(zv)/d)
	for i := range nearest {
		best := math.Inf(-1)
		for c := range k {
			var dot, norm float64
			for j := range d {
				dot += float64(zv[i*d+j]) * float64(cv[c*d+j])
				norm += float64(cv[c*d+j]) * float64(cv[c*d+j])
			}
			if score := dot / math.Sqrt(norm); score > best {
				best, nearest[i] = score, int64(c)
			}
		}
	}
	return torch.FromSlice(nearest)
}

// naiveM3oE writes the domain balance as the paper does, a sum over the other domains.
func naiveM3oE(m *M3oE, in Input) *torch.Tensor {
	scenarios := len(in.Counts)
	return naiveSelect(in, scenarios, func(d int) *torch.Tensor {
		z := in.X
		if m.star != nil {
			di := int64(d)
			star := torch.Linear(in.X, m.star.weight.Mul(m.star.scenarioWeight.Select(0, di)), m.star.bias.Add(m.star.scenarioBias.Select(0, di)))
			z = m.bottom.Forward(star).Add(m.skip.Forward(in.X))
		}
		experts := naiveExperts(m.experts, z)
		gateIn := z
		if m.detachGates {
			gateIn = z.Detach()
		}
		shared := naiveMix(experts[:m.k], naiveGate(gateIn, m.gates.Weight, m.gates.Bias, int64(d), m.k))
		domains := experts[m.k : m.k+m.scenarios]
		beta := m.balance.Sigmoid()
		balanced := domains[d].Mul(beta)
		for j, e := range domains {
			if j != d {
				balanced = balanced.Add(e.Mul(beta.RSubScalar(1)).DivScalar(float64(scenarios - 1)))
			}
		}
		f := shared.Add(balanced.Mul(m.domainWeight.Sigmoid()))
		if m.taskWeight != nil {
			f = f.Add(experts[m.k+m.scenarios].Mul(m.taskWeight.Sigmoid()))
		}
		return m.towers.towers[d].Forward(f)
	})
}

// naiveScenarioSide is E_d with the scenario embedding picked by masks:
// Σ_s [scenario = s] · e_s, then the scenario-side fields.
func naiveScenarioSide(in Input, embedding *torch.Tensor, fields FieldLayout) *torch.Tensor {
	var e *torch.Tensor
	for s := 0; s < len(in.Counts); s++ {
		mask := in.Scenario.EqScalar(float64(s)).ToDType(torch.Float32).Unsqueeze(1)
		y := mask.Mul(embedding.Select(0, int64(s)))
		if e == nil {
			e = y
		} else {
			e = e.Add(y)
		}
	}
	var parts []*torch.Tensor
	for i, r := range fields.Roles {
		if r == RoleScenario {
			parts = append(parts, in.Fields.Select(1, int64(i)))
		}
	}
	return torch.Cat(append([]*torch.Tensor{e}, parts...), 1)
}

// naiveGateNU is γ·σ(W₂ ReLU(W₁ x + b₁) + b₂), written out.
func naiveGateNU(g *gateNU, x *torch.Tensor) *torch.Tensor {
	h := torch.Linear(x, g.hidden.Weight, g.hidden.Bias).Relu()
	return torch.Linear(h, g.out.Weight, g.out.Bias).Sigmoid().MulScalar(g.scale)
}

func naiveEPNet(m *EPNet, in Input) *torch.Tensor {
	delta := naiveGateNU(m.gate, torch.Cat([]*torch.Tensor{naiveScenarioSide(in, m.embedding, m.fields), in.X.Detach()}, 1))
	return m.out.Forward(m.tower.Forward(in.X.Mul(delta))).View(-1)
}

// naivePPNet runs every scenario's gated tower on every row; the prior is
// the id fields picked one by one.
func naivePPNet(m *PPNet, in Input) *torch.Tensor {
	var prior []*torch.Tensor
	for _, r := range m.idRoles {
		for i, fr := range m.fields.Roles {
			if fr == r {
				prior = append(prior, in.Fields.Select(1, int64(i)))
			}
		}
	}
	g := torch.Cat(append(prior, in.X.Detach()), 1)
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		t := m.towers[s]
		h := in.X
		for l, layer := range t.layers {
			h = layer.Forward(h.Mul(naiveGateNU(t.gates[l], g)))
		}
		return t.out.Forward(h.Mul(naiveGateNU(t.gates[len(t.layers)], g)))
	})
}

// naiveAdaSparse computes the factors with explicit comparisons; in
// training the routed pass has already advanced α by one step.
func naiveAdaSparse(m *AdaSparse, in Input, training bool) *torch.Tensor {
	alpha := m.alpha
	if training {
		alpha = alpha.SubScalar(m.cfg.AlphaStep)
	}
	domain := naiveScenarioSide(in, m.embedding, m.fields)
	prune := func(l int, h *torch.Tensor) *torch.Tensor {
		v := torch.Linear(torch.Cat([]*torch.Tensor{domain, h}, 1), m.pruners[l].Weight, nil)
		g := v.Mul(alpha).Sigmoid().MulScalar(m.cfg.Beta) // fusion, the test config's form
		return torch.Where(g.LtScalar(m.cfg.Epsilon), g.MulScalar(0), g).Mul(h)
	}
	z := torch.Cat([]*torch.Tensor{domain, prune(0, in.X)}, 1)
	for l, layer := range m.layers {
		z = prune(l+1, layer.Forward(z))
	}
	return m.out.Forward(z).View(-1)
}

// naiveHAMUR builds every row's adapter weights U M V [B, d, a] and runs
// every scenario's network and adapter on every row, normalising with
// scenario s's masked batch statistics (training) or running statistics.
func naiveHAMUR(m *HAMUR, in Input, training bool) *torch.Tensor {
	instance := m.hyperOut.Forward(m.hyper.Forward(in.X)).View(-1, m.rank, m.rank)
	a := m.adapter
	return naiveSelect(in, len(in.Counts), func(s int) *torch.Tensor {
		si := int64(s)
		h := m.networks[s].Forward(in.X)
		wDown := torch.Einsum("mi,bij,jn->bmn", a.downU.Select(0, si), instance, a.downV.Select(0, si))
		wUp := torch.Einsum("mi,bij,jn->bmn", a.upU.Select(0, si), instance, a.upV.Select(0, si))
		down := torch.Einsum("bf,bfj->bj", h, wDown).Add(a.downBias.Select(0, si)).Sigmoid()
		up := torch.Einsum("bf,bfj->bj", down, wUp)
		if n := a.norm; n != nil {
			mean, variance := n.runningMean.Select(0, si), n.runningVar.Select(0, si)
			if training && in.Counts[s] > 1 {
				mask := in.Scenario.EqScalar(float64(s)).ToDType(torch.Float32).Unsqueeze(1)
				rows := float64(in.Counts[s])
				mean = up.Mul(mask).Sum(false, 0).DivScalar(rows)
				variance = up.Sub(mean).Square().Mul(mask).Sum(false, 0).DivScalar(rows)
			}
			up = up.Sub(mean).Div(variance.AddScalar(1e-5).Sqrt()).Mul(n.weight.Select(0, si)).Add(n.bias.Select(0, si))
		}
		return m.out[s].Forward(h.Add(up))
	})
}

// perturb adds N(0, 0.2²) noise to every parameter, so that parameters
// initialised to a constant (STAR's scenario factors start at W_s = 1,
// b_s = 0) cannot hide a routing mistake.
func perturb(t *testing.T, store *nn.Store) {
	t.Helper()
	torch.NoGrad(func() {
		for _, v := range store.Parameters() {
			noise := torch.Randn(v.Tensor.Shape(), torch.Float32, torch.CPU).MulScalar(0.2)
			if err := v.Tensor.CopyFrom(v.Tensor.Add(noise)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// gradients back-propagates loss and returns every parameter's gradient
// (zeros where it has none), clearing them afterwards.
func gradients(t *testing.T, store *nn.Store, loss *torch.Tensor) [][]float32 {
	t.Helper()
	_, params := store.ParameterTensors()
	if err := torch.ZeroGrad(params...); err != nil {
		t.Fatal(err)
	}
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(params))
	for i, p := range params {
		if g := p.Grad(); g != nil {
			out[i] = values(t, g)
		} else {
			out[i] = make([]float32, p.Numel())
		}
	}
	if err := torch.ZeroGrad(params...); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackboneMatchesNaive compares routed and naive outputs and gradients
// in evaluation (after some training batches moved the running statistics)
// and in training (batch statistics; no dropout in this config).
func TestBackboneMatchesNaive(t *testing.T) {
	lockThread(t)
	const dim = 10
	type variant struct {
		name, setting string
		cfg           BackboneConfig
	}
	var variants []variant
	for _, name := range BackboneNames() {
		variants = append(variants, variant{name, "default", smallBackboneConfig()})
	}
	for _, v := range []struct {
		name, setting string
		set           func(*BackboneConfig)
	}{
		{"ple", "shared_gate=own", func(c *BackboneConfig) { c.PLE.SharedGate = SharedGateOwn }},
		{"ple", "levels=3", func(c *BackboneConfig) { c.PLE.Levels = 3 }},
		{"m3oe", "structure=scenario_wise_rec", func(c *BackboneConfig) { c.M3oE.Structure = StructureScenarioWiseRec }},
		{"epnet", "structure=scenario_wise_rec", func(c *BackboneConfig) { c.EPNet.Structure = StructureScenarioWiseRec }},
		{"adaptdhm", "center_update=sum", func(c *BackboneConfig) { c.AdaptDHM.CenterUpdate = CenterSum }},
	} {
		cfg := smallBackboneConfig()
		v.set(&cfg)
		variants = append(variants, variant{v.name, v.setting, cfg})
	}
	for _, v := range variants {
		name := v.name + " (" + v.setting + ")"
		for _, counts := range [][]int64{{5, 9, 6}, {7, 0, 4}, {0, 8, 0}, {1, 6, 3}} {
			for _, training := range []bool{false, true} {
				sc := torch.NewScope()
				store, bb := buildBackbone(t, v.name, dim, testScenarios, v.cfg, 4)
				for i := 0; i < 3; i++ { // move STAR's running statistics off their initial values
					bb.Forward(makeInput([]int64{6, 7, 8}, dim))
				}
				perturb(t, store)
				store.SetTraining(training)
				in := makeInput(counts, dim)
				routed, naive := bb.Forward(in), naiveForward(t, bb, in, training)
				if d := maxAbsDiff(values(t, routed), values(t, naive)); d > 1e-5 {
					t.Errorf("%s counts %v training=%v: routed and naive outputs differ by %g", name, counts, training, d)
				}
				// The same loss through both must give the same gradients.
				weight := torch.Randn([]int64{in.rows()}, torch.Float32, torch.CPU)
				routedGrads := gradients(t, store, routed.Mul(weight).Sum(false))
				naiveGrads := gradients(t, store, naive.Mul(weight).Sum(false))
				for i, v := range store.Parameters() {
					if d := maxAbsDiff(routedGrads[i], naiveGrads[i]); d > 1e-4 {
						t.Errorf("%s counts %v training=%v: gradients of %s differ by %g", name, counts, training, v.Name, d)
					}
				}
				sc.Close()
			}
		}
	}
}
