package report

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot/plotter"
)

// Sweep is what the sweep report shows. The sweep package fills it.
type Sweep struct {
	Dir      string
	Metric   string // the metric points are ranked by, e.g. test.overall.auc
	Summary  string // trials ok, failed, pending
	Points   []SweepPoint
	Searched []SearchedKey // random search only: one scatter per key
	Markdown string        // results.md, shown below the charts
}

// SweepPoint is one point of a sweep, best first.
type SweepPoint struct {
	ID       string
	Settings string // key = value, ...
	OK       int
	// AUC is the mean and std over seeds of the test AUC, overall first,
	// then per scenario in Scenarios' order; NaN where no trial reported it.
	AUC, AUCStd []float64
	Scenarios   []string // "overall", then the scenario names
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
	Charts []Chart
	Note   string
}

// WriteSweep renders the sweep report into dir/results.html and returns its path.
func WriteSweep(dir string, s Sweep) (string, error) {
	page := sweepPage{Sweep: s}
	points := s.Points
	if len(points) > maxSweepBars {
		page.Note = fmt.Sprintf("The chart shows the best %d of %d points by %s.", maxSweepBars, len(points), s.Metric)
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
		groups := make([]string, len(withAUC))
		series := make([]Bars, len(names))
		for j, n := range names {
			series[j] = Bars{Name: n, Values: make([]float64, len(withAUC)), Errors: make([]float64, len(withAUC))}
		}
		for i, p := range withAUC {
			groups[i] = strconv.Itoa(i + 1)
			for j := range names {
				series[j].Values[i], series[j].Errors[i] = math.NaN(), 0
				if j < len(p.AUC) {
					series[j].Values[i] = p.AUC[j]
					if !math.IsNaN(p.AUCStd[j]) {
						series[j].Errors[i] = p.AUCStd[j]
					}
				}
			}
		}
		c, err := BarChart("Test AUC per point (mean ± std over seeds)", "AUC", groups, series, 0)
		if err != nil {
			return "", err
		}
		page.Charts = append(page.Charts, c)
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
		c, err := Scatter(fmt.Sprintf("%s against %s", s.Metric, k.Key), xLabel, s.Metric, []Group{{Name: "trials", XY: xy}}, false)
		if err != nil {
			return "", err
		}
		page.Charts = append(page.Charts, c)
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "sweep.tmpl", page); err != nil {
		return "", fmt.Errorf("sweep report: %w", err)
	}
	path := filepath.Join(dir, SweepFile)
	return path, writeFile(path, b.Bytes())
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
