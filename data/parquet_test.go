package data

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// asParquet is cfg reading path as Parquet with the same columns.
func asParquet(cfg Config, path string) Config {
	cfg.Format, cfg.Path, cfg.Files = FormatParquet, path, nil
	return cfg
}

// requireSameSplits checks that two loads encoded the same rows alike.
func requireSameSplits(t *testing.T, want, got *Splits) {
	t.Helper()
	for f := range want.Vocabs.Fields {
		require.Equal(t, want.Vocabs.Fields[f].Tokens, got.Vocabs.Fields[f].Tokens, "vocabulary of field %d", f)
	}
	require.Equal(t, want.Vocabs.Scenarios, got.Vocabs.Scenarios)
	for p, pair := range [][2]*Table{{want.Train, got.Train}, {want.Valid, got.Valid}, {want.Test, got.Test}} {
		w, g := pair[0], pair[1]
		require.Equal(t, w.Len(), g.Len(), "%s rows", Part(p))
		require.Equal(t, w.Scenario, g.Scenario, "%s scenarios", Part(p))
		require.Equal(t, w.Cat, g.Cat, "%s categorical", Part(p))
		require.Equal(t, w.Num, g.Num, "%s numeric", Part(p))
		require.Equal(t, w.Label, g.Label, "%s labels", Part(p))
		require.Equal(t, w.Time, g.Time, "%s time", Part(p))
	}
	require.Equal(t, fmt.Sprint(want.Stats), fmt.Sprint(got.Stats))
}

func TestParquetReadsAsCSV(t *testing.T) {
	fx := parquetFixtures(t)
	csvSynth, err := Load(fx.synth)
	require.NoError(t, err)
	csvIDs, err := Load(fx.ids)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		csv  *Splits
		cfg  Config
		path string
	}{
		{"snappy, dictionary", csvSynth, fx.synth, "synth_snappy.parquet"},
		{"zstd", csvSynth, fx.synth, "synth_zstd.parquet"},
		{"plain encoding", csvSynth, fx.synth, "synth_plain.parquet"},
		{"format v2 (delta encodings)", csvSynth, fx.synth, "synth_v2.parquet"},
		{"spark directory", csvSynth, fx.synth, "spark"},
		{"glob", csvSynth, fx.synth, "spark/part-*.parquet"},
		{"integer ids, nulls, timestamps", csvIDs, fx.ids, "ids.parquet"},
		{"integer ids, zstd, v2", csvIDs, fx.ids, "ids_zstd_v2.parquet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Load(asParquet(c.cfg, fx.at(c.path)))
			require.NoError(t, err)
			requireSameSplits(t, c.csv, got)
		})
	}
	// The fixtures hold what the cases claim: dictionary-encoded text and
	// plain text, nulls and several row groups.
	assert.True(t, firstPageHasDictionary(t, fx.at("synth_snappy.parquet")), "synth_snappy.parquet")
	assert.False(t, firstPageHasDictionary(t, fx.at("synth_plain.parquet")), "synth_plain.parquet")
	raw, err := ReadFile(asParquet(fx.ids, ""), fx.at("ids.parquet"))
	require.NoError(t, err)
	assert.Contains(t, column(raw, 2), "", "a null city reads as the empty value")
	assert.Greater(t, raw.Line[raw.Len()-1], int32(4096), "rows are numbered across row groups")
}

// firstPageHasDictionary reports whether the first page of a file's first
// column (text) refers to a dictionary, as the readers' dictionary path
// expects, or holds its values plain.
func firstPageHasDictionary(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	pages := pf.RowGroups()[0].ColumnChunks()[0].Pages()
	defer pages.Close()
	p, err := pages.ReadPage()
	require.NoError(t, err)
	defer parquet.Release(p)
	return p.Dictionary() != nil
}

// rowKeys renders every row of raw, sorted: the rows as a multiset.
func rowKeys(raw *Raw) []string {
	out := make([]string, raw.Len())
	for i := range out {
		k := []string{raw.Scenario.Dict.Strings[raw.Scenario.Codes[i]]}
		for _, c := range raw.Cat {
			k = append(k, c.Dict.Strings[c.Codes[i]])
		}
		for _, c := range append(slices.Clone(raw.Num), raw.Labels...) {
			k = append(k, fmt.Sprint(c.Values[i]))
		}
		k = append(k, fmt.Sprint(raw.Time[i]))
		out[i] = strings.Join(k, "|")
	}
	slices.Sort(out)
	return out
}

func TestParquetHivePartitions(t *testing.T) {
	fx := parquetFixtures(t)
	want, err := ReadFile(fx.synth, fx.synthCSV)
	require.NoError(t, err)
	// DuckDB wrote hive/scenario=<name>/data_0.parquet without the column.
	files, err := filepath.Glob(fx.at("hive/scenario=*/*.parquet"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	got, err := ReadFile(asParquet(fx.synth, ""), fx.at("hive"))
	require.NoError(t, err)
	require.Equal(t, rowKeys(want), rowKeys(got))
}

func TestParquetBadRows(t *testing.T) {
	fx := parquetFixtures(t)
	csvCfg := fx.ids
	csvCfg.Path = fx.holesCSV
	pqCfg := asParquet(csvCfg, fx.at("holes.parquet"))

	_, csvErr := Load(csvCfg)
	_, err := Load(pqCfg)
	var csvRow, pqRow *RowError
	require.ErrorAs(t, csvErr, &csvRow)
	require.ErrorAs(t, err, &pqRow)
	assert.ErrorIs(t, err, ErrNumber)
	// The first bad row is the sixth: line 7 of the CSV, row 6 of the file.
	assert.Equal(t, 7, csvRow.Line)
	assert.Equal(t, fx.at("holes.parquet")+`: row group 0, row 6: column "price": value "": not a number`, err.Error())

	csvCfg.SkipBadRows, pqCfg.SkipBadRows = true, true
	want, err := Load(csvCfg)
	require.NoError(t, err)
	got, err := Load(pqCfg)
	require.NoError(t, err)
	requireSameSplits(t, want, got)
	require.Equal(t, want.Skipped.Count, got.Skipped.Count)
	holes := 1 // the label 2
	for i := range 5000 {
		if i%11 == 5 {
			holes++ // an empty price
		}
	}
	assert.Equal(t, holes, got.Skipped.Count)
	var label *RowError
	require.Len(t, got.Skipped.First, maxBadRowsKept, "the first skipped rows are kept in full")
	for _, e := range got.Skipped.First {
		assert.Contains(t, e.Error(), "row group 0, row ")
	}
	_, err = Load(func() Config { c := pqCfg; c.SkipBadRows = false; c.Columns.Numeric = nil; return c }())
	require.ErrorAs(t, err, &label)
	assert.Equal(t, "row group 2, row 4322", label.Place)
	assert.ErrorIs(t, err, ErrLabel)
}

// damage writes a copy of a fixture with bytes changed by f.
func damage(t *testing.T, src string, f func([]byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	require.NoError(t, os.WriteFile(dst, f(bytes.Clone(b)), 0o644))
	return dst
}

func TestParquetBadFiles(t *testing.T) {
	fx := parquetFixtures(t)
	good := fx.at("synth_snappy.parquet")
	footerLen := func(b []byte) int {
		n := len(b)
		return int(b[n-8]) | int(b[n-7])<<8 | int(b[n-6])<<16 | int(b[n-5])<<24
	}
	truncated := damage(t, good, func(b []byte) []byte { return b[:len(b)/2] })
	footer := damage(t, good, func(b []byte) []byte {
		start := len(b) - 8 - footerLen(b)
		for i := start + 8; i < start+40; i++ {
			b[i] ^= 0x5a
		}
		return b
	})
	page := damage(t, good, func(b []byte) []byte {
		for i := 40; i < 400; i++ { // the first column chunk's first page
			b[i] ^= 0x5a
		}
		return b
	})
	missing := fx.synth
	missing.Columns.Numeric = append(missing.Columns.Numeric, Col("price"))
	for _, c := range []struct {
		name, path string
		cfg        Config
		sentinel   error
		message    string // the error after the file name
	}{
		{"truncated", truncated, fx.synth, ErrCorrupt, ": footer: not a valid Parquet file"},
		{"corrupt footer", footer, fx.synth, ErrCorrupt, ": footer: not a valid Parquet file"},
		{"damaged page", page, fx.synth, ErrCorrupt, `: row group 0: column "scenario": `},
		{"wrong type", fx.at("wrong_type.parquet"), fx.synth, ErrColumnType,
			`: schema: column "click": wrong column type: BYTE_ARRAY (STRING), but a label needs numbers`},
		{"missing column", good, missing, ErrMissingColumn,
			`: schema: column "price": required column missing (numeric); the file's columns are "scenario", "user_id", "item_id",`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(asParquet(c.cfg, c.path))
			require.Error(t, err)
			assert.ErrorIs(t, err, c.sentinel)
			var re *RowError
			require.ErrorAs(t, err, &re, "%v", err)
			assert.True(t, strings.HasPrefix(err.Error(), c.path+c.message), "%v", err)
		})
	}
	// A row group that cannot be read stops the read even with
	// skip_bad_rows: its rows cannot be told apart.
	cfg := asParquet(fx.synth, page)
	cfg.SkipBadRows = true
	_, err := Load(cfg)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestParquetStreamMatchesInMemory(t *testing.T) {
	fx := parquetFixtures(t)
	cfg := asParquet(fx.synth, "")
	cfg.Train, cfg.Valid = fx.at("spark"), fx.at("synth_zstd.parquet")
	mem, err := Load(cfg)
	require.NoError(t, err)
	cfg.Stream = StreamConfig{Enabled: true, BlockRows: 700, ShuffleBuffer: 1000} // blocks cut row groups
	st, err := Load(cfg)
	require.NoError(t, err)
	for f := range mem.Vocabs.Fields {
		require.Equal(t, mem.Vocabs.Fields[f].Tokens, st.Vocabs.Fields[f].Tokens, "field %d", f)
	}
	require.Equal(t, fmt.Sprint(mem.Stats), fmt.Sprint(st.Stats))
	for _, c := range []struct {
		part  Part
		table *Table
	}{{Train, mem.Train}, {Valid, mem.Valid}} {
		src, err := st.Source(c.part, BatchOptions{Size: 256, Shuffle: c.part == Train, Seed: 3})
		require.NoError(t, err)
		rows, _ := collect(t, c.table, src, 1, 0) // stream ordinals are table rows here
		slices.Sort(rows)
		require.Len(t, rows, c.table.Len())
		for i, r := range rows {
			require.Equal(t, int64(i), r, "%s: every row once", c.part)
		}
	}
}

func TestParquetWrittenByMsrtrain(t *testing.T) {
	fx := parquetFixtures(t)
	raw, err := ReadFile(fx.synth, fx.synthCSV)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "synth.parquet")
	var b bytes.Buffer
	require.NoError(t, WriteParquet(&b, raw))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	want, err := Load(fx.synth)
	require.NoError(t, err)
	got, err := Load(ParquetConfig(raw, path))
	require.NoError(t, err)
	requireSameSplits(t, want, got)
}

func TestParquetMaxRowsAndPredictFormats(t *testing.T) {
	fx := parquetFixtures(t)
	cfg := asParquet(fx.synth, fx.at("spark"))
	cfg.MaxRows = 3000 // per file: all of the first, 2500 of the second
	raw, err := readFiles(&cfg, cfg.paths(), false)
	require.NoError(t, err)
	assert.Equal(t, 5000, raw.Len())
	cfg.MaxRows = 100
	raw, err = readFiles(&cfg, cfg.paths(), false)
	require.NoError(t, err)
	assert.Equal(t, 200, raw.Len())
	// A model trained on CSV scores Parquet rows, and the other way round.
	fromCSV, err := ReadFile(fx.synth, fx.at("synth_snappy.parquet"))
	require.NoError(t, err)
	fromParquet, err := ReadFile(asParquet(fx.synth, ""), fx.synthCSV)
	require.NoError(t, err)
	require.Equal(t, rowKeys(fromCSV), rowKeys(fromParquet))
	for _, c := range []struct {
		path, flag string
		want       Format
	}{
		{"s.parquet", "", FormatParquet}, {"s.PARQ", "", FormatParquet}, {"s.csv", "", FormatCSV},
		{"-", "", FormatCSV}, {"-", "parquet", FormatParquet}, {"s.parquet", "CSV", FormatCSV},
	} {
		got, err := TableFormat(c.path, c.flag)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%s %s", c.path, c.flag)
	}
	_, err = TableFormat("s.csv", "xml")
	assert.ErrorContains(t, err, "csv or parquet")
}
