package torch

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"math"
	"math/rand"
	"testing"
)

// gradCheck compares autograd's gradient of a scalar function of the inputs
// with central finite differences in float64. f maps the float64 input
// tensors to any tensor; gradCheck projects it onto fixed random weights and
// sums, so every output element contributes with a different weight.
func gradCheck(t *testing.T, inputs []nd, f func(in []*Tensor) *Tensor) {
	t.Helper()
	const h, atol, rtol = 1e-6, 1e-6, 1e-5
	r := rand.New(rand.NewSource(99))
	var proj nd
	loss := func(in []*Tensor) *Tensor {
		out := f(in)
		if proj.shape == nil {
			proj = randND(r, out.Shape()...)
		}
		return out.Mul(proj.f64()).Sum(false)
	}
	scoped(t, func() {
		// Autograd.
		leaves := make([]*Tensor, len(inputs))
		for i, in := range inputs {
			leaves[i] = in.f64()
			require.NoError(t, leaves[i].SetRequiresGrad(true))
		}
		l := loss(leaves)
		require.NoError(t, l.Err())
		require.NoError(t, l.Backward())
		analytic := make([]nd, len(inputs))
		for i, leaf := range leaves {
			g := leaf.Grad()
			if g == nil {
				analytic[i] = newND(inputs[i].shape...) // no path to the output: zero gradient
				continue
			}
			analytic[i] = values(t, g)
		}

		// Finite differences, without autograd.
		eval := func(in []nd) float64 {
			var v float64
			NoGrad(func() {
				s := NewScope()
				defer s.Close()
				ts := make([]*Tensor, len(in))
				for i, a := range in {
					ts[i] = a.f64()
				}
				x, err := loss(ts).Item()
				require.NoError(t, err)
				v = x
			})
			return v
		}
		for i, in := range inputs {
			numeric := newND(in.shape...)
			for k := range in.data {
				perturbed := func(delta float64) []nd {
					cp := make([]nd, len(inputs))
					copy(cp, inputs)
					d := append([]float64(nil), in.data...)
					d[k] += delta
					cp[i] = nd{in.shape, d}
					return cp
				}
				numeric.data[k] = (eval(perturbed(h)) - eval(perturbed(-h))) / (2 * h)
			}
			require.Equal(t, numeric.shape, analytic[i].shape, "gradient shape of input %d", i)
			requireSliceClose(t, numeric.data, analytic[i].data, atol, rtol, "gradient of input %d", i)
		}
	})
}

func TestGradients(t *testing.T) {
	r := rand.New(rand.NewSource(30))
	rn := func(shape ...int64) nd { return randND(r, shape...) }
	positive := func(shape ...int64) nd {
		return rn(shape...).map1(func(v float64) float64 { return math.Abs(v) + 0.5 })
	}
	labels := newND(3, 4)
	for i := range labels.data {
		labels.data[i] = float64(r.Intn(2))
	}
	i64 := func(v ...int64) *Tensor { return FromSlice(v) }
	bceWeight, bcePosWeight := positive(3, 4), positive(4)

	cases := []struct {
		name   string
		inputs []nd
		f      func(in []*Tensor) *Tensor
	}{
		{"add broadcast", []nd{rn(3, 4), rn(4)}, func(in []*Tensor) *Tensor { return in[0].Add(in[1]) }},
		{"sub broadcast", []nd{rn(3, 1), rn(1, 4)}, func(in []*Tensor) *Tensor { return in[0].Sub(in[1]) }},
		{"mul broadcast", []nd{rn(2, 3, 4), rn(3, 1)}, func(in []*Tensor) *Tensor { return in[0].Mul(in[1]) }},
		{"div", []nd{rn(3, 4), positive(3, 4)}, func(in []*Tensor) *Tensor { return in[0].Div(in[1]) }},
		{"scalar ops", []nd{rn(5)}, func(in []*Tensor) *Tensor {
			return in[0].MulScalar(3).AddScalar(1).DivScalar(2).SubScalar(0.5).RSubScalar(2)
		}},
		{"pow", []nd{positive(4), rn(4)}, func(in []*Tensor) *Tensor { return in[0].Pow(in[1]) }},
		{"maximum", []nd{rn(6), rn(6)}, func(in []*Tensor) *Tensor { return in[0].Maximum(in[1]) }},
		{"matmul", []nd{rn(3, 4), rn(4, 2)}, func(in []*Tensor) *Tensor { return in[0].Matmul(in[1]) }},
		{"matmul batched", []nd{rn(2, 3, 4), rn(4, 2)}, func(in []*Tensor) *Tensor { return in[0].Matmul(in[1]) }},
		{"addmm", []nd{rn(2), rn(3, 4), rn(4, 2)}, func(in []*Tensor) *Tensor { return Addmm(in[0], in[1], in[2], 0.5, 2) }},
		{"linear", []nd{rn(5, 3), rn(4, 3), rn(4)}, func(in []*Tensor) *Tensor { return Linear(in[0], in[1], in[2]) }},
		{"bmm", []nd{rn(2, 3, 4), rn(2, 4, 2)}, func(in []*Tensor) *Tensor { return in[0].Bmm(in[1]) }},
		{"einsum bi,bio->bo", []nd{rn(3, 4), rn(3, 4, 2)}, func(in []*Tensor) *Tensor { return Einsum("bi,bio->bo", in[0], in[1]) }},
		{"sum dim", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor { return in[0].Sum(false, 1) }},
		{"mean dim keep", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor { return in[0].Mean(true, 0) }},
		{"logsumexp", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor { return in[0].LogSumExp(false, 1) }},
		{"relu", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Relu() }},
		{"leaky_relu", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].LeakyRelu(0.2) }},
		{"sigmoid", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Sigmoid() }},
		{"tanh", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Tanh() }},
		{"gelu", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Gelu() }},
		{"silu", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Silu() }},
		{"exp", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Exp() }},
		{"log", []nd{positive(10)}, func(in []*Tensor) *Tensor { return in[0].Log() }},
		{"sqrt square", []nd{positive(10)}, func(in []*Tensor) *Tensor { return in[0].Sqrt().Add(in[0].Square()) }},
		{"clamp", []nd{rn(10)}, func(in []*Tensor) *Tensor { return in[0].Clamp(-0.5, 0.5) }},
		{"softmax", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor { return in[0].Softmax(1) }},
		{"log_softmax", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor { return in[0].LogSoftmax(0) }},
		{"layer_norm", []nd{rn(3, 5), rn(5), rn(5)}, func(in []*Tensor) *Tensor {
			return LayerNorm(in[0], []int64{5}, in[1], in[2], 1e-5)
		}},
		{"batch_norm train", []nd{rn(6, 3), rn(3), rn(3)}, func(in []*Tensor) *Tensor {
			return BatchNorm(in[0], in[1], in[2], nil, nil, true, 0.1, 1e-5)
		}},
		{"batch_norm eval", []nd{rn(6, 3), rn(3), rn(3)}, func(in []*Tensor) *Tensor {
			return BatchNorm(in[0], in[1], in[2], FromSlice([]float64{0.1, -0.2, 0.3}), FromSlice([]float64{1.5, 0.7, 2}), false, 0.1, 1e-5)
		}},
		{"dropout", []nd{rn(20)}, func(in []*Tensor) *Tensor {
			require.NoError(t, ManualSeed(5)) // the same mask on every evaluation
			return Dropout(in[0], 0.4, true)
		}},
		{"embedding", []nd{rn(5, 3)}, func(in []*Tensor) *Tensor { return Embedding(in[0], FromSlice([]int64{4, 0, 4, 2}, 2, 2)) }},
		{"embedding_bag sum weighted", []nd{rn(5, 3), rn(6)}, func(in []*Tensor) *Tensor {
			return EmbeddingBag(in[0], i64(1, 4, 4, 0, 2, 3), i64(0, 2, 2), BagSum, in[1])
		}},
		{"embedding_bag mean", []nd{rn(5, 3)}, func(in []*Tensor) *Tensor {
			return EmbeddingBag(in[0], i64(1, 4, 4, 0, 2, 3), i64(0, 2, 5), BagMean, nil)
		}},
		{"embedding_bag max", []nd{rn(5, 3)}, func(in []*Tensor) *Tensor {
			return EmbeddingBag(in[0], i64(1, 4, 0, 2, 3), i64(0, 3), BagMax, nil)
		}},
		{"bce_with_logits weighted mean", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor {
			// libtorch has no gradient for weight and pos_weight; they are constants here.
			return BCEWithLogits(in[0], labels.f64(), bceWeight.f64(), bcePosWeight.f64(), ReduceMean)
		}},
		{"bce_with_logits none", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor {
			return BCEWithLogits(in[0], labels.f64(), nil, nil, ReduceNone)
		}},
		{"gather", []nd{rn(3, 4)}, func(in []*Tensor) *Tensor { return in[0].Gather(1, FromSlice([]int64{0, 3, 3, 1, 2, 2}, 3, 2)) }},
		{"index_select", []nd{rn(4, 3)}, func(in []*Tensor) *Tensor { return in[0].IndexSelect(0, i64(3, 1, 3)) }},
		{"scatter_add", []nd{rn(3, 4), rn(3, 2)}, func(in []*Tensor) *Tensor {
			return in[0].ScatterAdd(1, FromSlice([]int64{0, 0, 3, 1, 2, 2}, 3, 2), in[1])
		}},
		{"index_add", []nd{rn(4, 3), rn(2, 3)}, func(in []*Tensor) *Tensor { return in[0].IndexAdd(0, i64(2, 2), in[1]) }},
		{"masked_fill", []nd{rn(2, 3)}, func(in []*Tensor) *Tensor {
			return in[0].MaskedFill(FromSlice([]bool{true, false, false, true, false, true}, 2, 3), 0.5)
		}},
		{"where", []nd{rn(6), rn(6)}, func(in []*Tensor) *Tensor {
			return Where(FromSlice([]bool{true, false, false, true, false, true}), in[0], in[1])
		}},
		{"cat stack", []nd{rn(2, 3), rn(1, 3)}, func(in []*Tensor) *Tensor {
			c := Cat([]*Tensor{in[0], in[1]}, 0)
			return Stack([]*Tensor{c, c.MulScalar(2)}, 2)
		}},
		{"reshape transpose permute", []nd{rn(2, 3, 4)}, func(in []*Tensor) *Tensor {
			return in[0].Permute(2, 0, 1).Reshape(4, 6).Transpose(0, 1).Unsqueeze(0).Narrow(1, 1, 4)
		}},
		{"mlp", []nd{rn(3, 3), rn(5, 3), rn(5), rn(1, 5), rn(1)}, func(in []*Tensor) *Tensor {
			h := Linear(in[0], in[1], in[2]).Relu()
			return BCEWithLogits(Linear(h, in[3], in[4]), labels.f64().Narrow(1, 0, 1), nil, nil, ReduceMean)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { gradCheck(t, c.inputs, c.f) })
	}
}

func TestAutogradMechanics(t *testing.T) {
	scoped(t, func() {
		x := FromSlice([]float32{1, -2, 3})
		assert.False(t, x.RequiresGrad())
		assert.Nil(t, x.Grad(), "no gradient before backward")
		require.NoError(t, x.SetRequiresGrad(true))
		assert.True(t, x.RequiresGrad())

		// Gradients accumulate across backward calls until zeroed.
		for i := 0; i < 2; i++ {
			require.NoError(t, x.Mul(x).Sum(false).Backward())
		}
		g, err := x.Grad().Float32s()
		require.NoError(t, err)
		assert.Equal(t, []float32{4, -8, 12}, g)
		require.NoError(t, ZeroGrad(x))
		assert.Nil(t, x.Grad(), "ZeroGrad drops the gradient")

		// BackwardWith on a non-scalar output, retaining the graph for a second pass.
		y := x.MulScalar(2)
		require.NoError(t, y.BackwardWith(FromSlice([]float32{1, 0, 3}), true))
		require.NoError(t, y.BackwardWith(FromSlice([]float32{1, 0, 3}), false))
		g, _ = x.Grad().Float32s()
		assert.Equal(t, []float32{4, 0, 12}, g)
		assert.ErrorContains(t, x.MulScalar(2).Backward(), "grad can be implicitly created only for scalar outputs")

		// No-grad scope: nothing is recorded, and the mode is restored after.
		assert.True(t, GradEnabled())
		var z *Tensor
		NoGrad(func() {
			assert.False(t, GradEnabled())
			z = x.MulScalar(3)
		})
		assert.True(t, GradEnabled())
		assert.False(t, z.RequiresGrad())
		assert.ErrorContains(t, z.Sum(false).Backward(), "does not require grad")

		// Gradient clipping scales to the joint norm.
		require.NoError(t, ZeroGrad(x))
		w := FromSlice([]float32{0, 0})
		require.NoError(t, w.SetRequiresGrad(true))
		loss := x.Sum(false).MulScalar(2).Add(w.Sum(false).MulScalar(4))
		require.NoError(t, loss.Backward())
		norm, err := ClipGradNorm([]*Tensor{x, w}, 1)
		require.NoError(t, err)
		want := math.Sqrt(3*4 + 2*16)
		assert.InDelta(t, want, norm, 1e-5)
		gx, _ := x.Grad().Float32s()
		assert.InDelta(t, 2/want, float64(gx[0]), 1e-5)
	})
}
