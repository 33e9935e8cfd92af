package sweep

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	spec := mustParse(t, fmt.Sprintf(runSpec, 2))
	var f fakeTrial
	tbl := Summarize(spec, runSweep(t, spec, t.TempDir(), f.run, Options{}))

	std := math.Sqrt(2 * 0.005 * 0.005) // seeds differ by 0.01
	want := []struct {
		point      int
		ok, failed int
		mean       float64 // of test.overall.auc
	}{
		{2, 2, 0, 0.815}, // a=2 b=x
		{1, 2, 0, 0.765}, // a=1 b=y
		{0, 2, 0, 0.715}, // a=1 b=x
		{3, 0, 2, 0},     // a=2 b=y fails: last
	}
	if len(tbl.Points) != len(want) {
		t.Fatalf("%d points, want %d", len(tbl.Points), len(want))
	}
	for i, w := range want {
		p := tbl.Points[i]
		if p.Point != w.point || p.OK != w.ok || p.Failed != w.failed {
			t.Errorf("rank %d: point %d ok %d failed %d, want point %d ok %d failed %d", i+1, p.Point, p.OK, p.Failed, w.point, w.ok, w.failed)
			continue
		}
		if w.ok == 0 {
			if len(p.Stats) != 0 || len(p.Failures) != 2 || p.Failures[0].Result.Error != "out of memory on purpose" {
				t.Errorf("failed point: stats %v, failures %v", p.Stats, p.Failures)
			}
			continue
		}
		for metric, mean := range map[string]float64{"test.overall.auc": w.mean, "test.scenario.search.auc": w.mean - 0.1} {
			s := p.Stats[metric]
			if s.N != 2 || math.Abs(s.Mean-mean) > 1e-12 || math.Abs(s.Std-std) > 1e-12 {
				t.Errorf("point %d %s: %+v, want mean %v std %v n 2", p.Point, metric, s, mean, std)
			}
		}
	}

	// Minimizing reverses the order; failed points stay last.
	spec.Maximize = false
	spec.Metric = "test.scenario.search.auc"
	var order []int
	for _, p := range Summarize(spec, tbl.Trials).Points {
		order = append(order, p.Point)
	}
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Errorf("minimize order %v, want [0 1 2 3]", order)
	}
}

func TestStat(t *testing.T) {
	tests := []struct {
		in        []float64
		mean, std float64
	}{
		{[]float64{0.5}, 0.5, 0},
		{[]float64{1, 2, 3, 4}, 2.5, math.Sqrt(5.0 / 3)},
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(32.0 / 7)},
	}
	for _, tt := range tests {
		s := stat(tt.in)
		if s.N != len(tt.in) || math.Abs(s.Mean-tt.mean) > 1e-12 || math.Abs(s.Std-tt.std) > 1e-12 {
			t.Errorf("stat(%v) = %+v, want mean %v std %v", tt.in, s, tt.mean, tt.std)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	spec := mustParse(t, fmt.Sprintf(runSpec, 1))
	dir := t.TempDir()
	var f fakeTrial
	tbl := Summarize(spec, runSweep(t, spec, dir, f.run, Options{}))
	require.NoError(t, tbl.WriteFiles(dir))

	rows := readCSV(t, filepath.Join(dir, ResultsCSV))
	if got := strings.Join(rows[0], ","); got != "trial_id,point_id,seed,status,seconds,a,b,test.overall.auc,test.scenario.search.auc,error" {
		t.Errorf("results.csv header: %s", got)
	}
	if len(rows) != 9 {
		t.Fatalf("results.csv: %d rows, want 1 + 8", len(rows))
	}
	if r := rows[1]; r[2] != "1" || r[3] != "ok" || r[5] != "1" || r[6] != "x" || !near(r[7], 0.71) || r[9] != "" {
		t.Errorf("results.csv first trial: %v", r)
	}
	if r := rows[8]; r[3] != "failed" || r[7] != "" || r[9] != "out of memory on purpose" {
		t.Errorf("results.csv last trial: %v", r)
	}

	sum := readCSV(t, filepath.Join(dir, SummaryCSV))
	if got := strings.Join(sum[0], ","); got != "rank,point_id,a,b,n_ok,n_failed,n_pending,test.overall.auc.mean,test.overall.auc.std,test.scenario.search.auc.mean,test.scenario.search.auc.std" {
		t.Errorf("summary.csv header: %s", got)
	}
	if r := sum[1]; r[0] != "1" || r[2] != "2" || r[3] != "x" || r[4] != "2" || !near(r[7], 0.815) || !near(r[8], math.Sqrt(2)*0.005) {
		t.Errorf("summary.csv best point: %v", r)
	}
	if r := sum[4]; r[2] != "2" || r[3] != "y" || r[5] != "2" || r[7] != "" {
		t.Errorf("summary.csv failed point: %v", r)
	}

	md, err := os.ReadFile(filepath.Join(dir, ResultsMD))
	require.NoError(t, err)
	for _, want := range []string{
		"Sorted by `test.overall.auc` (higher is better). 8 trials: 6 ok, 2 failed, 0 pending.",
		"| rank | point | a | b | ok | failed | test.overall.auc |",
		"| 1 | " + tbl.Points[0].PointID + " | 2 | x | 2 | 0 | 0.8150 ± 0.0071 |",
		"| 4 | " + tbl.Points[3].PointID + " | 2 | y | 0 | 2 | - |",
		"| metrics | auc |",
		"| test.overall | 0.8150 ± 0.0071 |",
		"| test.scenario.search | 0.7150 ± 0.0071 |",
		"(seed 2): out of memory on purpose",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
}

// near reports whether the CSV cell holds v, to float precision.
func near(cell string, v float64) bool {
	f, err := strconv.ParseFloat(cell, 64)
	return err == nil && math.Abs(f-v) < 1e-12
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return rows
}
