package data

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// readOptions are the knobs shared by every delimited-file read.
type readOptions struct {
	delim          byte
	header         bool
	skipBad        bool
	maxRows        int
	scenarioConst  string // every row's scenario, when the file has no column
	optionalLabels bool   // predict data: labels may be absent
	optionalCat    bool   // categorical columns missing from the file are empty
	size           int64  // the file's size when known, to size the columns
}

func (c *Config) readOptions(file string) (readOptions, error) {
	d, err := c.delimiter(file)
	return readOptions{delim: d, header: c.Header == nil || *c.Header, skipBad: c.SkipBadRows, maxRows: c.MaxRows}, err
}

// csvSpec is Columns resolved against one file's header: a position per role.
type csvSpec struct {
	ncol       int
	scenario   int // -1: the constant readOptions.scenarioConst
	cat        []int
	num        []int
	labels     []int
	thresholds []*float64
	time       int // -1: none
	title      int // -1: none
	category   int // -1: none
}

// catRefs lists the categorical columns in schema order: user, item, rest.
func (c *Columns) catRefs() []ColumnRef {
	return append([]ColumnRef{c.User, c.Item}, c.Categorical...)
}

func refFields(refs []ColumnRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Field()
	}
	return out
}

// newRawFor makes an empty Raw with the fields that cols describe.
func newRawFor(cols *Columns) *Raw {
	return newRaw(refFields(cols.catRefs()), refFields(cols.Numeric), refFields(cols.Labels), cols.Time.IsSet())
}

// resolve finds each column of cols in a file with the given header (nil
// when the file has none) and ncol columns.
func resolve(cols *Columns, header []string, ncol int, file string, o readOptions) (*csvSpec, error) {
	find := func(role string, r ColumnRef, required bool) (int, error) {
		if !r.IsSet() {
			if required {
				return -1, &RowError{File: file, Line: 1, Column: role, Err: fmt.Errorf("%w: no column given for %s", ErrMissingColumn, role)}
			}
			return -1, nil
		}
		if r.Index != nil {
			if *r.Index < 0 || *r.Index >= ncol {
				return -1, &RowError{File: file, Line: 1, Column: "#" + strconv.Itoa(*r.Index),
					Err: fmt.Errorf("%w: %s at position %d but the file has %d columns", ErrMissingColumn, role, *r.Index, ncol)}
			}
			return *r.Index, nil
		}
		if header == nil {
			return -1, &RowError{File: file, Line: 1, Column: r.Name, Err: fmt.Errorf("%w: no header: select %s by position", ErrMissingColumn, role)}
		}
		at := -1
		for i, h := range header {
			if h == r.Name {
				if at >= 0 {
					return -1, &RowError{File: file, Line: 1, Column: r.Name,
						Err: fmt.Errorf("column name repeats in the header (positions %d and %d): select %s by position", at, i, role)}
				}
				at = i
			}
		}
		if at < 0 {
			return -1, &RowError{File: file, Line: 1, Column: r.Name,
				Err: fmt.Errorf("%w (%s); the file's columns are %s", ErrMissingColumn, role, quotedList(header))}
		}
		return at, nil
	}
	s := &csvSpec{ncol: ncol}
	var err error
	if s.scenario, err = find("scenario", cols.Scenario, o.scenarioConst == ""); err != nil {
		return nil, err
	}
	for _, r := range cols.catRefs() {
		i, err := find("categorical", r, true)
		if err != nil && o.optionalCat && len(s.cat) >= 2 && errors.Is(err, ErrMissingColumn) {
			i, err = -1, nil
		}
		if err != nil {
			return nil, err
		}
		s.cat = append(s.cat, i)
	}
	for _, r := range cols.Numeric {
		i, err := find("numeric", r, true)
		if err != nil {
			return nil, err
		}
		s.num = append(s.num, i)
	}
	if len(cols.Labels) == 0 && !o.optionalLabels {
		return nil, &RowError{File: file, Line: 1, Column: "label", Err: fmt.Errorf("%w: no label column given", ErrMissingColumn)}
	}
	for _, r := range cols.Labels {
		i, err := find("label", r, true)
		if err != nil {
			if o.optionalLabels && errors.Is(err, ErrMissingColumn) {
				s.labels, s.thresholds = nil, nil
				break
			}
			return nil, err
		}
		s.labels = append(s.labels, i)
		s.thresholds = append(s.thresholds, r.Threshold)
	}
	if s.time, err = find("time", cols.Time, false); err != nil {
		return nil, err
	}
	if s.title, err = find("item_title", cols.ItemTitle, false); err != nil {
		return nil, err
	}
	if s.category, err = find("item_category", cols.ItemCategory, false); err != nil {
		return nil, err
	}
	return s, nil
}

// quotedList lists names for a message: "a", "b", "c".
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// readCSVFile opens file and appends its rows to raw.
func readCSVFile(raw *Raw, file string, cols *Columns, o readOptions) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		o.size = st.Size()
	}
	return readCSV(raw, file, f, cols, o)
}

// readCSV appends the rows of one delimited file to raw, whose fields must
// be those of cols (newRawFor). Bad rows fail the read or, with skipBad, are
// counted in raw.Skipped.
func readCSV(raw *Raw, file string, r io.Reader, cols *Columns, o readOptions) error {
	c, err := openCSV(file, r, cols, o)
	if err != nil {
		return err
	}
	_, err = readWhole(c, raw, o.maxRows)
	return err
}

// csvReader reads the rows of one delimited file into a Raw, in blocks if
// asked (for streaming).
type csvReader struct {
	sc      *scanner
	rp      rowParser
	o       readOptions
	fileIdx uint16
	ok      bool      // a record is waiting in sc
	err     error     // an error is waiting
	bad     int       // rows skipped so far
	closer  io.Closer // the file, when openRows opened it
}

// openCSV reads the header and resolves the columns.
func openCSV(file string, r io.Reader, cols *Columns, o readOptions) (*csvReader, error) {
	sc := newScanner(file, r, o.delim)
	ok, err := sc.scan()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &RowError{File: file, Line: 1, Err: ErrEmptyFile}
	}
	ncol := len(sc.fields)
	var header []string
	if o.header {
		header = make([]string, len(sc.fields))
		for i, f := range sc.fields {
			header[i] = string(f)
		}
		sc.names = header
		ok, err = sc.scan()
	}
	spec, rerr := resolve(cols, header, ncol, file, o)
	if rerr != nil {
		return nil, rerr
	}
	c := &csvReader{sc: sc, o: o, ok: ok, err: err}
	c.rp = rowParser{spec: spec, sc: sc, o: &c.o,
		cat: make([]int32, len(spec.cat)), num: make([]float32, len(spec.num)), lab: make([]float32, len(spec.labels))}
	return c, nil
}

// into directs the following rows to raw.
func (c *csvReader) into(raw *Raw) error {
	if len(c.rp.spec.labels) == 0 && len(raw.Labels) > 0 {
		if raw.Len() > 0 {
			return &RowError{File: c.sc.file, Line: 1, Column: raw.Labels[0].Name, Err: ErrMissingColumn}
		}
		raw.Labels = nil
	}
	c.rp.raw = raw
	c.fileIdx = raw.addFile(c.sc.file)
	return nil
}

// read appends up to limit rows (all when limit <= 0) and returns how many;
// 0 means the file is done.
func (c *csvReader) read(limit int) (int, error) {
	rows := 0
	bad := &c.rp.raw.Skipped
	for ; limit <= 0 || rows < limit; c.ok, c.err = c.sc.scan() {
		if c.err != nil {
			var re *RowError
			if c.o.skipBad && errors.As(c.err, &re) && re.Column != "" {
				bad.add(c.err)
				c.bad++
				continue
			}
			return rows, c.err
		}
		if !c.ok {
			break
		}
		if err := c.rp.parse(); err != nil {
			if !c.o.skipBad {
				return rows, err
			}
			bad.add(err)
			c.bad++
			continue
		}
		c.rp.commit(c.fileIdx)
		rows++
		if rows == sizeAfterRows && limit <= 0 {
			c.growForFile(rows)
		}
	}
	return rows, nil
}

// sizeAfterRows is how many rows growForFile measures the line length on.
const sizeAfterRows = 1 << 14

// growForFile makes room in the Raw for the rows the rest of the file
// holds, estimated from the bytes its first rows took: columns that grow
// by doubling would copy themselves and leave their old copies as garbage.
func (c *csvReader) growForFile(rows int) {
	if c.o.size <= 0 || c.sc.consumed <= 0 {
		return
	}
	left := float64(c.o.size-c.sc.consumed) / float64(c.sc.consumed) * float64(rows)
	if c.o.maxRows > 0 {
		left = min(left, float64(c.o.maxRows-rows))
	}
	c.rp.raw.grow(int(left * 1.02))
}

func (c *csvReader) emptyErr() error {
	return &RowError{File: c.sc.file, Line: max(c.sc.line, 1), Err: fmt.Errorf("%w (%d bad rows skipped)", ErrEmptyFile, c.bad)}
}

// rowParser parses one record into scratch values, so that a bad row leaves
// raw untouched, then commits it.
type rowParser struct {
	raw  *Raw
	spec *csvSpec
	sc   *scanner
	o    *readOptions
	scen int32
	cat  []int32
	num  []float32
	lab  []float32
	time int64
}

func (p *rowParser) parse() error {
	sc, s, raw := p.sc, p.spec, p.raw
	if err := sc.checkCount(s.ncol); err != nil {
		return err
	}
	f := sc.fields
	if s.scenario >= 0 {
		if len(f[s.scenario]) == 0 {
			return sc.errAt(s.scenario, fmt.Errorf("%w: empty scenario", ErrMissingColumn))
		}
		p.scen = raw.Scenario.Dict.code(f[s.scenario])
	} else {
		p.scen = raw.Scenario.Dict.codeString(p.o.scenarioConst)
	}
	for j, c := range s.cat {
		p.cat[j] = 0 // an absent optional column is empty
		if c >= 0 {
			p.cat[j] = raw.Cat[j].Dict.code(f[c])
		}
	}
	for j, c := range s.num {
		v, err := parseFloat(f[c])
		if err != nil {
			return sc.errAt(c, err)
		}
		p.num[j] = v
	}
	for j, c := range s.labels {
		v, err := parseLabel(f[c], s.thresholds[j])
		if err != nil {
			return sc.errAt(c, err)
		}
		p.lab[j] = v
	}
	if s.time >= 0 {
		t, err := parseTime(f[s.time])
		if err != nil {
			return sc.errAt(s.time, err)
		}
		p.time = t
	}
	if s.title >= 0 || s.category >= 0 {
		item := raw.Cat[1].Dict.Strings[p.cat[1]]
		if _, ok := raw.Text.Items[item]; !ok {
			var it ItemText
			if s.title >= 0 {
				it.Title = string(f[s.title])
			}
			if s.category >= 0 {
				it.Category = string(f[s.category])
			}
			raw.Text.Items[item] = it
		}
	}
	return nil
}

func (p *rowParser) commit(file uint16) {
	p.raw.appendRow(file, p.sc.line, p.scen, p.cat, p.num, p.lab, p.time)
}

// parseFloat parses a finite number.
func parseFloat(b []byte) (float32, error) {
	v, err := strconv.ParseFloat(string(b), 32)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, ErrNumber
	}
	return float32(v), nil
}

// parseLabel accepts 0 or 1 (as any number), or with a threshold any
// number, giving 1 when it is above the threshold.
func parseLabel(b []byte, threshold *float64) (float32, error) {
	if len(b) == 1 && threshold == nil {
		switch b[0] {
		case '0':
			return 0, nil
		case '1':
			return 1, nil
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%w, got a non-number", ErrLabel)
	}
	return labelValue(v, threshold)
}

// labelValue applies parseLabel's rule to a number (a Parquet label).
func labelValue(x float64, threshold *float64) (float32, error) {
	switch {
	case math.IsNaN(x):
		return 0, fmt.Errorf("%w, got a non-number", ErrLabel)
	case threshold != nil:
		if x > *threshold {
			return 1, nil
		}
		return 0, nil
	case x == 0:
		return 0, nil
	case x == 1:
		return 1, nil
	}
	return 0, ErrLabel
}

var timeLayouts = []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// parseTime reads an integer (such as Unix seconds or milliseconds), a
// decimal number (truncated) or a date/time, as Unix seconds.
func parseTime(b []byte) (int64, error) {
	s := string(b)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
		return int64(v), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("not a time (want an integer, a number or a date like 2006-01-02)")
}
