package metrics

import (
	"cmp"
	"slices"
)

// sample is one prediction as the metric kernels see it.
type sample struct {
	scenario int64
	user     int64
	prob     float32
	pos      bool
}

// classCounts returns the number of positive and negative samples.
func classCounts(s []sample) (pos, neg int) {
	for i := range s {
		if s[i].pos {
			pos++
		}
	}
	return pos, len(s) - pos
}

// aucSorted returns the exact ROC AUC of samples already sorted by prob
// (ascending), computed from the Mann–Whitney U statistic: tied scores share
// the average of the ranks they span. ok is false when the samples lack
// either class, in which case the AUC is undefined.
func aucSorted(s []sample) (auc float64, ok bool) {
	pos, neg := classCounts(s)
	if pos == 0 || neg == 0 {
		return 0, false
	}
	var rankSum float64 // sum of the (1-based, tie-averaged) ranks of positives
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j].prob == s[i].prob {
			j++
		}
		// Ranks i+1..j averaged.
		avg := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			if s[k].pos {
				rankSum += avg
			}
		}
		i = j
	}
	p, n := float64(pos), float64(neg)
	return (rankSum - p*(p+1)/2) / (p * n), true
}

// AUC returns the exact ROC AUC of scores against binary labels (a label
// counts as positive when it is >= 0.5). ok is false when the labels are all
// one class (or there are none): the AUC is then undefined. It sorts a copy,
// so it runs in O(n log n) and leaves its arguments untouched. It returns
// ok=false as well when the slices differ in length.
func AUC(labels, scores []float32) (auc float64, ok bool) {
	if len(labels) != len(scores) {
		return 0, false
	}
	s := make([]sample, len(labels))
	for i := range labels {
		s[i] = sample{prob: scores[i], pos: labels[i] >= 0.5}
	}
	slices.SortFunc(s, byProb)
	return aucSorted(s)
}

func byProb(a, b sample) int { return cmp.Compare(a.prob, b.prob) }
