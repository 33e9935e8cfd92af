package model

// The pieces the backbones share to route each sample to its own scenario's
// parameters without computing anything for the other scenarios: running a
// function per scenario segment, per-scenario towers, stacks of experts that
// run as one matmul per layer, and per-row gate selection.

import (
	"fmt"
	"math"
	"slices"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// eachSegment runs f on every scenario present in the batch and joins the
// results along dim in segment order, which is row order. A batch of one
// scenario skips the join.
func eachSegment(in Input, dim int64, f func(seg Segment) *torch.Tensor) *torch.Tensor {
	segs := in.Segments()
	if len(segs) == 1 {
		return f(segs[0])
	}
	outs := make([]*torch.Tensor, len(segs))
	for i, seg := range segs {
		outs[i] = f(seg)
	}
	return torch.Cat(outs, dim) // no segments: Cat reports "no tensors"
}

// scoped runs a forward pass in a scope of its own and keeps only its
// result. The intermediates' handles are then released when the pass ends
// (autograd keeps what backward needs and frees it as backward goes), as
// Python frees locals; held until the step's scope closes instead, every
// activation of the step stays alive at once, and the allocator cannot reuse
// their memory within the step (what that costs: docs/benchmarks.md).
func scoped(f func() *torch.Tensor) *torch.Tensor {
	sc := torch.NewScope()
	defer sc.Close()
	out := f()
	sc.Keep(out)
	return out
}

// rows is the batch size the scenario counts describe.
func (in Input) rows() int64 {
	var n int64
	for _, c := range in.Counts {
		n += c
	}
	return n
}

// checkInput verifies that the counts fit the backbone and the batch.
func checkInput(in Input, scenarios int) error {
	if len(in.Counts) != scenarios {
		return fmt.Errorf("model: input has counts for %d scenarios, the backbone was built for %d", len(in.Counts), scenarios)
	}
	for s, n := range in.Counts {
		if n < 0 {
			return fmt.Errorf("model: scenario %d has %d rows", s, n)
		}
	}
	if in.rows() == 0 {
		return fmt.Errorf("model: empty batch (every scenario count is 0)")
	}
	if err := in.X.Err(); err != nil {
		return err
	}
	if shape := in.X.Shape(); len(shape) != 2 || shape[0] != in.rows() {
		return fmt.Errorf("model: input is %v, want [%d, width] (the sum of the scenario counts)", shape, in.rows())
	}
	return nil
}

// checkFields verifies Input.Fields against the layout: required when the
// backbone reads it, and of shape [B, fields, dim] whenever it is given.
func checkFields(in Input, l FieldLayout, required bool) error {
	if in.Fields == nil {
		if required {
			return fmt.Errorf("model: the backbone reads fields by role, and the input has no Fields")
		}
		return nil
	}
	if err := in.Fields.Err(); err != nil {
		return err
	}
	want := []int64{in.rows(), int64(len(l.Roles)), l.Dim}
	if shape := in.Fields.Shape(); required && !slices.Equal(shape, want) {
		return fmt.Errorf("model: input fields are %v, want %v ([rows, fields, embedding width])", shape, want)
	}
	return nil
}

// towerConfig turns a tower section ([64, 32]) into the MLP that ends in
// one logit ([64, 32, 1]) with no activation after it.
func towerConfig(c nn.MLPConfig) nn.MLPConfig {
	c.Hidden = append(append([]int64(nil), c.Hidden...), 1)
	c.OutputActivation = false
	return c
}

// scenarioTowers holds one tower per scenario ("towers.<s>.*"); each runs
// on its own scenario's rows only.
type scenarioTowers struct{ towers []*nn.MLP }

func newScenarioTowers(p nn.Path, in int64, scenarios int, cfg nn.MLPConfig) *scenarioTowers {
	t := &scenarioTowers{}
	for s := 0; s < scenarios; s++ {
		t.towers = append(t.towers, nn.NewMLP(p.Index(s), in, towerConfig(cfg)))
	}
	return t
}

// Forward maps h [B, in] to logits [B], each row through its scenario's tower.
func (t *scenarioTowers) Forward(in Input, h *torch.Tensor) *torch.Tensor {
	return eachSegment(in, 0, func(seg Segment) *torch.Tensor {
		return t.towers[seg.Scenario].Forward(seg.Rows(h))
	}).View(-1)
}

// expertStack is n experts of the same shape applied to the same input.
// Expert k's layer i has weight "<path>.<i>.weight"[k] ([out, in], as a
// PyTorch Linear) and bias "<path>.<i>.bias"[k]. The first layer of all
// experts runs as one Linear with n·out outputs and every later layer as one
// batched matmul, instead of n small matmuls per layer. Every layer, the
// last included, is followed by the activation (and BatchNorm, Dropout when
// configured), as an expert's output is a hidden representation.
type expertStack struct {
	n      int64
	layers []stackedLayer
	act    nn.Activation
	drop   *nn.Dropout
	Out    int64
}

type stackedLayer struct {
	weight, bias *torch.Tensor // [n, out, in], [n, out]
	in, out      int64
	bn           *nn.BatchNorm1d // over n·out features, nil without
	// lnWeight, lnBias [n, out]: each expert's LayerNorm (MLPConfig.LayerNorm), nil without
	lnWeight, lnBias *torch.Tensor
}

func newExpertStack(p nn.Path, n, in int64, cfg nn.MLPConfig) *expertStack {
	e := &expertStack{n: n, act: cfg.Activation, Out: in}
	for i, h := range cfg.Hidden {
		lp := p.Index(i)
		// PyTorch's Linear initialisation (kaiming_uniform with a = sqrt(5))
		// is U(±1/sqrt(fan_in)) for the weight and the bias alike.
		bound := 1 / math.Sqrt(float64(e.Out))
		l := stackedLayer{
			weight: lp.Param("weight", []int64{n, h, e.Out}, nn.Uniform(bound)),
			bias:   lp.Param("bias", []int64{n, h}, nn.Uniform(bound)),
			in:     e.Out, out: h,
		}
		if cfg.BatchNorm {
			l.bn = nn.NewBatchNorm1d(lp.Sub("bn"), n*h)
		}
		if cfg.LayerNorm {
			l.lnWeight = lp.Sub("ln").Param("weight", []int64{n, h}, nn.Ones)
			l.lnBias = lp.Sub("ln").Param("bias", []int64{n, h}, nn.Zeros)
		}
		e.layers = append(e.layers, l)
		e.Out = h
	}
	if cfg.Dropout > 0 {
		e.drop = nn.NewDropout(p, cfg.Dropout)
	}
	return e
}

// layerNormEps is PyTorch's LayerNorm default, as nn.LayerNorm's.
const layerNormEps = 1e-5

// Forward maps x [B, in] to every expert's output [n, B, out].
func (e *expertStack) Forward(x *torch.Tensor) *torch.Tensor {
	var h *torch.Tensor
	for i, l := range e.layers {
		if i == 0 {
			y := torch.Linear(x, l.weight.View(e.n*l.out, l.in), l.bias.View(e.n*l.out)) // [B, n·out]
			if l.bn != nil {
				y = l.bn.Forward(y)
			}
			h = y.View(-1, e.n, l.out).Transpose(0, 1)
		} else {
			h = torch.Baddbmm(l.bias.Unsqueeze(1), h, l.weight.Transpose(1, 2), 1, 1)
			if l.bn != nil {
				flat := h.Transpose(0, 1).Reshape(-1, e.n*l.out)
				h = l.bn.Forward(flat).View(-1, e.n, l.out).Transpose(0, 1)
			}
		}
		if l.lnWeight != nil {
			h = torch.LayerNorm(h, []int64{l.out}, nil, nil, layerNormEps).Mul(l.lnWeight.Unsqueeze(1)).Add(l.lnBias.Unsqueeze(1))
		}
		h = e.act.Apply(h)
		if e.drop != nil {
			h = e.drop.Forward(h)
		}
	}
	return h
}

// mix is the gated sum Σ_k gate[:, k] · experts[k]: experts [K, B, h] and
// gate [B, K] give [B, h], as one broadcast product summed over K. A
// batched matmul of B tiny [1, K]·[K, h] products does the same, but
// libtorch runs those on its naive per-element kernel, slower forward and
// backward at every batch size (docs/benchmarks.md).
func mix(experts, gate *torch.Tensor) *torch.Tensor {
	return experts.Mul(gate.T().Unsqueeze(2)).Sum(false, 0)
}

// pickScenario selects each row's own scenario's k columns from t
// [B, S·k] (scenario s owns columns s·k … s·k+k-1), giving [B, k].
func pickScenario(in Input, t *torch.Tensor, k int64) *torch.Tensor {
	b := in.rows()
	idx := in.Scenario.View(b, 1, 1).Expand(b, 1, k)
	return t.View(b, -1, k).Gather(1, idx).View(b, k)
}

// ScriptInput is Input as the exported TorchScript module sees it: the
// names of its variables, rows grouped by scenario as the trainer groups
// them. Counts and Starts are List[int] variables (rows per scenario and
// the first row of each), computed from the batch at run time.
type ScriptInput struct {
	X, Scenario, Fields string
	Rows                string // the batch size, an int variable
	Counts, Starts      string
	Scenarios           int
}

// scriptSegment is Segment in emitted source: its rows are a narrow with
// start and length read from the batch.
type scriptSegment struct {
	Scenario   int
	Start, Len string
}

// Rows is the segment's rows of x.
func (s scriptSegment) Rows(x string) string {
	return fmt.Sprintf("%s.narrow(0, %s, %s)", x, s.Start, s.Len)
}

// scriptEachSegment emits eachSegment: f's code for every scenario, run
// only when the batch has rows of it, the outputs joined along dim in
// scenario order (row order).
func scriptEachSegment(s *nn.Script, in ScriptInput, dim int, f func(seg scriptSegment) string) string {
	parts := s.Fresh("parts")
	s.Line("%s: List[Tensor] = []", parts)
	for sc := 0; sc < in.Scenarios; sc++ {
		seg := scriptSegment{Scenario: sc, Start: fmt.Sprintf("%s[%d]", in.Starts, sc), Len: fmt.Sprintf("%s[%d]", in.Counts, sc)}
		s.Block(fmt.Sprintf("if %s > 0:", seg.Len), func() {
			s.Line("%s.append(%s)", parts, f(seg))
		})
	}
	return s.Let("torch.cat(%s, %d)", parts, dim)
}

// Script emits Forward: each scenario's rows through its own tower, logits [B].
func (t *scenarioTowers) Script(s *nn.Script, in ScriptInput, h string) string {
	out := scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		return t.towers[seg.Scenario].Script(s, seg.Rows(h))
	})
	return s.Let("%s.view(-1)", out)
}

// Script emits Forward: x [B, in] to every expert's output [n, B, out].
func (e *expertStack) Script(s *nn.Script, x string) string {
	var h string
	for i, l := range e.layers {
		w, b := s.Ref(l.weight), s.Ref(l.bias)
		if i == 0 {
			y := s.Let("torch.linear(%s, %s.view(%d, %d), %s.view(%d))", x, w, e.n*l.out, l.in, b, e.n*l.out)
			if l.bn != nil {
				y = l.bn.Script(s, y)
			}
			h = s.Let("%s.view(-1, %d, %d).transpose(0, 1)", y, e.n, l.out)
		} else {
			h = s.Let("torch.baddbmm(%s.unsqueeze(1), %s, %s.transpose(1, 2))", b, h, w)
			if l.bn != nil {
				flat := s.Let("%s.transpose(0, 1).reshape(-1, %d)", h, e.n*l.out)
				h = s.Let("%s.view(-1, %d, %d).transpose(0, 1)", l.bn.Script(s, flat), e.n, l.out)
			}
		}
		if l.lnWeight != nil {
			h = s.Let("torch.layer_norm(%s, [%d], None, None, %s) * %s.unsqueeze(1) + %s.unsqueeze(1)",
				h, l.out, nn.Float(layerNormEps), s.Ref(l.lnWeight), s.Ref(l.lnBias))
		}
		h = e.act.Script(s, h)
	}
	return h
}

// scriptMix emits mix: Σ_k gate[:, k] · experts[k].
func scriptMix(s *nn.Script, experts, gate string) string {
	return s.Let("%s.mul(%s.t().unsqueeze(2)).sum(0)", experts, gate)
}

// scriptPickScenario emits pickScenario: each row's own scenario's k columns of t [B, S·k].
func scriptPickScenario(s *nn.Script, in ScriptInput, t string, k int64) string {
	idx := s.Let("%s.view(%s, 1, 1).expand(%s, 1, %d)", in.Scenario, in.Rows, in.Rows, k)
	return s.Let("%s.view(%s, -1, %d).gather(1, %s).view(%s, %d)", t, in.Rows, k, idx, in.Rows, k)
}
