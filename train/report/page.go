package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/rundir"
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
	// Paired says the ΔAUC cells carry DeLong's paired interval.
	Paired       bool
	GAUCWarnings []string // scenarios whose gAUC averages over few users
	Top          []Explanation
	Commands     []string // shell commands the page suggests, each tested to work on the run
	MinGAUCUsers int
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
	AUC, AUCInterval string
	GAUC             string
	FewUsers         bool // gAUC over fewer than metrics.MinGAUCUsers users
	LogLoss          string
	// Delta is the AUC against the first model ("" for the first), with
	// its paired interval; Significant when that excludes 0, and then
	// Better says which way.
	Delta, DeltaInterval string
	Significant, Better  bool
}

// WriteRun renders the run report into dir/report.html and returns its path.
func WriteRun(dir string, r Run) (string, error) {
	page := runPage{Run: r, MinGAUCUsers: metrics.MinGAUCUsers}
	var err error
	if page.Sections, err = runSections(r); err != nil {
		return "", err
	}
	page.Models, page.Test = testTable(r)
	page.Paired = r.Baseline != nil && r.AUCDelta != nil
	page.GAUCWarnings = gaucWarnings(r)
	page.Top = r.Explanations
	page.Commands = suggestedCommands(r)
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "run.tmpl", page); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	path := rundir.Dir(dir).Report()
	return path, atomicfile.WriteBytes(path, b.Bytes())
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
	for _, build := range []func(Run) (section, error){trainingSection, validSection, testSection, calibrationSection, knowledgeSection} {
		s, err := build(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func trainingSection(r Run) (section, error) {
	s := section{ID: "training", Title: "Training"}
	var loss, lr []Series
	rates := map[float64]bool{}
	for _, m := range r.models() {
		steps := m.Steps
		if len(steps) == 0 { // a run from before steps.jsonl: one point per epoch
			for _, e := range m.Epochs {
				steps = append(steps, rundir.Step{Step: e.Step, Epoch: e.Epoch, Loss: e.TrainLoss, LR: e.LR})
			}
		}
		if len(steps) == 0 {
			continue
		}
		x, l, rate := make([]float64, len(steps)), make([]float64, len(steps)), make([]float64, len(steps))
		for j, st := range steps {
			x[j], l[j], rate[j] = float64(st.Step), st.Loss, st.LR
			rates[st.LR] = true
		}
		loss = append(loss, Series{Name: m.Name, X: x, Y: l, Color: m.Color(), Dash: m.Bare})
		lr = append(lr, Series{Name: m.Name, X: x, Y: rate, Color: m.Color(), Dash: m.Bare})
	}
	if len(loss) == 0 {
		s.Missing = "No training steps were logged yet (steps.jsonl and metrics.jsonl are empty or missing)."
		return s, nil
	}
	s.Text = "Mean training loss (binary cross-entropy) over each logging interval, by optimizer step."
	c, err := LineChart("Training loss", "step", "loss", loss, bestMarkers(r), LineOptions{YFrom: 0})
	if err != nil {
		return s, err
	}
	s.Charts = []Chart{c}
	if len(rates) == 1 { // a flat line says less than a sentence
		for rate := range rates {
			s.Text += fmt.Sprintf(" The learning rate was %g throughout.", rate)
		}
		return s, nil
	}
	s.Text += " Right: the learning rate."
	c, err = LineChart("Learning rate", "step", "learning rate", lr, nil, LineOptions{YFrom: 0})
	if err != nil {
		return s, err
	}
	s.Charts = append(s.Charts, c)
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

// validated are a model's epochs that have validation metrics.
func validated(m Model) []rundir.Epoch {
	var out []rundir.Epoch
	for _, e := range m.Epochs {
		if e.Valid != nil {
			out = append(out, e)
		}
	}
	return out
}

func validSection(r Run) (section, error) {
	s := section{ID: "validation", Title: "Validation over epochs"}
	m := r.Main
	epochs := validated(m)
	if len(epochs) == 0 {
		s.Missing = "No epoch has finished with a validation split yet."
		return s, nil
	}
	s.Text = fmt.Sprintf("%s, per scenario and overall (thick, with the 95%% interval of its AUC shaded). The dashed vertical line marks the best epoch, whose weights give the test metrics.", m.Name)
	if r.Baseline != nil {
		s.Text += fmt.Sprintf(" The dashed black line is %s overall.", r.Baseline.Name)
	}
	var markers []Marker
	if m.BestEpoch > 0 {
		markers = []Marker{{X: float64(m.BestEpoch), Label: "best"}}
	}
	colors := ScenarioColors(scenarioNames(epochs[0].Valid))
	for _, metric := range []struct {
		title, axis string
		get         func(metrics.Entry) *float64
		from        float64 // the axis's meaningful start
		band        bool
	}{
		{"Validation AUC", "AUC", func(e metrics.Entry) *float64 { return e.AUC }, 0.5, true},
		{"Validation logloss", "logloss", func(e metrics.Entry) *float64 { return e.LogLoss }, 0, false},
	} {
		series := perScenarioSeries(epochs, metric.get, colors)
		if metric.band {
			addAUCBand(&series[0], epochs)
		}
		if r.Baseline != nil {
			series[0].Name = Overall + ", " + m.Name
			b := perScenarioSeries(validated(*r.Baseline), metric.get, colors)
			if len(b) > 0 && len(b[0].X) > 0 {
				b[0].Name, b[0].Dash = Overall+", "+r.Baseline.Name, true
				series = append(series, b[0])
			}
		}
		c, err := LineChart(metric.title, "epoch", metric.axis, series, markers, LineOptions{YFrom: metric.from, IntegerX: true})
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, c)
	}
	return s, nil
}

// perScenarioSeries is one series for overall (thick), then one per
// scenario, of a metric over epochs in the scenarios' colours; undefined
// values are left out.
func perScenarioSeries(epochs []rundir.Epoch, get func(metrics.Entry) *float64, colors map[string]color.Color) []Series {
	if len(epochs) == 0 {
		return nil
	}
	var series []Series
	for _, name := range scenarioNames(epochs[0].Valid) {
		series = append(series, Series{Name: name, Color: colors[name], Thick: name == Overall})
	}
	for _, ep := range epochs {
		entries := entries(ep.Valid)
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

// addAUCBand gives the overall AUC series its 95% interval where every
// epoch recorded one.
func addAUCBand(s *Series, epochs []rundir.Epoch) {
	var low, high []float64
	for _, ep := range epochs {
		if lo, hi, ok := ep.Valid.Overall.AUCInterval(); ok {
			low, high = append(low, lo), append(high, hi)
		}
	}
	if len(low) == len(s.X) {
		s.Low, s.High = low, high
	}
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
		s.Text = fmt.Sprintf("%s beside %s on the same data and seed. ", r.Main.Name, r.Baseline.Name)
	}
	s.Text += "Bars start at 0.5, the AUC of guessing; whiskers are 95% confidence intervals (DeLong)."
	var aucBars, gaucBars []Bars
	for _, m := range ms {
		if m.Test == nil {
			continue
		}
		b := Bars{Name: m.Name, Color: m.Color(), Values: values(m.Test, groups, func(e metrics.Entry) *float64 { return e.AUC })}
		b.Low, b.High = aucIntervals(m.Test, groups)
		aucBars = append(aucBars, b)
		gaucBars = append(gaucBars, Bars{Name: m.Name, Color: m.Color(), Values: values(m.Test, groups, func(e metrics.Entry) *float64 { return e.GAUC })})
	}
	c, err := BarChart("Test AUC", "AUC", groups, aucBars, BarOptions{Base: 0.5})
	if err != nil {
		return s, err
	}
	s.Charts = append(s.Charts, c)
	// gAUC's groups say over how many users it averages (the same rows
	// for every model, so the same users).
	labels := make([]string, len(groups))
	byName := map[string]metrics.Entry{}
	for _, e := range entries(r.Main.Test) {
		byName[e.Scenario] = e
	}
	for i, g := range groups {
		e := byName[g]
		labels[i] = fmt.Sprintf("%s\n%d users", g, e.GAUCUsers)
		if e.GAUC != nil && e.GAUCUsers < metrics.MinGAUCUsers {
			labels[i] += " (few)"
		}
	}
	if c, err = BarChart("Test gAUC", "gAUC", labels, gaucBars, BarOptions{Base: 0.5}); err != nil {
		return s, err
	}
	s.Charts = append(s.Charts, c)
	return s, nil
}

// aucIntervals are the 95% intervals of each named scenario's AUC; NaN
// where unknown, nil when none is known (a run from before they were kept).
func aucIntervals(r *metrics.Report, names []string) (low, high []float64) {
	byName := map[string]metrics.Entry{}
	for _, e := range entries(r) {
		byName[e.Scenario] = e
	}
	low, high = make([]float64, len(names)), make([]float64, len(names))
	known := false
	for i, n := range names {
		low[i], high[i] = math.NaN(), math.NaN()
		if lo, hi, ok := byName[n].AUCInterval(); ok {
			low[i], high[i], known = lo, hi, true
		}
	}
	if !known {
		return nil, nil
	}
	return low, high
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
	bars := []Bars{{Name: "positive rate", Color: ObservedColor, Values: values(r.Main.Test, groups, func(e metrics.Entry) *float64 { return &e.PosRate })}}
	for _, m := range r.models() {
		if m.Test != nil {
			bars = append(bars, Bars{Name: "mean prediction, " + m.Name, Color: m.Color(), Values: values(m.Test, groups, func(e metrics.Entry) *float64 { return &e.MeanPred })})
		}
	}
	c, err := BarChart("Mean prediction against positive rate", "probability", groups, bars, BarOptions{Base: 0})
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
	s.Text = fmt.Sprintf("The store in %s (%s). Left: cosine similarity of the scenario vectors, on a fixed scale from -1 to 1. Right: the user vectors on their first two principal components, coloured by the scenario where each user has most training rows.", k.Store, k.Encoder)
	if len(k.Scenarios) > 0 {
		c, err := Heatmap("Scenario × scenario cosine similarity", k.Scenarios, k.Similarity)
		if err != nil {
			return s, err
		}
		s.Charts = append(s.Charts, c)
	}
	if len(k.Users) >= 2 {
		groups, explained := k.Projection()
		var names []string
		for _, g := range groups {
			names = append(names, g.Name)
		}
		colors := ScenarioColors(names)
		for i := range groups {
			groups[i].Color = colors[groups[i].Name]
		}
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
	deltas := map[string]metrics.AUCDelta{}
	for _, d := range r.AUCDelta {
		deltas[d.Scenario] = d
	}
	var rows []testRow
	for _, e := range entries(r.Main.Test) {
		row := testRow{Scenario: e.Scenario, Count: e.Count}
		var first *float64
		for i, m := range ms {
			var cell testCell
			if m.Test != nil {
				for _, x := range entries(m.Test) {
					if x.Scenario != e.Scenario {
						continue
					}
					cell = testCell{AUC: x.AUCString(), GAUC: x.GAUCString(), LogLoss: optional(x.LogLoss),
						FewUsers: x.GAUC != nil && x.GAUCUsers < metrics.MinGAUCUsers}
					if lo, hi, ok := x.AUCInterval(); ok {
						cell.AUCInterval = fmt.Sprintf("[%.4f, %.4f]", lo, hi)
					}
					if i == 0 {
						first = x.AUC
					} else if first != nil && x.AUC != nil {
						cell.Delta = fmt.Sprintf("%+.4f", *x.AUC-*first)
						if d, ok := deltas[e.Scenario]; ok && d.Delta != nil {
							cell.DeltaInterval = fmt.Sprintf("[%+.4f, %+.4f]", d.Low, d.High)
							cell.Significant, cell.Better = d.Significant(), d.Low > 0
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

// gaucWarnings says which scenarios' gAUC averages over fewer than
// metrics.MinGAUCUsers users, with the rough size of its noise.
func gaucWarnings(r Run) []string {
	if r.Main.Test == nil {
		return nil
	}
	var few []string
	fewest := math.MaxInt
	for _, e := range entries(r.Main.Test) {
		if e.GAUC != nil && e.GAUCUsers < metrics.MinGAUCUsers {
			few = append(few, fmt.Sprintf("%s (%d)", e.Scenario, e.GAUCUsers))
			fewest = min(fewest, e.GAUCUsers)
		}
	}
	if len(few) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("gAUC averages over fewer than %d users in %s. Per-user AUCs spread widely (a standard deviation of 0.2 is common), so the standard error of their mean is roughly 0.2/√users: %.2f at %d users, as large as the differences between models it would show.",
		metrics.MinGAUCUsers, strings.Join(few, ", "), 0.2/math.Sqrt(float64(fewest)), fewest)}
}

// suggestedCommands are the commands the page offers to explore the run
// further: explaining its most moved user and scenario from a terminal.
// Each names the run by its absolute path so that it works from anywhere.
func suggestedCommands(r Run) []string {
	dir, err := filepath.Abs(r.Dir)
	if err != nil {
		dir = r.Dir
	}
	var out []string
	var kinds []string
	for _, x := range r.Explanations {
		kind, id, ok := strings.Cut(x.Key, ":")
		if !ok || slices.Contains(kinds, kind) {
			continue
		}
		kinds = append(kinds, kind)
		// A store without reasoning (the hash encoder's) is explained all
		// the same: the command needs nothing more.
		args := []string{"msrtrain", "knowledge", "explain", "--checkpoint", dir, "--" + kind, id}
		out = append(out, shellJoin(args))
	}
	return out
}

// shellJoin joins args into a line a POSIX shell splits back into them.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
		}) {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
