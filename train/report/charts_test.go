package report

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"

	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/report/reporttest"
)

// charts returns the run report's charts by title.
func charts(t *testing.T, r Run) map[string]ChartSpec {
	t.Helper()
	sections, err := runSections(r)
	require.NoError(t, err)
	out := map[string]ChartSpec{}
	for _, s := range sections {
		for _, c := range s.Charts {
			out[c.Title] = c.Spec
		}
	}
	return out
}

func tickLabels(ticks []Tick) []string {
	var out []string
	for _, t := range ticks {
		out = append(out, t.Label)
	}
	return out
}

func tickValues(ticks []Tick) []float64 {
	var out []float64
	for _, t := range ticks {
		out = append(out, t.Value)
	}
	return out
}

func TestRunChartSpecs(t *testing.T) {
	r := fakeRun(t.TempDir())
	specs := charts(t, r)
	scenario := ScenarioColors([]string{"overall", "search", "feed", "ads"})

	// Bars grow from a value that means something: the chance level for
	// AUCs, 0 for probabilities.
	auc := specs["Test AUC"]
	assert.Equal(t, 0.5, auc.YMin)
	assert.Greater(t, auc.YMax, 0.7580+metrics.Z95*0.015, "room for the best bar's whisker")
	assert.Equal(t, []string{"overall", "search", "feed", "ads"}, tickLabels(auc.XTicks))
	assert.Equal(t, []Legend{{Name: "bare star", Color: BackboneColor}, {Name: "LLM4MSR", Color: LLM4MSRColor}}, auc.Series)
	gauc := specs["Test gAUC"]
	assert.Equal(t, 0.5, gauc.YMin)
	assert.Equal(t, []string{"overall\n350 users", "search\n400 users", "feed\n300 users", "ads\n150 users"}, tickLabels(gauc.XTicks))
	calibration := specs["Mean prediction against positive rate"]
	assert.Equal(t, 0.0, calibration.YMin)
	assert.Equal(t, []Legend{{Name: "positive rate", Color: ObservedColor}, {Name: "mean prediction, bare star", Color: BackboneColor}, {Name: "mean prediction, LLM4MSR", Color: LLM4MSRColor}}, calibration.Series)

	// Lines over steps in the models' colours, the bare backbone dashed;
	// the loss from 0.
	loss := specs["Training loss"]
	assert.Equal(t, 0.0, loss.YMin)
	assert.Equal(t, []Legend{{Name: "bare star", Color: BackboneColor, Dashed: true}, {Name: "LLM4MSR", Color: LLM4MSRColor}}, loss.Series)
	assert.Contains(t, specs, "Learning rate", "the rate warms up, so it is drawn")

	// Over epochs: whole epochs only, scenarios in their colours, the AUC
	// from the chance level.
	for _, title := range []string{"Validation AUC", "Validation logloss"} {
		v := specs[title]
		assert.Equal(t, []float64{1, 2, 3}, tickValues(v.XTicks), title)
		assert.Equal(t, []string{"1", "2", "3"}, tickLabels(v.XTicks), title)
		assert.Equal(t, "epoch", v.XLabel)
		assert.Equal(t, []Legend{
			{Name: "overall, LLM4MSR", Color: OverallColor}, {Name: "search", Color: scenario["search"]},
			{Name: "feed", Color: scenario["feed"]}, {Name: "ads", Color: scenario["ads"]},
			{Name: "overall, bare star", Color: OverallColor, Dashed: true},
		}, v.Series, title)
	}
	assert.Equal(t, 0.5, specs["Validation AUC"].YMin)
	assert.Equal(t, 0.0, specs["Validation logloss"].YMin)

	// The heatmap's scale is fixed and shown; the projection colours users
	// by scenario as every other chart does.
	heat := specs["Scenario × scenario cosine similarity"]
	assert.Equal(t, &ColorBar{Min: -1, Max: 1}, heat.ColorBar)
	pca := specs["User knowledge, PCA of 300 users"]
	for _, l := range pca.Series {
		assert.Equal(t, scenario[l.Name], l.Color, l.Name)
	}
	assert.Len(t, pca.Series, 3)
}

// A flat learning rate is a sentence, not a chart.
func TestFlatLearningRateHasNoChart(t *testing.T) {
	r := fakeRun(t.TempDir())
	for _, m := range []*Model{&r.Main, r.Baseline} {
		for i := range m.Steps {
			m.Steps[i].LR = 0.001
		}
	}
	sections, err := runSections(r)
	require.NoError(t, err)
	training := sections[0]
	require.Equal(t, "training", training.ID)
	require.Len(t, training.Charts, 1)
	assert.Equal(t, "Training loss", training.Charts[0].Title)
	assert.Contains(t, training.Text, "The learning rate was 0.001 throughout.")
}

// One epoch sits in the middle of its axis, with one tick.
func TestOneEpochAxis(t *testing.T) {
	r := fakeRun(t.TempDir())
	r.Main.Epochs, r.Main.BestEpoch, r.Baseline = r.Main.Epochs[:1], 1, nil
	v := charts(t, r)["Validation AUC"]
	assert.Equal(t, []float64{1}, tickValues(v.XTicks))
	assert.Equal(t, 0.5, v.XMin)
	assert.Equal(t, 1.5, v.XMax)
}

func TestIntegerTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		want     []float64
	}{
		{1, 3, []float64{1, 2, 3}},
		{0.5, 1.5, []float64{1}},
		{1, 12, []float64{2, 4, 6, 8, 10, 12}},
		{1, 40, []float64{5, 10, 15, 20, 25, 30, 35, 40}},
		{1, 100, []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}},
	} {
		var got []float64
		for _, tick := range (integerTicks{}).Ticks(tc.min, tc.max) {
			got = append(got, tick.Value)
		}
		assert.Equal(t, tc.want, got, "%v..%v", tc.min, tc.max)
	}
}

func TestRoundTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		want     []string
	}{
		{0.5, 0.8, []string{"0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80"}},
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{0, 0.52, []string{"0.0", "0.1", "0.2", "0.3", "0.4", "0.5"}},
		{0.5, 0.51, []string{"0.500", "0.502", "0.504", "0.506", "0.508", "0.510"}},
		{0.5, 0.69, []string{"0.500", "0.525", "0.550", "0.575", "0.600", "0.625", "0.650", "0.675"}},
		{0, 1200, []string{"0", "200", "400", "600", "800", "1000", "1200"}},
	} {
		assert.Equal(t, tc.want, tickLabels(labelledTicks(roundTicks{}, tc.min, tc.max)), "%v..%v", tc.min, tc.max)
	}
}

func labelledTicks(m interface {
	Ticks(min, max float64) []plot.Tick
}, min, max float64) []Tick {
	var out []Tick
	for _, t := range m.Ticks(min, max) {
		out = append(out, Tick{Value: t.Value, Label: t.Label})
	}
	return out
}

// No colour means a model in one chart and a scenario in another, and a
// scenario's colour does not depend on the order the names come in.
func TestColorsMeanOneThing(t *testing.T) {
	models := []color.Color{LLM4MSRColor, BackboneColor, ObservedColor, OverallColor}
	for _, c := range scenarioPalette {
		assert.NotContains(t, models, c)
	}
	for i, a := range scenarioPalette {
		assert.NotContains(t, scenarioPalette[i+1:], a, "palette entry %d repeats", i)
	}
	a := ScenarioColors([]string{"video", "search", "shop"})
	b := ScenarioColors([]string{"overall", "shop", "video", "search"})
	assert.Equal(t, a, b)
	assert.Equal(t, OverallColor, a["overall"])
	assert.Equal(t, scenarioPalette[0], a["search"], "sorted: search, shop, video")
	assert.Equal(t, LLM4MSRColor, Model{}.Color())
	assert.Equal(t, BackboneColor, Model{Bare: true}.Color())
}

// The sweep report labels bars by settings, best on top, from the chance
// level, and colours scenarios as the run report does.
func TestSweepChartSpecs(t *testing.T) {
	point := func(id string, auc float64, set ...Setting) SweepPoint {
		return SweepPoint{ID: id, Settings: set, OK: 2, Scenarios: []string{"overall", "video", "search"},
			AUC: []float64{auc, auc + 0.02, auc - 0.03}, AUCStd: []float64{0.004, 0.006, math.NaN()}}
	}
	s := Sweep{Dir: t.TempDir(), Metric: "test.overall.auc", Scenarios: []string{"video", "search"}, Points: []SweepPoint{
		point("p1", 0.74, Setting{"model.meta.levels", "both"}, Setting{"model.star.hidden", "[64]"}, Setting{"model.meta.generator.hidden", "[8]"}),
		point("p2", 0.71, Setting{"model.meta.levels", "none"}, Setting{"model.star.hidden", "[32]"}, Setting{"model.meta.generator.hidden", "[16]"}),
	}}
	cs, _, err := sweepCharts(s)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	bars := cs[0].Spec
	assert.Equal(t, 0.5, bars.XMin, "the value axis is horizontal")
	assert.Equal(t, []string{"0.50", "0.55", "0.60", "0.65", "0.70", "0.75", "0.80"}, tickLabels(bars.XTicks))
	assert.Equal(t, []Tick{
		{Value: 0, Label: "levels = none\nstar.hidden = [32]\ngenerator.hidden = [16]"},
		{Value: 1, Label: "levels = both\nstar.hidden = [64]\ngenerator.hidden = [8]"},
	}, bars.YTicks, "best on top (the highest position)")
	run := ScenarioColors([]string{"overall", "search", "video"})
	assert.Equal(t, []Legend{{Name: "overall", Color: run["overall"]}, {Name: "video", Color: run["video"]}, {Name: "search", Color: run["search"]}}, bars.Series)
}

func TestSweepPageRendersResultsAsTables(t *testing.T) {
	dir := t.TempDir()
	md := "# Sweep results\n\nSorted by `test.overall.auc` (higher is better).\n\n| rank | point | a | test.overall.auc |\n| --- | --- | --- | --- |\n| 1 | p1 | x\\|y | 0.7400 ± 0.0040 |\n\n## 1. p1\n\nFailed trials:\n\n- `p1-s2` (seed 2): out of memory\n"
	path, err := WriteSweep(dir, Sweep{Dir: dir, Metric: "test.overall.auc", Markdown: md})
	require.NoError(t, err)
	page, err := reporttest.CheckPage(path)
	require.NoError(t, err)
	assert.Contains(t, page.Text, "rank point a test.overall.auc 1 p1 x|y 0.7400 ± 0.0040")
	assert.Contains(t, page.Text, "p1-s2 (seed 2): out of memory")
	assert.NotContains(t, page.Text, "| ---")

	blocks := parseMarkdown(md)
	require.Len(t, blocks, 6)
	assert.Equal(t, mdBlock{Heading: 1, Text: []mdSpan{{Text: "Sweep results"}}}, blocks[0])
	assert.Equal(t, []mdSpan{{Text: "Sorted by "}, {Text: "test.overall.auc", Code: true}, {Text: " (higher is better)."}}, blocks[1].Text)
	assert.Equal(t, [][][]mdSpan{{{{Text: "1"}}, {{Text: "p1"}}, {{Text: "x|y"}}, {{Text: "0.7400 ± 0.0040"}}}}, blocks[2].Rows)
	assert.Equal(t, 2, blocks[3].Heading)
	assert.Equal(t, [][]mdSpan{{{Text: "p1-s2", Code: true}, {Text: " (seed 2): out of memory"}}}, blocks[5].Items)
}

func TestTestTableIntervalsAndWarnings(t *testing.T) {
	dir := t.TempDir()
	r := fakeRun(dir)
	ads := &r.Main.Test.PerScenario[2]
	require.Equal(t, "ads", ads.Scenario)
	ads.GAUCUsers = 7
	_, rows := testTable(r)
	overall, search, feed := rows[0].Cells[1], rows[1].Cells[1], rows[2].Cells[1]
	assert.Equal(t, testCell{AUC: "0.7380", AUCInterval: "[0.7086, 0.7674]", GAUC: "0.6980 (350)", LogLoss: "0.5120",
		Delta: "+0.0200", DeltaInterval: "[+0.0102, +0.0298]", Significant: true, Better: true}, overall)
	assert.True(t, search.Significant)
	assert.False(t, feed.Significant, "feed's interval includes 0")
	assert.Equal(t, "[-0.0035, +0.0435]", feed.DeltaInterval)
	assert.True(t, rows[3].Cells[1].FewUsers)
	assert.False(t, rows[0].Cells[1].FewUsers)

	path, err := WriteRun(dir, r)
	require.NoError(t, err)
	page, err := reporttest.CheckPage(path)
	require.NoError(t, err)
	assert.Contains(t, page.Text, "gAUC averages over fewer than 100 users in ads (7).")
	assert.Contains(t, page.Text, "0.08 at 7 users")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	raw := string(b)
	assert.Equal(t, 2, strings.Count(raw, `class="pos"`), "overall and search are coloured, feed is not")
	assert.Equal(t, 0, strings.Count(raw, `class="neg"`))
	assert.True(t, strings.Contains(raw, `<td>&#43;0.0200 <span class="ci">[-0.0035, &#43;0.0435]</span></td>`), "feed's Δ is plain")

	// Without a paired test the Δ is shown but not coloured.
	r.AUCDelta = nil
	_, rows = testTable(r)
	assert.Equal(t, "+0.0200", rows[0].Cells[1].Delta)
	assert.False(t, rows[0].Cells[1].Significant)
	path, err = WriteRun(dir, r)
	require.NoError(t, err)
	page, err = reporttest.CheckPage(path)
	require.NoError(t, err)
	assert.Contains(t, page.Text, "recorded no paired interval for ΔAUC, so it is not coloured")
}

func TestSuggestedCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my run")
	r := fakeRun(dir)
	r.Explanations = append(r.Explanations, Explanation{Key: "user:8"}, Explanation{Key: "scenario:feed's", Reasoning: "it has"})
	want := []string{
		"msrtrain knowledge explain --checkpoint '" + dir + "' --user 7",
		"msrtrain knowledge explain --checkpoint '" + dir + "' --scenario 'feed'\\''s'",
	}
	assert.Equal(t, want, suggestedCommands(r))
	args, err := reporttest.SplitCommand(want[1])
	require.NoError(t, err)
	assert.Equal(t, []string{"msrtrain", "knowledge", "explain", "--checkpoint", dir, "--scenario", "feed's"}, args)

	r.Dir = t.TempDir()
	path, err := WriteRun(r.Dir, r)
	require.NoError(t, err)
	page, err := reporttest.CheckPage(path)
	require.NoError(t, err)
	require.Len(t, page.Commands, 2)
	assert.True(t, slices.ContainsFunc(page.Commands, func(c string) bool { return strings.HasSuffix(c, "--user 7") }))
	assert.Empty(t, suggestedCommands(Run{Dir: dir}), "nothing to explain, nothing suggested")
}
