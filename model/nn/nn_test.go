package nn

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

func values(t *testing.T, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	require.NoError(t, err)
	return v
}

func TestNamesFollowPyTorch(t *testing.T) {
	s := NewStore(torch.CPU)
	defer s.Close()
	NewMLP(s.Root().Sub("towers").Index(2), 6, MLPConfig{Hidden: []int64{4, 1}, BatchNorm: true, Dropout: 0.1})
	NewEmbeddingCollection(s.Root().Sub("embedding"), []int64{3, 5}, 4)
	require.NoError(t, s.Err())
	var names []string
	for _, v := range s.Vars() {
		names = append(names, v.Name)
	}
	want := "towers.2.0.linear.weight towers.2.0.linear.bias towers.2.0.bn.weight towers.2.0.bn.bias " +
		"towers.2.0.bn.running_mean towers.2.0.bn.running_var towers.2.1.linear.weight towers.2.1.linear.bias embedding.weight"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("names\n got %s\nwant %s", got, want)
	}
	// Parameters exclude the running statistics; counts are closed-form.
	if n := s.NumParameters(); n != (6*4+4)+(4+4)+(4*1+1)+(8*4) {
		t.Errorf("NumParameters = %d", n)
	}
	if len(s.Parameters()) != 7 {
		t.Errorf("%d trainable tensors, want 7", len(s.Parameters()))
	}
}

func TestLinearInitMatchesPyTorchBounds(t *testing.T) {
	s := NewStore(torch.CPU)
	defer s.Close()
	l := NewLinear(s.Root(), 50, 40, true)
	// kaiming_uniform(a=√5) and the bias both give U(-1/√fan_in, 1/√fan_in).
	bound := 1 / math.Sqrt(50)
	for name, x := range map[string]*torch.Tensor{"weight": l.Weight, "bias": l.Bias} {
		var maxAbs float64
		for _, v := range values(t, x) {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		if maxAbs > bound || maxAbs < 0.8*bound {
			t.Errorf("%s: max |value| %.4f, want just under %.4f", name, maxAbs, bound)
		}
	}
}

func TestLoadStateDictRefusesMismatches(t *testing.T) {
	build := func(out int64) *Store {
		s := NewStore(torch.CPU)
		NewLinear(s.Root().Sub("fc"), 3, out, true)
		return s
	}
	src, dst, other := build(2), build(2), build(5)
	defer src.Close()
	defer dst.Close()
	defer other.Close()
	require.NoError(t, dst.LoadStateDict(src.StateDict()))
	for name, a := range src.StateDict() {
		b, _ := dst.Get(name)
		if va, vb := values(t, a), values(t, b); !slices.Equal(va, vb) {
			t.Errorf("%s not copied", name)
		}
	}
	if err := dst.LoadStateDict(other.StateDict()); err == nil || !strings.Contains(err.Error(), "fc.weight has shape [5 3], the model wants [2 3]") {
		t.Errorf("shape mismatch: %v", err)
	}
	partial := src.StateDict()
	delete(partial, "fc.bias")
	partial["head.weight"] = partial["fc.weight"]
	if err := dst.LoadStateDict(partial); err == nil || !strings.Contains(err.Error(), "missing fc.bias; unexpected head.weight") {
		t.Errorf("name mismatch: %v", err)
	}
}

func TestBatchNormAndDropoutFollowTheMode(t *testing.T) {
	s := NewStore(torch.CPU)
	defer s.Close()
	bn := NewBatchNorm1d(s.Root().Sub("bn"), 1)
	drop := NewDropout(s.Root(), 0.5)
	scope := torch.NewScope()
	defer scope.Close()
	x := torch.FromSlice([]float32{1, 2, 3, 6}, 4, 1)

	// Training: batch statistics (mean 3, biased var 3.5) and running stats move by momentum 0.1.
	got := values(t, bn.Forward(x))
	for i, v := range []float64{1, 2, 3, 6} {
		want := (v - 3) / math.Sqrt(3.5+1e-5)
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Errorf("train bn[%d] = %g, want %g", i, got[i], want)
		}
	}
	if rm := values(t, bn.RunningMean)[0]; math.Abs(float64(rm)-0.3) > 1e-6 {
		t.Errorf("running mean %g, want 0.3", rm)
	}
	if rv := values(t, bn.RunningVar)[0]; math.Abs(float64(rv)-(0.9+0.1*14.0/3)) > 1e-5 { // unbiased var 14/3
		t.Errorf("running var %g", rv)
	}
	ones := torch.Ones([]int64{1000}, torch.Float32, torch.CPU)
	zeros := 0
	for _, v := range values(t, drop.Forward(ones)) {
		if v == 0 {
			zeros++
		} else if v != 2 {
			t.Fatalf("dropout kept a value as %g, want 2 (scaled by 1/(1-p))", v)
		}
	}
	if zeros < 400 || zeros > 600 {
		t.Errorf("dropout zeroed %d of 1000 at p=0.5", zeros)
	}

	// Evaluation: running statistics, no dropout.
	s.SetTraining(false)
	got = values(t, bn.Forward(x))
	rv := 0.9 + 0.1*14.0/3
	for i, v := range []float64{1, 2, 3, 6} {
		want := (v - 0.3) / math.Sqrt(rv+1e-5)
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Errorf("eval bn[%d] = %g, want %g", i, got[i], want)
		}
	}
	if drop.Forward(ones) != ones {
		t.Error("dropout changed its input in evaluation")
	}
}

func TestEmbeddingCollectionUsesOneTableWithOffsets(t *testing.T) {
	s := NewStore(torch.CPU)
	defer s.Close()
	e := NewEmbeddingCollection(s.Root(), []int64{3, 4}, 2)
	if got := e.Weight.Shape(); got[0] != 7 || got[1] != 2 || e.OutDim() != 4 {
		t.Fatalf("table %v, out %d; want [7 2], 4", got, e.OutDim())
	}
	scope := torch.NewScope()
	defer scope.Close()
	table := values(t, e.Weight)
	out := values(t, e.Forward(torch.FromSlice([]int64{2, 0, 1, 3}, 2, 2)))
	// Row 0: field 0 index 2 → table row 2; field 1 index 0 → row 3+0.
	// Row 1: field 0 index 1 → row 1; field 1 index 3 → row 6.
	rows := []int{2, 3, 1, 6}
	for k, r := range rows {
		if !slices.Equal(out[2*k:2*k+2], table[2*r:2*r+2]) {
			t.Errorf("lookup %d took %v, want table row %d %v", k, out[2*k:2*k+2], r, table[2*r:2*r+2])
		}
	}
	if got := values(t, e.Lookup(1, torch.FromSlice([]int64{3}))); !slices.Equal(got, table[12:14]) {
		t.Errorf("Lookup(field 1, 3) = %v, want row 6", got)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		cfg  MLPConfig
		want string
	}{
		{MLPConfig{Hidden: []int64{8, 0}}, "tower.hidden[1] = 0"},
		{MLPConfig{Dropout: 1}, "tower.dropout = 1"},
		{MLPConfig{Activation: "swish"}, `tower.activation: unknown activation "swish"`},
	} {
		if err := tc.cfg.Validate("tower"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	s := NewStore(torch.CPU)
	defer s.Close()
	s.Root().Param("w", []int64{2}, Zeros)
	s.Root().Param("w", []int64{2}, Zeros)
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), `two tensors named "w"`) {
		t.Errorf("duplicate name: %v", err)
	}
}

// TestSparseEmbeddingGradientIsTheDenseOnesTouchedRows: in sparse mode the
// lookup gives the same values as the dense table, and its gradient holds
// exactly the rows the dense gradient has nonzero, duplicates summed; the
// table leaves autograd and the dense optimizer's parameter list.
func TestSparseEmbeddingGradientIsTheDenseOnesTouchedRows(t *testing.T) {
	s := NewStore(torch.CPU)
	defer s.Close()
	e := NewEmbeddingCollection(s.Root().Sub("embedding"), []int64{5, 4}, 3)
	s.Root().Param("w", []int64{6}, Ones)
	require.NoError(t, s.Err())
	idx := torch.FromSlice([]int64{2, 0, 2, 3, 4, 0}, 3, 2) // rows 2, 5, 2, 8, 4, 5
	coef := torch.Arange(1, 19, 1, torch.Float32, torch.CPU).Reshape(3, 6)
	defer idx.Close()
	defer coef.Close()

	scope := torch.NewScope()
	dense := e.Forward(idx)
	require.NoError(t, dense.Mul(coef).Sum(false).Backward())
	denseOut := values(t, dense)
	denseGrad := values(t, e.Weight.Grad())
	scope.Close()

	require.NoError(t, e.SetSparse(true))
	assert.False(t, e.Weight.RequiresGrad())
	names, _ := s.ParameterTensors()
	assert.Equal(t, []string{"w"}, names, "a sparse table is not the dense optimizer's")
	assert.Equal(t, int64(9*3+6), s.NumParameters())

	scope = torch.NewScope()
	defer scope.Close()
	out := e.Forward(idx)
	require.NoError(t, out.Mul(coef).Sum(false).Backward())
	assert.Equal(t, denseOut, values(t, out))
	g, ok, err := e.TakeSparseGrad()
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, g.Distinct)
	ids, err := g.IDs.Int64s()
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 5, 8, 4}, ids)
	rows := values(t, g.Rows)
	for k, r := range ids {
		assert.Equal(t, denseGrad[3*r:3*r+3], rows[3*k:3*k+3], "row %d", r)
	}
	_, ok, _ = e.TakeSparseGrad()
	assert.False(t, ok, "taking the gradient forgets the lookups")

	// Two lookups in one step: their ids may repeat, the optimizer sums them.
	require.NoError(t, e.Forward(idx).Sum(false).Add(e.Lookup(0, torch.FromSlice([]int64{2})).Sum(false)).Backward())
	g, ok, err = e.TakeSparseGrad()
	require.NoError(t, err)
	require.True(t, ok)
	assert.False(t, g.Distinct)
	ids, err = g.IDs.Int64s()
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 5, 8, 4, 2}, ids)

	// Evaluation (no gradients) reads the table directly and records nothing.
	torch.NoGrad(func() { assert.Equal(t, denseOut, values(t, e.Forward(idx))) })
	_, ok, _ = e.TakeSparseGrad()
	assert.False(t, ok)
}

// TestSyncedBatchNormEqualsBatchNorm: in one process (the sum over ranks is
// the identity) the synchronised path gives libtorch's batch norm: output,
// gradients of input, scale and shift, and running statistics; a single
// row falls back to the running statistics.
func TestSyncedBatchNormEqualsBatchNorm(t *testing.T) {
	scope := torch.NewScope()
	defer scope.Close()
	identity := func(t *torch.Tensor) *torch.Tensor { return t }
	for _, rows := range []int64{64, 1} {
		type run struct{ x, w, b, rm, rv, y *torch.Tensor }
		newRun := func() run {
			var r run
			require.NoError(t, torch.ManualSeed(uint64(rows)))
			r.x = torch.Randn([]int64{rows, 5}, torch.Float32, torch.CPU).MulScalar(3).AddScalar(1)
			r.w = torch.Randn([]int64{5}, torch.Float32, torch.CPU)
			r.b = torch.Randn([]int64{5}, torch.Float32, torch.CPU)
			r.rm = torch.Randn([]int64{5}, torch.Float32, torch.CPU)
			r.rv = torch.Rand([]int64{5}, torch.Float32, torch.CPU).AddScalar(0.5)
			for _, p := range []*torch.Tensor{r.x, r.w, r.b} {
				require.NoError(t, p.SetRequiresGrad(true))
			}
			return r
		}
		lib, synced := newRun(), newRun()
		lib.y = torch.BatchNorm(lib.x, lib.w, lib.b, lib.rm, lib.rv, rows > 1, 0.1, 1e-5)
		synced.y = syncedBatchNorm(identity, synced.x, synced.w, synced.b, synced.rm, synced.rv, 0.1, 1e-5)
		require.NoError(t, synced.y.Err())
		weights := torch.Randn([]int64{rows, 5}, torch.Float32, torch.CPU)
		for _, r := range []run{lib, synced} {
			require.NoError(t, r.y.Mul(weights).Sum(false).Backward())
		}
		pairs := map[string][2]*torch.Tensor{
			"output": {lib.y, synced.y}, "running mean": {lib.rm, synced.rm}, "running var": {lib.rv, synced.rv},
			"grad x": {lib.x.Grad(), synced.x.Grad()}, "grad weight": {lib.w.Grad(), synced.w.Grad()},
			"grad bias": {lib.b.Grad(), synced.b.Grad()},
		}
		for what, p := range pairs {
			want, got := values(t, p[0]), values(t, p[1])
			require.Len(t, got, len(want), what)
			for i := range want {
				assert.InDelta(t, want[i], got[i], 2e-5, "%d rows: %s[%d]", rows, what, i)
			}
		}
	}
}
