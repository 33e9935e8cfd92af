package sweep

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const pointsSpec = `seeds: 3
metric: test.overall.auc
baseline: {model.meta.levels: none}
points:
  - {model.meta.levels: none}
  - {model.meta.levels: both, knowledge.encoder: hash}
  - {model.meta.levels: both, knowledge.encoder: learned}
`

func TestParseSpecPoints(t *testing.T) {
	s, err := ParseSpec([]byte(pointsSpec), "p.yaml")
	require.NoError(t, err)
	assert.Equal(t, MethodPoints, s.Method)
	want := []Point{
		{Keys: []string{"model.meta.levels"}, Overrides: map[string]any{"model.meta.levels": "none"}, Line: 5},
		{Keys: []string{"model.meta.levels", "knowledge.encoder"}, Overrides: map[string]any{"model.meta.levels": "both", "knowledge.encoder": "hash"}, Line: 6},
		{Keys: []string{"model.meta.levels", "knowledge.encoder"}, Overrides: map[string]any{"model.meta.levels": "both", "knowledge.encoder": "learned"}, Line: 7},
	}
	if !reflect.DeepEqual(s.Points, want) {
		t.Errorf("points %+v\nwant   %+v", s.Points, want)
	}
	assert.Equal(t, []string{"model.meta.levels", "knowledge.encoder"}, s.Keys())
	trials, err := Expand(s)
	require.NoError(t, err)
	require.Len(t, trials, 9)
	assert.Equal(t, map[string]any{"model.meta.levels": "both", "knowledge.encoder": "learned"}, trials[8].Overrides)

	for _, tt := range []struct{ name, spec, want string }{
		{"points with a grid", "metric: m\npoints: [{a: 1}]\ngrid: {a: [1]}\n", "p.yaml:3: grid is for method grid; method points lists its values under points"},
		{"points not a list", "metric: m\npoints: {a: 1}\n", "p.yaml:2: points: want a list"},
		{"bad key in a point", "metric: m\npoints:\n  - {'a b': 1}\n", `p.yaml:3: "a b" is not a dotted config key`},
	} {
		_, err := ParseSpec([]byte(tt.spec), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, tt := range []struct{ name, baseline, want string }{
		{"no match", "{model.meta.levels: user}", "p.yaml:3: baseline matches no point"},
		{"two matches", "{model.meta.levels: both}", "p.yaml:3: baseline matches points 1 and 2"},
	} {
		s, err := ParseSpec([]byte(strings.Replace(pointsSpec, "{model.meta.levels: none}", tt.baseline, 1)), "p.yaml")
		require.NoError(t, err)
		if _, err := Expand(s); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestPairedDeltas: differences are paired by seed over the seeds where both
// trials are ok, with the Student t interval of their mean.
func TestPairedDeltas(t *testing.T) {
	s, err := ParseSpec([]byte(pointsSpec), "p.yaml")
	require.NoError(t, err)
	trials, err := Expand(s)
	require.NoError(t, err)
	auc := map[int][]float64{ // by point, seeds 1…3
		0: {0.70, 0.72, 0.74},
		1: {0.71, 0.74, 0.77}, // differences 0.01, 0.02, 0.03
		2: {0.69, 0.50, 0.73}, // seed 2 fails: differences -0.01, -0.01
	}
	var outcomes []Outcome
	for _, tr := range trials {
		r := Result{Status: StatusOK, Metrics: map[string]float64{"test.overall.auc": auc[tr.Point][tr.Seed-1]}}
		if tr.Point == 2 && tr.Seed == 2 {
			r = Result{Status: StatusFailed, Error: "on purpose"}
		}
		outcomes = append(outcomes, Outcome{Trial: tr, Result: r})
	}
	tbl := Summarize(s, outcomes)
	assert.Equal(t, trials[0].PointID, tbl.Baseline)
	byPoint := map[int]PointSummary{}
	for _, p := range tbl.Points {
		byPoint[p.Point] = p
	}
	assert.Nil(t, byPoint[0].Deltas, "the baseline has no delta")
	d := byPoint[1].Deltas["test.overall.auc"]
	half := 4.3027 * 0.01 / math.Sqrt(3) // t(0.975, 2) · std / √n
	assert.Equal(t, 3, d.N)
	assert.InDelta(t, 0.02, d.Mean, 1e-12)
	assert.InDelta(t, 0.01, d.Std, 1e-12)
	assert.InDelta(t, 0.02-half, d.Lo, 1e-9)
	assert.InDelta(t, 0.02+half, d.Hi, 1e-9)
	d = byPoint[2].Deltas["test.overall.auc"]
	assert.Equal(t, 2, d.N)
	assert.InDelta(t, -0.01, d.Mean, 1e-12)
	assert.InDelta(t, 0, d.Std, 1e-12)

	var md strings.Builder
	require.NoError(t, tbl.WriteDeltas(&md))
	assert.Contains(t, md.String(), "| +0.0200 ± 0.0100 | [-0.0048, +0.0448] |")
	assert.Contains(t, md.String(), "| baseline |")
}

func TestTQuantile(t *testing.T) {
	for df, want := range map[int]float64{1: 12.7062, 2: 4.3027, 4: 2.7764, 30: 2.0423, 40: 2.0211, 60: 2.0003, 120: 1.9799} {
		assert.InDelta(t, want, tQuantile975(df), 2e-4, "df %d", df)
	}
}
