package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Table writes the report as an aligned terminal table, overall first, one
// row per scenario after it, each AUC with its 95% DeLong interval. An
// undefined metric reads "undefined (<reason>)", a value that needs samples
// (or an interval that needs both classes twice) reads "-":
//
//	scenario  n  pos rate  mean pred  AUC                       AUC 95% CI        gAUC (users)  logloss
//	overall   7  0.2857    0.4286     0.6000                    [0.1694, 1.0000]  0.6000 (2)    0.6139
//	feed      2  0.0000    0.3500     undefined (all labels 0)  -                 undefined (…) 0.4338
func (r Report) Table(w io.Writer) error {
	tw := newTabWriter(w)
	fmt.Fprintln(tw, "scenario\tn\tpos rate\tmean pred\tAUC\tAUC 95% CI\tgAUC (users)\tlogloss")
	for _, e := range r.entries() {
		rate, mean := "-", "-"
		if e.Count > 0 {
			rate, mean = fixed(e.PosRate), fixed(e.MeanPred)
		}
		interval := "-"
		if low, high, ok := e.AUCInterval(); ok {
			interval = fmt.Sprintf("[%.4f, %.4f]", low, high)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Scenario, e.Count, rate, mean,
			e.AUCString(), interval, e.GAUCString(), optional(e.LogLoss, ""))
	}
	return tw.Flush()
}

// CompareTable writes one row per scenario (overall first) and, for each
// report, its AUC and logloss; every report after the first also gets a
// ΔAUC column against the first, the baseline. names label the reports.
// Scenarios are matched by name and follow the baseline's order; n is the
// baseline's. A Δ against an undefined AUC is shown as "-". paired, when
// given, is DeLong's paired test of the last report against the first on
// the same rows (CompareAUC), by scenario: it adds the Δ's 95% interval.
func CompareTable(w io.Writer, names []string, reports []Report, paired []AUCDelta) error {
	if len(reports) == 0 {
		return errors.New("metrics: compare table: no reports")
	}
	if len(names) != len(reports) {
		return fmt.Errorf("metrics: compare table: %d names for %d reports", len(names), len(reports))
	}
	tw := newTabWriter(w)
	head := []string{"scenario", "n"}
	for i, n := range names {
		head = append(head, "AUC "+n)
		if i > 0 {
			head = append(head, "ΔAUC "+n)
			if i == len(names)-1 && paired != nil {
				head = append(head, "95% CI of Δ")
			}
		}
		head = append(head, "logloss "+n)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))

	intervals := map[string]string{}
	for _, d := range paired {
		if d.Delta != nil {
			intervals[d.Scenario] = fmt.Sprintf("[%+.4f, %+.4f]", d.Low, d.High)
		}
	}
	index := make([]map[string]Entry, len(reports))
	for i, r := range reports {
		index[i] = map[string]Entry{}
		for _, e := range r.entries() {
			index[i][e.Scenario] = e
		}
	}
	for _, base := range reports[0].entries() {
		row := []string{base.Scenario, strconv.Itoa(base.Count)}
		for i := range reports {
			e, ok := index[i][base.Scenario]
			if !ok {
				e = Entry{Scenario: base.Scenario, AUCUndefined: "missing"}
			}
			row = append(row, e.AUCString())
			if i > 0 {
				delta := "-"
				if e.AUC != nil && base.AUC != nil {
					delta = fmt.Sprintf("%+.4f", *e.AUC-*base.AUC)
				}
				row = append(row, delta)
				if i == len(reports)-1 && paired != nil {
					row = append(row, cmp.Or(intervals[base.Scenario], "-"))
				}
			}
			row = append(row, optional(e.LogLoss, ""))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// AUCString renders the AUC, or "undefined (<reason>)".
func (e Entry) AUCString() string { return optional(e.AUC, e.AUCUndefined) }

// GAUCString renders the gAUC with the number of users it averages over, or
// "undefined (<reason>)".
func (e Entry) GAUCString() string {
	if e.GAUC == nil {
		return optional(nil, e.GAUCUndefined)
	}
	return fmt.Sprintf("%s (%d)", fixed(*e.GAUC), e.GAUCUsers)
}

func (r Report) entries() []Entry { return append([]Entry{r.Overall}, r.PerScenario...) }

func optional(v *float64, reason string) string {
	switch {
	case v != nil:
		return fixed(*v)
	case reason == "":
		return "-"
	default:
		return "undefined (" + reason + ")"
	}
}

func fixed(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }
