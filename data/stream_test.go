package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeSyntheticCSV writes rows of the synthetic data as a csv file.
func writeSyntheticCSV(t testing.TB, path string, rows int, seed int64) {
	t.Helper()
	d, err := Generate(Synthetic{Users: 2000, ItemsPerScenario: 500, Rows: rows}, seed)
	require.NoError(t, err)
	r := d.Raw
	var b strings.Builder
	b.WriteString("scenario,user_id,item_id,item_category,user_segment,item_pop,user_activity,click,ts\n")
	for i := range r.Len() {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%g,%g,%g,%d\n", r.Scenario.Dict.Strings[r.Scenario.Codes[i]],
			column1(r, 0, i), column1(r, 1, i), column1(r, 2, i), column1(r, 3, i),
			r.Num[0].Values[i], r.Num[1].Values[i], r.Labels[0].Values[i], r.Time[i])
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

func column1(r *Raw, f, i int) string { return r.Cat[f].Dict.Strings[r.Cat[f].Codes[i]] }

func syntheticCSVConfig(path string) Config {
	return Config{Format: "csv", Path: path, Columns: Columns{
		Scenario: Col("scenario"), User: Col("user_id"), Item: Col("item_id"),
		Categorical: []ColumnRef{Col("item_category"), Col("user_segment")},
		Numeric:     []ColumnRef{Col("item_pop"), Col("user_activity")},
		Labels:      []ColumnRef{Col("click")}, Time: Col("ts")}}
}

// trainValidCSV writes train and valid files of synthetic rows and loads
// them in memory; streaming the same config reads them back.
func trainValidCSV(t *testing.T, trainRows, validRows int) (Config, *Splits) {
	t.Helper()
	dir := t.TempDir()
	train, valid := filepath.Join(dir, "train.csv"), filepath.Join(dir, "valid.csv")
	writeSyntheticCSV(t, train, trainRows, 1)
	writeSyntheticCSV(t, valid, validRows, 2)
	cfg := syntheticCSVConfig("")
	cfg.Train, cfg.Valid = train, valid
	mem, err := Load(cfg)
	require.NoError(t, err)
	return cfg, mem
}

func TestStreamMatchesInMemory(t *testing.T) {
	cfg, mem := trainValidCSV(t, 5000, 700)
	cfg.Stream = StreamConfig{Enabled: true, BlockRows: 512, ShuffleBuffer: 1000}
	st, err := Load(cfg)
	require.NoError(t, err)
	if st.Train != nil {
		t.Error("streaming should not hold a table")
	}
	for _, p := range []Part{Train, Valid, Test} {
		assert.Equal(t, mem.Rows(p), st.Rows(p), "part %d: rows counted while streaming", p)
	}
	assert.Equal(t, [3]int{5000, 700, 0}, [3]int{st.Rows(Train), st.Rows(Valid), st.Rows(Test)})
	for f := range mem.Vocabs.Fields {
		if !equal(mem.Vocabs.Fields[f].Tokens, st.Vocabs.Fields[f].Tokens) {
			t.Errorf("field %d vocab differs", f)
		}
	}
	if fmt.Sprint(mem.Stats) != fmt.Sprint(st.Stats) {
		t.Errorf("stats differ:\n%v\n%v", mem.Stats, st.Stats)
	}
	o := BatchOptions{Size: 128, Shuffle: true, Seed: 4}
	src, err := st.Source(Train, o)
	require.NoError(t, err)
	rows, sizes := collect(t, mem.Train, src, 1, 0) // stream ordinals are table rows here
	seen := make([]int, mem.Train.Len())
	for _, r := range rows {
		seen[r]++
	}
	for r, n := range seen {
		if n != 1 {
			t.Fatalf("row %d seen %d times", r, n)
		}
	}
	if len(sizes) != src.NumBatches() || rows[0] == 0 && rows[1] == 1 {
		t.Errorf("%d batches of %d; first rows %v", len(sizes), src.NumBatches(), rows[:4])
	}
	again, _ := collect(t, mem.Train, src, 1, 0)
	resumed, _ := collect(t, mem.Train, src, 1, 7)
	other, _ := collect(t, mem.Train, src, 2, 0)
	if !equal(rows, again) || !equal(resumed, rows[7*128:]) || equal(rows, other) {
		t.Error("stream is not deterministic per (seed, epoch) or does not resume")
	}
	vsrc, _ := st.Source(Valid, BatchOptions{Size: 100})
	vrows, _ := collect(t, mem.Valid, vsrc, 0, 0)
	if len(vrows) != 700 || vrows[699] != 699 {
		t.Errorf("valid: %d rows", len(vrows))
	}
}

func TestStreamHashSplit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.csv")
	writeSyntheticCSV(t, p, 4000, 3)
	cfg := syntheticCSVConfig(p)
	// Tiny blocks leave most blocks without a valid or test row; none of
	// their rows may leak into those parts.
	for _, block := range []int{1000, 3} {
		cfg.Stream = StreamConfig{Enabled: true, BlockRows: block}
		sp, err := Load(cfg)
		require.NoError(t, err)
		total := 0
		for part := range 3 {
			src, _ := sp.Source(Part(part), BatchOptions{Size: 256})
			it := src.Epoch(0, 0)
			n := 0
			for b, ok := it.Next(); ok; b, ok = it.Next() {
				n += b.Size
				it.Release(b)
			}
			it.Close()
			if n != sp.stream.rows[part] {
				t.Errorf("block %d, part %d: %d rows streamed, %d counted", block, part, n, sp.stream.rows[part])
			}
			total += n
		}
		if total != 4000 || !near(float64(sp.stream.rows[Train])/4000, 0.8, 0.03) {
			t.Errorf("block %d: rows %v", block, sp.stream.rows)
		}
	}
}
