package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/report/reporttest"
	"github.com/msrtrain/msrtrain/train/rundir"
)

func entry(name string, auc, gauc, ll, pos, pred float64) metrics.Entry {
	se := 0.015
	return metrics.Entry{Scenario: name, Count: 1000, Positives: int(1000 * pos), PosRate: pos, MeanPred: pred, AUC: &auc, AUCStdErr: &se, GAUC: &gauc, LogLoss: &ll, GAUCUsers: 50 + int(1000*pos)}
}

func fakeReport(shift float64) *metrics.Report {
	return &metrics.Report{
		Overall: entry("overall", 0.70+shift, 0.66+shift, 0.55-shift, 0.3, 0.31),
		PerScenario: []metrics.Entry{
			entry("search", 0.72+shift, 0.68+shift, 0.52-shift, 0.35, 0.33),
			entry("feed", 0.68+shift, 0.64+shift, 0.58-shift, 0.25, 0.28),
			entry("ads", 0.61+shift, 0.60+shift, 0.40-shift, 0.10, 0.12),
		},
	}
}

func fakeModel(name string, shift float64) Model {
	m := Model{Name: name, BestEpoch: 2}
	for s := 1; s <= 300; s++ {
		m.Steps = append(m.Steps, rundir.Step{Step: s * 10, Epoch: 1 + s/100, Loss: 0.7*math.Exp(-float64(s)/80) + 0.45 - shift, LR: 0.001 * math.Min(1, float64(s)/30)})
	}
	for e := 1; e <= 3; e++ {
		m.Epochs = append(m.Epochs, rundir.Epoch{Epoch: e, Step: e * 1000, TrainLoss: 0.6 - 0.03*float64(e), LR: 0.001, Valid: fakeReport(shift + 0.01*float64(e) - 0.015*float64(e/3))})
	}
	m.Valid, m.Test = fakeReport(shift+0.02), fakeReport(shift+0.018)
	return m
}

// fakeDeltas are paired tests of LLM4MSR against the bare backbone: overall
// and search clear of 0, feed not, ads undefined.
func fakeDeltas() []metrics.AUCDelta {
	d := func(scenario string, delta, se float64) metrics.AUCDelta {
		lo, hi := metrics.Interval95(delta, se, -1, 1)
		return metrics.AUCDelta{Scenario: scenario, Count: 1000, Delta: &delta, StdErr: se, Low: lo, High: hi, P: math.Erfc(math.Abs(delta) / se / math.Sqrt2)}
	}
	return []metrics.AUCDelta{d("overall", 0.02, 0.005), d("search", 0.02, 0.008), d("feed", 0.02, 0.012), {Scenario: "ads", Undefined: metrics.ReasonAllZero}}
}

func fakeRun(dir string) Run {
	rng := rand.New(rand.NewPCG(1, 2))
	k := &Knowledge{Store: filepath.Join(dir, "knowledge"), Encoder: "hash (hash-v1, dim 8)", Scenarios: []string{"ads", "feed", "search"},
		Similarity: [][]float64{{1, 0.2, 0.4}, {0.2, 1, 0.7}, {0.4, 0.7, 1}}}
	for i := range 300 {
		s := k.Scenarios[i%3]
		v := make([]float32, 8)
		for j := range v {
			v[j] = float32(rng.NormFloat64()*0.3 + float64((i%3)*(j%3)))
		}
		k.Users = append(k.Users, UserVector{Key: fmt.Sprintf("user:%d", i), MainScenario: s, Vector: v})
	}
	base := fakeModel("bare star", 0)
	base.Bare = true
	return Run{
		Dir: dir, Status: "finished", Facts: [][2]string{{"backbone", "star"}, {"meta", "both"}},
		Main: fakeModel("LLM4MSR", 0.02), Baseline: &base, Knowledge: k, AUCDelta: fakeDeltas(),
		Explanations: []Explanation{{Key: "user:7", MainScenario: "feed", Prompt: "User 7 clicked <b>these</b> items", ReasoningMissing: "the hash encoder is not an LLM",
			Encoder: "hash", EffectsAgainst: "the learned fallback vector", Effects: []Effect{{Scenario: "feed", Rows: 12, MeanAbsShift: 0.31, MeanShift: -0.1}}}},
		Config: "seed: 42\nmodel:\n  backbone: star\n", Environment: "msrtrain 0.1.0 (go1.26)\n",
	}
}

func TestWriteRun(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteRun(dir, fakeRun(dir))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, rundir.ReportFile), path)
	page, err := reporttest.CheckPage(path)
	require.NoError(t, err)
	// loss, lr, valid AUC, valid logloss, test AUC, test gAUC, calibration, heatmap, PCA
	assert.Equal(t, 9, page.Images)
	for _, want := range []string{"LLM4MSR", "bare star", "+0.0200", "user:7", "User 7 clicked <b>these</b> items", "the hash encoder is not an LLM", "backbone: star", "msrtrain 0.1.0"} {
		assert.Contains(t, page.Text, want)
	}
	keep(t, path)
}

// keep copies a page to $MSR_REPORT_KEEP/<test>.html, to look at it in a browser.
func keep(t *testing.T, path string) {
	if dir := os.Getenv("MSR_REPORT_KEEP"); dir != "" {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, t.Name()+".html"), b, 0o644))
	}
}

// An interrupted run has logs but no summary: the page still renders and
// says what is missing instead of failing.
func TestWriteRunInterrupted(t *testing.T) {
	dir := t.TempDir()
	m := fakeModel("LLM4MSR", 0)
	m.Test, m.Valid, m.BestEpoch = nil, nil, 0
	m.Epochs = m.Epochs[:1]
	path, err := WriteRun(dir, Run{Dir: dir, Status: "interrupted", Main: m})
	require.NoError(t, err)
	page, err := reporttest.CheckPage(path)
	require.NoError(t, err)
	assert.Equal(t, 4, page.Images)
	assert.Contains(t, page.Text, "No test metrics yet")
	assert.Contains(t, page.Text, "No knowledge to show")
	keep(t, path)
}

func TestPCA(t *testing.T) {
	// Points on a line along (1, 1, 0) with a little spread along (0, 0, 1):
	// PC1 carries almost all the variance and orders the points.
	var rows [][]float64
	for i := range 50 {
		x := float64(i - 25)
		rows = append(rows, []float64{x + 3, x - 1, 0.1 * float64(i%2)})
	}
	coords, explained := pca2(rows)
	assert.Greater(t, explained[0], 0.99)
	assert.Less(t, explained[1], 0.01)
	for i := 1; i < len(coords); i++ {
		assert.InDelta(t, math.Sqrt2, coords[i][0]-coords[i-1][0], 1e-4)
	}
}
