package data

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitRows(t *testing.T) {
	d, err := Generate(Synthetic{Users: 200, ItemsPerScenario: 50, Rows: 10000}, 3)
	require.NoError(t, err)
	a, err := SplitRows(d.Raw, "random", []float64{8, 1, 1}, 7)
	require.NoError(t, err)
	b, _ := SplitRows(d.Raw, "random", []float64{8, 1, 1}, 7)
	c, _ := SplitRows(d.Raw, "random", []float64{8, 1, 1}, 8)
	if len(a[Train]) != 8000 || len(a[Valid]) != 1000 || len(a[Test]) != 1000 {
		t.Errorf("sizes %d %d %d", len(a[Train]), len(a[Valid]), len(a[Test]))
	}
	for p := range a {
		if !equal(a[p], b[p]) {
			t.Errorf("part %d differs for the same seed", p)
		}
	}
	if equal(a[Train], c[Train]) {
		t.Error("another seed gives the same split")
	}
	seen := make([]int, d.Raw.Len())
	for _, part := range a {
		for _, r := range part {
			seen[r]++
		}
	}
	for r, n := range seen {
		if n != 1 {
			t.Fatalf("row %d in %d parts", r, n)
		}
	}
	// By time: every train row is no later than every test row.
	tm, err := SplitRows(d.Raw, "time", []float64{6, 2, 2}, 0)
	require.NoError(t, err)
	maxTrain, minTest := int64(0), int64(1<<62)
	for _, r := range tm[Train] {
		maxTrain = max(maxTrain, d.Raw.Time[r])
	}
	for _, r := range tm[Test] {
		minTest = min(minTest, d.Raw.Time[r])
	}
	if len(tm[Train]) != 6000 || maxTrain > minTest {
		t.Errorf("time split: %d train rows, latest train %d, earliest test %d", len(tm[Train]), maxTrain, minTest)
	}
	raw := vocabRaw()
	if _, err := SplitRows(raw, "time", []float64{8, 1, 1}, 0); err == nil {
		t.Error("time split without time column accepted")
	}
}
