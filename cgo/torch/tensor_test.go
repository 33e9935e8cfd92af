package torch

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"math"
	"math/rand"
	"testing"
)

func TestRoundTripDTypes(t *testing.T) {
	scoped(t, func() {
		r := rand.New(rand.NewSource(1))
		f32 := make([]float32, 6)
		f64 := make([]float64, 6)
		i64 := make([]int64, 6)
		bs := make([]bool, 6)
		for i := range f32 {
			f32[i] = float32(r.NormFloat64())
			f64[i] = r.NormFloat64()
			i64[i] = r.Int63() - 1<<62
			bs[i] = r.Intn(2) == 1
		}
		cases := []struct {
			name string
			x    *Tensor
			dt   DType
			read func(*Tensor) (any, error)
			want any
		}{
			{"float32", FromSlice(f32, 2, 3), Float32, func(x *Tensor) (any, error) { return x.Float32s() }, f32},
			{"float64", FromSlice(f64, 2, 3), Float64, func(x *Tensor) (any, error) { return x.Float64s() }, f64},
			{"int64", FromSlice(i64, 2, 3), Int64, func(x *Tensor) (any, error) { return x.Int64s() }, i64},
			{"bool", FromSlice(bs, 2, 3), Bool, func(x *Tensor) (any, error) { return x.Bools() }, bs},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				require.NoError(t, c.x.Err())
				info, err := c.x.Info()
				require.NoError(t, err)
				assert.Equal(t, Info{DType: c.dt, Shape: []int64{2, 3}, Device: CPU}, info)
				assert.Equal(t, c.dt, c.x.DType())
				assert.Equal(t, int64(6), c.x.Numel())
				assert.Equal(t, CPU, c.x.Device())
				got, err := c.read(c.x)
				require.NoError(t, err)
				assert.Equal(t, c.want, got)
				// Reading back as the wrong Go type is refused, not reinterpreted.
				_, err = Values[int32](c.x)
				assert.ErrorContains(t, err, "asked for int32")
			})
		}
		// Empty and 0-d tensors.
		e := FromSlice([]float32{}, 0, 4)
		require.NoError(t, e.Err())
		assert.Equal(t, []int64{0, 4}, e.Shape())
		v, err := e.Float32s()
		require.NoError(t, err)
		assert.Empty(t, v)
		s := Scalar(2.5)
		assert.Equal(t, []int64{}, s.Shape())
		item, err := s.Item()
		require.NoError(t, err)
		assert.Equal(t, 2.5, item)
		assert.ErrorContains(t, FromSlice([]float32{1, 2, 3}, 2, 2).Err(), "holds 4 elements, data has 3")
		assert.ErrorContains(t, FromSlice([]float32{}, -1).Err(), "negative dimension")
	})
}

// A named element type must map to its underlying dtype, not be misread as bytes.
func TestFromSliceNamedType(t *testing.T) {
	type score float64
	scoped(t, func() {
		x := FromSlice([]score{1.5, -2.25})
		require.NoError(t, x.Err())
		assert.Equal(t, Float64, x.DType())
		v, err := x.Float64s()
		require.NoError(t, err)
		assert.Equal(t, []float64{1.5, -2.25}, v)
	})
}

func TestToConvertsDTypeAndDevice(t *testing.T) {
	scoped(t, func() {
		x := FromSlice([]float64{1.7, -2.2, 0, 3.9})
		i := x.ToDType(Int64)
		iv, err := i.Int64s()
		require.NoError(t, err)
		assert.Equal(t, []int64{1, -2, 0, 3}, iv) // truncation toward zero, as in C
		b, err := x.To(Bool, CPU).Bools()
		require.NoError(t, err)
		assert.Equal(t, []bool{true, true, false, true}, b)
		f, err := x.ToDevice(CPU, false).To(Float32, CPU).Float32s()
		require.NoError(t, err)
		assert.Equal(t, []float32{1.7, -2.2, 0, 3.9}, f)
		assert.Equal(t, "Tensor(float32, [4], cpu)", x.To(Float32, CPU).String())
	})
}

func TestCreation(t *testing.T) {
	scoped(t, func() {
		cases := []struct {
			name string
			x    *Tensor
			want []float64
		}{
			{"zeros", Zeros([]int64{2, 2}, Float32, CPU), []float64{0, 0, 0, 0}},
			{"ones", Ones([]int64{3}, Float64, CPU), []float64{1, 1, 1}},
			{"full", Full([]int64{2}, -1.25, Float32, CPU), []float64{-1.25, -1.25}},
			{"arange", Arange(2, 8, 1.5, Float64, CPU), []float64{2, 3.5, 5, 6.5}},
			{"arange int64", Arange(0, 5, 2, Int64, CPU), []float64{0, 2, 4}},
			{"arange negative step", Arange(1, -1, -0.5, Float32, CPU), []float64{1, 0.5, 0, -0.5}},
		}
		for _, c := range cases {
			g := values(t, c.x)
			assert.Equal(t, c.want, g.data, c.name)
		}
		assert.Equal(t, Int64, Arange(0, 5, 2, Int64, CPU).DType())

		// Random tensors: the right moments and ranges.
		require.NoError(t, ManualSeed(7))
		n := Randn([]int64{200, 100}, Float64, CPU)
		v := values(t, n)
		mean, sq := 0.0, 0.0
		for _, x := range v.data {
			mean += x
			sq += x * x
		}
		mean /= float64(len(v.data))
		std := math.Sqrt(sq/float64(len(v.data)) - mean*mean)
		assert.InDelta(t, 0, mean, 0.03)
		assert.InDelta(t, 1, std, 0.03)
		u := values(t, Rand([]int64{20000}, Float32, CPU))
		mean = 0
		for _, x := range u.data {
			require.True(t, x >= 0 && x < 1, "rand out of [0, 1): %v", x)
			mean += x
		}
		assert.InDelta(t, 0.5, mean/float64(len(u.data)), 0.01)
		ri, err := Randint(3, 6, []int64{1000}, CPU).Int64s()
		require.NoError(t, err)
		seen := map[int64]bool{}
		for _, x := range ri {
			seen[x] = true
		}
		assert.Equal(t, map[int64]bool{3: true, 4: true, 5: true}, seen)
		assert.Equal(t, []int64{3, 0, 2}, Empty([]int64{3, 0, 2}, Float32, CPU).Shape())
	})
}

// ManualSeed makes libtorch's generator repeat itself, and matches PyTorch's.
func TestManualSeed(t *testing.T) {
	scoped(t, func() {
		draw := func(seed uint64) (nd, nd) {
			require.NoError(t, ManualSeed(seed))
			return values(t, Randn([]int64{5}, Float32, CPU)), values(t, Rand([]int64{3}, Float64, CPU))
		}
		a1, b1 := draw(42)
		a2, b2 := draw(42)
		assert.Equal(t, a1, a2)
		assert.Equal(t, b1, b2)
		a3, _ := draw(43)
		assert.NotEqual(t, a1.data, a3.data)
		// Made by /usr/bin/python3 (torch 1.13):
		//   torch.manual_seed(42); torch.randn(5); torch.rand(3, dtype=torch.float64)
		requireSliceClose(t, []float64{0.33669036626815796, 0.12880940735340118, 0.23446236550807953, 0.23033303022384644, -1.1228563785552979}, a1.data, 1e-7, 0)
		requireSliceClose(t, []float64{0.9552357002491416, 0.9287525814574296, 0.08354336875286783}, b1.data, 1e-12, 0)
	})
}

func TestShapes(t *testing.T) {
	scoped(t, func() {
		r := rand.New(rand.NewSource(2))
		a := randND(r, 2, 3, 4)
		x := a.f64()
		assert.Equal(t, []int64{6, 4}, x.Reshape(6, 4).Shape())
		assert.Equal(t, []int64{4, 6}, x.View(4, -1).Shape())
		requireClose(t, nd{[]int64{24}, a.data}, x.View(-1), 0, 0)
		// A transposed tensor cannot be viewed, only reshaped (which copies).
		tr := x.Transpose(1, 2)
		assert.Equal(t, []int64{2, 4, 3}, tr.Shape())
		assert.ErrorContains(t, tr.View(24).Err(), "view size is not compatible")
		flat := values(t, tr.Reshape(24))
		for i := int64(0); i < 2; i++ {
			for j := int64(0); j < 4; j++ {
				for k := int64(0); k < 3; k++ {
					require.Equal(t, a.at(i, k, j), flat.data[i*12+j*3+k])
				}
			}
		}
		assert.Equal(t, []int64{4, 2, 3}, x.Permute(2, 0, 1).Shape())
		assert.Equal(t, []int64{2, 1, 3, 4}, x.Unsqueeze(1).Shape())
		assert.Equal(t, []int64{2, 3, 4}, x.Unsqueeze(1).Squeeze(1).Shape())
		assert.Equal(t, []int64{2, 12}, x.Flatten(1, -1).Shape())
		assert.Equal(t, []int64{3, 4}, x.Select(0, 1).Shape())
		requireClose(t, nd{[]int64{1, 3, 4}, a.data[12:]}, x.Narrow(0, 1, 1), 0, 0)
		assert.Equal(t, []int64{2, 6, 4}, x.Repeat(1, 2, 1).Shape())
		assert.Equal(t, []int64{5, 3}, FromSlice([]float32{1, 2, 3}).Expand(5, 3).Shape())
		assert.Equal(t, []int64{3}, FromSlice([]float32{1, 2, 3}, 1, 3, 1).SqueezeAll().Shape())
		m := randND(r, 3, 2)
		requireClose(t, transposeND(m), m.f64().T(), 0, 0)
	})
}

func TestCatStack(t *testing.T) {
	scoped(t, func() {
		r := rand.New(rand.NewSource(3))
		a, b := randND(r, 2, 3), randND(r, 1, 3)
		c := Cat([]*Tensor{a.f64(), b.f64()}, 0)
		requireClose(t, nd{[]int64{3, 3}, append(append([]float64(nil), a.data...), b.data...)}, c, 0, 0)
		d := randND(r, 2, 2)
		e := Cat([]*Tensor{a.f64(), d.f64()}, 1)
		want := newND(2, 5)
		for i := int64(0); i < 2; i++ {
			for j := int64(0); j < 3; j++ {
				want.set(a.at(i, j), i, j)
			}
			for j := int64(0); j < 2; j++ {
				want.set(d.at(i, j), i, 3+j)
			}
		}
		requireClose(t, want, e, 0, 0)
		a2 := randND(r, 2, 3)
		s := Stack([]*Tensor{a.f64(), a2.f64()}, 1)
		ws := newND(2, 2, 3)
		for i := int64(0); i < 2; i++ {
			for j := int64(0); j < 3; j++ {
				ws.set(a.at(i, j), i, 0, j)
				ws.set(a2.at(i, j), i, 1, j)
			}
		}
		requireClose(t, ws, s, 0, 0)
		assert.ErrorContains(t, Stack([]*Tensor{a.f64(), b.f64()}, 0).Err(), "stack expects each tensor to be equal size")
		assert.ErrorContains(t, Cat(nil, 0).Err(), "no tensors")
	})
}

func TestIndexOps(t *testing.T) {
	scoped(t, func() {
		r := rand.New(rand.NewSource(4))
		a := randND(r, 4, 3)
		x := a.f64()
		idx := []int64{3, 0, 3}
		sel := x.IndexSelect(0, FromSlice(idx))
		want := newND(3, 3)
		for i, k := range idx {
			for j := int64(0); j < 3; j++ {
				want.set(a.at(k, j), int64(i), j)
			}
		}
		requireClose(t, want, sel, 0, 0)

		gi := []int64{2, 0, 1, 1, 1, 0, 0, 2}
		g := x.Gather(1, FromSlice(gi, 4, 2))
		wg := newND(4, 2)
		for i := int64(0); i < 4; i++ {
			for j := int64(0); j < 2; j++ {
				wg.set(a.at(i, gi[i*2+j]), i, j)
			}
		}
		requireClose(t, wg, g, 0, 0)

		// scatter_add: out[i][idx[i][j]] += src[i][j], duplicates accumulate.
		src := randND(r, 4, 2)
		sa := x.ScatterAdd(1, FromSlice([]int64{0, 0, 2, 1, 1, 1, 0, 2}, 4, 2), src.f64())
		ws := nd{a.shape, append([]float64(nil), a.data...)}
		si := []int64{0, 0, 2, 1, 1, 1, 0, 2}
		for i := int64(0); i < 4; i++ {
			for j := int64(0); j < 2; j++ {
				k := si[i*2+j]
				ws.set(ws.at(i, k)+src.at(i, j), i, k)
			}
		}
		requireClose(t, ws, sa, 1e-12, 0)
		requireClose(t, a, x, 0, 0, "scatter_add must not modify its input")

		ia := randND(r, 2, 3)
		ix := x.IndexAdd(0, FromSlice([]int64{1, 1}), ia.f64())
		wi := nd{a.shape, append([]float64(nil), a.data...)}
		for j := int64(0); j < 3; j++ {
			wi.set(wi.at(1, j)+ia.at(0, j)+ia.at(1, j), 1, j)
		}
		requireClose(t, wi, ix, 1e-12, 0)
	})
}

func TestMaskedOps(t *testing.T) {
	scoped(t, func() {
		r := rand.New(rand.NewSource(5))
		a := randND(r, 3, 4)
		x := a.f32()
		mask := x.GtScalar(0.2)
		mv, err := mask.Bools()
		require.NoError(t, err)
		fill := newND(3, 4)
		var sel []float64
		for i, v := range a.data {
			f := float64(float32(v))
			require.Equal(t, f > 0.2, mv[i])
			fill.data[i] = f
			if f > 0.2 {
				fill.data[i] = -9
				sel = append(sel, f)
			}
		}
		requireClose(t, fill, x.MaskedFill(mask, -9), 0, 0)
		requireClose(t, nd{[]int64{int64(len(sel))}, sel}, x.MaskedSelect(mask), 0, 0)
		// Broadcast mask over rows.
		rowMask := FromSlice([]bool{true, false, false, true})
		mf := values(t, x.MaskedFill(rowMask, 0))
		for i := 0; i < 3; i++ {
			assert.Equal(t, 0.0, mf.data[i*4])
			assert.Equal(t, float64(float32(a.data[i*4+1])), mf.data[i*4+1])
		}
		w := Where(mask, x, x.Neg())
		ww := a.map1(func(v float64) float64 {
			f := float64(float32(v))
			if f > 0.2 {
				return f
			}
			return -f
		})
		requireClose(t, ww, w, 0, 0)
	})
}

func TestCloneDetach(t *testing.T) {
	scoped(t, func() {
		x := FromSlice([]float32{1, 2, 3})
		require.NoError(t, x.SetRequiresGrad(true))
		c := x.Clone()
		d := x.Detach()
		assert.True(t, c.RequiresGrad(), "clone stays in the graph")
		assert.False(t, d.RequiresGrad(), "detach leaves the graph")
		// The clone owns its data; the detached tensor shares x's.
		require.NoError(t, c.CopyFrom(Zeros([]int64{3}, Float32, CPU)))
		xv, _ := x.Float32s()
		assert.Equal(t, []float32{1, 2, 3}, xv)
		require.NoError(t, d.CopyFrom(Full([]int64{3}, 5, Float32, CPU)))
		xv, _ = x.Float32s()
		assert.Equal(t, []float32{5, 5, 5}, xv)
		// Gradient flows through the clone to x.
		require.NoError(t, x.Clone().MulScalar(3).Sum(false).Backward())
		g, err := x.Grad().Float32s()
		require.NoError(t, err)
		assert.Equal(t, []float32{3, 3, 3}, g)
	})
}
