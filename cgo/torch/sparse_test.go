package torch

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sparseCases: the hyperparameters of testdata/sparse_goldens.py for adam
// and adagrad (PyTorch allows no weight decay with sparse gradients); the
// float64 reference checks weight decay too.
var sparseCases = []struct {
	name string
	kind SparseKind
	opts OptimOptions
}{
	{"adam", SparseAdam, OptimOptions{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}},
	{"adagrad", SparseAdagrad, OptimOptions{LR: 0.1, LRDecay: 0.01, Eps: 1e-10, InitialAccumulator: 0.1}},
	{"rowwise_adagrad", SparseRowWiseAdagrad, OptimOptions{LR: 0.1, LRDecay: 0.01, Eps: 1e-8, InitialAccumulator: 0.1}},
	{"sgd", SparseSGD, OptimOptions{LR: 0.1}},
}

// Made by /usr/bin/python3 cgo/torch/testdata/sparse_goldens.py (torch 1.13.0).
var sparseGoldens = map[string]map[string][]float64{
	"adam": {
		"weight":     {0.08316167443990707, 0.08316340297460556, 0.08316510915756226, 0.18034788966178894, 0.13034598529338837, 0.08034399896860123, 0.2562313675880432, 0.1562659591436386, 0.05630373954772949, 0.38984376192092896, 0.38984349370002747, 0.389843225479126, 0.48122426867485046, 0.4312171936035156, 0.3812152147293091, 0.5938869118690491, 0.49388670921325684, 0.393886536359787, 0.699999988079071, 0.699999988079071, 0.699999988079071},
		"exp_avg":    {0.4584982395172119, 0.4626040458679199, 0.46670982241630554, 0.30184417963027954, 0.3048856854438782, 0.3036946654319763, 1.5168052911758423, 1.48348069190979, 1.401260256767273, 0.2948509454727173, 0.30632317066192627, 0.31779539585113525, 0.4972566068172455, 0.5161046981811523, 0.5297428965568542, 0.27615612745285034, 0.30069318413734436, 0.31776192784309387, 0.0, 0.0, 0.0},
		"exp_avg_sq": {0.012293818406760693, 0.012522270902991295, 0.012752830050885677, 0.005415341351181269, 0.005522839725017548, 0.005477528087794781, 0.07074153423309326, 0.06805430352687836, 0.061111800372600555, 0.005169413983821869, 0.0055786906741559505, 0.006003558170050383, 0.008709486573934555, 0.009421929717063904, 0.009970935061573982, 0.004534158390015364, 0.005375159904360771, 0.006002090871334076, 0.0, 0.0, 0.0},
	},
	"adagrad": {
		"weight": {-0.027639172971248627, -0.027403220534324646, -0.02717089094221592, 0.016750896349549294, -0.03301354497671127, -0.08261829614639282, 0.004423979204148054, -0.09241167455911636, -0.18822599947452545, 0.26322320103645325, 0.2629697024822235, 0.2627452611923218, 0.31894323229789734, 0.2686663866043091, 0.21856409311294556, 0.5120930075645447, 0.4117306172847748, 0.31155723333358765, 0.699999988079071, 0.699999988079071, 0.699999988079071},
		"sum":    {12.139741897583008, 12.32825756072998, 12.51861572265625, 5.434980392456055, 5.4042253494262695, 5.222909450531006, 62.321048736572266, 55.364295959472656, 45.10147476196289, 5.410278797149658, 5.7505059242248535, 6.100922584533691, 8.915216445922852, 9.414186477661133, 9.718011856079102, 4.7531561851501465, 5.552509784698486, 6.112795829772949, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612},
	},
}

const sparseRows, sparseDim, sparseSteps, sparseLRChange = 7, 3, 6, 3

// sparseInitial is initial() in the golden script.
func sparseInitial() []float64 {
	v := make([]float64, 0, sparseRows*sparseDim)
	for r := range sparseRows {
		for j := range sparseDim {
			v = append(v, float64(float32(0.1*float64(r+1)-0.05*float64(j)*float64(r%3))))
		}
	}
	return v
}

// sparseBatch is batch(step): rows named twice, and row 6 never.
func sparseBatch(step int) []int64 {
	return []int64{int64(step % 6), int64((step + 1) % 6), int64(step % 6), 2, 2, int64((2 * step) % 6)}
}

func sparseCoef(k, j int) float64 { return 0.1*float64(k+1) + 0.05*float64(j) }

// sparseLoss is loss_fn in the golden script: Σ c·e² + tanh(e) over the lookups e [n, dim].
func sparseLoss(e *Tensor) *Tensor {
	shape := e.Shape()
	c := make([]float64, 0, shape[0]*shape[1])
	for k := range shape[0] {
		for j := range shape[1] {
			c = append(c, float64(float32(sparseCoef(int(k), int(j)))))
		}
	}
	coef := FromSlice(c, shape...).ToDType(e.DType())
	return coef.Mul(e).Mul(e).Sum(false).Add(e.Tanh().Sum(false))
}

// sparseRun trains a table of dtype dt with a sparse optimizer on the golden script's batches.
func sparseRun(t *testing.T, kind SparseKind, opts OptimOptions, dt DType, steps int) (table []float64, state map[string][]float64) {
	table0 := FromSlice(sparseInitial(), sparseRows, sparseDim)
	w := table0.ToDType(dt)
	table0.Close()
	defer w.Close()
	opt, err := NewSparseOptimizer(kind, "weight", w, opts)
	require.NoError(t, err)
	defer opt.Close()
	for step := range steps {
		if step == sparseLRChange {
			require.NoError(t, opt.SetLR(opts.LR*0.5))
		}
		scoped(t, func() {
			rows, ids, inverse := GatherRows(w, FromSlice(sparseBatch(step)))
			require.NoError(t, sparseLoss(Embedding(rows, inverse)).Backward())
			require.NoError(t, opt.Step(ids, rows.Grad(), true))
		})
	}
	state = map[string][]float64{}
	scoped(t, func() {
		var err error
		table, err = w.ToDType(Float64).Float64s()
		require.NoError(t, err)
		tensors, counts, err := opt.StateTensors()
		require.NoError(t, err)
		assert.Equal(t, map[string]int64{"weight.step": int64(steps)}, counts)
		for name, st := range tensors {
			state[name[len("weight."):]], err = st.ToDType(Float64).Float64s()
			require.NoError(t, err)
		}
	})
	return table, state
}

func TestSparseOptimizerMatchesPyTorch(t *testing.T) {
	for _, c := range sparseCases {
		golden, ok := sparseGoldens[c.name]
		if !ok {
			continue // no torch.optim counterpart
		}
		t.Run(c.name, func(t *testing.T) {
			table, state := sparseRun(t, c.kind, c.opts, Float32, sparseSteps)
			requireSliceClose(t, golden["weight"], table, 1e-6, 1e-5, "weight")
			for slot, want := range golden {
				if slot != "weight" {
					requireSliceClose(t, want, state[slot], 1e-6, 1e-5, slot)
				}
			}
			assert.Len(t, state, len(golden)-1)
		})
	}
}

// sparseReference runs the update rules in float64 on hand-derived
// gradients, with L2 weight decay on the touched rows.
func sparseReference(kind SparseKind, o OptimOptions, steps int) (w []float64, state map[string][]float64) {
	w = sparseInitial()
	m := make([]float64, len(w))
	v := make([]float64, len(w))
	rowSum := make([]float64, sparseRows)
	for i := range v {
		if kind == SparseAdagrad {
			v[i] = o.InitialAccumulator
		}
	}
	for i := range rowSum {
		rowSum[i] = o.InitialAccumulator
	}
	lr := o.LR
	for step := range steps {
		if step == sparseLRChange {
			lr = o.LR * 0.5
		}
		grad := map[int64][]float64{}
		for k, r := range sparseBatch(step) {
			if grad[r] == nil {
				grad[r] = make([]float64, sparseDim)
			}
			for j := range sparseDim {
				x := w[r*sparseDim+int64(j)]
				grad[r][j] += 2*float64(float32(sparseCoef(k, j)))*x + 1 - math.Tanh(x)*math.Tanh(x)
			}
		}
		n := float64(step + 1)
		clr := lr / (1 + (n-1)*o.LRDecay)
		for r, g := range grad {
			row := w[r*sparseDim : (r+1)*sparseDim]
			for j := range g {
				g[j] += o.WeightDecay * row[j]
			}
			mean := 0.0
			for j := range g {
				mean += g[j] * g[j] / sparseDim
			}
			rowSum[r] += mean
			for j := range g {
				i := int(r)*sparseDim + j
				switch kind {
				case SparseSGD:
					row[j] -= lr * g[j]
				case SparseAdam:
					m[i] += (g[j] - m[i]) * (1 - o.Beta1)
					v[i] += (g[j]*g[j] - v[i]) * (1 - o.Beta2)
					bc1, bc2 := 1-math.Pow(o.Beta1, n), 1-math.Pow(o.Beta2, n)
					row[j] -= lr * math.Sqrt(bc2) / bc1 * m[i] / (math.Sqrt(v[i]) + o.Eps)
				case SparseAdagrad:
					v[i] += g[j] * g[j]
					row[j] -= clr * g[j] / (math.Sqrt(v[i]) + o.Eps)
				case SparseRowWiseAdagrad:
					row[j] -= clr * g[j] / (math.Sqrt(rowSum[r]) + o.Eps)
				}
			}
		}
	}
	switch kind {
	case SparseAdam:
		return w, map[string][]float64{"exp_avg": m, "exp_avg_sq": v}
	case SparseAdagrad:
		return w, map[string][]float64{"sum": v}
	case SparseRowWiseAdagrad:
		return w, map[string][]float64{"row_sum": rowSum}
	}
	return w, map[string][]float64{}
}

// TestSparseOptimizerMatchesFloat64Reference checks both update paths:
// float32 tables take the fused CPU loop, float64 tables libtorch ops.
func TestSparseOptimizerMatchesFloat64Reference(t *testing.T) {
	for _, c := range sparseCases {
		for _, dt := range []DType{Float32, Float64} {
			t.Run(c.name+"/"+dt.String(), func(t *testing.T) {
				o := c.opts
				o.WeightDecay = 0.01
				wantW, wantState := sparseReference(c.kind, o, sparseSteps)
				gotW, gotState := sparseRun(t, c.kind, o, dt, sparseSteps)
				tol := 1e-5
				if dt == Float64 {
					tol = 1e-12
				}
				requireSliceClose(t, wantW, gotW, tol, tol, "weight")
				require.Len(t, gotState, len(wantState))
				for slot, want := range wantState {
					requireSliceClose(t, want, gotState[slot], tol, tol, slot)
				}
			})
		}
	}
}

func TestSparseOptimizerLeavesUntouchedRowsBitForBit(t *testing.T) {
	const rows, dim, touched, steps = 100, 4, 60, 300
	for _, c := range sparseCases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			init := make([]float32, rows*dim)
			for i := range init {
				init[i] = float32(rng.NormFloat64())
			}
			w := FromSlice(init, rows, dim)
			defer w.Close()
			o := c.opts
			o.WeightDecay = 0.01
			opt, err := NewSparseOptimizer(c.kind, "t", w, o)
			require.NoError(t, err)
			defer opt.Close()
			var stateBefore map[string][]float32
			scoped(t, func() { stateBefore = sparseState(t, opt) })
			for range steps {
				ids := make([]int64, 32)
				for i := range ids {
					ids[i] = rng.Int64N(touched)
				}
				scoped(t, func() {
					rows, uniq, inverse := GatherRows(w, FromSlice(ids, 8, 4))
					require.NoError(t, sparseLoss(Embedding(rows, inverse).Flatten(0, 1)).Backward())
					require.NoError(t, opt.Step(uniq, rows.Grad(), true))
				})
			}
			scoped(t, func() {
				after, err := w.Float32s()
				require.NoError(t, err)
				assert.NotEqual(t, init[:touched*dim], after[:touched*dim], "the touched rows should have moved")
				assert.Equal(t, math32bits(init[touched*dim:]), math32bits(after[touched*dim:]), "untouched rows changed")
				for name, st := range sparseState(t, opt) {
					per := len(st) / rows
					assert.Equal(t, math32bits(stateBefore[name][touched*per:]), math32bits(st[touched*per:]), "untouched rows' %s changed", name)
				}
			})
		})
	}
}

func sparseState(t *testing.T, opt *SparseOptimizer) map[string][]float32 {
	tensors, _, err := opt.StateTensors()
	require.NoError(t, err)
	out := map[string][]float32{}
	for name, st := range tensors {
		out[name], err = st.Float32s()
		require.NoError(t, err)
	}
	return out
}

func math32bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}

// TestSparseStepSumsRepeatedIDs: gradient rows gathered from several
// sources may name a row twice; the step sums them first.
func TestSparseStepSumsRepeatedIDs(t *testing.T) {
	grad := []float32{1, 2, 3, 4, 5, 6}
	var got, want [][]float32
	for _, repeated := range []bool{true, false} {
		w := Ones([]int64{5, 2}, Float32, CPU)
		opt, err := NewSparseOptimizer(SparseAdagrad, "t", w, DefaultSparseOptions(SparseAdagrad))
		require.NoError(t, err)
		scoped(t, func() {
			if repeated {
				require.NoError(t, opt.Step(FromSlice([]int64{3, 1, 3}), FromSlice(grad, 3, 2), false))
			} else {
				require.NoError(t, opt.Step(FromSlice([]int64{3, 1}), FromSlice([]float32{1 + 5, 2 + 6, 3, 4}, 2, 2), true))
			}
			v, err := w.Float32s()
			require.NoError(t, err)
			s := sparseState(t, opt)["t.sum"]
			if repeated {
				got = [][]float32{v, s}
			} else {
				want = [][]float32{v, s}
			}
		})
		opt.Close()
		w.Close()
	}
	assert.Equal(t, want, got)
}

func TestGatherRows(t *testing.T) {
	scoped(t, func() {
		table := Arange(0, 12, 1, Float32, CPU).Reshape(6, 2)
		idx := FromSlice([]int64{4, 1, 4, 0, 1, 4}, 2, 3)
		rows, ids, inverse := GatherRows(table, idx)
		require.NoError(t, rows.Err())
		gotIDs, err := ids.Int64s()
		require.NoError(t, err)
		assert.Equal(t, []int64{4, 1, 0}, gotIDs, "distinct rows in order of first occurrence")
		assert.Equal(t, []int64{3, 2}, rows.Shape())
		assert.True(t, rows.RequiresGrad())
		assert.False(t, table.RequiresGrad())
		want, err := Embedding(table, idx).Float32s()
		require.NoError(t, err)
		got, err := Embedding(rows, inverse).Float32s()
		require.NoError(t, err)
		assert.Equal(t, want, got)

		// The gradient covers the touched rows only, each once, duplicates summed.
		coef := Arange(1, 13, 1, Float32, CPU).Reshape(2, 3, 2)
		require.NoError(t, Embedding(rows, inverse).Mul(coef).Sum(false).Backward())
		g, err := rows.Grad().Float32s()
		require.NoError(t, err)
		// Row 4 is looked up at positions 0, 2 and 5 (coefficients 1,2 + 5,6 + 11,12), row 1 at 1 and 4, row 0 at 3.
		assert.Equal(t, []float32{17, 20, 12, 14, 7, 8}, g)

		_, _, bad := GatherRows(table, FromSlice([]int64{1, 6}))
		assert.ErrorContains(t, bad.Err(), "embedding index 6 out of range [0, 6)")
		_, _, bad = GatherRows(table, FromSlice([]int64{-1}))
		assert.ErrorContains(t, bad.Err(), "embedding index -1 out of range")
	})
}

func TestSparseOptimizerRefusesBadInput(t *testing.T) {
	w := Zeros([]int64{4, 2}, Float32, CPU)
	defer w.Close()
	_, err := NewSparseOptimizer(SparseAdam, "t", FromSlice([]float32{1, 2}), DefaultSparseOptions(SparseAdam))
	assert.ErrorContains(t, err, "the table must be [rows, dim]")
	require.NoError(t, w.SetRequiresGrad(true))
	_, err = NewSparseOptimizer(SparseAdam, "t", w, DefaultSparseOptions(SparseAdam))
	assert.ErrorContains(t, err, "must not require grad")
	require.NoError(t, w.SetRequiresGrad(false))
	opt, err := NewSparseOptimizer(SparseAdam, "t", w, DefaultSparseOptions(SparseAdam))
	require.NoError(t, err)
	scoped(t, func() {
		assert.ErrorContains(t, opt.Step(FromSlice([]int64{4}), Zeros([]int64{1, 2}, Float32, CPU), true), "row id out of range [0, 4)")
		// Ids from several ranks (not distinct) are checked while they are summed.
		assert.ErrorContains(t, opt.Step(FromSlice([]int64{1, -1, 1}), Ones([]int64{3, 2}, Float32, CPU), false), "index -1 out of range [0, 4)")
		assert.Equal(t, make([]float64, 8), values(t, w).data, "a refused step changes nothing")
		assert.ErrorContains(t, opt.Step(FromSlice([]int64{1}), Zeros([]int64{1, 3}, Float32, CPU), true), "do not fit a table")
	})
	opt.Close()
	assert.ErrorContains(t, opt.Step(nil, nil, true), "closed")
}

// TestSparseOptimizerResumesExactly: state saved after k steps and loaded
// into a fresh optimizer and table continues exactly as if never stopped.
func TestSparseOptimizerResumesExactly(t *testing.T) {
	for _, c := range sparseCases {
		t.Run(c.name, func(t *testing.T) {
			straight, _ := sparseRun(t, c.kind, c.opts, Float32, sparseSteps)
			// Stop after 4 steps (past the learning-rate change), save, restore into new objects, continue.
			const k = 4
			table0 := FromSlice(sparseInitial(), sparseRows, sparseDim)
			w := table0.ToDType(Float32)
			table0.Close()
			defer w.Close()
			first, err := NewSparseOptimizer(c.kind, "weight", w, c.opts)
			require.NoError(t, err)
			second, err := NewSparseOptimizer(c.kind, "weight", w, c.opts)
			require.NoError(t, err)
			defer second.Close()
			run := func(opt *SparseOptimizer, from, to int) {
				for step := from; step < to; step++ {
					if step == sparseLRChange {
						require.NoError(t, opt.SetLR(c.opts.LR*0.5))
					}
					scoped(t, func() {
						rows, ids, inverse := GatherRows(w, FromSlice(sparseBatch(step)))
						require.NoError(t, sparseLoss(Embedding(rows, inverse)).Backward())
						require.NoError(t, opt.Step(ids, rows.Grad(), true))
					})
				}
			}
			run(first, 0, k)
			scoped(t, func() {
				tensors, steps, err := first.StateTensors()
				require.NoError(t, err)
				saved := map[string]*Tensor{}
				for name, st := range tensors {
					saved[name] = st.Clone()
				}
				first.Close()
				if len(saved) > 0 {
					assert.ErrorContains(t, second.LoadState(map[string]*Tensor{}, steps), "missing from the checkpoint")
				}
				assert.ErrorContains(t, second.LoadState(saved, map[string]int64{}), `"weight.step" missing`)
				require.NoError(t, second.LoadState(saved, steps))
				require.NoError(t, second.SetLR(c.opts.LR*0.5))
			})
			run(second, k, sparseSteps)
			scoped(t, func() {
				got, err := w.ToDType(Float64).Float64s()
				require.NoError(t, err)
				assert.Equal(t, straight, got)
			})
		})
	}
}

// sparseRowSteps trains table (float32 or float64) with kind for len(grads)
// steps over the distinct rows ids, one gradient [len(ids), dim] per step,
// and returns the optimizer, still open, for its state.
func sparseRowSteps(t *testing.T, kind SparseKind, opts OptimOptions, table *Tensor, ids []int64, grads [][]float32) *SparseOptimizer {
	t.Helper()
	opt, err := NewSparseOptimizer(kind, "t", table, opts)
	require.NoError(t, err)
	for _, g := range grads {
		scoped(t, func() {
			grad := FromSlice(g, int64(len(ids)), int64(len(g)/len(ids))).ToDType(table.DType())
			require.NoError(t, opt.Step(FromSlice(ids), grad, true))
		})
	}
	return opt
}

func sparseRandom(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestSparseRowLoopsAtEveryWidth: the CPU loops are compiled apart for the
// usual row widths (4 to 64) and for any other (3, 5); each must give what
// libtorch's ops give on a float64 copy of the same table.
func TestSparseRowLoopsAtEveryWidth(t *testing.T) {
	const rows, steps = 40, 3
	ids := []int64{7, 3, 38, 0, 21, 12, 39, 5}
	for _, c := range sparseCases {
		for _, dim := range []int{3, 4, 5, 8, 16, 32, 64} {
			t.Run(fmt.Sprintf("%s/dim=%d", c.name, dim), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(dim), 3))
				init := sparseRandom(rng, rows*dim)
				var grads [][]float32
				for range steps {
					grads = append(grads, sparseRandom(rng, len(ids)*dim))
				}
				o := c.opts
				o.WeightDecay = 0.01
				fused := FromSlice(init, rows, int64(dim))
				defer fused.Close()
				ops := fused.ToDType(Float64)
				defer ops.Close()
				fusedOpt := sparseRowSteps(t, c.kind, o, fused, ids, grads)
				defer fusedOpt.Close()
				opsOpt := sparseRowSteps(t, c.kind, o, ops, ids, grads)
				defer opsOpt.Close()
				scoped(t, func() {
					want, err := ops.Float64s()
					require.NoError(t, err)
					got, err := fused.ToDType(Float64).Float64s()
					require.NoError(t, err)
					requireSliceClose(t, want, got, 1e-6, 1e-5, "table")
					assert.NotEqual(t, init, sparseFloat32s(got), "the touched rows should have moved")
					wantState, _, err := opsOpt.StateTensors()
					require.NoError(t, err)
					gotState, _, err := fusedOpt.StateTensors()
					require.NoError(t, err)
					require.Len(t, gotState, len(wantState))
					for name, st := range wantState {
						want, err := st.Float64s()
						require.NoError(t, err)
						got, err := gotState[name].ToDType(Float64).Float64s()
						require.NoError(t, err)
						requireSliceClose(t, want, got, 1e-6, 1e-5, name)
					}
				})
			})
		}
	}
}

func sparseFloat32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestSparseRowLoopsInAddressOrder: over a table too large for the caches
// the gather and the updates visit rows in address order instead of the
// order given. The rows are distinct, so the order must not change a bit:
// the same rows trained as a small table (visited in the order given)
// end equal, bit for bit, and so does their state.
func TestSparseRowLoopsInAddressOrder(t *testing.T) {
	const dim, n, steps = 16, 500, 3
	bigRows := sortedVisitBytes()/(dim*4) + 1 // just past the size sorted from
	rng := rand.New(rand.NewPCG(5, 8))
	seen := map[int64]bool{}
	var ids []int64
	for len(ids) < n {
		if id := rng.Int64N(bigRows); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	smallIDs := make([]int64, n)
	for k := range smallIDs {
		smallIDs[k] = int64(k)
	}
	init := sparseRandom(rng, n*dim)
	var grads [][]float32
	for range steps {
		grads = append(grads, sparseRandom(rng, n*dim))
	}
	for _, c := range sparseCases {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			o.WeightDecay = 0.01
			small := FromSlice(init, n, dim)
			defer small.Close()
			zeros, at := Zeros([]int64{bigRows, dim}, Float32, CPU), FromSlice(ids)
			big := zeros.IndexAdd(0, at, small)
			zeros.Close()
			at.Close()
			defer big.Close()
			scoped(t, func() {
				rows, uniq, _ := GatherRows(big, FromSlice(ids))
				got, err := rows.Float32s()
				require.NoError(t, err)
				assert.Equal(t, math32bits(init), math32bits(got), "gathered rows")
				gotIDs, err := uniq.Int64s()
				require.NoError(t, err)
				assert.Equal(t, ids, gotIDs, "distinct rows in order of first occurrence")
			})
			smallOpt := sparseRowSteps(t, c.kind, o, small, smallIDs, grads)
			defer smallOpt.Close()
			bigOpt := sparseRowSteps(t, c.kind, o, big, ids, grads)
			defer bigOpt.Close()
			scoped(t, func() {
				want, err := small.Float32s()
				require.NoError(t, err)
				got, err := big.IndexSelect(0, FromSlice(ids)).Float32s()
				require.NoError(t, err)
				assert.NotEqual(t, init, want, "the rows should have moved")
				assert.Equal(t, math32bits(want), math32bits(got), "table rows")
				wantState, _, err := smallOpt.StateTensors()
				require.NoError(t, err)
				gotState, _, err := bigOpt.StateTensors()
				require.NoError(t, err)
				for name, st := range wantState {
					want, err := st.Float32s()
					require.NoError(t, err)
					got, err := gotState[name].IndexSelect(0, FromSlice(ids)).Float32s()
					require.NoError(t, err)
					assert.Equal(t, math32bits(want), math32bits(got), name)
				}
			})
		})
	}
}
