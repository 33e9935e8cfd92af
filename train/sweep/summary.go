package sweep

import (
	"cmp"
	"math"
	"slices"

	"github.com/msrtrain/msrtrain/train/metrics"
)

// Stat is the mean and sample standard deviation (n-1 denominator; 0 when
// N is 1) of one metric over the seeds of a point that report it.
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	N    int     `json:"n"`
}

// PointSummary aggregates the trials of one point.
type PointSummary struct {
	Point     int             `json:"point"`
	PointID   string          `json:"point_id"`
	Overrides map[string]any  `json:"overrides"`
	OK        int             `json:"ok"`
	Failed    int             `json:"failed"`
	Pending   int             `json:"pending"`
	Stats     map[string]Stat `json:"stats"` // by metric name, over the ok trials
	// Deltas are the paired differences from the baseline point, by metric
	// name; nil without a baseline, and for the baseline itself.
	Deltas   map[string]Delta `json:"deltas,omitempty"`
	Failures []Outcome        `json:"failures,omitempty"`
}

// Delta is a point's metric minus the baseline's, paired by seed over the
// seeds where both trials are ok: the mean and sample standard deviation
// of the N differences and the 95% Student t interval of their mean
// (Lo = Hi = Mean for one pair: no interval).
type Delta struct {
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"`
	N      int     `json:"n"`
	Lo, Hi float64
}

// Table is a sweep's summary: every point, best first by Metric, and every
// trial in trial order.
type Table struct {
	Metric   string         `json:"metric"`
	Maximize bool           `json:"maximize"`
	Random   bool           `json:"random"`             // a random search: the keys were sampled, not a grid
	Baseline string         `json:"baseline,omitempty"` // the point id the deltas compare with
	Keys     []string       `json:"keys"`               // overridden config keys, in spec order
	Metrics  []string       `json:"metrics"`            // every metric name reported, sorted
	Points   []PointSummary `json:"points"`
	Trials   []Outcome      `json:"trials"`
}

// Summarize groups outcomes by point and sorts the points by the mean of
// spec.Metric (best first; points without it last, in point order).
func Summarize(spec Spec, outcomes []Outcome) Table {
	t := Table{Metric: spec.Metric, Maximize: spec.Maximize, Random: spec.Method == MethodRandom, Keys: spec.Keys(), Trials: outcomes}
	byPoint := map[int]*PointSummary{}
	values := map[int]map[string][]float64{}
	metrics := map[string]bool{}
	var order []int
	for _, o := range outcomes {
		p, ok := byPoint[o.Trial.Point]
		if !ok {
			p = &PointSummary{Point: o.Trial.Point, PointID: o.Trial.PointID, Overrides: o.Trial.Overrides, Stats: map[string]Stat{}}
			byPoint[o.Trial.Point] = p
			values[o.Trial.Point] = map[string][]float64{}
			order = append(order, o.Trial.Point)
		}
		switch o.Result.Status {
		case StatusOK:
			p.OK++
			for k, v := range o.Result.Metrics {
				values[p.Point][k] = append(values[p.Point][k], v)
				metrics[k] = true
			}
		case StatusFailed:
			p.Failed++
			p.Failures = append(p.Failures, o)
		default:
			p.Pending++
		}
	}
	base := -1
	if spec.Baseline != nil {
		for _, pt := range order {
			if spec.Baseline.matches(byPoint[pt].Overrides) {
				base = pt
				t.Baseline = byPoint[pt].PointID
				break
			}
		}
	}
	for _, pt := range order {
		p := byPoint[pt]
		for k, vs := range values[pt] {
			p.Stats[k] = stat(vs)
		}
		if base >= 0 && pt != base {
			p.Deltas = pairedDeltas(outcomes, pt, base)
		}
		t.Points = append(t.Points, *p)
	}
	for k := range metrics {
		t.Metrics = append(t.Metrics, k)
	}
	slices.Sort(t.Metrics)
	slices.SortStableFunc(t.Points, func(a, b PointSummary) int {
		sa, oka := a.Stats[t.Metric]
		sb, okb := b.Stats[t.Metric]
		switch {
		case oka && okb && sa.Mean != sb.Mean:
			if t.Maximize {
				return cmp.Compare(sb.Mean, sa.Mean)
			}
			return cmp.Compare(sa.Mean, sb.Mean)
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Point, b.Point)
	})
	return t
}

func stat(vs []float64) Stat {
	s := Stat{N: len(vs)}
	if s.N == 0 {
		return s
	}
	for _, v := range vs {
		s.Mean += v
	}
	s.Mean /= float64(s.N)
	if s.N > 1 {
		var ss float64
		for _, v := range vs {
			ss += (v - s.Mean) * (v - s.Mean)
		}
		s.Std = math.Sqrt(ss / float64(s.N-1))
	}
	return s
}

// Failed counts the trials that failed.
func (t Table) Failed() int {
	n := 0
	for _, o := range t.Trials {
		if o.Result.Status == StatusFailed {
			n++
		}
	}
	return n
}

// pairedDeltas compares point with base seed by seed, for every metric both
// trials of a seed report.
func pairedDeltas(outcomes []Outcome, point, base int) map[string]Delta {
	bySeed := map[int64]map[string]float64{} // the baseline's ok trials
	for _, o := range outcomes {
		if o.Trial.Point == base && o.Result.Status == StatusOK {
			bySeed[o.Trial.Seed] = o.Result.Metrics
		}
	}
	diffs := map[string][]float64{}
	for _, o := range outcomes {
		b, ok := bySeed[o.Trial.Seed]
		if o.Trial.Point != point || o.Result.Status != StatusOK || !ok {
			continue
		}
		for k, v := range o.Result.Metrics {
			if bv, ok := b[k]; ok {
				diffs[k] = append(diffs[k], v-bv)
			}
		}
	}
	out := map[string]Delta{}
	for k, ds := range diffs {
		s := stat(ds)
		half := 0.0
		if s.N > 1 {
			half = tQuantile975(s.N-1) * s.Std / math.Sqrt(float64(s.N))
		}
		out[k] = Delta{Mean: s.Mean, Std: s.Std, N: s.N, Lo: s.Mean - half, Hi: s.Mean + half}
	}
	return out
}

// tTable975 holds the 0.975 quantiles of Student's t for 1 … 30 degrees of freedom.
var tTable975 = []float64{12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
	2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
	2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom: the table to 30, then the Cornish–Fisher expansion around the
// normal quantile (within 1e-4 there).
func tQuantile975(df int) float64 {
	if df <= len(tTable975) {
		return tTable975[df-1]
	}
	const z = metrics.Z95
	n := float64(df)
	z3, z5 := z*z*z, z*z*z*z*z
	return z + (z3+z)/(4*n) + (5*z5+16*z3+3*z)/(96*n*n)
}
