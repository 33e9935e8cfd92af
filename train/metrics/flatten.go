package metrics

// Flatten returns the report as dotted metric names, the form a sweep
// records: "<prefix>.overall.auc", "<prefix>.scenario.<name>.logloss", and so
// on for count, positives, pos_rate, mean_pred, logloss, auc, gauc and
// gauc_users. Undefined metrics are left out rather than given a sentinel
// value. An empty prefix gives names without the leading dot.
func (r Report) Flatten(prefix string) map[string]float64 {
	if prefix != "" {
		prefix += "."
	}
	out := map[string]float64{}
	r.Overall.flatten(out, prefix+"overall.")
	for _, e := range r.PerScenario {
		e.flatten(out, prefix+"scenario."+e.Scenario+".")
	}
	return out
}

func (e Entry) flatten(out map[string]float64, p string) {
	out[p+"count"] = float64(e.Count)
	out[p+"positives"] = float64(e.Positives)
	if e.Count == 0 {
		return
	}
	out[p+"pos_rate"] = e.PosRate
	out[p+"mean_pred"] = e.MeanPred
	for _, m := range Metrics {
		if v, ok := m.Of(e); ok {
			out[p+m.Name] = v
		}
	}
	if e.GAUC != nil {
		out[p+"gauc_users"] = float64(e.GAUCUsers)
	}
}
