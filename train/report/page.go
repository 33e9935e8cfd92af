package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/msrtrain/msrtrain/data/safetensors"
	"github.com/msrtrain/msrtrain/train/metrics"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"f4":        func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"signed":    func(v float64) string { return fmt.Sprintf("%+.4f", v) },
	"opt":       optional,
	"pct":       pct,
	"hasPrefix": strings.HasPrefix,
	"add":       func(a, b int) int { return a + b },
	"meanStd":   meanStd,
}).ParseFS(templateFiles, "templates/*.tmpl"))

// meanStd renders "mean ± std", the mean alone without a std, or "–".
func meanStd(mean, std float64) string {
	switch {
	case math.IsNaN(mean):
		return "–"
	case math.IsNaN(std) || std == 0:
		return fmt.Sprintf("%.4f", mean)
	}
	return fmt.Sprintf("%.4f ± %.4f", mean, std)
}

func optional(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.4f", *v)
}

// runPage is what templates/run.tmpl renders.
type runPage struct {
	Run
	Sections []section
	Test     []testRow
	Models   []string // column groups of the test table
	Top      []Explanation
}

type section struct {
	ID, Title string
	Text      string  // a sentence above the charts
	Charts    []Chart // side by side when they fit
	Missing   string  // shown instead when there is nothing to draw
}

// testRow is one scenario of the test table, one cell per model.
type testRow struct {
	Scenario string
	Count    int
	Cells    []testCell
}

type testCell struct {
	AUC, GAUC, LogLoss string
	Delta              string // AUC against the first model; "" for the first
}

// WriteRun renders the run report into dir/report.html and returns its path.
func WriteRun(dir string, r Run) (string, error) {
	page := runPage{Run: r}
	var err error
	if page.Sections, err = runSections(r); err != nil {
		return "", err
	}
	page.Models, page.Test = testTable(r)
	page.Top = r.Explanations
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "run.tmpl", page); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	path := filepath.Join(dir, RunFile)
	return path, writeFile(path, b.Bytes())
}

func writeFile(path string, b []byte) error {
	return safetensors.AtomicWriteFile(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// models lists the run's models, the bare backbone first so that deltas
// read as what LLM4MSR adds.
func (r Run) models() []Model {
	if r.Baseline != nil {
		return []Model{*r.Baseline, r.Main}
	}
	return []Model{r.Main}
}

func runSections(r Run) ([]section, error) {
	var out []section
	add := func(s section, err error) error {
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	}
	for _, build := range []func(Run) (section, error){trainingSection, validSection, testSection, calibrationSection, knowledgeSection} {
		if err := add(build(r)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func trainingSection(r Run) (section, error) {
	s := section{ID: "training", Title: "Training"}
	var loss, lr []Series
	for i, m := range r.models() {
		steps := m.Steps
		if len(steps) == 0 { // a run from before steps.jsonl: one point per epoch
			for _, e := range m.Epochs {
				steps = append(steps, Step{Step: e.Step, Epoch: e.Epoch, Loss: e.TrainLoss, LR: e.LR})
			}
		}
		if len(steps) == 0 {
			continue
		}
		x, l, rate := make([]float64, len(steps)), make([]float64, len(steps)), make([]float64, len(steps))
		for j, st := range steps {
			x[j], l[j], rate[j] = float64(st.Step), st.Loss, st.LR
		}
		dash := r.Baseline != nil && i == 0
		loss = append(loss, Series{Name: m.Name, X: x, Y: l, Dash: dash})
		lr = append(lr, Series{Name: m.Name, X: x, Y: rate, Dash: dash})
	}
	if len(loss) == 0 {
		s.Missing = "No training steps were logged yet (steps.jsonl and metrics.jsonl are empty or missing)."
		return s, nil
	}
	s.Text = "Mean training loss (binary cross-entropy) over each logging interval, and the learning rate, by optimizer step."
	c1, err := LineChart("Training loss", "step", "loss", loss, bestMarkers(r))
	if err != nil {
		return s, err
	}
	c2, err := LineChart("Learning rate", "step", "learning rate", lr, nil)
	if err != nil {
		return s, err
	}
	s.Charts = []Chart{c1, c2}
	return s, nil
}

// bestMarkers marks the main model's best epoch at the step it ended on.
func bestMarkers(r Run) []Marker {
	for _, e := range r.Main.Epochs {
		if e.Epoch == r.Main.BestEpoch {
			return []Marker{{X: float64(e.Step), Label: fmt.Sprintf("best epoch %d", e.Epoch)}}
		}
	}
	return nil
}

func validSection(r Run) (section, error) {
	s := section{ID: "validation", Title: "Validation over epochs"}
	m := r.Main
	var epochs []Epoch
	for _, e := range m.Epochs {
		if e.Valid != nil {
			epochs = append(epochs, e)
		}
	}
	if len(epochs) == 0 {
		s.Missing = "No epoch has finished with a validation split yet."
		return s, nil
	}
	s.Text = fmt.Sprintf("%s, per scenario and overall (thick). The dashed line marks the best epoch, whose weights give the test metrics.", m.Name)
	var markers []Marker
	if m.BestEpoch > 0 {
		markers = []Marker{{X: float64(m.BestEpoch), Label: "best"}}
	}
	for _, metric := range []struct {
		title, axis string
		get         func(metrics.Entry) *float64
	}{
		{"Validation AUC", "AUC", func(e metrics.Entry) *float64 { return e.AUC }},
		{"Validation logloss", "logloss", func(e metrics.Entry) *float64 { return e.LogLoss }},
	} {
		series := perScenarioSeries(epochs, metric.get)
		if r.Baseline != nil {
			var bases []Epoch
			for _, e := range r.Baseline.Epochs {
				if e.Valid != nil {
					bases = append(bases, e)
				}
			}
			b := perScenarioSeries(bases, metric.get)
			if len(b) > 0 && len(b[0].X) > 0 {
				b[0].Name, b[0].Dash, b[0].Thick = r.Baseline.Name+" overall", true, false
				series = append(series, b[0])
			}
		}
		c, err := LineChart(metric.title, "epoch", metric.axis, series, markers)
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, c)
	}
	return s, nil
}

// perScenarioSeries is one series for overall, then one per scenario, of a
// metric over epochs; undefined values are left out.
func perScenarioSeries(epochs []Epoch, get func(metrics.Entry) *float64) []Series {
	if len(epochs) == 0 {
		return nil
	}
	first := epochs[0].Valid
	series := []Series{{Name: "overall", Thick: true}}
	for _, e := range first.PerScenario {
		series = append(series, Series{Name: e.Scenario})
	}
	for _, ep := range epochs {
		entries := append([]metrics.Entry{ep.Valid.Overall}, ep.Valid.PerScenario...)
		for i := range series {
			if i < len(entries) {
				if v := get(entries[i]); v != nil {
					series[i].X = append(series[i].X, float64(ep.Epoch))
					series[i].Y = append(series[i].Y, *v)
				}
			}
		}
	}
	return series
}

func entries(r *metrics.Report) []metrics.Entry {
	return append([]metrics.Entry{r.Overall}, r.PerScenario...)
}

func testSection(r Run) (section, error) {
	s := section{ID: "test", Title: "Test metrics at the best epoch"}
	ms := r.models()
	if r.Main.Test == nil {
		s.Missing = "No test metrics yet: summary.json is written when training finishes."
		return s, nil
	}
	groups := scenarioNames(r.Main.Test)
	if r.Baseline != nil {
		s.Text = fmt.Sprintf("%s beside %s on the same data and seed.", r.Main.Name, r.Baseline.Name)
	}
	for _, metric := range []struct {
		title string
		get   func(metrics.Entry) *float64
	}{
		{"Test AUC", func(e metrics.Entry) *float64 { return e.AUC }},
		{"Test gAUC", func(e metrics.Entry) *float64 { return e.GAUC }},
	} {
		var bars []Bars
		for _, m := range ms {
			if m.Test == nil {
				continue
			}
			bars = append(bars, Bars{Name: m.Name, Values: values(m.Test, groups, metric.get)})
		}
		c, err := BarChart(metric.title, strings.TrimPrefix(metric.title, "Test "), groups, bars, 0)
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, c)
	}
	return s, nil
}

func scenarioNames(r *metrics.Report) []string {
	var names []string
	for _, e := range entries(r) {
		names = append(names, e.Scenario)
	}
	return names
}

// values reads a metric for each named scenario ("overall" included); NaN
// where it is undefined or the report lacks the scenario.
func values(r *metrics.Report, names []string, get func(metrics.Entry) *float64) []float64 {
	byName := map[string]metrics.Entry{}
	for _, e := range entries(r) {
		byName[e.Scenario] = e
	}
	out := make([]float64, len(names))
	for i, n := range names {
		out[i] = math.NaN()
		if e, ok := byName[n]; ok && e.Count > 0 {
			if v := get(e); v != nil {
				out[i] = *v
			}
		}
	}
	return out
}

func calibrationSection(r Run) (section, error) {
	s := section{ID: "calibration", Title: "Calibration"}
	if r.Main.Test == nil {
		s.Missing = "No test metrics yet."
		return s, nil
	}
	s.Text = "Per scenario on the test split: the mean predicted click probability beside the observed positive rate. A calibrated model's bars match."
	groups := scenarioNames(r.Main.Test)
	bars := []Bars{{Name: "positive rate", Values: values(r.Main.Test, groups, func(e metrics.Entry) *float64 { return &e.PosRate })}}
	for _, m := range r.models() {
		if m.Test != nil {
			bars = append(bars, Bars{Name: "mean prediction, " + m.Name, Values: values(m.Test, groups, func(e metrics.Entry) *float64 { return &e.MeanPred })})
		}
	}
	c, err := BarChart("Mean prediction against positive rate", "probability", groups, bars, math.NaN())
	if err != nil {
		return s, err
	}
	s.Charts = []Chart{c}
	return s, nil
}

func knowledgeSection(r Run) (section, error) {
	s := section{ID: "knowledge", Title: "Knowledge"}
	k := r.Knowledge
	if k == nil {
		s.Missing = "No knowledge to show: the run has no meta networks (model.meta.levels: none), or no knowledge store yet."
		return s, nil
	}
	s.Text = fmt.Sprintf("The store in %s (%s). Left: cosine similarity of the scenario vectors. Right: the user vectors on their first two principal components, coloured by the scenario where each user has most training rows.", k.Store, k.Encoder)
	if len(k.Scenarios) > 0 {
		c, err := Heatmap("Scenario × scenario cosine similarity", k.Scenarios, k.Similarity)
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, c)
	}
	if len(k.Users) >= 2 {
		groups, explained := k.Projection()
		c, err := Scatter(fmt.Sprintf("User knowledge, PCA of %d users", min(len(k.Users), maxProjected)),
			fmt.Sprintf("PC1 (%s of variance)", pct(explained[0])), fmt.Sprintf("PC2 (%s)", pct(explained[1])), groups, false)
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, c)
	}
	return s, nil
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// testTable lays out the test metrics, one row per scenario (overall
// first) and one group of cells per model.
func testTable(r Run) ([]string, []testRow) {
	ms := r.models()
	if r.Main.Test == nil {
		return nil, nil
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	var rows []testRow
	for _, e := range entries(r.Main.Test) {
		row := testRow{Scenario: e.Scenario, Count: e.Count}
		var first *float64
		for i, m := range ms {
			var cell testCell
			if m.Test != nil {
				for _, x := range entries(m.Test) {
					if x.Scenario == e.Scenario {
						cell = testCell{AUC: x.AUCString(), GAUC: x.GAUCString(), LogLoss: optional(x.LogLoss)}
						if i == 0 {
							first = x.AUC
						} else if first != nil && x.AUC != nil {
							cell.Delta = fmt.Sprintf("%+.4f", *x.AUC-*first)
						}
					}
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	return names, rows
}
