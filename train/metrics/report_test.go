package metrics

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixture: two scenarios, three users.
//
//	scenario 0 (search): user 1: (1, .9) (0, .1) (0, .5)  -> user AUC 1
//	                     user 2: (1, .2) (0, .6)          -> user AUC 0
//	scenario 1 (feed):   user 3: (0, .3) (0, .4)          -> all labels 0
//
// search AUC: positives .9 and .2 against negatives .1 .5 .6: 3 + 1 = 4 of 6.
// search gAUC: (1*3 + 0*2) / 5 = 0.6 over 2 users.
// overall AUC: positives .9 .2 against .1 .5 .6 .3 .4: 5 + 1 = 6 of 10.
// overall gAUC: users 1 and 2 only (user 3 has one class): 0.6.
func fixture(t *testing.T) *Accumulator {
	t.Helper()
	var a Accumulator
	// Two batches, to exercise appending.
	require.NoError(t, a.Add([]int64{0, 0, 0}, []int64{1, 1, 1}, []float32{1, 0, 0}, []float32{0.9, 0.1, 0.5}))
	require.NoError(t, a.Add([]int64{0, 0, 1, 1}, []int64{2, 2, 3, 3}, []float32{1, 0, 0, 0}, []float32{0.2, 0.6, 0.3, 0.4}))
	return &a
}

func ptr(v float64) *float64 { return &v }

// logloss of the fixture's rows, for the expectations below.
func ll(rows ...[2]float64) float64 {
	var s float64
	for _, r := range rows {
		if r[0] == 1 {
			s -= math.Log(r[1])
		} else {
			s -= math.Log(1 - r[1])
		}
	}
	return s / float64(len(rows))
}

func TestCompute(t *testing.T) {
	searchRows := [][2]float64{{1, .9}, {0, .1}, {0, .5}, {1, .2}, {0, .6}}
	feedRows := [][2]float64{{0, .3}, {0, .4}}
	r := fixture(t).Compute([]string{"search", "feed", "ads"})
	want := []Entry{
		{Scenario: "overall", Count: 7, Positives: 2, PosRate: 2.0 / 7, MeanPred: 3.0 / 7,
			LogLoss: ptr(ll(append(searchRows, feedRows...)...)), AUC: ptr(0.6), GAUC: ptr(0.6), GAUCUsers: 2},
		{Scenario: "search", Count: 5, Positives: 2, PosRate: 0.4, MeanPred: 2.3 / 5,
			LogLoss: ptr(ll(searchRows...)), AUC: ptr(4.0 / 6), GAUC: ptr(0.6), GAUCUsers: 2},
		{Scenario: "feed", Count: 2, PosRate: 0, MeanPred: 0.35,
			LogLoss: ptr(ll(feedRows...)), AUCUndefined: ReasonAllZero, GAUCUndefined: ReasonNoUsers},
		{Scenario: "ads", AUCUndefined: ReasonNoSamples, GAUCUndefined: ReasonNoSamples},
	}
	got := append([]Entry{r.Overall}, r.PerScenario...)
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		assertEntry(t, got[i], want[i])
	}
}

func assertEntry(t *testing.T, got, want Entry) {
	t.Helper()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 } // probabilities are float32
	nearPtr := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || near(*a, *b)) }
	if got.Scenario != want.Scenario || got.Count != want.Count || got.Positives != want.Positives ||
		!near(got.PosRate, want.PosRate) || !near(got.MeanPred, want.MeanPred) ||
		!nearPtr(got.LogLoss, want.LogLoss) || !nearPtr(got.AUC, want.AUC) || !nearPtr(got.GAUC, want.GAUC) ||
		got.GAUCUsers != want.GAUCUsers || got.AUCUndefined != want.AUCUndefined || got.GAUCUndefined != want.GAUCUndefined {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("entry %s:\n got %s\nwant %s", want.Scenario, g, w)
	}
}

func TestComputeEdgeCases(t *testing.T) {
	tests := []struct {
		name     string
		scenario []int64
		user     []int64
		label    []float32
		prob     []float32
		names    []string
		want     Entry // overall
		extra    []string
	}{
		{
			name: "all labels 1", scenario: []int64{0, 0}, user: []int64{1, 2},
			label: []float32{1, 1}, prob: []float32{0.5, 0.5}, names: []string{"s"},
			want: Entry{Scenario: "overall", Count: 2, Positives: 2, PosRate: 1, MeanPred: 0.5,
				LogLoss: ptr(math.Ln2), AUCUndefined: ReasonAllOne, GAUCUndefined: ReasonNoUsers},
		},
		{
			// A single user: gAUC equals AUC.
			name: "single user", scenario: []int64{0, 0, 0}, user: []int64{7, 7, 7},
			label: []float32{0, 1, 0}, prob: []float32{0.2, 0.3, 0.4}, names: []string{"s"},
			want: Entry{Scenario: "overall", Count: 3, Positives: 1, PosRate: 1.0 / 3, MeanPred: 0.3,
				LogLoss: ptr(ll([2]float64{0, .2}, [2]float64{1, .3}, [2]float64{0, .4})),
				AUC:     ptr(0.5), GAUC: ptr(0.5), GAUCUsers: 1},
		},
		{
			// Clipping: p=1 for a negative costs -log(1e-7), p=0 for a positive the same.
			name: "clipped", scenario: []int64{0, 0}, user: []int64{1, 1},
			label: []float32{0, 1}, prob: []float32{1, 0}, names: []string{"s"},
			want: Entry{Scenario: "overall", Count: 2, Positives: 1, PosRate: 0.5, MeanPred: 0.5,
				LogLoss: ptr(-math.Log(Eps)), AUC: ptr(0), GAUC: ptr(0), GAUCUsers: 1},
		},
		{
			// Weighting: user 1 (AUC 1) has 4 impressions, user 2 (AUC 0) has 2: 4/6.
			// Overall AUC: .9 beats all 4 negatives, .1 ties one: 4.5 of 8.
			name: "impression weighting", scenario: []int64{0, 0, 0, 0, 0, 0}, user: []int64{1, 1, 1, 1, 2, 2},
			label: []float32{1, 0, 0, 0, 1, 0}, prob: []float32{0.9, 0.1, 0.2, 0.3, 0.1, 0.8}, names: []string{"s"},
			want: Entry{Scenario: "overall", Count: 6, Positives: 2, PosRate: 2.0 / 6, MeanPred: 2.4 / 6,
				LogLoss: ptr(ll([2]float64{1, .9}, [2]float64{0, .1}, [2]float64{0, .2}, [2]float64{0, .3}, [2]float64{1, .1}, [2]float64{0, .8})),
				AUC:     ptr(4.5 / 8), GAUC: ptr(4.0 / 6), GAUCUsers: 2},
		},
		{
			name: "no samples", names: []string{"s"},
			want: Entry{Scenario: "overall", AUCUndefined: ReasonNoSamples, GAUCUndefined: ReasonNoSamples},
		},
		{
			name: "unnamed scenario id", scenario: []int64{3}, user: []int64{1},
			label: []float32{1}, prob: []float32{0.5}, names: []string{"a"},
			want: Entry{Scenario: "overall", Count: 1, Positives: 1, PosRate: 1, MeanPred: 0.5,
				LogLoss: ptr(math.Ln2), AUCUndefined: ReasonAllOne, GAUCUndefined: ReasonNoUsers},
			extra: []string{"a", "scenario_3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Accumulator
			require.NoError(t, a.Add(tt.scenario, tt.user, tt.label, tt.prob))
			r := a.Compute(tt.names)
			assertEntry(t, r.Overall, tt.want)
			if tt.extra != nil {
				var got []string
				for _, e := range r.PerScenario {
					got = append(got, e.Scenario)
				}
				if strings.Join(got, ",") != strings.Join(tt.extra, ",") {
					t.Errorf("scenarios = %v, want %v", got, tt.extra)
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

func TestAddRejectsBadBatches(t *testing.T) {
	tests := []struct {
		name     string
		scenario []int64
		user     []int64
		label    []float32
		prob     []float32
		wantErr  string
	}{
		{"lengths", []int64{0}, []int64{0, 1}, []float32{0}, []float32{0.5}, "lengths differ"},
		{"label", []int64{0, 0}, []int64{0, 0}, []float32{0, 0.5}, []float32{0.5, 0.5}, "row 1: label 0.5"},
		{"nan prob", []int64{0}, []int64{0}, []float32{0}, []float32{float32(math.NaN())}, "row 0: probability NaN"},
		{"prob above 1", []int64{0}, []int64{0}, []float32{0}, []float32{1.5}, "outside [0, 1]"},
		{"negative scenario", []int64{-1}, []int64{0}, []float32{0}, []float32{0.5}, "scenario id -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Accumulator
			err := a.Add(tt.scenario, tt.user, tt.label, tt.prob)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if a.Len() != 0 {
				t.Errorf("a rejected batch was kept: Len = %d", a.Len())
			}
		})
	}
}

func TestReportJSON(t *testing.T) {
	r := fixture(t).Compute([]string{"search", "feed"})
	b, err := json.Marshal(r)
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{`"per_scenario":[`, `"pos_rate":`, `"gauc_users":2`,
		`"scenario":"feed","count":2,"positives":0,"pos_rate":0,"mean_pred":0.35`, `"auc":null,"auc_undefined":"all labels 0"`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "NaN") {
		t.Errorf("JSON has NaN: %s", s)
	}
	var back Report
	require.NoError(t, json.Unmarshal(b, &back))
	assertEntry(t, back.PerScenario[0], r.PerScenario[0])
}

func TestFlatten(t *testing.T) {
	m := fixture(t).Compute([]string{"search", "feed"}).Flatten("test")
	want := map[string]float64{
		"test.overall.auc":           0.6,
		"test.overall.gauc_users":    2,
		"test.scenario.search.auc":   4.0 / 6,
		"test.scenario.search.count": 5,
		"test.scenario.feed.count":   2,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || math.Abs(got-v) > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, absent := range []string{"test.scenario.feed.auc", "test.scenario.feed.gauc"} {
		if _, ok := m[absent]; ok {
			t.Errorf("undefined metric %s is present", absent)
		}
	}
}
