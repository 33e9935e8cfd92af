package torch

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// combinedRun is a dense parameter under Adam and a sparse table under
// row-wise Adagrad, either combined or driven one by one.
type combinedRun struct {
	w, table *Tensor
	dense    *Optimizer
	sparse   *SparseOptimizer
	opt      *CombinedOptimizer // nil: drive dense and sparse by hand
}

func newCombinedRun(t *testing.T, combine bool) *combinedRun {
	r := &combinedRun{w: FromSlice([]float32{0.5, -0.25, 1}), table: FromSlice([]float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}, 4, 2)}
	require.NoError(t, r.w.SetRequiresGrad(true))
	var err error
	r.dense, err = NewOptimizer(Adam)
	require.NoError(t, err)
	require.NoError(t, r.dense.AddGroup([]string{"w"}, []*Tensor{r.w}, OptimOptions{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}))
	r.sparse, err = NewSparseOptimizer(SparseRowWiseAdagrad, "table", r.table, OptimOptions{LR: 0.5, Eps: 1e-8})
	require.NoError(t, err)
	if combine {
		r.opt, err = NewCombinedOptimizer(r.dense, r.sparse)
		require.NoError(t, err)
	}
	return r
}

func (r *combinedRun) close() {
	if r.opt != nil {
		r.opt.Close()
	} else {
		r.dense.Close()
		r.sparse.Close()
	}
	r.w.Close()
	r.table.Close()
}

// step takes one step at learning rate factor scale (of the rates the
// optimizers were made with): the loss Σ w², and rows 1 and 3 of the table
// with gradient rows g.
func (r *combinedRun) step(t *testing.T, scale float64, g []float32) {
	s := NewScope()
	defer s.Close()
	require.NoError(t, r.w.Mul(r.w).Sum(false).Backward())
	grad := SparseGrad{Table: "table", IDs: FromSlice([]int64{1, 3}), Rows: FromSlice(g, 2, 2), Distinct: true}
	if r.opt != nil {
		require.NoError(t, r.opt.SetLR(0.1*scale))
		require.NoError(t, r.opt.Step(grad))
		require.NoError(t, r.opt.ZeroGrad())
		return
	}
	require.NoError(t, r.dense.SetLR(0.1*scale))
	require.NoError(t, r.sparse.SetLR(0.5*scale))
	require.NoError(t, r.dense.Step())
	require.NoError(t, r.sparse.Step(grad.IDs, grad.Rows, true))
	require.NoError(t, r.dense.ZeroGrad())
}

func floats(t *testing.T, ts ...*Tensor) [][]float32 {
	var out [][]float32
	for _, x := range ts {
		v, err := x.Float32s()
		require.NoError(t, err)
		out = append(out, v)
	}
	return out
}

// TestCombinedOptimizerIsItsParts: one step, one learning rate (the sparse
// one scaled with the dense one) and one state dict do what driving the
// two optimizers by hand does, under the same names.
func TestCombinedOptimizerIsItsParts(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	byHand, combined := newCombinedRun(t, false), newCombinedRun(t, true)
	defer byHand.close()
	defer combined.close()
	for i, scale := range []float64{1, 0.5, 0.25} {
		g := []float32{float32(i) + 1, -1, 0.5, 2}
		byHand.step(t, scale, g)
		combined.step(t, scale, g)
	}
	assert.Equal(t, floats(t, byHand.w, byHand.table), floats(t, combined.w, combined.table))
	lr, err := combined.sparse.LR()
	require.NoError(t, err)
	assert.InDelta(t, 0.5*0.25, lr, 1e-12, "the sparse rate follows the dense one's schedule")
	assert.NotEqual(t, []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}, floats(t, combined.table)[0], "the table learned")

	state, steps, err := combined.opt.StateTensors()
	require.NoError(t, err)
	defer closeAliases(state)
	var names []string
	for n := range state {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"w.exp_avg", "w.exp_avg_sq", "table.row_sum"}, names)
	assert.Equal(t, map[string]int64{"w.step": 3, "table.step": 3}, steps)

	// A fresh combined optimizer loads that state and then steps like the original.
	fresh := newCombinedRun(t, true)
	defer fresh.close()
	require.NoError(t, fresh.w.CopyFrom(combined.w))
	require.NoError(t, fresh.table.CopyFrom(combined.table))
	require.NoError(t, fresh.opt.LoadState(state, steps))
	g := []float32{0.25, 0.5, -2, 1}
	combined.step(t, 0.1, g)
	fresh.step(t, 0.1, g)
	assert.Equal(t, floats(t, combined.w, combined.table), floats(t, fresh.w, fresh.table))

	delete(steps, "table.step")
	assert.ErrorContains(t, fresh.opt.LoadState(state, steps), `"table.step" missing`)
}

func TestCombinedOptimizerRefusesUnknownTables(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := newCombinedRun(t, true)
	defer r.close()
	s := NewScope()
	defer s.Close()
	err := r.opt.Step(SparseGrad{Table: "other", IDs: FromSlice([]int64{0}), Rows: FromSlice([]float32{1, 1}, 1, 2)})
	assert.ErrorContains(t, err, `no sparse optimizer for table "other"`)
	_, err = NewCombinedOptimizer(r.dense, r.sparse, r.sparse)
	assert.ErrorContains(t, err, "two sparse optimizers for table table")
}

func TestSparseStateBytesPerRow(t *testing.T) {
	got := map[string]int64{}
	for _, k := range SparseKinds() {
		got[k.String()] = k.StateBytesPerRow(16)
	}
	assert.Equal(t, map[string]int64{"sgd": 0, "adam": 2 * 16 * 4, "adagrad": 16 * 4, "rowwise_adagrad": 4}, got)
}
