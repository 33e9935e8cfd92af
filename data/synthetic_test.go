package data

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i] / n
		my += y[i] / n
	}
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

func TestSyntheticDeterministic(t *testing.T) {
	cfg := Synthetic{Users: 300, ItemsPerScenario: 100, Rows: 5000}
	a, err := Generate(cfg, 11)
	require.NoError(t, err)
	b, _ := Generate(cfg, 11)
	c, _ := Generate(cfg, 12)
	if !equal(a.Raw.Labels[0].Values, b.Raw.Labels[0].Values) || !equal(a.Raw.Cat[1].Codes, b.Raw.Cat[1].Codes) ||
		a.Raw.Text.Users["u5"] != b.Raw.Text.Users["u5"] {
		t.Error("same seed, different data")
	}
	if equal(a.Raw.Cat[1].Codes, c.Raw.Cat[1].Codes) {
		t.Error("different seeds, same data")
	}
	// TrueProb is TrueProbability of each row, and labels follow it.
	var sumP, sumY float64
	for r := range a.Raw.Len() {
		p := a.TrueProbability(int(a.RowUser[r]), int(a.RowItem[r]), int(a.Raw.Scenario.Codes[r]-1))
		if !near(p, float64(a.TrueProb[r]), 1e-6) {
			t.Fatalf("row %d: TrueProb %v, TrueProbability %v", r, a.TrueProb[r], p)
		}
		sumP += p
		sumY += float64(a.Raw.Labels[0].Values[r])
	}
	if n := float64(a.Raw.Len()); !near(sumY/n, sumP/n, 0.02) {
		t.Errorf("click rate %.3f, mean true probability %.3f", sumY/n, sumP/n)
	}
}

// The ground truth a model and the LLM knowledge should find: correlated
// scenarios give the same users correlated click rates; others do not.
func TestSyntheticCorrelatedScenarios(t *testing.T) {
	cfg := Synthetic{Scenarios: 3, Users: 600, ItemsPerScenario: 200, Rows: 360000,
		Presence: []float64{1, 1, 1}, Share: []float64{1, 1, 1}}
	d, err := Generate(cfg, 5)
	require.NoError(t, err)
	if !equal(d.Config.Correlation[0], []float64{1, 0.8, 0.1}) {
		t.Fatalf("default correlation %v", d.Config.Correlation)
	}
	U, S := cfg.Users, cfg.Scenarios
	clicks := make([][]float64, S)
	shown := make([][]float64, S)
	for s := range S {
		clicks[s], shown[s] = make([]float64, U), make([]float64, U)
	}
	for r := range d.Raw.Len() {
		s, u := d.Raw.Scenario.Codes[r]-1, d.RowUser[r]
		clicks[s][u] += float64(d.Raw.Labels[0].Values[r])
		shown[s][u]++
	}
	var ctr [3][]float64
	for u := range U {
		if shown[0][u] < 20 || shown[1][u] < 20 || shown[2][u] < 20 {
			continue
		}
		for s := range S {
			ctr[s] = append(ctr[s], clicks[s][u]/shown[s][u])
		}
	}
	if len(ctr[0]) < 300 {
		t.Fatalf("only %d users with enough rows", len(ctr[0]))
	}
	r01, r02, r12 := pearson(ctr[0], ctr[1]), pearson(ctr[0], ctr[2]), pearson(ctr[1], ctr[2])
	t.Logf("per-user click-rate correlation: 0-1 %.2f, 0-2 %.2f, 1-2 %.2f", r01, r02, r12)
	// Estimated from ~200 impressions per user and scenario, so below 0.8.
	if r01 < 0.35 || r02 > 0.2 || r12 > 0.2 {
		t.Errorf("click-rate correlation 0-1 %.2f (want > 0.35), 0-2 %.2f and 1-2 %.2f (want < 0.2)", r01, r02, r12)
	}
	// The latent interests have the declared correlation, dimension by dimension.
	var z0, z1, z2 []float64
	for u := range U {
		z0 = append(z0, d.UserInterest[u][0]...)
		z1 = append(z1, d.UserInterest[u][1]...)
		z2 = append(z2, d.UserInterest[u][2]...)
	}
	if r := pearson(z0, z1); !near(r, 0.8, 0.05) {
		t.Errorf("interest correlation 0-1 = %.3f, want 0.8", r)
	}
	if r := pearson(z0, z2); !near(r, 0.1, 0.05) {
		t.Errorf("interest correlation 0-2 = %.3f, want 0.1", r)
	}
}

// The generated text carries the latent structure.
func TestSyntheticText(t *testing.T) {
	d, err := Generate(Synthetic{Users: 2000, ItemsPerScenario: 300, Rows: 200000}, 9)
	require.NoError(t, err)
	desc := d.ScenarioInfo[0].Description
	for _, want := range []string{"About 30% of shown items are clicked", "closely match their tastes in search", "unrelated to those in shop"} {
		if !strings.Contains(desc, want) {
			t.Errorf("video description %q lacks %q", desc, want)
		}
	}
	// Users described as liking a category click its items more often than
	// users described as not interested in it.
	liked, disliked := [2]float64{}, [2]float64{}
	for r := range d.Raw.Len() {
		u, i := d.RowUser[r], d.RowItem[r]
		cat := d.Categories[d.ItemCategory[i]]
		text := d.Raw.Text.Users["u"+itoa(int64(u))]
		y := float64(d.Raw.Labels[0].Values[r])
		switch {
		case strings.HasPrefix(text, "Enjoys "+cat+" ") || strings.Contains(text, " and "+cat+";"):
			liked[0] += y
			liked[1]++
		case strings.Contains(text, "not interested in "+cat+"."):
			disliked[0] += y
			disliked[1]++
		}
	}
	lr, dr := liked[0]/liked[1], disliked[0]/disliked[1]
	t.Logf("click rate on liked categories %.3f, on disliked %.3f", lr, dr)
	if lr < dr+0.1 {
		t.Errorf("liked %.3f vs disliked %.3f: text carries no signal", lr, dr)
	}
}

func TestSyntheticValidate(t *testing.T) {
	bad := []Synthetic{
		{Correlation: [][]float64{{1, 2, 0}, {2, 1, 0}, {0, 0, 1}}}, // not positive definite
		{Correlation: [][]float64{{1, 0.5}, {0.5, 1}}},              // wrong size
		{CTR: []float64{0.5, 1.5, 0.2}},
		{Categories: 99},
		{Share: []float64{1}},
	}
	for i, c := range bad {
		if _, err := Generate(c, 1); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}
