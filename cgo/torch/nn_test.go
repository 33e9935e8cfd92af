package torch

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"math"
	"math/rand"
	"testing"
)

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewSource(20))
	scoped(t, func() {
		x, w, b := randND(r, 4, 6), randND(r, 6), randND(r, 6)
		const eps = 1e-5
		want := newND(4, 6)
		plain := newND(4, 6)
		for i := int64(0); i < 4; i++ {
			m, v := 0.0, 0.0
			for j := int64(0); j < 6; j++ {
				m += x.at(i, j)
			}
			m /= 6
			for j := int64(0); j < 6; j++ {
				v += (x.at(i, j) - m) * (x.at(i, j) - m)
			}
			v /= 6 // biased variance, as torch uses
			for j := int64(0); j < 6; j++ {
				n := (x.at(i, j) - m) / math.Sqrt(v+eps)
				plain.set(n, i, j)
				want.set(n*w.data[j]+b.data[j], i, j)
			}
		}
		requireClose(t, want, LayerNorm(x.f64(), []int64{6}, w.f64(), b.f64(), eps), 1e-12, 1e-10)
		requireClose(t, plain, LayerNorm(x.f64(), []int64{6}, nil, nil, eps), 1e-12, 1e-10)
		requireClose(t, want, LayerNorm(x.f32(), []int64{6}, w.f32(), b.f32(), eps), 1e-5, 1e-5, "float32")
	})
}

func TestBatchNorm(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	scoped(t, func() {
		const n, c, eps, mom = 8, 3, 1e-5, 0.1
		x, w, b := randND(r, n, c), randND(r, c), randND(r, c)
		rm0, rv0 := randND(r, c), randND(r, c).map1(func(v float64) float64 { return math.Abs(v) + 0.5 })
		rm, rv := rm0.f64(), rv0.f64()

		// Training: batch statistics (biased variance) normalise; the running
		// statistics move by momentum, with the unbiased variance.
		want := newND(n, c)
		wantRM, wantRV := newND(c), newND(c)
		mean, varb := make([]float64, c), make([]float64, c)
		for j := int64(0); j < c; j++ {
			for i := int64(0); i < n; i++ {
				mean[j] += x.at(i, j) / n
			}
			for i := int64(0); i < n; i++ {
				d := x.at(i, j) - mean[j]
				varb[j] += d * d / n
			}
			for i := int64(0); i < n; i++ {
				want.set((x.at(i, j)-mean[j])/math.Sqrt(varb[j]+eps)*w.data[j]+b.data[j], i, j)
			}
			wantRM.data[j] = (1-mom)*rm0.data[j] + mom*mean[j]
			wantRV.data[j] = (1-mom)*rv0.data[j] + mom*varb[j]*n/(n-1)
		}
		requireClose(t, want, BatchNorm(x.f64(), w.f64(), b.f64(), rm, rv, true, mom, eps), 1e-12, 1e-10, "train output")
		requireClose(t, wantRM, rm, 1e-12, 1e-12, "running mean")
		requireClose(t, wantRV, rv, 1e-12, 1e-12, "running var")

		// Eval: the running statistics normalise and stay put.
		x2 := randND(r, 5, c)
		want2 := newND(5, c)
		for i := int64(0); i < 5; i++ {
			for j := int64(0); j < c; j++ {
				want2.set((x2.at(i, j)-wantRM.data[j])/math.Sqrt(wantRV.data[j]+eps)*w.data[j]+b.data[j], i, j)
			}
		}
		requireClose(t, want2, BatchNorm(x2.f64(), w.f64(), b.f64(), rm, rv, false, mom, eps), 1e-12, 1e-10, "eval output")
		requireClose(t, wantRM, rm, 0, 0, "running mean after eval")
		requireClose(t, wantRV, rv, 0, 0, "running var after eval")

		// Without running statistics or affine parameters (training only).
		plain := BatchNorm(x.f64(), nil, nil, nil, nil, true, mom, eps)
		pv := values(t, plain)
		for j := int64(0); j < c; j++ {
			want := (x.at(0, j) - mean[j]) / math.Sqrt(varb[j]+eps)
			assert.InDelta(t, want, pv.at(0, j), 1e-10)
		}
		assert.ErrorContains(t, BatchNorm(x.f64(), nil, nil, nil, nil, false, mom, eps).Err(), "running_mean must be defined")
	})
}

func TestDropout(t *testing.T) {
	scoped(t, func() {
		const p, n = 0.3, 20000
		x := Full([]int64{n}, 2, Float32, CPU)
		require.NoError(t, ManualSeed(3))
		y := values(t, Dropout(x, p, true))
		zeros := 0
		for _, v := range y.data {
			if v == 0 {
				zeros++
			} else {
				require.InDelta(t, 2/(1-p), v, 1e-6, "survivors are scaled by 1/(1-p)")
			}
		}
		// Binomial(n, p): std ≈ 65, so 5 standard deviations is 325.
		assert.InDelta(t, p*n, float64(zeros), 325)
		// Same seed, same mask.
		require.NoError(t, ManualSeed(3))
		assert.Equal(t, y, values(t, Dropout(x, p, true)))
		// Eval, and p = 0, are the identity.
		assert.Equal(t, values(t, x), values(t, Dropout(x, p, false)))
		assert.Equal(t, values(t, x), values(t, Dropout(x, 0, true)))
	})
}

func TestEmbedding(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	scoped(t, func() {
		w := randND(r, 6, 3)
		idx := []int64{5, 0, 2, 2, 4, 1}
		e := Embedding(w.f32(), FromSlice(idx, 2, 3))
		want := newND(2, 3, 3)
		for i, k := range idx {
			for j := int64(0); j < 3; j++ {
				want.data[int64(i)*3+j] = float64(float32(w.at(k, j)))
			}
		}
		requireClose(t, want, e, 0, 0)
		assert.ErrorContains(t, Embedding(w.f32(), FromSlice([]int64{6})).Err(), "index out of range")
	})
}

func TestEmbeddingBag(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	w := randND(r, 7, 2)
	idx := []int64{1, 6, 6, 0, 3, 2, 5}
	offsets := []int64{0, 3, 3, 5} // bags [1 6 6], [], [0 3], [2 5]
	psw := randND(r, int64(len(idx)))
	bags := [][2]int{{0, 3}, {3, 3}, {3, 5}, {5, 7}}
	ref := func(mode BagMode, weights []float64) nd {
		out := newND(4, 2)
		for b, se := range bags {
			for j := int64(0); j < 2; j++ {
				acc := 0.0
				if mode == BagMax {
					acc = math.Inf(-1)
				}
				for k := se[0]; k < se[1]; k++ {
					v := w.at(idx[k], j)
					switch {
					case mode == BagMax:
						acc = math.Max(acc, v)
					case weights != nil:
						acc += weights[k] * v
					default:
						acc += v
					}
				}
				cnt := se[1] - se[0]
				switch {
				case cnt == 0:
					acc = 0 // empty bags give zeros in every mode
				case mode == BagMean:
					acc /= float64(cnt)
				}
				out.set(acc, int64(b), j)
			}
		}
		return out
	}
	cases := []struct {
		name    string
		mode    BagMode
		weights []float64
	}{
		{"sum", BagSum, nil},
		{"mean", BagMean, nil},
		{"max", BagMax, nil},
		{"sum with per-sample weights", BagSum, psw.data},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scoped(t, func() {
				var pw *Tensor
				if c.weights != nil {
					pw = FromSlice(c.weights)
				}
				got := EmbeddingBag(w.f64(), FromSlice(idx), FromSlice(offsets), c.mode, pw)
				requireClose(t, ref(c.mode, c.weights), got, 1e-12, 1e-12)
			})
		})
	}
}

func TestBCEWithLogits(t *testing.T) {
	r := rand.New(rand.NewSource(24))
	x := randND(r, 4, 3).map1(func(v float64) float64 { return 3 * v })
	y := newND(4, 3)
	for i := range y.data {
		y.data[i] = float64(r.Intn(2))
	}
	y.data[0] = 0.3 // soft labels are allowed
	wt := randND(r, 4, 3).map1(math.Abs)
	pw := randND(r, 3).map1(func(v float64) float64 { return math.Abs(v) + 0.5 })
	elem := func(weight, posWeight bool) nd {
		out := newND(4, 3)
		for i := range out.data {
			p, l := x.data[i], y.data[i]
			pwv := 1.0
			if posWeight {
				pwv = pw.data[i%3]
			}
			v := -(pwv*l*math.Log(sigmoid(p)) + (1-l)*math.Log(1-sigmoid(p)))
			if weight {
				v *= wt.data[i]
			}
			out.data[i] = v
		}
		return out
	}
	total := func(a nd) float64 {
		s := 0.0
		for _, v := range a.data {
			s += v
		}
		return s
	}
	for _, weight := range []bool{false, true} {
		for _, posWeight := range []bool{false, true} {
			scoped(t, func() {
				var wT, pT *Tensor
				if weight {
					wT = wt.f64()
				}
				if posWeight {
					pT = pw.f64()
				}
				e := elem(weight, posWeight)
				requireClose(t, e, BCEWithLogits(x.f64(), y.f64(), wT, pT, ReduceNone), 1e-12, 1e-10, "none weight=%v pos=%v", weight, posWeight)
				requireClose(t, nd{[]int64{}, []float64{total(e)}}, BCEWithLogits(x.f64(), y.f64(), wT, pT, ReduceSum), 1e-12, 1e-10, "sum")
				requireClose(t, nd{[]int64{}, []float64{total(e) / 12}}, BCEWithLogits(x.f64(), y.f64(), wT, pT, ReduceMean), 1e-12, 1e-10, "mean")
				requireClose(t, nd{[]int64{}, []float64{total(elem(false, false)) / 12}}, BCEWithLogits(x.f32(), y.f32(), nil, nil, ReduceMean).ToDType(Float64), 1e-5, 1e-5, "float32")
			})
		}
	}
	scoped(t, func() {
		// Large logits stay finite (the stable formulation).
		big := BCEWithLogits(FromSlice([]float32{100, -100}), FromSlice([]float32{0, 1}), nil, nil, ReduceNone)
		requireClose(t, nd{[]int64{2}, []float64{100, 100}}, big, 1e-4, 0)
		assert.ErrorContains(t, BCEWithLogits(x.f64(), y.f64(), nil, nil, Reduction(7)).Err(), "unknown reduction")
	})
}

func TestInit(t *testing.T) {
	const fanOut, fanIn = 256, 512
	moments := func(t *testing.T, x *Tensor) (mean, std, lo, hi float64) {
		v := values(t, x)
		lo, hi = math.Inf(1), math.Inf(-1)
		sq := 0.0
		for _, f := range v.data {
			mean += f
			sq += f * f
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
		n := float64(len(v.data))
		mean /= n
		return mean, math.Sqrt(sq/n - mean*mean), lo, hi
	}
	xavier := math.Sqrt(2.0 / (fanIn + fanOut))
	kaimingGain := func(a float64) float64 { return math.Sqrt(2 / (1 + a*a)) }
	cases := []struct {
		name     string
		kind     InitKind
		p1, p2   float64
		std      float64
		bound    float64 // 0: unbounded (normal)
		constant bool
	}{
		{"uniform", InitUniform, -0.3, 0.5, 0.8 / math.Sqrt(12), 0, false},
		{"normal", InitNormal, 0, 0.2, 0.2, 0, false},
		{"xavier uniform", InitXavierUniform, 1.5, 0, 1.5 * xavier, 1.5 * xavier * math.Sqrt(3), false},
		{"xavier normal", InitXavierNormal, 0.5, 0, 0.5 * xavier, 0, false},
		{"kaiming uniform", InitKaimingUniform, math.Sqrt(5), 0, kaimingGain(math.Sqrt(5)) / math.Sqrt(fanIn), kaimingGain(math.Sqrt(5)) * math.Sqrt(3.0/fanIn), false},
		{"kaiming normal", InitKaimingNormal, 0, 0, kaimingGain(0) / math.Sqrt(fanIn), 0, false},
		{"constant", InitConstant, 0.25, 0, 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scoped(t, func() {
				x := Randn([]int64{fanOut, fanIn}, Float32, CPU)
				require.NoError(t, x.SetRequiresGrad(true)) // parameters are initialised as leaves
				require.NoError(t, x.Init(c.kind, c.p1, c.p2))
				mean, std, lo, hi := moments(t, x)
				if c.constant {
					assert.Equal(t, [2]float64{0.25, 0.25}, [2]float64{lo, hi})
					return
				}
				wantMean := 0.0
				if c.kind == InitUniform {
					wantMean = (c.p1 + c.p2) / 2
					assert.True(t, lo >= c.p1 && hi < c.p2, "range [%v, %v]", lo, hi)
				}
				// 131072 draws: the sample std is within 1% of the true one.
				assert.InDelta(t, wantMean, mean, 0.02*c.std)
				assert.InDelta(t, c.std, std, 0.01*c.std)
				if c.bound > 0 {
					assert.True(t, lo >= -c.bound*(1+1e-6) && hi <= c.bound*(1+1e-6), "range [%v, %v] beyond ±%v", lo, hi, c.bound)
					assert.True(t, hi > 0.99*c.bound, "range [%v, %v] should reach ±%v", lo, hi, c.bound)
				}
			})
		})
	}
	scoped(t, func() {
		// Same seed, same initialisation.
		x, y := Empty([]int64{4, 4}, Float32, CPU), Empty([]int64{4, 4}, Float32, CPU)
		require.NoError(t, ManualSeed(11))
		require.NoError(t, x.Init(InitXavierUniform, 1, 0))
		require.NoError(t, ManualSeed(11))
		require.NoError(t, y.Init(InitXavierUniform, 1, 0))
		assert.Equal(t, values(t, x), values(t, y))
	})
}
