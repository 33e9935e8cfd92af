package metrics

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Confidence intervals of AUCs follow DeLong, DeLong and Clarke-Pearson
// (Biometrics 1988), computed in O(n log n) as Sun and Xu (IEEE Signal
// Processing Letters 2014) show: every sample's structural component comes
// from its midrank among all samples and among its own class, which one
// pass over the samples sorted by score gives.

// Z95 is the standard normal quantile of 0.975: mean ± Z95·se is a
// two-sided 95% interval.
const Z95 = 1.959963984540054

// deLongComponents fills v[k] with the structural component of the k-th of
// n samples sorted by ascending score: for a positive, the share of the
// negatives it outscores; for a negative, the share of the positives that
// outscore it; a tie counts one half. Both classes' components average to
// the AUC, which it returns with the class counts; ok is false when a
// class is empty.
func deLongComponents(n int, score func(k int) float32, positive func(k int) bool, v []float64) (auc float64, pos, neg int, ok bool) {
	for k := range n {
		if positive(k) {
			pos++
		}
	}
	neg = n - pos
	if pos == 0 || neg == 0 {
		return 0, pos, neg, false
	}
	var posBelow, negBelow int
	var sum float64
	for i := 0; i < n; {
		j := i + 1
		for j < n && score(j) == score(i) {
			j++
		}
		p := 0
		for k := i; k < j; k++ {
			if positive(k) {
				p++
			}
		}
		q := j - i - p
		// A positive here beats the negatives below and ties with the q
		// here; a negative loses to the positives above and ties with the p
		// here.
		posComponent := (float64(negBelow) + float64(q)/2) / float64(neg)
		negComponent := (float64(pos-posBelow-p) + float64(p)/2) / float64(pos)
		for k := i; k < j; k++ {
			if positive(k) {
				v[k] = posComponent
			} else {
				v[k] = negComponent
			}
		}
		sum += float64(p) * posComponent
		posBelow, negBelow = posBelow+p, negBelow+q
		i = j
	}
	return sum / float64(pos), pos, neg, true
}

// deLongCovariance is DeLong's covariance of two AUCs over the same
// samples from their components va and vb (aligned by sample) and their
// AUCs: S10/m + S01/n, with S10 (S01) the sample covariance of the
// components over the m positives (n negatives). With va = vb it is the
// variance of one AUC. ok is false with fewer than two samples of a class.
func deLongCovariance(va, vb []float64, aucA, aucB float64, positive func(k int) bool) (float64, bool) {
	var s10, s01 float64
	var m, n int
	for k := range va {
		d := (va[k] - aucA) * (vb[k] - aucB)
		if positive(k) {
			s10 += d
			m++
		} else {
			s01 += d
			n++
		}
	}
	if m < 2 || n < 2 {
		return 0, false
	}
	return s10/float64(m-1)/float64(m) + s01/float64(n-1)/float64(n), true
}

// aucStdErr is DeLong's standard error of the AUC of samples sorted by prob.
func aucStdErr(sorted []sample) (float64, bool) {
	v := make([]float64, len(sorted))
	positive := func(k int) bool { return sorted[k].pos }
	auc, _, _, ok := deLongComponents(len(sorted), func(k int) float32 { return sorted[k].prob }, positive, v)
	if !ok {
		return 0, false
	}
	variance, ok := deLongCovariance(v, v, auc, auc, positive)
	return math.Sqrt(math.Max(variance, 0)), ok
}

// Interval95 is mean ± Z95·se clipped to [lo, hi].
func Interval95(mean, se, lo, hi float64) (low, high float64) {
	return math.Max(lo, mean-Z95*se), math.Min(hi, mean+Z95*se)
}

// AUCInterval is the 95% confidence interval of the AUC; ok is false when
// the AUC or its standard error is unknown.
func (e Entry) AUCInterval() (low, high float64, ok bool) {
	if e.AUC == nil || e.AUCStdErr == nil {
		return 0, 0, false
	}
	low, high = Interval95(*e.AUC, *e.AUCStdErr, 0, 1)
	return low, high, true
}

// AUCDelta compares two models' AUCs on the same rows with DeLong's paired
// test: Delta is the second model's AUC minus the first's, Low and High
// its 95% interval, P the two-sided p-value of "no difference". Delta is
// nil when undefined (Undefined says why).
type AUCDelta struct {
	Scenario  string   `json:"scenario"`
	Count     int      `json:"count"`
	Delta     *float64 `json:"delta"`
	StdErr    float64  `json:"std_err"`
	Low       float64  `json:"low"`
	High      float64  `json:"high"`
	P         float64  `json:"p"`
	Undefined string   `json:"undefined,omitempty"`
}

// Significant reports whether the interval excludes 0.
func (d AUCDelta) Significant() bool { return d.Delta != nil && (d.Low > 0 || d.High < 0) }

// CompareAUC runs DeLong's paired test of b's AUC against a's, overall and
// per scenario (named and ordered as Compute names them). a and b must hold
// the same rows (scenario, user, label) in the same order: two models'
// predictions on one split.
func CompareAUC(a, b *Accumulator, scenarioNames []string) ([]AUCDelta, error) {
	if a.Len() != b.Len() {
		return nil, fmt.Errorf("metrics: compare AUC: %d rows against %d: not the same split", a.Len(), b.Len())
	}
	for i := range a.label {
		if a.scenario[i] != b.scenario[i] || a.user[i] != b.user[i] || a.label[i] != b.label[i] {
			return nil, fmt.Errorf("metrics: compare AUC: row %d differs (scenario %d/%d, user %d/%d, label %v/%v): not the same rows in the same order",
				i, a.scenario[i], b.scenario[i], a.user[i], b.user[i], a.label[i], b.label[i])
		}
	}
	all := make([]int, a.Len())
	byScenario := map[int64][]int{}
	for i := range all {
		all[i] = i
		byScenario[a.scenario[i]] = append(byScenario[a.scenario[i]], i)
	}
	out := []AUCDelta{pairedDeLong("overall", a, b, all)}
	for _, id := range scenarioIDs(scenarioNames, byScenario) {
		out = append(out, pairedDeLong(scenarioName(scenarioNames, id), a, b, byScenario[id]))
	}
	return out, nil
}

// pairedDeLong compares the AUCs of b and a over the given rows.
func pairedDeLong(name string, a, b *Accumulator, rows []int) AUCDelta {
	d := AUCDelta{Scenario: name, Count: len(rows)}
	pos := 0
	for _, r := range rows {
		if a.label[r] {
			pos++
		}
	}
	switch {
	case len(rows) == 0:
		d.Undefined = ReasonNoSamples
		return d
	case pos == 0:
		d.Undefined = ReasonAllZero
		return d
	case pos == len(rows):
		d.Undefined = ReasonAllOne
		return d
	}
	positive := func(k int) bool { return a.label[rows[k]] }
	va, aucA := rowComponents(a, rows)
	vb, aucB := rowComponents(b, rows)
	varA, _ := deLongCovariance(va, va, aucA, aucA, positive)
	varB, _ := deLongCovariance(vb, vb, aucB, aucB, positive)
	cov, ok := deLongCovariance(va, vb, aucA, aucB, positive)
	if !ok {
		d.Undefined = "fewer than 2 rows of a class"
		return d
	}
	delta := aucB - aucA
	d.Delta = &delta
	d.StdErr = math.Sqrt(math.Max(varA+varB-2*cov, 0))
	d.Low, d.High = Interval95(delta, d.StdErr, -1, 1)
	d.P = 1
	if d.StdErr > 0 {
		d.P = math.Erfc(math.Abs(delta) / d.StdErr / math.Sqrt2)
	}
	return d
}

// rowComponents returns the structural components of acc's predictions on
// rows (v[k] is rows[k]'s) and their AUC; both classes must be present.
func rowComponents(acc *Accumulator, rows []int) ([]float64, float64) {
	order := make([]int, len(rows)) // positions in rows, by ascending score
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(acc.prob[rows[x]], acc.prob[rows[y]]) })
	sorted := make([]float64, len(order))
	auc, _, _, _ := deLongComponents(len(order),
		func(k int) float32 { return acc.prob[rows[order[k]]] },
		func(k int) bool { return acc.label[rows[order[k]]] }, sorted)
	v := make([]float64, len(rows))
	for k, at := range order {
		v[at] = sorted[k]
	}
	return v, auc
}
