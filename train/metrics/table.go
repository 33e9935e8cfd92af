package metrics

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Table writes the report as an aligned terminal table, overall first, one
// row per scenario after it. An undefined metric reads "undefined (<reason>)",
// a value that needs samples reads "-" for a scenario without any:
//
//	scenario  n  pos rate  mean pred  AUC                       gAUC (users)  logloss
//	overall   7  0.2857    0.4286     0.6000                    0.6000 (2)    0.6139
//	feed      2  0.0000    0.3500     undefined (all labels 0)  undefined (…) 0.4338
//	ads       0  -         -          undefined (no samples)    undefined (…) -
func (r Report) Table(w io.Writer) error {
	tw := newTabWriter(w)
	fmt.Fprintln(tw, "scenario\tn\tpos rate\tmean pred\tAUC\tgAUC (users)\tlogloss")
	for _, e := range r.entries() {
		rate, mean := "-", "-"
		if e.Count > 0 {
			rate, mean = fixed(e.PosRate), fixed(e.MeanPred)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Scenario, e.Count, rate, mean,
			e.AUCString(), e.GAUCString(), optional(e.LogLoss, ""))
	}
	return tw.Flush()
}

// CompareTable writes one row per scenario (overall first) and, for each
// report, its AUC and logloss; every report after the first also gets a
// ΔAUC column against the first, the baseline. names label the reports.
// Scenarios are matched by name and follow the baseline's order; n is the
// baseline's. A Δ against an undefined AUC is shown as "-".
func CompareTable(w io.Writer, names []string, reports []Report) error {
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
		}
		head = append(head, "logloss "+n)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))

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
