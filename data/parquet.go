package data

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	pq "github.com/msrtrain/msrtrain/data/parquet"
)

// Parquet (format parquet) is read with the CSV column map, by name or by
// position among the file's columns followed by its partition columns.
// Only the mapped columns are decoded. Row groups are decoded on
// GOMAXPROCS goroutines, a few ahead of the one being appended, so memory
// is bounded by a few row groups whatever the file's size; appending in
// file order keeps the rows, and so the dictionaries' codes, in the order
// a one-goroutine read would give.

// readParquet reads Parquet files, directories and glob patterns with the
// config's columns.
func readParquet(cfg *Config, paths []string, predict bool) (*Raw, error) {
	parts, err := pq.Expand(paths)
	if err != nil {
		return nil, err
	}
	raw := newRawFor(&cfg.Columns)
	total := 0
	for _, part := range parts {
		o := cfg.parquetOptions()
		o.optionalLabels = predict
		n, err := readParquetPart(raw, part, &cfg.Columns, o)
		if err != nil {
			return nil, err
		}
		total += n
	}
	if total == 0 {
		return nil, &RowError{File: strings.Join(paths, ", "), Err: ErrEmptyFile}
	}
	return raw, nil
}

func (c *Config) parquetOptions() readOptions {
	return readOptions{skipBad: c.SkipBadRows, maxRows: c.MaxRows}
}

// readParquetPart appends the rows of one file to raw. A file without rows
// is allowed (Spark writes empty part files); one whose rows are all bad
// is an error.
func readParquetPart(raw *Raw, part pq.Part, cols *Columns, o readOptions) (int, error) {
	r, err := openParquet(part, cols, o)
	if err != nil {
		return 0, err
	}
	defer r.close()
	return readWhole(r, raw, o.maxRows)
}

// parquetReader reads the rows of one Parquet file into a Raw, in blocks
// if asked (for streaming), like csvReader.
type parquetReader struct {
	f       *pq.File
	spec    *csvSpec // positions: the file's columns, then its partitions
	names   []string // of those positions
	consts  []string // partition values, at positions len(f.Columns)+k
	o       readOptions
	raw     *Raw
	fileIdx uint16

	groups *ordered[*parquetGroup]
	cur    *parquetGroup
	pos    int // next row of cur
	bad    int // rows skipped so far
}

// openParquet reads a file's footer and resolves the columns. A damaged
// footer, a missing column or a column of the wrong type is an error
// naming the file and the column.
func openParquet(part pq.Part, cols *Columns, o readOptions) (*parquetReader, error) {
	f, err := pq.Open(part.Path)
	if err != nil {
		if errors.Is(err, pq.ErrCorrupt) {
			return nil, &RowError{File: part.Path, Place: "footer", Err: err}
		}
		return nil, err
	}
	r := &parquetReader{f: f, o: o}
	for _, c := range f.Columns {
		r.names = append(r.names, c.Name)
	}
	for _, p := range part.Partitions {
		if f.Column(p.Key) < 0 { // a column of the file wins over its directory
			r.names = append(r.names, p.Key)
			r.consts = append(r.consts, p.Value)
		}
	}
	spec, err := resolve(cols, r.names, len(r.names), part.Path, o)
	if err == nil {
		err = r.checkTypes(spec)
	}
	if err != nil {
		f.Close()
		var re *RowError
		if errors.As(err, &re) {
			re.Line, re.Place = 0, "schema"
		}
		return nil, err
	}
	r.spec = spec
	return r, nil
}

// column is the file column at position i, nil for a partition.
func (r *parquetReader) column(i int) *pq.Column {
	if i < len(r.f.Columns) {
		return &r.f.Columns[i]
	}
	return nil
}

// checkTypes refuses columns whose type does not fit their role: numbers
// and labels need numbers, nothing reads nested columns.
func (r *parquetReader) checkTypes(s *csvSpec) error {
	check := func(i int, role string, numbers bool) error {
		if i < 0 || r.column(i) == nil {
			return nil
		}
		c := r.column(i)
		if c.Kind == pq.Other || (numbers && c.Kind == pq.Text) {
			want := "text or numbers"
			if numbers {
				want = "numbers"
			}
			return &RowError{File: r.f.Path, Column: c.Name, Err: fmt.Errorf("%w: %s, but a %s needs %s", ErrColumnType, c.Type, role, want)}
		}
		return nil
	}
	roles := []struct {
		at      []int
		role    string
		numbers bool
	}{
		{[]int{s.scenario}, "scenario", false}, {s.cat, "categorical column", false}, {s.num, "numeric column", true},
		{s.labels, "label", true}, {[]int{s.time}, "time", false}, {[]int{s.title, s.category}, "text column", false},
	}
	for _, x := range roles {
		for _, i := range x.at {
			if err := check(i, x.role, x.numbers); err != nil {
				return err
			}
		}
	}
	return nil
}

// into directs the following rows to raw.
func (r *parquetReader) into(raw *Raw) error {
	if len(r.spec.labels) == 0 && len(raw.Labels) > 0 {
		if raw.Len() > 0 {
			return &RowError{File: r.f.Path, Place: "schema", Column: raw.Labels[0].Name, Err: ErrMissingColumn}
		}
		raw.Labels = nil
	}
	r.raw = raw
	r.fileIdx = raw.addRowFile(r.f.Path)
	return nil
}

// read appends up to limit rows (all when limit <= 0) and returns how many;
// 0 means the file is done.
func (r *parquetReader) read(limit int) (int, error) {
	if r.groups == nil {
		workers := runtime.GOMAXPROCS(0)
		r.groups = startOrdered(r.f.NumRowGroups(), workers+1, r.decode)
		if limit <= 0 { // a whole read: the file says how many rows come
			rows := 0
			for g := range r.f.NumRowGroups() {
				rows += r.f.RowGroupRows(g)
			}
			r.raw.grow(rows)
		}
	}
	rows := 0
	for limit <= 0 || rows < limit {
		if r.cur == nil || r.pos == r.cur.rows {
			g, err, ok := r.groups.next()
			if err != nil {
				return rows, err
			}
			if !ok {
				break
			}
			r.cur, r.pos = g, 0
			continue
		}
		end := r.cur.rows
		if limit > 0 {
			end = min(end, r.pos+limit-rows)
		}
		n, err := r.appendRows(end)
		rows += n
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// emptyErr allows a file without rows (Spark writes empty part files),
// not one whose rows were all bad.
func (r *parquetReader) emptyErr() error {
	if r.bad == 0 {
		return nil
	}
	return &RowError{File: r.f.Path, Err: fmt.Errorf("%w (%d bad rows skipped)", ErrEmptyFile, r.bad)}
}

func (r *parquetReader) close() {
	if r.groups != nil {
		r.groups.close()
	}
	r.f.Close()
}

// parquetGroup is one row group, decoded, converted and checked by a
// worker: what is left is appending its rows.
type parquetGroup struct {
	index, first, rows int // first: rows of the file before it
	scen               textColumn
	cat                []textColumn
	num, lab           [][]float32
	time               []int64
	title, category    textColumn
	bad                []badRow // by row, ascending
}

// badRow is the first error found in a row.
type badRow struct {
	row int
	err *RowError
}

// textColumn is a decoded text column: codes into its distinct values
// (code 0 is the empty value), mapped to a Raw's dictionary as rows are
// appended. A partition's column has no codes: every row holds dict[1].
type textColumn struct {
	codes  []int32
	dict   []string
	global []int32 // code -> code in dictOf, -1 before its first use
	dictOf *Dict
}

func (t *textColumn) code(i int) int32 {
	if t.codes == nil {
		if len(t.dict) > 1 && t.dict[1] != "" {
			return 1
		}
		return 0
	}
	return t.codes[i]
}

// globalCode is row i's code in d.
func (t *textColumn) globalCode(i int, d *Dict) int32 {
	if t.dict == nil {
		return 0 // an optional column the file lacks: empty
	}
	if t.dictOf != d {
		t.dictOf = d
		t.global = slices.Grow(t.global[:0], len(t.dict))[:len(t.dict)]
		for j := range t.global {
			t.global[j] = -1
		}
	}
	c := t.code(i)
	g := t.global[c]
	if g < 0 {
		g = d.codeString(t.dict[c])
		t.global[c] = g
	}
	return g
}

func (t *textColumn) value(i int) string {
	if t.dict == nil {
		return ""
	}
	return t.dict[t.code(i)]
}

// decode reads and checks row group g (on a worker goroutine).
func (r *parquetReader) decode(g int) (*parquetGroup, error) {
	s := r.spec
	grp := &parquetGroup{index: g, rows: r.f.RowGroupRows(g)}
	for k := range g {
		grp.first += r.f.RowGroupRows(k)
	}
	d := groupDecoder{r: r, g: grp, badAt: map[int]*RowError{}}
	var err error
	if s.scenario >= 0 {
		grp.scen, err = d.text(s.scenario)
	} else {
		grp.scen = textColumn{dict: []string{"", r.o.scenarioConst}}
	}
	if err != nil {
		return nil, err
	}
	for i := 0; i < grp.rows && s.scenario >= 0; i++ {
		if grp.scen.code(i) == 0 || grp.scen.value(i) == "" {
			d.fail(i, s.scenario, "", fmt.Errorf("%w: empty scenario", ErrMissingColumn))
		}
	}
	grp.cat = make([]textColumn, len(s.cat))
	for j, c := range s.cat {
		if c >= 0 {
			if grp.cat[j], err = d.text(c); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range s.num {
		v, err := d.numbers(c, parseFloat, func(x float64) (float32, error) {
			if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
				return 0, ErrNumber
			}
			return float32(x), nil
		})
		if err != nil {
			return nil, err
		}
		grp.num = append(grp.num, v)
	}
	for j, c := range s.labels {
		th := s.thresholds[j]
		v, err := d.numbers(c, func(b []byte) (float32, error) { return parseLabel(b, th) }, func(x float64) (float32, error) {
			return labelValue(x, th)
		})
		if err != nil {
			return nil, err
		}
		grp.lab = append(grp.lab, v)
	}
	if s.time >= 0 {
		if grp.time, err = d.times(s.time); err != nil {
			return nil, err
		}
	}
	if s.title >= 0 {
		if grp.title, err = d.text(s.title); err != nil {
			return nil, err
		}
	}
	if s.category >= 0 {
		if grp.category, err = d.text(s.category); err != nil {
			return nil, err
		}
	}
	for row, e := range d.badAt {
		grp.bad = append(grp.bad, badRow{row, e})
	}
	slices.SortFunc(grp.bad, func(a, b badRow) int { return a.row - b.row })
	return grp, nil
}

// groupDecoder decodes the columns of one row group and collects each
// row's first error.
type groupDecoder struct {
	r     *parquetReader
	g     *parquetGroup
	badAt map[int]*RowError
	chunk pq.Chunk
}

// errAt is a RowError for row i of the group in column position c.
func (d *groupDecoder) errAt(i, c int, value string, err error) *RowError {
	return &RowError{File: d.r.f.Path, Place: fmt.Sprintf("row group %d, row %d", d.g.index, d.g.first+i+1),
		Column: d.r.names[c], Value: value, Err: err}
}

func (d *groupDecoder) fail(i, c int, value string, err error) {
	if _, seen := d.badAt[i]; !seen {
		d.badAt[i] = d.errAt(i, c, value, err)
	}
}

// chunkErr names the row group and column of a decoding error.
func (d *groupDecoder) chunkErr(c int, err error) error {
	return &RowError{File: d.r.f.Path, Place: fmt.Sprintf("row group %d", d.g.index), Column: d.r.names[c], Err: err}
}

// text reads the column at position c as text.
func (d *groupDecoder) text(c int) (textColumn, error) {
	col := d.r.column(c)
	if col == nil {
		return textColumn{dict: []string{"", d.r.consts[c-len(d.r.f.Columns)]}}, nil
	}
	ch := &d.chunk
	if err := d.r.f.ReadText(d.g.index, c, ch); err != nil {
		return textColumn{}, d.chunkErr(c, err)
	}
	if ch.Rows != d.g.rows {
		return textColumn{}, d.chunkErr(c, fmt.Errorf("%w: %d values for %d rows", pq.ErrCorrupt, ch.Rows, d.g.rows))
	}
	t := textColumn{codes: ch.Codes, dict: ch.Dict}
	ch.Codes, ch.Dict = nil, nil // kept by t; the chunk's other buffers are reused
	return t, nil
}

// numbers reads the column at position c as float32 through conv (text,
// from a partition directory, through parse); a null is parsed as an
// empty CSV cell is.
func (d *groupDecoder) numbers(c int, parse func([]byte) (float32, error), conv func(float64) (float32, error)) ([]float32, error) {
	out := make([]float32, d.g.rows)
	col := d.r.column(c)
	if col == nil {
		s := d.r.consts[c-len(d.r.f.Columns)]
		v, err := parse([]byte(s))
		for i := range out {
			out[i] = v
			if err != nil {
				d.fail(i, c, s, err)
			}
		}
		return out, nil
	}
	ch, err := d.numberChunk(c)
	if err != nil {
		return nil, err
	}
	_, nullErr := parse(nil)
	for i, x := range ch.Values {
		if ch.Null != nil && ch.Null[i] {
			d.fail(i, c, "", nullErr)
			continue
		}
		v, err := conv(x)
		if err != nil {
			d.fail(i, c, formatNumber(x), err)
		}
		out[i] = v
	}
	return out, nil
}

func formatNumber(x float64) string { return fmt.Sprint(x) }

// numberChunk reads the number column at position c of the row group into
// the decoder's reused chunk, which must hold a value (or a null) per row.
func (d *groupDecoder) numberChunk(c int) (*pq.Chunk, error) {
	ch := &d.chunk
	if err := d.r.f.ReadNumbers(d.g.index, c, ch); err != nil {
		return nil, d.chunkErr(c, err)
	}
	if ch.Rows != d.g.rows {
		return nil, d.chunkErr(c, fmt.Errorf("%w: %d values for %d rows", pq.ErrCorrupt, ch.Rows, d.g.rows))
	}
	return ch, nil
}

// times reads the time column at position c as Unix seconds (timestamps
// and dates converted; integers as they are; text parsed as in CSV).
func (d *groupDecoder) times(c int) ([]int64, error) {
	out := make([]int64, d.g.rows)
	col := d.r.column(c)
	if col == nil || col.Kind == pq.Text {
		t, err := d.text(c)
		if err != nil {
			return nil, err
		}
		parsed := make([]int64, len(t.dict))
		errs := make([]error, len(t.dict))
		for k, s := range t.dict {
			parsed[k], errs[k] = parseTime([]byte(s))
		}
		for i := range out {
			k := t.code(i)
			if errs[k] != nil {
				d.fail(i, c, t.dict[k], errs[k])
			}
			out[i] = parsed[k]
		}
		return out, nil
	}
	ch, err := d.numberChunk(c)
	if err != nil {
		return nil, err
	}
	_, nullErr := parseTime(nil)
	for i := range out {
		if ch.Null != nil && ch.Null[i] {
			d.fail(i, c, "", nullErr)
			continue
		}
		switch u := col.UnitsPerSecond; {
		case ch.Ints == nil: // floats, truncated as in CSV
			out[i] = int64(ch.Values[i])
		case u > 0:
			out[i] = floorDiv(ch.Ints[i], u)
		case u < 0:
			out[i] = ch.Ints[i] * -u
		default:
			out[i] = ch.Ints[i]
		}
	}
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// appendRows appends rows pos..end-1 of the current group (bad ones
// skipped, or the first one returned) and returns how many it appended.
func (r *parquetReader) appendRows(end int) (int, error) {
	g, raw := r.cur, r.raw
	take := make([]int, 0, end-r.pos)
	bi, _ := slices.BinarySearchFunc(g.bad, r.pos, func(b badRow, row int) int { return b.row - row })
	for i := r.pos; i < end; i++ {
		if bi < len(g.bad) && g.bad[bi].row == i {
			if !r.o.skipBad {
				r.pos = i
				n := r.appendTaken(take)
				return n, g.bad[bi].err
			}
			raw.Skipped.add(g.bad[bi].err)
			r.bad++
			bi++
			continue
		}
		take = append(take, i)
	}
	r.pos = end
	return r.appendTaken(take), nil
}

// appendTaken appends the given rows of the current group to raw.
func (r *parquetReader) appendTaken(take []int) int {
	g, raw := r.cur, r.raw
	// Each categorical column interns into its own dictionary: one
	// goroutine per column (the item ids' is the longest part of a read).
	var wg sync.WaitGroup
	for j := range g.cat {
		col := raw.Cat[j]
		wg.Go(func() {
			for _, i := range take {
				col.Codes = append(col.Codes, g.cat[j].globalCode(i, col.Dict))
			}
		})
	}
	for _, i := range take {
		raw.Scenario.Codes = append(raw.Scenario.Codes, g.scen.globalCode(i, raw.Scenario.Dict))
	}
	for j, vals := range g.num {
		col := raw.Num[j]
		for _, i := range take {
			col.Values = append(col.Values, vals[i])
		}
	}
	for j, vals := range g.lab {
		col := raw.Labels[j]
		for _, i := range take {
			col.Values = append(col.Values, vals[i])
		}
	}
	if raw.Time != nil {
		for _, i := range take {
			var t int64
			if g.time != nil {
				t = g.time[i]
			}
			raw.Time = append(raw.Time, t)
		}
	}
	for _, i := range take {
		raw.File = append(raw.File, r.fileIdx)
		raw.Line = append(raw.Line, int32(g.first+i+1))
	}
	wg.Wait()
	if g.title.dict != nil || g.category.dict != nil {
		items := raw.Cat[1]
		for k, i := range take {
			item := items.Dict.Strings[items.Codes[len(items.Codes)-len(take)+k]]
			if _, ok := raw.Text.Items[item]; !ok {
				raw.Text.Items[item] = ItemText{Title: g.title.value(i), Category: g.category.value(i)}
			}
		}
	}
	return len(take)
}
