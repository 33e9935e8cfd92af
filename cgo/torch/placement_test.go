package torch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The meta device runs shapes through the ops a training step uses, and
// refuses to give values back.
func TestMetaDevice(t *testing.T) {
	scoped(t, func() {
		w := Randn([]int64{10, 4}, Float32, Meta)
		require.NoError(t, w.SetRequiresGrad(true))
		idx := FromSlice([]int64{1, 2, 2, 9}, 2, 2).ToDevice(Meta, false)
		assert.Equal(t, Meta, idx.Device())
		assert.Equal(t, "meta", idx.Device().String())
		h := Embedding(w, idx).Flatten(1, 2)                                   // [2, 8]
		logits := Linear(h, Randn([]int64{1, 8}, Float32, Meta), nil).View(-1) // [2]
		loss := BCEWithLogits(logits, Zeros([]int64{2}, Float32, Meta), nil, nil, ReduceMean)
		require.NoError(t, loss.Err())
		require.NoError(t, loss.Backward())
		g := w.Grad()
		require.NoError(t, g.Err())
		assert.Equal(t, []int64{10, 4}, g.Shape())
		assert.Equal(t, Meta, g.Device())

		opt, err := NewOptimizer(Adam)
		require.NoError(t, err)
		defer opt.Close()
		require.NoError(t, opt.AddGroup([]string{"w"}, []*Tensor{w}, DefaultOptimOptions(Adam)))
		require.NoError(t, opt.Step())
		assert.Equal(t, Meta, w.Device())

		// unique has no data to look at: every element counts as distinct.
		values, inverse := idx.Unique()
		assert.Equal(t, []int64{4}, values.Shape())
		assert.Equal(t, []int64{2, 2}, inverse.Shape())
		assert.Equal(t, Meta, inverse.Device())

		_, err = loss.Item()
		assert.ErrorContains(t, err, "meta")
	})
}

// Under CheckPlacement a CPU tensor meeting a meta one fails even in the
// ops that meta itself lets through, and names the caller.
func TestCheckPlacement(t *testing.T) {
	scoped(t, func() {
		x := Randn([]int64{3, 4}, Float32, Meta)
		cpuIndex := FromSlice([]int64{0, 2})
		mixed := func() *Tensor { return x.IndexSelect(0, cpuIndex) }
		assert.NoError(t, mixed().Err(), "meta accepts a CPU index in index_select; the check exists for this")

		restore := CheckPlacement()
		err := mixed().Err()
		assert.ErrorContains(t, err, "tensors on meta and cpu meet in one op, called from ")
		assert.ErrorContains(t, err, "placement_test.go:")
		assert.ErrorContains(t, Linear(x, Randn([]int64{2, 4}, Float32, CPU), nil).Err(), "meta and cpu")
		assert.NoError(t, x.IndexSelect(0, cpuIndex.ToDevice(Meta, false)).Err())
		// Transfers cross devices by design.
		assert.NoError(t, x.CopyFrom(Ones([]int64{3, 4}, Float32, CPU)))
		restore()
		assert.NoError(t, mixed().Err())
	})
}
