package data

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadSyntheticDefaults(t *testing.T) {
	sp, err := Load(Config{Synthetic: Synthetic{Users: 1000, ItemsPerScenario: 200, Rows: 20000}, Seed: 2})
	require.NoError(t, err)
	if sp.Train.Len() != 16000 || sp.Valid.Len() != 2000 || sp.Test.Len() != 2000 || sp.Synthetic == nil {
		t.Fatalf("rows %d/%d/%d", sp.Train.Len(), sp.Valid.Len(), sp.Test.Len())
	}
	if got := sp.Vocabs.Schema().ScenarioNames(); !equal(got, []string{"video", "search", "shop"}) {
		t.Errorf("scenario order %v, want the generator's", got)
	}
	out := FormatStats(sp.Stats)
	if !strings.HasPrefix(out, "scenario") || !strings.Contains(out, "video ") || len(sp.Stats[0].TopCategories) != 5 {
		t.Errorf("stats:\n%s%+v", out, sp.Stats[0])
	}
	// Histories keep the latest n per scenario, oldest first, with text.
	h := sp.Train.UserHistories(2)
	for _, u := range h[:50] {
		if u.Text == "" || !strings.HasPrefix(u.Text, "Enjoys ") {
			t.Fatalf("user %s text %q", u.User, u.Text)
		}
		for _, s := range u.Scenarios {
			if len(s) > 2 || len(s) == 2 && s[0].Time > s[1].Time || len(s) > 0 && s[0].Category == "" {
				t.Fatalf("history %+v", s)
			}
		}
	}
	// A few users' histories are theirs from the full build.
	some := []string{h[7].User, h[3].User, "nobody"}
	few := sp.Train.UserHistoriesOf(2, some)
	require.Len(t, few, 2)
	require.Equal(t, []UserHistory{h[3], h[7]}, few, "in order of first appearance")
	// Evaluating with saved vocabularies maps ids as training did.
	again, err := Load(sp.Config, WithVocabs(sp.Vocabs))
	require.NoError(t, err)
	// The same data builds equal vocabularies anyway, so check that the
	// saved ones were the ones used.
	if again.Vocabs != sp.Vocabs {
		t.Error("WithVocabs ignored: Load built its own vocabularies")
	}
	if !equal(again.Test.Cat, sp.Test.Cat) {
		t.Error("WithVocabs changed the encoding")
	}
	src, err := sp.Source(Valid, BatchOptions{Size: 500})
	if err != nil || src.NumBatches() != 4 || src.Schema() != sp.Vocabs.Schema() {
		t.Errorf("source %v %v", src, err)
	}
}

func TestSample(t *testing.T) {
	sp, err := Load(Config{Synthetic: Synthetic{Users: 300, ItemsPerScenario: 50, Rows: 5000}, Seed: 3})
	require.NoError(t, err)
	all, err := sp.Sample(5000, 1)
	require.NoError(t, err)
	require.Same(t, sp.Train, all[Train], "a sample of every row is the splits")
	parts, err := sp.Sample(600, 1)
	require.NoError(t, err)
	n := 0
	for p, tab := range parts {
		whole := [3]*Table{sp.Train, sp.Valid, sp.Test}[p]
		n += tab.Len()
		require.Greater(t, tab.Len(), 0, "%s: a uniform sample reaches every split", Part(p))
		for r := range tab.Len() {
			i := int(tab.SourceRow[r]) // the source row of a random split's table is its raw row
			at := slices.Index(whole.SourceRow, int32(i))
			require.GreaterOrEqual(t, at, 0)
			require.Equal(t, whole.Cat[at*4:at*4+4], tab.Cat[r*4:r*4+4])
			require.Equal(t, whole.ItemKey(at), tab.ItemKey(r))
		}
	}
	require.Equal(t, 600, n)
	again, _ := sp.Sample(600, 1)
	other, _ := sp.Sample(600, 2)
	require.Equal(t, parts[Train].SourceRow, again[Train].SourceRow, "seeded")
	require.NotEqual(t, parts[Train].SourceRow, other[Train].SourceRow)
}
