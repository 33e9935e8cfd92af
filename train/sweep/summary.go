package sweep

import (
	"cmp"
	"math"
	"slices"
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
	Failures  []Outcome       `json:"failures,omitempty"`
}

// Table is a sweep's summary: every point, best first by Metric, and every
// trial in trial order.
type Table struct {
	Metric   string         `json:"metric"`
	Maximize bool           `json:"maximize"`
	Random   bool           `json:"random"`  // a random search: the keys were sampled, not a grid
	Keys     []string       `json:"keys"`    // overridden config keys, in spec order
	Metrics  []string       `json:"metrics"` // every metric name reported, sorted
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
	for _, pt := range order {
		p := byPoint[pt]
		for k, vs := range values[pt] {
			p.Stats[k] = stat(vs)
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
