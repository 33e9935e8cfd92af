package metrics

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTable(t *testing.T) {
	var b strings.Builder
	require.NoError(t, fixture(t).Compute([]string{"search", "feed", "ads"}).Table(&b))
	want := `scenario  n  pos rate  mean pred  AUC                       gAUC (users)                           logloss
overall   7  0.2857    0.4286     0.6000                    0.6000 (2)                             0.6139
search    5  0.4000    0.4600     0.6667                    0.6000 (2)                             0.6859
feed      2  0.0000    0.3500     undefined (all labels 0)  undefined (no user with both classes)  0.4338
ads       0  -         -          undefined (no samples)    undefined (no samples)                 -
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCompareTable(t *testing.T) {
	base := fixture(t).Compute([]string{"search", "feed"})
	better := fixture(t)
	// Move search user 2's positive above its negative: search AUC 5/6.
	require.NoError(t, better.Add([]int64{0}, []int64{9}, []float32{1}, []float32{0.95}))
	var b strings.Builder
	require.NoError(t, CompareTable(&b, []string{"base", "new"}, []Report{base, better.Compute([]string{"search", "feed"})}))
	got := b.String()
	for _, want := range []string{"AUC base", "ΔAUC new", "logloss new", "undefined (all labels 0)"} {
		if !strings.Contains(got, want) {
			t.Errorf("compare table lacks %q:\n%s", want, got)
		}
	}
	// search: 4/6 -> 7/9 (0.9 and 0.95 beat 3 negatives each, 0.2 beats one).
	if !strings.Contains(got, "+0.1111") {
		t.Errorf("compare table lacks the search ΔAUC +0.1111:\n%s", got)
	}
	// feed's AUC is undefined in both: no Δ.
	feedRows := 0
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "feed") {
			feedRows++
			if !strings.Contains(line, " - ") {
				t.Errorf("feed row should show '-' for ΔAUC: %q", line)
			}
		}
	}
	if feedRows != 1 {
		t.Errorf("compare table has %d feed rows, want 1:\n%s", feedRows, got)
	}

	for _, tt := range []struct {
		names   []string
		reports []Report
		wantErr string
	}{
		{nil, nil, "no reports"},
		{[]string{"a"}, []Report{base, base}, "1 names for 2 reports"},
	} {
		if err := CompareTable(&b, tt.names, tt.reports); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CompareTable err = %v, want %q", err, tt.wantErr)
		}
	}
}
