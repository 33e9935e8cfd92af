package data

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func csvConfig(path string) Config {
	return Config{Format: "csv", Path: path, Columns: Columns{
		Scenario: Col("scen"), User: Col("user"), Item: Col("item"),
		Categorical: []ColumnRef{Col("city")}, Numeric: []ColumnRef{Col("price")},
		Labels: []ColumnRef{Col("click")}, Time: Col("ts"), ItemTitle: Col("title")}}
}

func TestReadGenericCSV(t *testing.T) {
	p := writeFile(t, "", "d.csv", "scen,user,item,city,price,click,ts,title\r\n"+
		"a,u1,i1,Paris,1.5,1,100,\"Dune, part 1\"\r\n"+
		"\r\n"+
		"b,u2,i2,,2,0,2024-01-02,\"say \"\"hi\"\"\"\r\n"+
		"a,u1,i2,Rome,-3e1,1.0,300,\"two\nlines\"") // no newline at the end
	raw, err := ReadFile(csvConfig(p), p)
	require.NoError(t, err)
	if raw.Len() != 3 {
		t.Fatalf("rows = %d, want 3", raw.Len())
	}
	tests := []struct {
		name      string
		got, want []string
	}{
		{"scenario", scenarios(raw), []string{"a", "b", "a"}},
		{"user", column(raw, 0), []string{"u1", "u2", "u1"}},
		{"item", column(raw, 1), []string{"i1", "i2", "i2"}},
		{"city", column(raw, 2), []string{"Paris", "", "Rome"}},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if !equal(raw.Num[0].Values, []float32{1.5, 2, -30}) || !equal(raw.Labels[0].Values, []float32{1, 0, 1}) {
		t.Errorf("num %v labels %v", raw.Num[0].Values, raw.Labels[0].Values)
	}
	if !equal(raw.Time, []int64{100, 1704153600, 300}) {
		t.Errorf("time = %v", raw.Time)
	}
	if !equal(raw.Line, []int32{2, 4, 5}) {
		t.Errorf("lines = %v, want 2 4 5 (blank line 3 skipped)", raw.Line)
	}
	if got := raw.Text.Items["i1"].Title; got != "Dune, part 1" {
		t.Errorf("title i1 = %q", got)
	}
	if got := raw.Text.Items["i2"].Title; got != `say "hi"` {
		t.Errorf("title i2 = %q (first row of an item wins)", got)
	}
}

func TestReadTSVByPositionNoHeader(t *testing.T) {
	p := writeFile(t, "", "d.tsv", "x\tu1\ti1\t1\tx\nx\tu2\ti3\t0\tx\ny\tu1\ti3\t0\tx\n")
	cfg := Config{Format: "csv", Path: p, Header: new(bool), Columns: Columns{
		Scenario: ColAt(0, "domain"), User: ColAt(1, "uid"), Item: ColAt(2, ""), Labels: []ColumnRef{ColAt(3, "y")}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	s := sp.Vocabs.Schema()
	if !equal(s.Categorical, []string{"uid", "col2"}) || !equal(s.Labels, []string{"y"}) {
		t.Errorf("schema %+v", s)
	}
	if n := sp.Train.Len() + sp.Valid.Len() + sp.Test.Len(); n != 3 {
		t.Errorf("rows = %d", n)
	}
}

// The Ali-CCP sample: 33 columns, two labels, scenario column "301", no
// newline after the last row, given as three split files.
func TestAliCCPFixture(t *testing.T) {
	dir := "testdata/aliccp_sample/"
	cfg := Config{Format: "csv", Train: dir + "ali_ccp_train_sample.csv", Valid: dir + "ali_ccp_val_sample.csv",
		Test: dir + "ali_ccp_test_sample.csv",
		Columns: Columns{Scenario: Col("301"), User: Col("101"), Item: Col("205"),
			Categorical: []ColumnRef{Col("121"), Col("122"), Col("206")},
			Numeric:     []ColumnRef{Col("D109_14"), Col("D853")},
			Labels:      []ColumnRef{Col("click"), Col("purchase")}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	if sp.Train.Len() != 100 || sp.Valid.Len() != 50 || sp.Test.Len() != 50 {
		t.Fatalf("rows %d/%d/%d, want 100/50/50", sp.Train.Len(), sp.Valid.Len(), sp.Test.Len())
	}
	want := []struct {
		rows int
		pos  float64
	}{{69, 6.0 / 69}, {19, 1.0 / 19}, {12, 0}}
	for s, w := range want {
		st := sp.Stats[s]
		if st.Name != []string{"1", "2", "3"}[s] || st.Rows != w.rows || !near(st.PositiveRate, w.pos, 1e-9) {
			t.Errorf("scenario %d: %+v, want rows %d pos %.3f", s, st, w.rows, w.pos)
		}
	}
	if got := sp.Train.Num[0]; !near(float64(got), 0.4734, 1e-6) {
		t.Errorf("first D109_14 = %v", got)
	}
}

// The Alimama sample repeats column names (five behaviour sequences of 50),
// so columns are selected by position.
func TestAlimamaFixtureByPosition(t *testing.T) {
	cfg := Config{Format: "csv", Path: "testdata/alimama_sample/alimama_sample.csv", Seed: 1,
		Columns: Columns{Scenario: ColAt(265, "pid"), User: ColAt(250, "uid"), Item: ColAt(259, "mid"),
			Categorical: []ColumnRef{ColAt(0, "btag0"), Col("cate_id"), Col("brand")},
			Numeric:     []ColumnRef{Col("price")}, Labels: []ColumnRef{Col("target")}},
		Split: SplitConfig{Ratios: []float64{1, 0, 0}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	got := map[string][2]float64{}
	for _, st := range sp.Stats {
		got[st.Name] = [2]float64{float64(st.Rows), st.PositiveRate}
	}
	if got["0"] != [2]float64{230, 105.0 / 230} || got["1"] != [2]float64{270, 105.0 / 270} {
		t.Errorf("stats %v", got)
	}
	// Selecting a repeated name is an error that says to use a position.
	cfg.Columns.Categorical = []ColumnRef{Col("his_cate")}
	_, err = Load(cfg)
	if err == nil || !strings.Contains(err.Error(), "select categorical by position") || !strings.Contains(err.Error(), "alimama_sample.csv:1") {
		t.Errorf("repeated name: err = %v", err)
	}
}

func TestBadInput(t *testing.T) {
	const header = "scen,user,item,city,price,click,ts,title\n"
	tests := []struct {
		name    string
		content string
		want    error
		msg     string // substring: file:line: column "c": value "v"
	}{
		{"too few columns", header + "a,u,i,c,1,1,5,t\na,u,i,c,1,1\n", ErrColumnCount, `d.csv:3: column "ts": value "a,u,i,c,1,1"`},
		{"too many columns", header + "a,u,i,c,1,1,5,t,extra\n", ErrColumnCount, `d.csv:2: column "#8"`},
		{"non-numeric label", header + "a,u,i,c,1,yes,5,t\n", ErrLabel, `d.csv:2: column "click": value "yes"`},
		{"label not 0/1", header + "a,u,i,c,1,1,5,t\na,u,i,c,1,2,5,t\n", ErrLabel, `d.csv:3: column "click": value "2"`},
		{"non-numeric feature", header + "a,u,i,c,cheap,1,5,t\n", ErrNumber, `d.csv:2: column "price": value "cheap"`},
		{"bad time", header + "a,u,i,c,1,1,noon,t\n", nil, `d.csv:2: column "ts": value "noon"`},
		{"empty file", "", ErrEmptyFile, `d.csv:1: no data rows`},
		{"header only", header, ErrEmptyFile, `d.csv:1: no data rows`},
		{"missing column", "scen,user,item,city,price,ts,title\na,u,i,c,1,5,t\n", ErrMissingColumn, `d.csv:1: column "click": value "": required column missing (label); the file's columns are "scen", "user"`},
		{"invalid UTF-8", header + "a,u,i,Par\xffis,1,1,5,t\n", ErrInvalidUTF8, `d.csv:2: column "city": value "Par\xffis"`},
		{"truncated last line", header + "a,u,i,c,1,1,5,t\na,u,i,c,1", ErrTruncated, `d.csv:3: column "click": value "a,u,i,c,1"`},
		{"unterminated quote", header + "a,u,i,c,1,1,5,\"oops\n", ErrQuote, `d.csv:2: column "title"`},
		{"empty scenario", header + ",u,i,c,1,1,5,t\n", ErrMissingColumn, `d.csv:2: column "scen"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "", "d.csv", tt.content)
			_, err := Load(csvConfig(p))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestUnknownScenarioInEvalData(t *testing.T) {
	dir := t.TempDir()
	train := writeFile(t, dir, "train.csv", "scen,user,item,city,price,click,ts,title\na,u1,i1,c,1,1,5,t\nb,u2,i2,c,1,0,6,t\n")
	eval := writeFile(t, dir, "eval.csv", "scen,user,item,city,price,click,ts,title\na,u1,i1,c,1,1,5,t\nzzz,u9,i1,c,1,1,5,t\n")
	cfg := csvConfig(train)
	cfg.Split.Ratios = []float64{1, 0, 0}
	sp, err := Load(cfg)
	require.NoError(t, err)
	raw, err := ReadFile(cfg, eval)
	require.NoError(t, err)
	_, err = Encode(raw, sp.Vocabs)
	if !errors.Is(err, ErrUnknownScenario) || !strings.Contains(err.Error(), `eval.csv:3: column "scenario": value "zzz"`) {
		t.Errorf("err = %v", err)
	}
}

func TestSkipBadRows(t *testing.T) {
	p := writeFile(t, "", "d.csv", "scen,user,item,city,price,click,ts,title\n"+
		"a,u1,i1,c,1,1,5,t\n"+
		"a,u1,i1,c,1,7,5,t\n"+ // bad label
		"a,u1\n"+ // wrong column count
		"a,u2,i1,c,x,1,5,t\n"+ // bad number
		"a,u2,i1,c\xfe,1,1,5,t\n"+ // invalid UTF-8
		"b,u3,i2,c,1,0,5,t\n")
	cfg := csvConfig(p)
	cfg.SkipBadRows = true
	cfg.Split.Ratios = []float64{1, 0, 0}
	sp, err := Load(cfg)
	require.NoError(t, err)
	if sp.Train.Len() != 2 || sp.Skipped.Count != 4 || len(sp.Skipped.First) != 4 {
		t.Fatalf("rows %d skipped %+v", sp.Train.Len(), sp.Skipped)
	}
	for i, want := range []string{"d.csv:3:", "d.csv:4:", "d.csv:5:", "d.csv:6:"} {
		if !strings.Contains(sp.Skipped.First[i].Error(), want) {
			t.Errorf("skipped[%d] = %v, want %s", i, sp.Skipped.First[i], want)
		}
	}
	if s := sp.Skipped.String(); !strings.HasPrefix(s, "skipped 4 bad row(s)") {
		t.Errorf("summary %q", s)
	}
	// Every row bad is still an error.
	p = writeFile(t, "", "e.csv", "scen,user,item,city,price,click,ts,title\na,u1,i1,c,1,7,5,t\n")
	cfg.Path = p
	if _, err := Load(cfg); !errors.Is(err, ErrEmptyFile) || !strings.Contains(err.Error(), "1 bad rows skipped") {
		t.Errorf("all bad: err = %v", err)
	}
}

func TestLabelThreshold(t *testing.T) {
	three := 3.0
	p := writeFile(t, "", "r.csv", "d,u,i,rating\nx,1,1,5\nx,1,2,3\nx,2,1,4.5\n")
	cfg := Config{Format: "csv", Path: p, Columns: Columns{Scenario: Col("d"), User: Col("u"), Item: Col("i"),
		Labels: []ColumnRef{{Name: "rating", Threshold: &three}}}}
	raw, err := ReadFile(cfg, p)
	require.NoError(t, err)
	if !equal(raw.Labels[0].Values, []float32{1, 0, 1}) {
		t.Errorf("labels %v", raw.Labels[0].Values)
	}
}

func TestPredictFileWithoutLabels(t *testing.T) {
	dir := t.TempDir()
	train := writeFile(t, dir, "t.csv", "d,u,i,y\nx,1,1,1\nx,2,2,0\n")
	pred := writeFile(t, dir, "p.csv", "d,u,i\nx,2,1\nx,3,2\n")
	cfg := Config{Format: "csv", Path: train, Split: SplitConfig{Ratios: []float64{1, 0, 0}},
		Columns: Columns{Scenario: Col("d"), User: Col("u"), Item: Col("i"), Labels: []ColumnRef{Col("y")}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	raw, err := ReadFile(cfg, pred)
	require.NoError(t, err)
	tab, err := Encode(raw, sp.Vocabs)
	require.NoError(t, err)
	u := sp.Vocabs.Fields[0]
	want := []int64{u.Index("2"), sp.Vocabs.Fields[1].Index("1"), 0, sp.Vocabs.Fields[1].Index("2")}
	if !equal(widen(tab.Cat), want) || !equal(tab.Label, []float32{0, 0}) || tab.UserKey(1) != "3" {
		t.Errorf("cat %v want %v labels %v user %q", tab.Cat, want, tab.Label, tab.UserKey(1))
	}
}

// TestAppendValuesEncodesLikeAFile: rows added by value (a server's
// requests) encode exactly as the same rows read from a file, and a bad
// value names its row and field.
func TestAppendValuesEncodesLikeAFile(t *testing.T) {
	dir := t.TempDir()
	train := writeFile(t, dir, "t.csv", "scen,user,item,city,price,click\na,u1,i1,Paris,1,1\nb,u2,i2,Rome,2,0\na,u2,i1,,3,0\n")
	pred := writeFile(t, dir, "p.csv", "scen,user,item,city,price\nb,u1,i2,Paris,0.5\na,u9,i1,,-3e1\n")
	cfg := csvConfig(train)
	cfg.Columns.Time, cfg.Columns.ItemTitle = ColumnRef{}, ColumnRef{}
	cfg.Split = SplitConfig{Ratios: []float64{1, 0, 0}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	fromFile, err := ReadFile(cfg, pred)
	require.NoError(t, err)
	want, err := Encode(fromFile, sp.Vocabs)
	require.NoError(t, err)

	raw := NewRawFor(sp.Vocabs.Schema(), "request")
	require.NoError(t, raw.AppendValues("b", []string{"u1", "i2", "Paris"}, []string{"0.5"}))
	require.NoError(t, raw.AppendValues("a", []string{"u9", "i1", ""}, []string{"-3e1"}))
	got, err := Encode(raw, sp.Vocabs)
	require.NoError(t, err)
	require.Equal(t, want.Scenario, got.Scenario)
	require.Equal(t, want.Cat, got.Cat)
	require.Equal(t, want.Num, got.Num)
	require.Equal(t, want.Label, got.Label)

	var re *RowError
	err = raw.AppendValues("a", []string{"u1", "i1", ""}, []string{"cheap"})
	require.ErrorAs(t, err, &re)
	require.Equal(t, RowError{File: "request", Line: 3, Column: "price", Value: "cheap", Err: ErrNumber}, *re)
	require.ErrorIs(t, raw.AppendValues("", []string{"u1", "i1", ""}, []string{"1"}), ErrMissingColumn)
	require.NoError(t, raw.AppendValues("c", []string{"u1", "i1", ""}, []string{"1"}))
	_, err = Encode(raw, sp.Vocabs)
	require.ErrorAs(t, err, &re)
	require.Equal(t, 3, re.Line, "the unknown scenario is the third row added")
	require.ErrorIs(t, err, ErrUnknownScenario)
}
