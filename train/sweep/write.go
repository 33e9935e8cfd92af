package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/train/report"
)

// WriteFiles writes results.csv, summary.csv, results.md and results.html
// into dir, each atomically.
func (t Table) WriteFiles(dir string) error {
	for name, write := range map[string]func(io.Writer) error{
		ResultsCSV: t.WriteResultsCSV,
		SummaryCSV: t.WriteSummaryCSV,
		ResultsMD:  t.WriteMarkdown,
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			return fmt.Errorf("sweep: %s: %w", name, err)
		}
		if err := atomicfile.WriteBytes(filepath.Join(dir, name), b.Bytes()); err != nil {
			return err
		}
	}
	_, err := report.WriteSweep(dir, t.reportView(dir))
	return err
}

// reportView lays the table out for results.html: test AUC per scenario
// for each point and, for a random search, each searched key against the
// metric over the ok trials.
func (t Table) reportView(dir string) report.Sweep {
	var md strings.Builder
	t.WriteMarkdown(&md)
	var ok, failed, pending int
	for _, p := range t.Points {
		ok, failed, pending = ok+p.OK, failed+p.Failed, pending+p.Pending
	}
	s := report.Sweep{Dir: dir, Metric: t.Metric, Markdown: md.String(),
		Summary: fmt.Sprintf("%d: %d ok, %d failed, %d pending", len(t.Trials), ok, failed, pending)}
	scenarios := []string{"overall"}
	for _, m := range t.Metrics {
		if rest, ok := strings.CutPrefix(m, "test.scenario."); ok {
			name, _ := splitMetric(rest)
			if !slices.Contains(s.Scenarios, name) {
				s.Scenarios = append(s.Scenarios, name)
			}
			if strings.HasSuffix(rest, ".auc") {
				scenarios = append(scenarios, name)
			}
		}
	}
	for _, p := range t.Points {
		var set []report.Setting
		for k, v := range t.overrideCells(p.Overrides) {
			if _, ok := p.Overrides[t.Keys[k]]; ok {
				set = append(set, report.Setting{Key: t.Keys[k], Value: v})
			}
		}
		sp := report.SweepPoint{ID: p.PointID, Settings: set, OK: p.OK, Scenarios: scenarios}
		for _, name := range scenarios {
			metric := "test.scenario." + name + ".auc"
			if name == "overall" {
				metric = "test.overall.auc"
			}
			mean, std := math.NaN(), math.NaN()
			if st, ok := p.Stats[metric]; ok {
				mean = st.Mean
				if st.N > 1 {
					std = st.Std
				}
			}
			sp.AUC, sp.AUCStd = append(sp.AUC, mean), append(sp.AUCStd, std)
		}
		s.Points = append(s.Points, sp)
	}
	if t.Random {
		for _, key := range t.Keys {
			k := report.SearchedKey{Key: key}
			for _, o := range t.Trials {
				v, ok := o.Result.Metrics[t.Metric]
				if o.Result.Status != StatusOK || !ok {
					continue
				}
				x, isNumber := o.Trial.Overrides[key].(float64)
				if !isNumber {
					if i, isInt := o.Trial.Overrides[key].(int); isInt {
						x, isNumber = float64(i), true
					}
				}
				if !isNumber {
					level := formatValue(o.Trial.Overrides[key])
					i := slices.Index(k.Levels, level)
					if i < 0 {
						i = len(k.Levels)
						k.Levels = append(k.Levels, level)
					}
					x = float64(i)
				}
				k.X, k.Metric = append(k.X, x), append(k.Metric, v)
			}
			s.Searched = append(s.Searched, k)
		}
	}
	return s
}

// WriteResultsCSV writes one row per trial: id, point, seed, status,
// seconds, each overridden key, each metric, and the error of a failed
// trial. A metric a trial did not report is an empty cell.
func (t Table) WriteResultsCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := append([]string{"trial_id", "point_id", "seed", "status", "seconds"}, t.Keys...)
	head = append(append(head, t.Metrics...), "error")
	cw.Write(head)
	for _, o := range t.Trials {
		row := []string{o.Trial.ID, o.Trial.PointID, strconv.FormatInt(o.Trial.Seed, 10), string(o.Result.Status),
			strconv.FormatFloat(o.Result.Seconds, 'f', 1, 64)}
		row = append(row, t.overrideCells(o.Trial.Overrides)...)
		for _, m := range t.Metrics {
			cell := ""
			if v, ok := o.Result.Metrics[m]; ok {
				cell = number(v)
			}
			row = append(row, cell)
		}
		cw.Write(append(row, o.Result.Error))
	}
	cw.Flush()
	return cw.Error()
}

// WriteSummaryCSV writes one row per point, best first: rank, point,
// overridden keys, trial counts, and mean and std of each metric.
func (t Table) WriteSummaryCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := append([]string{"rank", "point_id"}, t.Keys...)
	head = append(head, "n_ok", "n_failed", "n_pending")
	for _, m := range t.Metrics {
		head = append(head, m+".mean", m+".std")
	}
	cw.Write(head)
	for i, p := range t.Points {
		row := append([]string{strconv.Itoa(i + 1), p.PointID}, t.overrideCells(p.Overrides)...)
		row = append(row, strconv.Itoa(p.OK), strconv.Itoa(p.Failed), strconv.Itoa(p.Pending))
		for _, m := range t.Metrics {
			mean, std := "", ""
			if s, ok := p.Stats[m]; ok {
				mean, std = number(s.Mean), number(s.Std)
			}
			row = append(row, mean, std)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// WriteMarkdown writes a leaderboard of points sorted by the metric, then a
// section per point with a table of mean ± std: one row per metric group
// (the name up to its last dot: "test.overall", "test.scenario.search"), one
// column per metric ("auc", "gauc", ...), and its failed trials with their
// errors.
func (t Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	var ok, failed, pending int
	for _, p := range t.Points {
		ok, failed, pending = ok+p.OK, failed+p.Failed, pending+p.Pending
	}
	better := "higher"
	if !t.Maximize {
		better = "lower"
	}
	fmt.Fprintf(&b, "# Sweep results\n\nSorted by `%s` (%s is better). %d trials: %d ok, %d failed, %d pending.\n\n",
		t.Metric, better, len(t.Trials), ok, failed, pending)

	head := append(append([]string{"rank", "point"}, t.Keys...), "ok", "failed", t.Metric)
	mdRow(&b, head)
	mdRow(&b, slices.Repeat([]string{"---"}, len(head)))
	for i, p := range t.Points {
		row := append([]string{strconv.Itoa(i + 1), p.PointID}, t.overrideCells(p.Overrides)...)
		mdRow(&b, append(row, strconv.Itoa(p.OK), strconv.Itoa(p.Failed), meanStd(p.Stats, t.Metric)))
	}

	b.WriteString("\n")
	t.writeDeltas(&b)

	groups, leaves := splitMetrics(t.Metrics, t.Metric)
	for i, p := range t.Points {
		fmt.Fprintf(&b, "## %d. %s\n\n", i+1, p.PointID)
		var set []string
		for k, v := range t.overrideCells(p.Overrides) {
			set = append(set, fmt.Sprintf("`%s` = `%s`", t.Keys[k], v))
		}
		fmt.Fprintf(&b, "%s; %d ok, %d failed, %d pending.\n\n", strings.Join(set, ", "), p.OK, p.Failed, p.Pending)
		if len(p.Stats) > 0 {
			mdRow(&b, append([]string{"metrics"}, leaves...))
			mdRow(&b, slices.Repeat([]string{"---"}, len(leaves)+1))
			for _, g := range groups {
				row := []string{g}
				for _, l := range leaves {
					row = append(row, meanStd(p.Stats, joinMetric(g, l)))
				}
				mdRow(&b, row)
			}
			b.WriteString("\n")
		}
		if len(p.Failures) > 0 {
			b.WriteString("Failed trials:\n\n")
			for _, f := range p.Failures {
				fmt.Fprintf(&b, "- `%s` (seed %d): %s\n", f.Trial.ID, f.Trial.Seed, oneLine(f.Result.Error))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDeltas writes the section of results.md that compares every point
// with the baseline (nothing without one).
func (t Table) WriteDeltas(w io.Writer) error {
	var b strings.Builder
	t.writeDeltas(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeDeltas writes, with a baseline, every point in spec order with its
// metric and its paired difference from the baseline.
func (t Table) writeDeltas(b *strings.Builder) {
	if t.Baseline == "" {
		return
	}
	fmt.Fprintf(b, "## Paired differences from the baseline\n\n"+
		"Δ is a point's `%s` minus the baseline's (`%s`) seed by seed: the mean ± std of the differences "+
		"over n seeds where both ran, and the 95%% Student t interval of their mean.\n\n", t.Metric, t.Baseline)
	head := append(append([]string{"point"}, t.Keys...), t.Metric, "n", "Δ", "95% CI")
	mdRow(b, head)
	mdRow(b, slices.Repeat([]string{"---"}, len(head)))
	points := slices.Clone(t.Points)
	slices.SortFunc(points, func(a, b PointSummary) int { return a.Point - b.Point })
	for _, p := range points {
		row := append(append([]string{p.PointID}, t.overrideCells(p.Overrides)...), meanStd(p.Stats, t.Metric))
		d, ok := p.Deltas[t.Metric]
		switch {
		case p.PointID == t.Baseline:
			row = append(row, "", "baseline", "")
		case !ok:
			row = append(row, "0", "-", "-")
		default:
			row = append(row, strconv.Itoa(d.N), signed(d.Mean)+" ± "+fixed(d.Std), "["+signed(d.Lo)+", "+signed(d.Hi)+"]")
		}
		mdRow(b, row)
	}
	b.WriteString("\n")
}

// signed renders a difference with its sign: +0.0123, -0.0045.
func signed(v float64) string {
	if v >= 0 {
		return "+" + fixed(v)
	}
	return fixed(v)
}

// splitMetrics splits metric names at their last dot into row groups and
// column leaves, both sorted, with the sort metric's group and leaf first.
func splitMetrics(metrics []string, first string) (groups, leaves []string) {
	fg, fl := splitMetric(first)
	for _, m := range metrics {
		g, l := splitMetric(m)
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
		if !slices.Contains(leaves, l) {
			leaves = append(leaves, l)
		}
	}
	firstFirst := func(f string) func(a, b string) int {
		return func(a, b string) int {
			switch {
			case a == b:
				return 0
			case a == f:
				return -1
			case b == f:
				return 1
			}
			return strings.Compare(a, b)
		}
	}
	slices.SortFunc(groups, firstFirst(fg))
	slices.SortFunc(leaves, firstFirst(fl))
	return groups, leaves
}

func splitMetric(m string) (group, leaf string) {
	if i := strings.LastIndexByte(m, '.'); i >= 0 {
		return m[:i], m[i+1:]
	}
	return "", m
}

func joinMetric(group, leaf string) string {
	if group == "" {
		return leaf
	}
	return group + "." + leaf
}

// meanStd renders "mean ± std", or just the mean for one seed, or "-".
func meanStd(stats map[string]Stat, metric string) string {
	s, ok := stats[metric]
	switch {
	case !ok:
		return "-"
	case s.N == 1:
		return fixed(s.Mean)
	}
	return fixed(s.Mean) + " ± " + fixed(s.Std)
}

func (t Table) overrideCells(ov map[string]any) []string {
	cells := make([]string, len(t.Keys))
	for i, k := range t.Keys {
		if v, ok := ov[k]; ok {
			cells[i] = formatValue(v)
		}
	}
	return cells
}

// formatValue renders an override: strings as they are, anything else as
// compact JSON ([64,32], 0.001, true).
func formatValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func mdRow(b *strings.Builder, cells []string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + strings.ReplaceAll(oneLine(c), "|", `\|`) + " |")
	}
	b.WriteString("\n")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func number(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func fixed(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
