package torch

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"math"
	"math/rand"
	"testing"
)

func TestUnaryOps(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	a := randND(r, 3, 5)
	pos := a.map1(math.Abs).map1(func(v float64) float64 { return v + 0.1 })
	cases := []struct {
		name string
		in   nd
		op   func(*Tensor) *Tensor
		ref  func(float64) float64
	}{
		{"relu", a, (*Tensor).Relu, func(v float64) float64 { return math.Max(v, 0) }},
		{"leaky_relu", a, func(x *Tensor) *Tensor { return x.LeakyRelu(0.1) }, func(v float64) float64 {
			if v < 0 {
				return 0.1 * v
			}
			return v
		}},
		{"sigmoid", a, (*Tensor).Sigmoid, sigmoid},
		{"tanh", a, (*Tensor).Tanh, math.Tanh},
		{"exp", a, (*Tensor).Exp, math.Exp},
		{"log", pos, (*Tensor).Log, math.Log},
		{"neg", a, (*Tensor).Neg, func(v float64) float64 { return -v }},
		{"abs", a, (*Tensor).Abs, math.Abs},
		{"sqrt", pos, (*Tensor).Sqrt, math.Sqrt},
		{"square", a, (*Tensor).Square, func(v float64) float64 { return v * v }},
		{"log_sigmoid", a, (*Tensor).LogSigmoid, func(v float64) float64 { return math.Log(sigmoid(v)) }},
		{"silu", a, (*Tensor).Silu, func(v float64) float64 { return v * sigmoid(v) }},
		{"gelu", a, (*Tensor).Gelu, func(v float64) float64 { return 0.5 * v * (1 + math.Erf(v/math.Sqrt2)) }},
		{"clamp", a, func(x *Tensor) *Tensor { return x.Clamp(-0.5, 0.7) }, func(v float64) float64 { return math.Min(math.Max(v, -0.5), 0.7) }},
		{"clamp_min", a, func(x *Tensor) *Tensor { return x.ClampMin(0.2) }, func(v float64) float64 { return math.Max(v, 0.2) }},
		{"add scalar", a, func(x *Tensor) *Tensor { return x.AddScalar(1.5) }, func(v float64) float64 { return v + 1.5 }},
		{"sub scalar", a, func(x *Tensor) *Tensor { return x.SubScalar(1.5) }, func(v float64) float64 { return v - 1.5 }},
		{"rsub scalar", a, func(x *Tensor) *Tensor { return x.RSubScalar(1.5) }, func(v float64) float64 { return 1.5 - v }},
		{"mul scalar", a, func(x *Tensor) *Tensor { return x.MulScalar(-3) }, func(v float64) float64 { return -3 * v }},
		{"div scalar", a, func(x *Tensor) *Tensor { return x.DivScalar(4) }, func(v float64) float64 { return v / 4 }},
		{"pow scalar", pos, func(x *Tensor) *Tensor { return x.PowScalar(1.7) }, func(v float64) float64 { return math.Pow(v, 1.7) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scoped(t, func() {
				want := c.in.map1(c.ref)
				requireClose(t, want, c.op(c.in.f64()), 1e-12, 1e-12, "float64")
				want32 := c.in.map1(func(v float64) float64 { return c.ref(float64(float32(v))) })
				got := c.op(c.in.f32())
				require.Equal(t, Float32, got.DType())
				requireClose(t, want32, got, 1e-6, 1e-6, "float32")
			})
		})
	}
}

func TestBinaryBroadcasting(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	shapes := [][2][]int64{
		{{3, 4}, {3, 4}},
		{{3, 4}, {4}},
		{{3, 1}, {1, 4}},
		{{2, 3, 4}, {3, 1}},
		{{3, 4}, {}}, // 0-d tensor
	}
	ops := []struct {
		name string
		op   func(a, b *Tensor) *Tensor
		ref  func(x, y float64) float64
	}{
		{"add", (*Tensor).Add, func(x, y float64) float64 { return x + y }},
		{"sub", (*Tensor).Sub, func(x, y float64) float64 { return x - y }},
		{"mul", (*Tensor).Mul, func(x, y float64) float64 { return x * y }},
		{"div", (*Tensor).Div, func(x, y float64) float64 { return x / y }},
		{"maximum", (*Tensor).Maximum, math.Max},
		{"minimum", (*Tensor).Minimum, math.Min},
		{"pow", func(a, b *Tensor) *Tensor { return a.Abs().Pow(b) }, func(x, y float64) float64 { return math.Pow(math.Abs(x), y) }},
	}
	for _, op := range ops {
		for _, sh := range shapes {
			a, b := randND(r, sh[0]...), randND(r, sh[1]...)
			t.Run(op.name, func(t *testing.T) {
				scoped(t, func() {
					want := broadcast2(a, b, op.ref)
					requireClose(t, want, op.op(a.f64(), b.f64()), 1e-12, 1e-12, "shapes %v %v", sh[0], sh[1])
				})
			})
		}
	}
}

func TestComparisons(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	a := randND(r, 3, 4)
	b := randND(r, 4)
	b.data[1] = a.data[1] // some equal entries
	a.data[6] = b.data[2]
	b1 := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	cases := []struct {
		name   string
		op     func(x, y *Tensor) *Tensor
		scalar func(x *Tensor, s float64) *Tensor
		ref    func(x, y float64) bool
	}{
		{"eq", (*Tensor).Eq, (*Tensor).EqScalar, func(x, y float64) bool { return x == y }},
		{"ne", (*Tensor).Ne, (*Tensor).NeScalar, func(x, y float64) bool { return x != y }},
		{"lt", (*Tensor).Lt, (*Tensor).LtScalar, func(x, y float64) bool { return x < y }},
		{"le", (*Tensor).Le, (*Tensor).LeScalar, func(x, y float64) bool { return x <= y }},
		{"gt", (*Tensor).Gt, (*Tensor).GtScalar, func(x, y float64) bool { return x > y }},
		{"ge", (*Tensor).Ge, (*Tensor).GeScalar, func(x, y float64) bool { return x >= y }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scoped(t, func() {
				got := c.op(a.f64(), b.f64())
				require.Equal(t, Bool, got.DType())
				requireClose(t, broadcast2(a, b, func(x, y float64) float64 { return b1(c.ref(x, y)) }), got.ToDType(Float64), 0, 0)
				s := a.data[5]
				requireClose(t, a.map1(func(x float64) float64 { return b1(c.ref(x, s)) }), c.scalar(a.f64(), s).ToDType(Float64), 0, 0)
			})
		})
	}
	scoped(t, func() {
		p := FromSlice([]bool{true, true, false, false})
		q := FromSlice([]bool{true, false, true, false})
		and, _ := p.LogicalAnd(q).Bools()
		or, _ := p.LogicalOr(q).Bools()
		not, _ := p.LogicalNot().Bools()
		assert.Equal(t, []bool{true, false, false, false}, and)
		assert.Equal(t, []bool{true, true, true, false}, or)
		assert.Equal(t, []bool{false, false, true, true}, not)
		fin, _ := FromSlice([]float32{1, float32(math.Inf(1))}).AllFinite().Bools()
		assert.Equal(t, []bool{false}, fin)
	})
}

func TestReductions(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	a := randND(r, 3, 4, 5)
	sum := func(acc, v float64) float64 { return acc + v }
	for _, d := range []int{0, 1, 2} {
		for _, keep := range []bool{false, true} {
			scoped(t, func() {
				x := a.f64()
				s := reduceDim(a, d, keep, 0, sum)
				requireClose(t, s, x.Sum(keep, int64(d)), 1e-12, 1e-12, "sum dim %d keep %v", d, keep)
				m := s.map1(func(v float64) float64 { return v / float64(a.shape[d]) })
				requireClose(t, m, x.Mean(keep, int64(d)), 1e-12, 1e-12, "mean dim %d", d)
				requireClose(t, reduceDim(a, d, keep, math.Inf(-1), math.Max), x.Amax(keep, int64(d)), 0, 0, "amax dim %d", d)
				requireClose(t, reduceDim(a, d, keep, math.Inf(1), math.Min), x.Amin(keep, int64(d)), 0, 0, "amin dim %d", d)
				// Negative dims count from the end.
				requireClose(t, s, x.Sum(keep, int64(d-3)), 1e-12, 1e-12, "sum dim %d", d-3)
				lse := reduceDim(a, d, keep, 0, func(acc, v float64) float64 { return acc + math.Exp(v) }).map1(math.Log)
				requireClose(t, lse, x.LogSumExp(keep, int64(d)), 1e-12, 1e-12)
				nrm := reduceDim(a, d, keep, 0, func(acc, v float64) float64 { return acc + v*v }).map1(math.Sqrt)
				requireClose(t, nrm, x.Norm(keep, int64(d)), 1e-12, 1e-12)
			})
		}
	}
	scoped(t, func() {
		x := a.f64()
		total, mean := 0.0, 0.0
		for _, v := range a.data {
			total += v
		}
		mean = total / float64(len(a.data))
		requireClose(t, nd{[]int64{}, []float64{total}}, x.Sum(false), 1e-12, 1e-12)
		requireClose(t, nd{[]int64{}, []float64{mean}}, x.Mean(false), 1e-12, 1e-12)
		// Two dims at once.
		s01 := reduceDim(reduceDim(a, 0, true, 0, func(acc, v float64) float64 { return acc + v }), 1, true, 0, func(acc, v float64) float64 { return acc + v })
		s01.shape = []int64{5}
		requireClose(t, s01, x.Sum(false, 0, 1), 1e-12, 1e-12)
		best, bi := math.Inf(-1), 0
		for i, v := range a.data {
			if v > best {
				best, bi = v, i
			}
		}
		am, err := x.Argmax(false).Int64s()
		require.NoError(t, err)
		assert.Equal(t, []int64{int64(bi)}, am)
	})
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	a := randND(r, 3, 5).map1(func(v float64) float64 { return 3 * v })
	for _, d := range []int{0, 1} {
		scoped(t, func() {
			lse := reduceDim(a, d, true, 0, func(acc, v float64) float64 { return acc + math.Exp(v) }).map1(math.Log)
			logp := broadcast2(a, lse, func(x, l float64) float64 { return x - l })
			requireClose(t, logp, a.f64().LogSoftmax(int64(d)), 1e-12, 1e-12, "log_softmax dim %d", d)
			requireClose(t, logp.map1(math.Exp), a.f64().Softmax(int64(d)), 1e-12, 1e-12, "softmax dim %d", d)
			requireClose(t, logp.map1(math.Exp), a.f32().Softmax(int64(d)), 1e-6, 1e-5, "softmax float32 dim %d", d)
		})
	}
}

func TestLinearAlgebra(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	scoped(t, func() {
		a, b := randND(r, 4, 3), randND(r, 3, 5)
		want := matmulND(a, b)
		requireClose(t, want, a.f64().Matmul(b.f64()), 1e-12, 1e-12, "matmul")
		requireClose(t, want, a.f64().Mm(b.f64()), 1e-12, 1e-12, "mm")
		requireClose(t, want, a.f32().Matmul(b.f32()), 1e-5, 1e-5, "matmul float32")
		requireClose(t, want, Einsum("ij,jk->ik", a.f64(), b.f64()), 1e-12, 1e-12, "einsum")

		c := randND(r, 5)
		ab := broadcast2(want, c, func(x, y float64) float64 { return 0.5*y + 2*x })
		requireClose(t, ab, Addmm(c.f64(), a.f64(), b.f64(), 0.5, 2), 1e-12, 1e-12, "addmm")

		// linear(x, w, b) = x wᵀ + b, with and without bias.
		x, w, bias := randND(r, 6, 3), randND(r, 4, 3), randND(r, 4)
		xw := matmulND(x, transposeND(w))
		requireClose(t, broadcast2(xw, bias, func(p, q float64) float64 { return p + q }), Linear(x.f64(), w.f64(), bias.f64()), 1e-12, 1e-12, "linear")
		requireClose(t, xw, Linear(x.f64(), w.f64(), nil), 1e-12, 1e-12, "linear without bias")

		// bmm and baddbmm, batch by batch; matmul broadcasts a batch against a matrix.
		const B = 3
		ba, bb := randND(r, B, 2, 4), randND(r, B, 4, 3)
		wb := newND(B, 2, 3)
		for k := int64(0); k < B; k++ {
			m := matmulND(nd{[]int64{2, 4}, ba.data[k*8 : k*8+8]}, nd{[]int64{4, 3}, bb.data[k*12 : k*12+12]})
			copy(wb.data[k*6:], m.data)
		}
		requireClose(t, wb, ba.f64().Bmm(bb.f64()), 1e-12, 1e-12, "bmm")
		requireClose(t, wb, Einsum("bij,bjk->bik", ba.f64(), bb.f64()), 1e-12, 1e-12, "einsum batched")
		bc := randND(r, B, 2, 3)
		requireClose(t, broadcast2(bc, wb, func(p, q float64) float64 { return -p + 0.5*q }), Baddbmm(bc.f64(), ba.f64(), bb.f64(), -1, 0.5), 1e-12, 1e-12, "baddbmm")
		m := randND(r, 4, 3)
		wm := newND(B, 2, 3)
		for k := int64(0); k < B; k++ {
			p := matmulND(nd{[]int64{2, 4}, ba.data[k*8 : k*8+8]}, m)
			copy(wm.data[k*6:], p.data)
		}
		requireClose(t, wm, ba.f64().Matmul(m.f64()), 1e-12, 1e-12, "matmul broadcast")

		// Per-sample weights, as the models use einsum: "bi,bio->bo".
		xs, ws := randND(r, B, 4), randND(r, B, 4, 2)
		we := newND(B, 2)
		for k := int64(0); k < B; k++ {
			for o := int64(0); o < 2; o++ {
				s := 0.0
				for i := int64(0); i < 4; i++ {
					s += xs.at(k, i) * ws.at(k, i, o)
				}
				we.set(s, k, o)
			}
		}
		requireClose(t, we, Einsum("bi,bio->bo", xs.f64(), ws.f64()), 1e-12, 1e-12, "einsum bi,bio->bo")
		assert.ErrorContains(t, Einsum("ij,jk->ik").Err(), "no operands")
	})
}

func TestUnique(t *testing.T) {
	scoped(t, func() {
		v, inv := FromSlice([]int64{5, 3, 5, 9, 3}).Unique()
		vals, err := v.Int64s()
		require.NoError(t, err)
		idx, err := inv.Int64s()
		require.NoError(t, err)
		assert.Equal(t, []int64{3, 5, 9}, vals)
		assert.Equal(t, []int64{1, 0, 1, 2, 0}, idx)
	})
}
