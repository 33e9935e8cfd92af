package metrics

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Probabilities are clipped to [Eps, 1-Eps] before taking logs.
const Eps = 1e-7

// Reasons a metric can be undefined, as they appear in Entry and in tables.
const (
	ReasonNoSamples = "no samples"
	ReasonAllZero   = "all labels 0"
	ReasonAllOne    = "all labels 1"
	ReasonNoUsers   = "no user with both classes"
)

// Entry holds the metrics of one slice of the data: one scenario or all of
// them. AUC, GAUC and LogLoss are nil when undefined; the matching
// *Undefined field then says why.
type Entry struct {
	Scenario      string   `json:"scenario"`
	Count         int      `json:"count"`
	Positives     int      `json:"positives"`
	PosRate       float64  `json:"pos_rate"`  // 0 when Count is 0
	MeanPred      float64  `json:"mean_pred"` // 0 when Count is 0
	LogLoss       *float64 `json:"logloss"`
	AUC           *float64 `json:"auc"`
	AUCStdErr     *float64 `json:"auc_std_err,omitempty"` // DeLong's; nil when AUC is, or with fewer than 2 samples of a class
	AUCUndefined  string   `json:"auc_undefined,omitempty"`
	GAUC          *float64 `json:"gauc"`
	GAUCUsers     int      `json:"gauc_users"` // users with both classes, the ones gAUC averages over
	GAUCUndefined string   `json:"gauc_undefined,omitempty"`
}

// MinGAUCUsers is the number of users below which a gAUC is flagged as
// noisy. gAUC averages per-user AUCs, which spread widely (a standard
// deviation of 0.2 is common, since each comes from a handful of one
// user's rows), so its standard error is about 0.2/√users: at 100 users
// 0.02, as large as the gains multi-scenario papers report.
const MinGAUCUsers = 100

// Report is the result of Accumulator.Compute.
type Report struct {
	Overall     Entry   `json:"overall"`
	PerScenario []Entry `json:"per_scenario"`
}

// Compute returns the metrics overall and per scenario. Scenario id i is
// named scenarioNames[i]; every named scenario gets an entry (with Count 0 if
// it had no samples), in order, followed by any id beyond the names, named
// "scenario_<id>". The Accumulator is left unchanged.
func (a *Accumulator) Compute(scenarioNames []string) Report {
	s := a.samples()

	// Overall: gAUC needs (user, prob) order, AUC (prob) order.
	slices.SortFunc(s, func(x, y sample) int { return cmp.Or(cmp.Compare(x.user, y.user), byProb(x, y)) })
	gauc, users := gAUC(s)
	slices.SortFunc(s, byProb)
	r := Report{Overall: entry("overall", s, gauc, users)}

	// Per scenario: one sort by (scenario, user, prob) for gAUC, then one by
	// (scenario, prob) for AUC; both give contiguous runs per scenario.
	slices.SortFunc(s, func(x, y sample) int {
		return cmp.Or(cmp.Compare(x.scenario, y.scenario), cmp.Compare(x.user, y.user), byProb(x, y))
	})
	type gaucOf struct {
		v     *float64
		users int
	}
	gaucByScenario := map[int64]gaucOf{}
	for _, run := range runs(s, func(x sample) int64 { return x.scenario }) {
		v, n := gAUC(run)
		gaucByScenario[run[0].scenario] = gaucOf{v, n}
	}
	slices.SortFunc(s, func(x, y sample) int { return cmp.Or(cmp.Compare(x.scenario, y.scenario), byProb(x, y)) })
	byScenario := map[int64][]sample{}
	for _, run := range runs(s, func(x sample) int64 { return x.scenario }) {
		byScenario[run[0].scenario] = run
	}

	for _, id := range scenarioIDs(scenarioNames, byScenario) {
		g := gaucByScenario[id]
		r.PerScenario = append(r.PerScenario, entry(scenarioName(scenarioNames, id), byScenario[id], g.v, g.users))
	}
	return r
}

// scenarioIDs are the ids a report has an entry for, in order: every named
// one, then any id of present beyond the names.
func scenarioIDs[T any](names []string, present map[int64]T) []int64 {
	ids := make([]int64, 0, len(names)+len(present))
	for i := range names {
		ids = append(ids, int64(i))
	}
	for id := range present {
		if id >= int64(len(names)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// scenarioName names scenario id: names[id], or "scenario_<id>" beyond them.
func scenarioName(names []string, id int64) string {
	if id < int64(len(names)) {
		return names[id]
	}
	return fmt.Sprintf("scenario_%d", id)
}

// entry computes an Entry from samples sorted by prob and a precomputed gAUC.
func entry(name string, sorted []sample, gauc *float64, gaucUsers int) Entry {
	e := Entry{Scenario: name, Count: len(sorted), GAUC: gauc, GAUCUsers: gaucUsers}
	pos, neg := classCounts(sorted)
	e.Positives = pos
	switch {
	case len(sorted) == 0:
		e.AUCUndefined, e.GAUCUndefined = ReasonNoSamples, ReasonNoSamples
		return e
	case pos == 0:
		e.AUCUndefined = ReasonAllZero
	case neg == 0:
		e.AUCUndefined = ReasonAllOne
	default:
		auc, _ := aucSorted(sorted)
		e.AUC = &auc
		if se, ok := aucStdErr(sorted); ok {
			e.AUCStdErr = &se
		}
	}
	if gauc == nil {
		e.GAUCUndefined = ReasonNoUsers
	}
	var sumP, loss float64
	for _, x := range sorted {
		p := float64(x.prob)
		sumP += p
		p = min(max(p, Eps), 1-Eps)
		if x.pos {
			loss -= math.Log(p)
		} else {
			loss -= math.Log(1 - p)
		}
	}
	n := float64(len(sorted))
	e.PosRate, e.MeanPred = float64(pos)/n, sumP/n
	ll := loss / n
	e.LogLoss = &ll
	return e
}

// gAUC returns the impression-weighted mean of per-user AUC over users with
// both classes, for samples sorted by (user, prob), and how many users
// counted. It returns nil when no user has both classes.
func gAUC(s []sample) (*float64, int) {
	var sum, weight float64
	users := 0
	for _, run := range runs(s, func(x sample) int64 { return x.user }) {
		if auc, ok := aucSorted(run); ok {
			w := float64(len(run))
			sum += auc * w
			weight += w
			users++
		}
	}
	if users == 0 {
		return nil, 0
	}
	g := sum / weight
	return &g, users
}

// runs splits s into maximal runs of equal key.
func runs(s []sample, key func(sample) int64) [][]sample {
	var out [][]sample
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && key(s[j]) == key(s[i]) {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}
