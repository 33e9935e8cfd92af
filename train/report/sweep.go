package report

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot/plotter"

	"github.com/msrtrain/msrtrain/data/atomicfile"
)

// Sweep is what the sweep report shows. The sweep package fills it.
type Sweep struct {
	Dir     string
	Metric  string // the metric points are ranked by, e.g. test.overall.auc
	Summary string // trials ok, failed, pending
	Points  []SweepPoint
	// Scenarios are every scenario the trials reported a metric for, which
	// colours them as the run report does.
	Scenarios []string
	Searched  []SearchedKey // random search only: one scatter per key
	Markdown  string        // results.md, shown as tables below the charts
}

// SweepPoint is one point of a sweep, best first.
type SweepPoint struct {
	ID       string
	Settings []Setting // the keys the point sets, in the sweep's key order
	OK       int
	// AUC is the mean and std over seeds of the test AUC, overall first,
	// then per scenario in Scenarios' order; NaN where no trial reported it.
	AUC, AUCStd []float64
	Scenarios   []string // "overall", then the scenario names
}

// Setting is one config key a sweep point sets.
type Setting struct{ Key, Value string }

// SettingsText is "key = value, ..." for a table.
func (p SweepPoint) SettingsText() string {
	var b strings.Builder
	for i, s := range p.Settings {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Key + " = " + s.Value)
	}
	return b.String()
}

// SearchedKey is one searched config key of a random search: each ok
// trial's value of the key and of the metric. Values that are not numbers
// are placed by their order in Levels.
type SearchedKey struct {
	Key    string
	X      []float64
	Levels []string // non-numeric values, in the order they map to 0, 1, ...
	Metric []float64
}

// maxSweepBars bounds the points drawn in the bar chart (the best ones).
const maxSweepBars = 12

type sweepPage struct {
	Sweep
	Charts  []Chart
	Note    string
	Results []mdBlock // results.md
}

// WriteSweep renders the sweep report into dir/results.html and returns its path.
func WriteSweep(dir string, s Sweep) (string, error) {
	page := sweepPage{Sweep: s, Results: parseMarkdown(s.Markdown)}
	var err error
	if page.Charts, page.Note, err = sweepCharts(s); err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "sweep.tmpl", page); err != nil {
		return "", fmt.Errorf("sweep report: %w", err)
	}
	path := filepath.Join(dir, SweepFile)
	return path, atomicfile.WriteBytes(path, b.Bytes())
}

// sweepCharts draws the test AUC of the best points, labelled by what they
// set, and for a random search each searched key against the metric.
func sweepCharts(s Sweep) ([]Chart, string, error) {
	var charts []Chart
	var note string
	points := s.Points
	if len(points) > maxSweepBars {
		note = fmt.Sprintf("The chart shows the best %d of %d points by %s.", maxSweepBars, len(points), s.Metric)
		points = points[:maxSweepBars]
	}
	var withAUC []SweepPoint
	for _, p := range points {
		if slices.ContainsFunc(p.AUC, func(v float64) bool { return !math.IsNaN(v) }) {
			withAUC = append(withAUC, p)
		}
	}
	if len(withAUC) > 0 {
		names := withAUC[0].Scenarios
		colors := ScenarioColors(append(slices.Clone(s.Scenarios), names...))
		labels := pointLabels(withAUC)
		series := make([]Bars, len(names))
		for j, n := range names {
			series[j] = Bars{Name: n, Color: colors[n], Values: make([]float64, len(withAUC)),
				Low: make([]float64, len(withAUC)), High: make([]float64, len(withAUC))}
		}
		for i, p := range withAUC {
			for j := range names {
				series[j].Values[i], series[j].Low[i], series[j].High[i] = math.NaN(), math.NaN(), math.NaN()
				if j < len(p.AUC) {
					series[j].Values[i] = p.AUC[j]
					if !math.IsNaN(p.AUCStd[j]) {
						series[j].Low[i], series[j].High[i] = p.AUC[j]-p.AUCStd[j], p.AUC[j]+p.AUCStd[j]
					}
				}
			}
		}
		c, err := BarChart("Test AUC per point (mean ± std over seeds)", "AUC", labels, series, BarOptions{Base: 0.5, Horizontal: true})
		if err != nil {
			return nil, "", err
		}
		charts = append(charts, c)
	}
	for _, k := range s.Searched {
		var xy plotter.XYs
		for i := range k.X {
			if !math.IsNaN(k.Metric[i]) {
				xy = append(xy, plotter.XY{X: k.X[i], Y: k.Metric[i]})
			}
		}
		if len(xy) == 0 {
			continue
		}
		xLabel := k.Key
		if len(k.Levels) > 0 {
			xLabel = fmt.Sprintf("%s (%s)", k.Key, levelsLegend(k.Levels))
		}
		c, err := Scatter(fmt.Sprintf("%s against %s", s.Metric, k.Key), xLabel, s.Metric, []Group{{Name: "trials", XY: xy, Color: ObservedColor}}, false)
		if err != nil {
			return nil, "", err
		}
		charts = append(charts, c)
	}
	return charts, note, nil
}

// pointLabels names each point by its settings, keys shortened to their
// last dotted parts that still tell the swept keys apart
// (model.meta.levels: levels), one key per line.
func pointLabels(points []SweepPoint) []string {
	var keys []string
	for _, p := range points {
		for _, s := range p.Settings {
			if !slices.Contains(keys, s.Key) {
				keys = append(keys, s.Key)
			}
		}
	}
	short := shortKeys(keys)
	labels := make([]string, len(points))
	for i, p := range points {
		var lines []string
		for _, s := range p.Settings {
			lines = append(lines, short[s.Key]+" = "+s.Value)
		}
		labels[i] = strings.Join(lines, "\n")
		if labels[i] == "" {
			labels[i] = "(the base config)"
		}
	}
	return labels
}

// shortKeys maps each key to its shortest dotted suffix that no other key
// ends with.
func shortKeys(keys []string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		for n := 1; n <= len(parts); n++ {
			suffix := strings.Join(parts[len(parts)-n:], ".")
			unique := true
			for _, other := range keys {
				if other != k && (other == suffix || strings.HasSuffix(other, "."+suffix)) {
					unique = false
				}
			}
			if unique || n == len(parts) {
				out[k] = suffix
				break
			}
		}
	}
	return out
}

func levelsLegend(levels []string) string {
	var b bytes.Buffer
	for i, l := range levels {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d = %s", i, l)
	}
	return b.String()
}
