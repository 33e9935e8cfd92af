package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/msrtrain/msrtrain/data/knowledge"
)

// Explanation gathers what msrtrain knows about one knowledge key: the
// prompt the LLM was given, its reasoning, the keys with the most similar
// vectors and, with a trained model, how much that knowledge moves the
// model's logits.
type Explanation struct {
	Key              string               `json:"key"` // user:<id> or scenario:<name>
	MainScenario     string               `json:"main_scenario,omitempty"`
	Prompt           string               `json:"prompt"`
	Reasoning        string               `json:"reasoning"`
	ReasoningMissing string               `json:"reasoning_missing,omitempty"` // why Reasoning is empty
	Encoder          string               `json:"encoder"`
	NearestScenarios []knowledge.Neighbor `json:"nearest_scenarios"`
	NearestUsers     []knowledge.Neighbor `json:"nearest_users"`
	Effects          []Effect             `json:"effects,omitempty"`
	EffectsAgainst   string               `json:"effects_against,omitempty"` // the vector the effects compare with
	EffectsMissing   string               `json:"effects_missing,omitempty"` // why there are none
}

// Effect is how much a key's knowledge moves the logits of its rows in one
// scenario, against the same rows with the comparison vector in its place.
type Effect struct {
	Scenario     string  `json:"scenario"`
	Rows         int     `json:"rows"`
	MeanAbsShift float64 `json:"mean_abs_shift"` // mean |logit(own) - logit(comparison)|
	MeanShift    float64 `json:"mean_shift"`     // mean logit(own) - logit(comparison)
}

// Size is the mean absolute logit shift over all the key's rows, the
// number explanations are ranked by.
func (e Explanation) Size() float64 {
	var sum float64
	n := 0
	for _, f := range e.Effects {
		sum += f.MeanAbsShift * float64(f.Rows)
		n += f.Rows
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Rows is the number of rows the effects were measured on.
func (e Explanation) Rows() int {
	n := 0
	for _, f := range e.Effects {
		n += f.Rows
	}
	return n
}

// WriteText writes the explanation for a terminal.
func (e Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", e.Key)
	if e.MainScenario != "" {
		fmt.Fprintf(&b, " (most rows in %s)", e.MainScenario)
	}
	fmt.Fprintf(&b, ", knowledge from %s\n\n", e.Encoder)
	fmt.Fprintf(&b, "prompt:\n%s\n\n", indent(e.Prompt))
	if e.Reasoning != "" {
		fmt.Fprintf(&b, "reasoning (the LLM's answer):\n%s\n\n", indent(e.Reasoning))
	} else {
		fmt.Fprintf(&b, "reasoning: none (%s)\n\n", e.ReasoningMissing)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, near := range []struct {
		title string
		list  []knowledge.Neighbor
	}{{"nearest scenarios", e.NearestScenarios}, {"nearest users", e.NearestUsers}} {
		if len(near.list) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\tcosine\n", near.title)
		for _, n := range near.list {
			fmt.Fprintf(tw, "  %s\t%.3f\n", n.Key, n.Cosine)
		}
		tw.Flush()
		b.WriteString("\n")
	}
	if len(e.Effects) == 0 {
		fmt.Fprintf(&b, "effect on the model: not measured (%s)\n", e.EffectsMissing)
	} else {
		fmt.Fprintf(&b, "effect on the model's logits, against %s:\n", e.EffectsAgainst)
		fmt.Fprintln(tw, "scenario\trows\tmean |shift|\tmean shift")
		for _, f := range e.Effects {
			fmt.Fprintf(tw, "%s\t%d\t%.4f\t%+.4f\n", f.Scenario, f.Rows, f.MeanAbsShift, f.MeanShift)
		}
		fmt.Fprintf(tw, "all\t%d\t%.4f\t\n", e.Rows(), e.Size())
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
