package sweep

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/train/report"
	"github.com/msrtrain/msrtrain/train/report/reporttest"
)

func TestWriteFilesHTMLGrid(t *testing.T) {
	spec := mustParse(t, fmt.Sprintf(runSpec, 1))
	dir := t.TempDir()
	var f fakeTrial
	tbl := Summarize(spec, runSweep(t, spec, dir, f.run, Options{}))
	require.NoError(t, tbl.WriteFiles(dir))
	page, err := reporttest.CheckPage(filepath.Join(dir, report.SweepFile))
	require.NoError(t, err)
	assert.Equal(t, 1, page.Images, "one grouped bar chart; a grid has no scatter")
	assert.Contains(t, page.Text, tbl.Points[0].PointID+" a = 2, b = x 2 0.8150 ± 0.0071 0.7150 ± 0.0071")
	assert.Contains(t, page.Text, "out of memory on purpose") // results.md, failures included
	// results.md as tables, not as its source text.
	assert.Contains(t, page.Text, "rank point a b ok failed test.overall.auc 1 "+tbl.Points[0].PointID+" 2 x 2 0 0.8150 ± 0.0071")
	assert.NotContains(t, page.Text, "| ---")

	view := tbl.reportView(dir)
	assert.Equal(t, []string{"overall", "search"}, view.Points[0].Scenarios)
	assert.Equal(t, []string{"search"}, view.Scenarios)
	assert.Equal(t, []report.Setting{{Key: "a", Value: "2"}, {Key: "b", Value: "x"}}, view.Points[0].Settings)
	assert.True(t, math.IsNaN(view.Points[3].AUC[0]), "the failed point has no AUC")
}

func TestWriteFilesHTMLRandom(t *testing.T) {
	spec := mustParse(t, "metric: test.overall.auc\nmethod: random\ntrials: 6\nseeds: 1\nspace:\n  train.lr: {loguniform: [0.0001, 0.01]}\n  model.backbone: {choice: [star, mmoe]}\n")
	dir := t.TempDir()
	trial := func(_ context.Context, tr Trial, _ string) (Result, error) {
		auc := 0.7 + 10*tr.Overrides["train.lr"].(float64)
		return Result{Metrics: map[string]float64{"test.overall.auc": auc, "test.scenario.feed.auc": auc - 0.05}}, nil
	}
	tbl := Summarize(spec, runSweep(t, spec, dir, trial, Options{}))
	require.True(t, tbl.Random)
	require.NoError(t, tbl.WriteFiles(dir))
	page, err := reporttest.CheckPage(filepath.Join(dir, report.SweepFile))
	require.NoError(t, err)
	assert.Equal(t, 3, page.Images, "the bars, then one scatter per searched key")

	view := tbl.reportView(dir)
	require.Len(t, view.Searched, 2)
	lr, backbone := view.Searched[0], view.Searched[1]
	assert.Equal(t, "train.lr", lr.Key)
	require.Len(t, lr.X, 6)
	for i := range lr.X {
		assert.InDelta(t, 0.7+10*lr.X[i], lr.Metric[i], 1e-12)
	}
	assert.ElementsMatch(t, []string{"star", "mmoe"}, backbone.Levels)
}
