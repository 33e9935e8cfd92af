package metrics

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// psi is the Mann–Whitney kernel: 1 when the positive outscores the
// negative, a half on a tie.
func psi(positive, negative float32) float64 {
	switch {
	case positive > negative:
		return 1
	case positive == negative:
		return 0.5
	}
	return 0
}

// bruteDeLong is DeLong's covariance of two AUCs over the same rows written
// from the 1988 paper's definitions, in O(n²): each positive's component
// V10 is the mean kernel against every negative, each negative's V01 the
// mean kernel of every positive against it, and the covariance is
// S10/m + S01/n with S the sample covariances of the components.
func bruteDeLong(labels []bool, a, b []float32) (aucA, aucB, covariance float64) {
	var posIdx, negIdx []int
	for i, l := range labels {
		if l {
			posIdx = append(posIdx, i)
		} else {
			negIdx = append(negIdx, i)
		}
	}
	m, n := float64(len(posIdx)), float64(len(negIdx))
	v10 := func(s []float32) []float64 {
		out := make([]float64, len(posIdx))
		for k, i := range posIdx {
			for _, j := range negIdx {
				out[k] += psi(s[i], s[j]) / n
			}
		}
		return out
	}
	v01 := func(s []float32) []float64 {
		out := make([]float64, len(negIdx))
		for k, j := range negIdx {
			for _, i := range posIdx {
				out[k] += psi(s[i], s[j]) / m
			}
		}
		return out
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	cov := func(x, y []float64) float64 {
		mx, my := mean(x), mean(y)
		var s float64
		for k := range x {
			s += (x[k] - mx) * (y[k] - my)
		}
		return s / float64(len(x)-1)
	}
	a10, a01, b10, b01 := v10(a), v01(a), v10(b), v01(b)
	return mean(a10), mean(b10), cov(a10, b10)/m + cov(a01, b01)/n
}

func accumulate(t *testing.T, scenario []int64, labels []bool, probs []float32) *Accumulator {
	t.Helper()
	var acc Accumulator
	users := make([]int64, len(labels))
	lab := make([]float32, len(labels))
	for i := range labels {
		users[i] = int64(i % 7)
		if labels[i] {
			lab[i] = 1
		}
	}
	require.NoError(t, acc.Add(scenario, users, lab, probs))
	return &acc
}

// The sklearn docstring example worked by hand: positives 0.35 and 0.8
// beat 1 and 2 of the 2 negatives (V10 = 0.5, 1); negatives 0.1 and 0.4
// lose to 2 and 1 of the 2 positives (V01 = 1, 0.5). S10 = S01 = 0.125, so
// the variance is 0.125/2 + 0.125/2.
func TestAUCStdErrByHand(t *testing.T) {
	acc := accumulate(t, []int64{0, 0, 0, 0}, []bool{false, false, true, true}, []float32{0.1, 0.4, 0.35, 0.8})
	r := acc.Compute([]string{"s"})
	require.NotNil(t, r.Overall.AUCStdErr)
	assert.InDelta(t, 0.75, *r.Overall.AUC, tol)
	assert.InDelta(t, math.Sqrt(0.125), *r.Overall.AUCStdErr, tol)
	low, high, ok := r.Overall.AUCInterval()
	require.True(t, ok)
	assert.InDelta(t, 0.75-Z95*math.Sqrt(0.125), low, tol)
	assert.Equal(t, 1.0, high, "clipped at 1")
}

// The O(n log n) variance and the paired test agree with the O(n²)
// definitions on fixed random data with many ties (scores on a coarse
// grid), per scenario and overall.
func TestDeLongMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 7))
	const n = 600
	scenario := make([]int64, n)
	labels := make([]bool, n)
	a, b := make([]float32, n), make([]float32, n)
	for i := range n {
		scenario[i] = int64(rng.IntN(3))
		labels[i] = rng.Float64() < 0.3+0.1*float64(scenario[i])
		signal := 0.0
		if labels[i] {
			signal = 1
		}
		// Correlated models: b sees the label a little better than a.
		noise := rng.NormFloat64()
		a[i] = float32(math.Round(20*sigmoid(0.6*signal+noise)) / 20)
		b[i] = float32(math.Round(50*sigmoid(0.9*signal+0.8*noise+0.5*rng.NormFloat64())) / 50)
	}
	names := []string{"x", "y", "z"}
	accA, accB := accumulate(t, scenario, labels, a), accumulate(t, scenario, labels, b)
	deltas, err := CompareAUC(accA, accB, names)
	require.NoError(t, err)
	require.Len(t, deltas, 4)
	ra, rb := accA.Compute(names), accB.Compute(names)
	for g, name := range []string{"overall", "x", "y", "z"} {
		var lab []bool
		var sa, sb []float32
		for i := range n {
			if g == 0 || scenario[i] == int64(g-1) {
				lab, sa, sb = append(lab, labels[i]), append(sa, a[i]), append(sb, b[i])
			}
		}
		aucA, aucB, cov := bruteDeLong(lab, sa, sb)
		_, _, varA := bruteDeLong(lab, sa, sa)
		_, _, varB := bruteDeLong(lab, sb, sb)
		entryA, entryB := ra.entries()[g], rb.entries()[g]
		assert.Equal(t, name, entryA.Scenario)
		assert.InDelta(t, aucA, *entryA.AUC, tol, name)
		assert.InDelta(t, math.Sqrt(varA), *entryA.AUCStdErr, tol, name)
		assert.InDelta(t, math.Sqrt(varB), *entryB.AUCStdErr, tol, name)

		d := deltas[g]
		assert.Equal(t, name, d.Scenario)
		assert.Equal(t, len(lab), d.Count)
		require.NotNil(t, d.Delta, name)
		se := math.Sqrt(varA + varB - 2*cov)
		assert.InDelta(t, aucB-aucA, *d.Delta, tol, name)
		assert.InDelta(t, se, d.StdErr, tol, name)
		assert.InDelta(t, aucB-aucA-Z95*se, d.Low, tol, name)
		assert.InDelta(t, aucB-aucA+Z95*se, d.High, tol, name)
		assert.InDelta(t, math.Erfc(math.Abs(aucB-aucA)/se/math.Sqrt2), d.P, tol, name)
		assert.Greater(t, cov, 0.0, "the models are correlated, so pairing narrows the interval")
	}
	// b is the better model by construction, clearly so on 600 rows.
	assert.True(t, deltas[0].Significant(), "overall %+v", deltas[0])
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestCompareAUCEdgeCases(t *testing.T) {
	scenario := []int64{0, 0, 0, 0, 1, 1}
	labels := []bool{true, false, true, false, true, true}
	a := accumulate(t, scenario, labels, []float32{0.9, 0.2, 0.6, 0.4, 0.5, 0.5})

	// A model against itself: no difference, an interval of width 0 around
	// it, not significant.
	same, err := CompareAUC(a, a, []string{"x", "y", "empty"})
	require.NoError(t, err)
	require.Len(t, same, 4)
	require.NotNil(t, same[0].Delta)
	assert.Equal(t, 0.0, *same[0].Delta)
	assert.Equal(t, 0.0, same[0].StdErr)
	assert.Equal(t, 1.0, same[0].P)
	assert.False(t, same[0].Significant())
	assert.Equal(t, AUCDelta{Scenario: "y", Count: 2, Undefined: ReasonAllOne}, same[2])
	assert.Equal(t, AUCDelta{Scenario: "empty", Undefined: ReasonNoSamples}, same[3])

	// Other rows, or the same rows in another order: refused.
	shorter := accumulate(t, scenario[:4], labels[:4], []float32{0.9, 0.2, 0.6, 0.4})
	_, err = CompareAUC(a, shorter, nil)
	assert.ErrorContains(t, err, "6 rows against 4")
	swapped := accumulate(t, scenario, []bool{false, true, true, false, true, true}, []float32{0.9, 0.2, 0.6, 0.4, 0.5, 0.5})
	_, err = CompareAUC(a, swapped, nil)
	assert.ErrorContains(t, err, "row 0 differs")
}
