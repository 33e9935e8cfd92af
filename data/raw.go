package data

import (
	"fmt"
	"slices"
	"strconv"
)

// Dict interns the distinct raw strings of one column. Code 0 is always the
// empty string (a missing value), which every vocabulary maps to index 0.
type Dict struct {
	Strings []string
	index   map[string]int32
}

func newDict() *Dict {
	return &Dict{Strings: []string{""}, index: map[string]int32{"": 0}}
}

// code interns b; the map lookup with string(b) does not allocate.
func (d *Dict) code(b []byte) int32 {
	if d.index == nil {
		d.reindex()
	}
	if c, ok := d.index[string(b)]; ok {
		return c
	}
	return d.add(string(b))
}

func (d *Dict) codeString(s string) int32 {
	if d.index == nil {
		d.reindex()
	}
	if c, ok := d.index[s]; ok {
		return c
	}
	return d.add(s)
}

// seal drops the map from strings to codes once a read is done: it is as
// large again as the strings and only interning needs it (a later intern
// rebuilds it).
func (d *Dict) seal() { d.index = nil }

func (d *Dict) reindex() {
	d.index = make(map[string]int32, len(d.Strings))
	for c, s := range d.Strings {
		d.index[s] = int32(c)
	}
}

func (d *Dict) add(s string) int32 {
	c := int32(len(d.Strings))
	d.Strings = append(d.Strings, s)
	d.index[s] = c
	return c
}

// CatColumn is one categorical column of a Raw: a code per row into Dict.
type CatColumn struct {
	Name  string
	Dict  *Dict
	Codes []int32
}

// NumColumn is one numeric or label column of a Raw.
type NumColumn struct {
	Name   string
	Values []float32
}

// Raw is data as read, before vocabularies: categorical values interned per
// column, column-major so that readers can join feature tables cheaply.
// Every row remembers the file and line it came from, so that errors found
// later (an unknown scenario in eval data) still name them.
type Raw struct {
	Scenario CatColumn
	Cat      []*CatColumn // Cat[0] user, Cat[1] item
	Num      []*NumColumn
	Labels   []*NumColumn
	Time     []int64 // nil when the data has no timestamps

	Files []string // files read, indexed by FileIdx
	File  []uint16 // per row, index into Files
	Line  []int32  // per row, 1-based line in its file (row, for files of rowFiles)
	// rowFiles marks the files (by index) whose rows are counted, not
	// their lines (Parquet).
	rowFiles []bool

	// Descriptions of scenarios known to the reader, by name.
	Descriptions map[string]string
	Text         *Text
	Skipped      BadRows
}

// newRaw makes an empty Raw with the given field names.
func newRaw(cat, num, labels []string, withTime bool) *Raw {
	r := &Raw{
		Scenario:     CatColumn{Name: "scenario", Dict: newDict()},
		Descriptions: map[string]string{},
		Text:         newText(),
	}
	for _, n := range cat {
		r.Cat = append(r.Cat, &CatColumn{Name: n, Dict: newDict()})
	}
	for _, n := range num {
		r.Num = append(r.Num, &NumColumn{Name: n})
	}
	for _, n := range labels {
		r.Labels = append(r.Labels, &NumColumn{Name: n})
	}
	if withTime {
		r.Time = []int64{}
	}
	return r
}

// NewRawFor makes an empty Raw with the categorical and numeric fields of
// s and no labels, for rows that come from elsewhere than a file (a
// server's requests, added with AppendValues); source names them in errors.
func NewRawFor(s *Schema, source string) *Raw {
	r := newRaw(s.Categorical, s.Numeric, nil, false)
	r.addFile(source)
	return r
}

// AppendValues adds a row of raw values as a delimited file holds them:
// the scenario name, then the categorical values and the numeric values,
// each in the order of the Raw's fields. An empty categorical value is a
// missing one. Rows are numbered from 1 as lines of the Raw's first
// source; a bad value (an empty scenario, a numeric value that is not a
// finite number) is a *RowError naming the row and field, and adds nothing.
func (r *Raw) AppendValues(scenario string, cat, num []string) error {
	if len(cat) != len(r.Cat) || len(num) != len(r.Num) {
		return fmt.Errorf("%s: %d categorical and %d numeric values for %d and %d fields", rawName(r), len(cat), len(num), len(r.Cat), len(r.Num))
	}
	line := r.Len() + 1
	if scenario == "" {
		return &RowError{File: rawName(r), Line: line, Column: r.Scenario.Name, Err: fmt.Errorf("%w: empty scenario", ErrMissingColumn)}
	}
	nums := make([]float32, len(num))
	for j, v := range num {
		f, err := parseFloat([]byte(v))
		if err != nil {
			return &RowError{File: rawName(r), Line: line, Column: r.Num[j].Name, Value: v, Err: err}
		}
		nums[j] = f
	}
	codes := make([]int32, len(cat))
	for j, v := range cat {
		codes[j] = r.Cat[j].Dict.codeString(v)
	}
	r.appendRow(0, line, r.Scenario.Dict.codeString(scenario), codes, nums, nil, 0)
	return nil
}

// Len is the number of rows.
func (r *Raw) Len() int {
	if len(r.Cat) > 0 { // the user codes outlive compact
		return len(r.Cat[0].Codes)
	}
	return len(r.Scenario.Codes)
}

// compact frees what encoded tables copied out of a Raw read for them:
// their rows keep of it only the user and item codes (raw ids for
// statistics, histories and prompts), the dictionaries and the text.
func (r *Raw) compact() {
	r.Scenario.Codes = nil
	for _, c := range r.Cat[min(2, len(r.Cat)):] {
		c.Codes = nil
	}
	for _, c := range append(slices.Clone(r.Num), r.Labels...) {
		c.Values = nil
	}
	r.Time, r.File, r.Line = nil, nil, nil
}

// grow makes room for n more rows, so that a read whose size is known
// (Parquet's row counts, an estimate for CSV) does not copy its columns
// as they grow.
func (r *Raw) grow(n int) {
	if n <= 0 {
		return
	}
	r.Scenario.Codes = slices.Grow(r.Scenario.Codes, n)
	for _, c := range r.Cat {
		c.Codes = slices.Grow(c.Codes, n)
	}
	for _, c := range append(slices.Clone(r.Num), r.Labels...) {
		c.Values = slices.Grow(c.Values, n)
	}
	if r.Time != nil {
		r.Time = slices.Grow(r.Time, n)
	}
	r.File, r.Line = slices.Grow(r.File, n), slices.Grow(r.Line, n)
}

// seal seals the dictionaries of a Raw that is read completely.
func (r *Raw) seal() {
	r.Scenario.Dict.seal()
	for _, c := range r.Cat {
		c.Dict.seal()
	}
}

// addFile registers a source file and returns its index.
func (r *Raw) addFile(name string) uint16 {
	r.Files = append(r.Files, name)
	r.rowFiles = append(r.rowFiles, false)
	return uint16(len(r.Files) - 1)
}

// addRowFile registers a source file whose rows are counted by Line.
func (r *Raw) addRowFile(name string) uint16 {
	i := r.addFile(name)
	r.rowFiles[i] = true
	return i
}

// appendRow adds one row; cat, num and lab are in field order.
func (r *Raw) appendRow(file uint16, line int, scen int32, cat []int32, num, lab []float32, t int64) {
	r.Scenario.Codes = append(r.Scenario.Codes, scen)
	for j, c := range cat {
		r.Cat[j].Codes = append(r.Cat[j].Codes, c)
	}
	for j, v := range num {
		r.Num[j].Values = append(r.Num[j].Values, v)
	}
	for j, v := range lab {
		r.Labels[j].Values = append(r.Labels[j].Values, v)
	}
	if r.Time != nil {
		r.Time = append(r.Time, t)
	}
	r.File = append(r.File, file)
	r.Line = append(r.Line, int32(line))
}

// errAt is a RowError for row i naming its file and line (or row).
func (r *Raw) errAt(i int, column, value string, err error) *RowError {
	e := &RowError{File: r.Files[r.File[i]], Line: int(r.Line[i]), Column: column, Value: value, Err: err}
	if f := r.File[i]; int(f) < len(r.rowFiles) && r.rowFiles[f] {
		e.Line, e.Place = 0, "row "+itoa(int64(r.Line[i]))
	}
	return e
}

// catNames, numNames and labelNames list the field names.
func (r *Raw) catNames() []string   { return catColNames(r.Cat) }
func (r *Raw) numNames() []string   { return numColNames(r.Num) }
func (r *Raw) labelNames() []string { return numColNames(r.Labels) }

func catColNames(cs []*CatColumn) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func numColNames(cs []*NumColumn) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// joinCat adds categorical columns looked up by the value of column key:
// feats maps a key to the values of the new columns (missing keys give "").
// It is how readers attach user and item feature tables.
func (r *Raw) joinCat(key int, names []string, feats map[string][]string) {
	kc := r.Cat[key]
	cols := make([]*CatColumn, len(names))
	perKey := make([][]int32, len(names)) // key code -> new code
	for j, n := range names {
		cols[j] = &CatColumn{Name: n, Dict: newDict(), Codes: make([]int32, r.Len())}
		perKey[j] = make([]int32, len(kc.Dict.Strings))
	}
	for code, k := range kc.Dict.Strings {
		if vals, ok := feats[k]; ok {
			for j := range names {
				perKey[j][code] = cols[j].Dict.codeString(vals[j])
			}
		}
	}
	for i, code := range kc.Codes {
		for j := range names {
			cols[j].Codes[i] = perKey[j][code]
		}
	}
	r.Cat = append(r.Cat, cols...)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
