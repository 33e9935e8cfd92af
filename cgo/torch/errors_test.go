package torch

import (
	"errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"testing"
)

// Each failure comes back as an *Error carrying libtorch's own message, later
// ops on the failed tensor pass it along without calling libtorch, and the
// next fresh op works.
func TestErrorPropagation(t *testing.T) {
	cases := []struct {
		name string
		op   func() *Tensor
		opName,
		msg string
	}{
		{"shape mismatch", func() *Tensor { return FromSlice([]float32{1, 2, 3}).Add(FromSlice([]float32{1, 2})) },
			"add", "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0"},
		{"matmul shapes", func() *Tensor { return Ones([]int64{2, 3}, Float32, CPU).Matmul(Ones([]int64{2, 3}, Float32, CPU)) },
			"matmul", "cannot be multiplied (2x3 and 2x3)"},
		{"index out of range", func() *Tensor { return FromSlice([]float32{1, 2, 3}).IndexSelect(0, FromSlice([]int64{5})) },
			"index_select", "index out of range"},
		{"gather index out of range", func() *Tensor {
			return FromSlice([]float32{1, 2, 3}, 1, 3).Gather(1, FromSlice([]int64{3}, 1, 1))
		}, "gather", "out of bounds"},
		{"wrong index dtype", func() *Tensor { return FromSlice([]float32{1, 2, 3}).IndexSelect(0, FromSlice([]float32{0})) },
			"index_select", "Expected dtype int32 or int64 for index"},
		{"mixed dtypes in mm", func() *Tensor { return Ones([]int64{2, 2}, Float32, CPU).Mm(Ones([]int64{2, 2}, Float64, CPU)) },
			"mm", "expected scalar type"},
		{"float indices", func() *Tensor { return Embedding(Ones([]int64{3, 2}, Float32, CPU), FromSlice([]float32{1, 0})) },
			"embedding", "'indices' to have one of the following scalar types: Long, Int"},
		{"CUDA tensor on a CPU build", func() *Tensor { return FromSlice([]float32{1, 2}).To(Float32, CUDA(0)) },
			"to", "CUDA"},
		{"CUDA creation on a CPU build", func() *Tensor { return Zeros([]int64{2}, Float32, CUDA(0)) },
			"zeros", "CUDA"},
		{"bad dimension", func() *Tensor { return FromSlice([]float32{1, 2}).Sum(false, 3) },
			"sum", "Dimension out of range"},
		{"bad view", func() *Tensor { return FromSlice([]float32{1, 2, 3}).View(2, 2) },
			"view", "shape '[2, 2]' is invalid for input of size 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scoped(t, func() {
				bad := c.op()
				err := bad.Err()
				require.Error(t, err)
				var te *Error
				require.True(t, errors.As(err, &te), "error %T is not a *torch.Error", err)
				assert.Equal(t, c.opName, te.Op)
				assert.ErrorContains(t, err, c.msg)
				assert.False(t, bad.Defined())
				assert.NotErrorIs(t, err, ErrOutOfMemory)

				// Sticky: a chain of ops on the failed tensor keeps the first error.
				chained := bad.Relu().MulScalar(2).Add(Ones([]int64{1}, Float32, CPU)).Sum(false)
				assert.Equal(t, err, chained.Err())
				assert.Equal(t, err, Cat([]*Tensor{Ones([]int64{1}, Float32, CPU), bad}, 0).Err())
				assert.Equal(t, err, Linear(bad, bad, nil).Err())
				assert.Equal(t, err, bad.Backward())
				_, verr := bad.Float32s()
				assert.Equal(t, err, verr)
				assert.PanicsWithError(t, "torch: Shape of a failed tensor (check Err or call Info first): "+err.Error(), func() { bad.Shape() })

				// The next op still works.
				ok := FromSlice([]float32{1, 2}).Add(FromSlice([]float32{3, 4}))
				v, verr := ok.Float32s()
				require.NoError(t, verr)
				assert.Equal(t, []float32{4, 6}, v)
			})
		})
	}
}

func TestErrorsOutsideLibtorch(t *testing.T) {
	scoped(t, func() {
		var nilT *Tensor
		assert.ErrorContains(t, nilT.Err(), "nil tensor")
		assert.ErrorContains(t, FromSlice([]float32{1}).Add(nil).Err(), "nil tensor argument")
		// A nil required argument of an op that also takes optional ones is an
		// error too, not a nil dereference; nil optional ones are left out.
		w := Ones([]int64{3, 2}, Float32, CPU)
		offsets := FromSlice([]int64{0})
		assert.ErrorContains(t, EmbeddingBag(w, nil, offsets, BagSum, nil).Err(), "nil tensor argument")
		assert.ErrorContains(t, EmbeddingBag(w, FromSlice([]int64{1}), nil, BagSum, nil).Err(), "nil tensor argument")
		assert.ErrorContains(t, BCEWithLogits(FromSlice([]float32{1}), nil, nil, nil, ReduceMean).Err(), "nil tensor argument")
		assert.ErrorContains(t, Linear(w, nil, nil).Err(), "nil tensor argument")
		assert.ErrorContains(t, w.IndexSelect(0, nil).Err(), "nil tensor argument")
		assert.ErrorContains(t, LayerNorm(nil, []int64{2}, nil, nil, 1e-5).Err(), "nil tensor argument")
		assert.NoError(t, LayerNorm(w, []int64{2}, nil, nil, 1e-5).Err())
		assert.NoError(t, BatchNorm(w, nil, nil, nil, nil, true, 0.1, 1e-5).Err())
		assert.NoError(t, EmbeddingBag(w, FromSlice([]int64{1}), offsets, BagSum, nil).Err())
		_, err := FromSlice([]float32{1}).Int64s()
		assert.ErrorContains(t, err, "tensor is float32, asked for int64")
	})
	// A tensor used after its scope closed reports that instead of crashing.
	s := NewScope()
	x := Ones([]int64{2}, Float32, CPU)
	s.Close()
	assert.ErrorContains(t, x.Relu().Err(), "its scope was closed")
	_, err := x.Info()
	assert.ErrorContains(t, err, "freed")
}

func TestOutOfMemory(t *testing.T) {
	scoped(t, func() {
		// 4 TiB of float32: the allocator refuses, the process survives.
		huge := Empty([]int64{1 << 40}, Float32, CPU)
		err := huge.Err()
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrOutOfMemory)
		assert.ErrorContains(t, err, "allocate")
		// So does a size whose byte count overflows; that is not an OOM.
		assert.ErrorContains(t, Empty([]int64{1 << 40, 1 << 40}, Float32, CPU).Err(), "overflow")
		// The process goes on.
		v, err := Ones([]int64{3}, Float32, CPU).Float32s()
		require.NoError(t, err)
		assert.Equal(t, []float32{1, 1, 1}, v)
		assert.ErrorIs(t, &Error{Op: "x", Msg: "y", OOM: true}, ErrOutOfMemory)
		assert.NotErrorIs(t, &Error{Op: "x", Msg: "y"}, ErrOutOfMemory)
	})
}
