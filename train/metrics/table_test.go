package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTable(t *testing.T) {
	var b strings.Builder
	require.NoError(t, fixture(t).Compute([]string{"search", "feed", "ads"}).Table(&b))
	// Overall: positives 0.9, 0.2 over five negatives, DeLong's variance
	// 0.32/2 + 0.05/5 = 0.17, so 0.6 ± 1.96·0.412 clips to [0, 1]; search:
	// 0.2222/2 + 0.0833/3, 0.6667 ± 1.96·0.373, clipped as well.
	want := `scenario  n  pos rate  mean pred  AUC                       AUC 95% CI        gAUC (users)                           logloss
overall   7  0.2857    0.4286     0.6000                    [0.0000, 1.0000]  0.6000 (2)                             0.6139
search    5  0.4000    0.4600     0.6667                    [0.0000, 1.0000]  0.6000 (2)                             0.6859
feed      2  0.0000    0.3500     undefined (all labels 0)  -                 undefined (no user with both classes)  0.4338
ads       0  -         -          undefined (no samples)    -                 undefined (no samples)                 -
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}

	// An interval inside [0, 1] is the AUC ± 1.96 standard errors.
	b.Reset()
	require.NoError(t, Report{Overall: Entry{Scenario: "overall", Count: 100, AUC: ptr(0.7), AUCStdErr: ptr(0.05)}}.Table(&b))
	require.Contains(t, b.String(), "0.7000  [0.6020, 0.7980]")
}

func TestCompareTable(t *testing.T) {
	// The same eight rows scored by two models: the base ranks a new search
	// positive of user 9 last (0.05), the better model first (0.95).
	baseAcc, better := fixture(t), fixture(t)
	require.NoError(t, baseAcc.Add([]int64{0}, []int64{9}, []float32{1}, []float32{0.05}))
	require.NoError(t, better.Add([]int64{0}, []int64{9}, []float32{1}, []float32{0.95}))
	names := []string{"search", "feed"}
	base := baseAcc.Compute(names)
	paired, err := CompareAUC(baseAcc, better, names)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, CompareTable(&b, []string{"base", "new"}, []Report{base, better.Compute(names)}, paired))
	got := b.String()
	require.Equal(t, "search", paired[1].Scenario)
	search := fmt.Sprintf("[%+.4f, %+.4f]", paired[1].Low, paired[1].High)
	for _, want := range []string{"AUC base", "ΔAUC new", "95% CI of Δ", search, "logloss new", "undefined (all labels 0)"} {
		if !strings.Contains(got, want) {
			t.Errorf("compare table lacks %q:\n%s", want, got)
		}
	}
	// search: 4/9 -> 7/9 (0.9 beats 3 negatives, 0.2 one, the new positive 0 or 3).
	if !strings.Contains(got, "+0.3333") {
		t.Errorf("compare table lacks the search ΔAUC +0.3333:\n%s", got)
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
		if err := CompareTable(&b, tt.names, tt.reports, nil); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("CompareTable err = %v, want %q", err, tt.wantErr)
		}
	}
}
