package torch

// Shared test helpers: float64 reference arrays, random inputs, tolerant
// comparisons, and a scope per test that also checks for leaked handles.

import (
	"github.com/stretchr/testify/require"
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// scoped runs f inside a scope on a goroutine-locked thread (libtorch's grad
// mode is thread-local) and checks that closing the scope freed every handle
// f created.
func scoped(t *testing.T, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := LiveTensors()
	s := NewScope()
	func() {
		defer s.Close()
		f()
	}()
	require.Equal(t, before, LiveTensors(), "live tensor handles after the scope closed")
}

// nd is a float64 reference array in row-major order.
type nd struct {
	shape []int64
	data  []float64
}

func newND(shape ...int64) nd { return nd{shape: shape, data: make([]float64, numel(shape))} }

func (a nd) strides() []int64 {
	s := make([]int64, len(a.shape))
	acc := int64(1)
	for i := len(a.shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= a.shape[i]
	}
	return s
}

// at reads the element at a multi-index.
func (a nd) at(idx ...int64) float64 {
	off, st := int64(0), a.strides()
	for i, v := range idx {
		off += v * st[i]
	}
	return a.data[off]
}

func (a nd) set(v float64, idx ...int64) {
	off, st := int64(0), a.strides()
	for i, x := range idx {
		off += x * st[i]
	}
	a.data[off] = v
}

// unravel turns a flat offset into a multi-index.
func unravel(off int64, shape []int64) []int64 {
	idx := make([]int64, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		idx[i] = off % shape[i]
		off /= shape[i]
	}
	return idx
}

// randND fills a shape with N(0, 1) draws from a seeded Go generator.
func randND(r *rand.Rand, shape ...int64) nd {
	a := newND(shape...)
	for i := range a.data {
		a.data[i] = r.NormFloat64()
	}
	return a
}

// map1 applies f elementwise.
func (a nd) map1(f func(float64) float64) nd {
	b := newND(a.shape...)
	for i, v := range a.data {
		b.data[i] = f(v)
	}
	return b
}

// broadcast2 applies f to a and b with NumPy broadcasting.
func broadcast2(a, b nd, f func(x, y float64) float64) nd {
	n := len(a.shape)
	if len(b.shape) > n {
		n = len(b.shape)
	}
	pad := func(s []int64) []int64 {
		p := make([]int64, n)
		for i := range p {
			p[i] = 1
		}
		copy(p[n-len(s):], s)
		return p
	}
	as, bs := pad(a.shape), pad(b.shape)
	out := make([]int64, n)
	for i := range out {
		out[i] = max(as[i], bs[i])
	}
	pa, pb := nd{as, a.data}, nd{bs, b.data}
	r := newND(out...)
	for off := range r.data {
		idx := unravel(int64(off), out)
		ia, ib := make([]int64, n), make([]int64, n)
		for i := range idx {
			ia[i] = idx[i] % as[i]
			ib[i] = idx[i] % bs[i]
		}
		r.data[off] = f(pa.at(ia...), pb.at(ib...))
	}
	return r
}

// reduceDim folds dimension d with f starting from init; keep keeps it as size 1.
func reduceDim(a nd, d int, keep bool, init float64, f func(acc, v float64) float64) nd {
	out := append([]int64(nil), a.shape...)
	out[d] = 1
	r := newND(out...)
	for i := range r.data {
		r.data[i] = init
	}
	for off := range a.data {
		idx := unravel(int64(off), a.shape)
		idx[d] = 0
		r.set(f(r.at(idx...), a.data[off]), idx...)
	}
	if !keep {
		r.shape = append(append([]int64(nil), a.shape[:d]...), a.shape[d+1:]...)
	}
	return r
}

// matmulND multiplies [n,k] by [k,m].
func matmulND(a, b nd) nd {
	n, k, m := a.shape[0], a.shape[1], b.shape[1]
	r := newND(n, m)
	for i := int64(0); i < n; i++ {
		for j := int64(0); j < m; j++ {
			s := 0.0
			for l := int64(0); l < k; l++ {
				s += a.at(i, l) * b.at(l, j)
			}
			r.set(s, i, j)
		}
	}
	return r
}

func transposeND(a nd) nd {
	r := newND(a.shape[1], a.shape[0])
	for i := int64(0); i < a.shape[0]; i++ {
		for j := int64(0); j < a.shape[1]; j++ {
			r.set(a.at(i, j), j, i)
		}
	}
	return r
}

// f64 makes a float64 tensor of a reference array; f32 a float32 one.
func (a nd) f64() *Tensor { return FromSlice(a.data, a.shape...) }

func (a nd) f32() *Tensor {
	v := make([]float32, len(a.data))
	for i, x := range a.data {
		v[i] = float32(x)
	}
	return FromSlice(v, a.shape...)
}

// values reads any float tensor back as float64 with its shape.
func values(t *testing.T, x *Tensor) nd {
	t.Helper()
	require.NoError(t, x.Err())
	info, err := x.Info()
	require.NoError(t, err)
	v, err := x.To(Float64, CPU).Float64s()
	require.NoError(t, err)
	return nd{shape: info.Shape, data: v}
}

// requireClose checks a tensor against a reference: same shape, and every
// element within atol + rtol·|want|.
func requireClose(t *testing.T, want nd, got *Tensor, atol, rtol float64, msgs ...any) {
	t.Helper()
	g := values(t, got)
	require.Equal(t, want.shape, g.shape, msgs...)
	requireSliceClose(t, want.data, g.data, atol, rtol, msgs...)
}

func requireSliceClose(t *testing.T, want, got []float64, atol, rtol float64, msgs ...any) {
	t.Helper()
	require.Len(t, got, len(want), msgs...)
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= atol+rtol*math.Abs(want[i])) {
			require.Failf(t, "values differ", "element %d: got %.9g, want %.9g (|diff| %.3g)\n%v", i, got[i], want[i], d, msgs)
		}
	}
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
