package metrics

import "strings"

// Metric is one quality metric of an Entry. Metrics is the one table of
// them: reports flatten through it, early stopping watches one of it, and a
// sweep sorts by one in the direction it gives.
type Metric struct {
	Name   string // as configs and flattened names spell it: "auc"
	Higher bool   // whether a higher value is better
	of     func(Entry) *float64
}

// Metrics are the quality metrics, in the order docs list them.
var Metrics = []Metric{
	{"auc", true, func(e Entry) *float64 { return e.AUC }},
	{"gauc", true, func(e Entry) *float64 { return e.GAUC }},
	{"logloss", false, func(e Entry) *float64 { return e.LogLoss }},
}

// Lookup finds a metric by name.
func Lookup(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// MetricNames lists the metrics for a message: "auc, gauc or logloss".
func MetricNames() string {
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = m.Name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Of reads the metric from an entry; false when it is undefined there.
func (m Metric) Of(e Entry) (float64, bool) {
	if v := m.of(e); v != nil {
		return *v, true
	}
	return 0, false
}

// Better reports whether a is better than b.
func (m Metric) Better(a, b float64) bool {
	if m.Higher {
		return a > b
	}
	return a < b
}

// HigherIsBetter says which way a flattened name ("test.scenario.search.logloss")
// improves: its last part's direction, or higher for names that are not
// quality metrics (train.samples_per_sec).
func HigherIsBetter(flattened string) bool {
	if m, ok := Lookup(flattened[strings.LastIndex(flattened, ".")+1:]); ok {
		return m.Higher
	}
	return true
}
