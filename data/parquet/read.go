// Package parquet reads and writes the Parquet files of package data. It
// decodes one column chunk at a time into plain Go slices, the way data's
// readers want them: text columns as codes into the chunk's distinct values
// (a dictionary-encoded chunk's dictionary is used as it is, so each
// distinct value is handled once per chunk, not once per row), number
// columns as float64 with the integers kept exact. Files, row groups and
// columns are named in every error. It depends on
// github.com/parquet-go/parquet-go only.
package parquet

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// Kind is the family of a column's values.
type Kind int

// The kinds. Other covers what this package does not read (nested and
// repeated columns, fixed-length byte arrays other than text).
const (
	Other Kind = iota
	Text
	Int
	Float
	Bool
)

func (k Kind) String() string {
	return [...]string{"unsupported", "text", "integer", "float", "boolean"}[k]
}

// Column describes one top-level column of a file.
type Column struct {
	Name string
	Kind Kind
	// Type is the type as the file states it, for messages: "BYTE_ARRAY
	// (STRING)", "INT64 (TIMESTAMP(...))".
	Type string
	// Scale is a decimal's scale: values are the stored integers / 10^Scale.
	Scale int
	// UnitsPerSecond converts a TIMESTAMP to Unix seconds (1000 for
	// milliseconds, ...); DATE columns count days, given as -86400 (seconds
	// per unit, negated); 0 for other columns.
	UnitsPerSecond int64
	// Int96 marks the legacy INT96 timestamps (Spark, Hive, Impala).
	Int96 bool

	leaf     int // index among the file's leaf columns
	maxDef   int
	nullable bool
}

// File is an open Parquet file. Its methods may be called from several
// goroutines at once (each decodes its own column chunks).
type File struct {
	Path    string
	Columns []Column // top-level columns, in file order

	fh *os.File
	pf *parquet.File
}

// ErrCorrupt marks a file that is not valid Parquet: truncated, a damaged
// footer or page, or not Parquet at all.
var ErrCorrupt = errors.New("not a valid Parquet file (truncated or damaged)")

// Open reads a file's footer and schema. A truncated file or a damaged
// footer is an error wrapping ErrCorrupt.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	pf, err := openFile(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	f := &File{Path: path, fh: fh, pf: pf}
	for _, c := range pf.Root().Columns() {
		f.Columns = append(f.Columns, describe(c))
	}
	return f, nil
}

func openFile(r io.ReaderAt, size int64) (pf *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	if size < 12 {
		return nil, fmt.Errorf("%d bytes is too short for Parquet", size)
	}
	return parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
}

// Close closes the file.
func (f *File) Close() error { return f.fh.Close() }

// NumRowGroups is the number of row groups.
func (f *File) NumRowGroups() int { return len(f.pf.RowGroups()) }

// RowGroupRows is the number of rows of row group g.
func (f *File) RowGroupRows(g int) int { return int(f.pf.RowGroups()[g].NumRows()) }

// Column returns the index of the column named name, or -1.
func (f *File) Column(name string) int {
	for i, c := range f.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func describe(c *parquet.Column) Column {
	col := Column{Name: c.Name(), leaf: c.Index(), maxDef: c.MaxDefinitionLevel(), nullable: c.Optional()}
	if !c.Leaf() || c.Repeated() {
		col.Type = "nested or repeated"
		return col
	}
	t := c.Type()
	col.Type = t.Kind().String()
	if s := t.String(); s != col.Type {
		col.Type += " (" + s + ")"
	}
	var lt format.LogicalTypeValue
	if l := t.LogicalType(); l != nil {
		lt = l.Value
	}
	var ct deprecated.ConvertedType = -1
	if p := t.ConvertedType(); p != nil {
		ct = *p
	}
	switch t.Kind() {
	case parquet.ByteArray:
		col.Kind = Text
	case parquet.FixedLenByteArray:
		if _, isDecimal := lt.(*format.DecimalType); !isDecimal && ct != deprecated.Decimal {
			col.Kind = Text // UUIDs and the like, read as their bytes
		}
	case parquet.Boolean:
		col.Kind = Bool
	case parquet.Float, parquet.Double:
		col.Kind = Float
	case parquet.Int96:
		col.Kind, col.Int96 = Int, true
	case parquet.Int32, parquet.Int64:
		col.Kind = Int
		switch l := lt.(type) {
		case *format.DecimalType:
			col.Scale = int(l.Scale)
		case *format.TimestampType:
			col.UnitsPerSecond = unitsPerSecond(l.Unit.Value)
		case *format.DateType:
			col.UnitsPerSecond = -86400
		}
		switch ct {
		case deprecated.TimestampMillis:
			col.UnitsPerSecond = 1000
		case deprecated.TimestampMicros:
			col.UnitsPerSecond = 1_000_000
		case deprecated.Date:
			col.UnitsPerSecond = -86400
		}
	}
	return col
}

func unitsPerSecond(u format.TimeUnitValue) int64 {
	switch u.(type) {
	case *format.MilliSeconds:
		return 1000
	case *format.MicroSeconds:
		return 1_000_000
	case *format.NanoSeconds:
		return 1_000_000_000
	}
	return 1
}

// Chunk is one column of one row group, decoded by ReadText or ReadNumbers.
// A Chunk may be read into again; a caller that keeps Codes or Dict sets
// them to nil first.
type Chunk struct {
	Rows int
	// Text: row i's value is Dict[Codes[i]]; code 0 is the empty value
	// (Dict[0] == ""), which null rows get too. Dict may repeat a value.
	Codes []int32
	Dict  []string
	// Numbers: Values[i] is row i's value; for integer columns Ints[i] is
	// the exact integer (Values is then Ints as float64, divided by 10^Scale
	// for decimals). Null[i] marks null rows (nil when there are none).
	Values []float64
	Ints   []int64
	Null   []bool

	scratch []int32 // codes of one page's non-null values
}

// reset empties c for a chunk of rows rows, with room for them all: a
// chunk that grew by appending would leave a copy of itself as garbage at
// every doubling.
func (c *Chunk) reset(rows int, col *Column, text bool) {
	c.Rows = 0
	c.Dict = append(c.Dict[:0], "")
	c.Codes, c.Values, c.Ints, c.Null = c.Codes[:0], c.Values[:0], c.Ints[:0], nil
	switch {
	case text:
		c.Codes = slices.Grow(c.Codes, rows)
		c.scratch = slices.Grow(c.scratch[:0], rows)
	case col.Kind == Int:
		c.Values, c.Ints = slices.Grow(c.Values, rows), slices.Grow(c.Ints, rows)
	default:
		c.Values = slices.Grow(c.Values, rows)
	}
}

// ReadText decodes column col of row group g as text: strings as they are,
// numbers in their shortest decimal form, booleans as true/false.
func (f *File) ReadText(g, col int, dst *Chunk) error {
	c := &f.Columns[col]
	dst.reset(f.RowGroupRows(g), c, true)
	if c.Kind == Other {
		return fmt.Errorf("type %s cannot be read", c.Type)
	}
	tx := textDecoder{col: c, dst: dst, sizeHint: min(f.RowGroupRows(g)/2, 1<<16)}
	return f.pages(g, c, tx.page)
}

// ReadNumbers decodes column col of row group g as numbers. Text columns
// are an error: the caller decides how to parse text.
func (f *File) ReadNumbers(g, col int, dst *Chunk) error {
	c := &f.Columns[col]
	dst.reset(f.RowGroupRows(g), c, false)
	if c.Kind == Text || c.Kind == Other {
		return fmt.Errorf("type %s is not a number", c.Type)
	}
	nd := numberDecoder{col: c, dst: dst}
	if err := f.pages(g, c, nd.page); err != nil {
		return err
	}
	if c.Scale > 0 {
		div := math.Pow10(c.Scale)
		for i := range dst.Values {
			dst.Values[i] /= div
		}
	}
	return nil
}

// pages calls visit with each page of a column chunk. A page that cannot
// be decoded (a damaged or truncated file) is an error wrapping ErrCorrupt;
// the decoder's panics on bad input are turned into such errors too.
func (f *File) pages(g int, c *Column, visit func(parquet.Page) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	pages := f.pf.RowGroups()[g].ColumnChunks()[c.leaf].Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return err
		}
		err = visit(p)
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
}

// expand spreads a page's non-null values (vals, in order) over its rows:
// set(row, k) for the k-th non-null value, null(row) for the others.
func expand(p parquet.Page, maxDef int, n int, set func(k int), null func()) {
	def := p.DefinitionLevels()
	if len(def) == 0 {
		for k := range n {
			set(k)
		}
		return
	}
	k := 0
	for _, d := range def {
		if int(d) < maxDef {
			null()
			continue
		}
		set(k)
		k++
	}
}

// textDecoder turns the pages of one chunk into codes and distinct values.
type textDecoder struct {
	col  *Column
	dst  *Chunk
	dict parquet.Dictionary // the dictionary dictCodes maps
	// dictCodes maps a dictionary index to its code in dst.Dict.
	dictCodes []int32
	bytes     map[string]int32 // plain text values seen in this chunk
	numbers   map[uint64]int32 // plain numbers seen, by their bits
	generic   map[string]int32 // values read one by one (booleans, INT96)
	buf       []parquet.Value
	sizeHint  int // for the maps: distinct values expected at most
}

func (t *textDecoder) add(s string) int32 {
	t.dst.Dict = append(t.dst.Dict, s)
	return int32(len(t.dst.Dict) - 1)
}

func (t *textDecoder) page(p parquet.Page) error {
	dst := t.dst
	vals := dst.scratch[:0]
	data := p.Data()
	if d := p.Dictionary(); d != nil {
		if d != t.dict {
			t.dict = d
			t.dictCodes = t.dictCodes[:0]
			dv := d.Page().Data()
			n := d.Len()
			for i := range n {
				t.dictCodes = append(t.dictCodes, t.add(t.format(dv, i)))
			}
		}
		for _, ix := range data.Int32() {
			if int(ix) >= len(t.dictCodes) || ix < 0 {
				return fmt.Errorf("%w: dictionary index %d of %d", ErrCorrupt, ix, len(t.dictCodes))
			}
			vals = append(vals, t.dictCodes[ix])
		}
	} else {
		switch data.Kind() {
		case encoding.ByteArray:
			if t.bytes == nil {
				t.bytes = make(map[string]int32, t.sizeHint)
			}
			b, off := data.ByteArray()
			for i := 0; i+1 < len(off); i++ {
				v := b[off[i]:off[i+1]]
				c, ok := t.bytes[string(v)]
				if !ok {
					s := string(v)
					c = t.add(s)
					t.bytes[s] = c
				}
				vals = append(vals, c)
			}
		case encoding.Int32, encoding.Int64, encoding.Float, encoding.Double:
			if t.numbers == nil {
				t.numbers = make(map[uint64]int32, t.sizeHint)
			}
			for i := range numValues(data) {
				key := numberBits(data, i)
				c, ok := t.numbers[key]
				if !ok {
					c = t.add(t.format(data, i))
					t.numbers[key] = c
				}
				vals = append(vals, c)
			}
		default:
			return t.genericText(p)
		}
	}
	dst.scratch = vals
	expand(p, t.col.maxDef, len(vals), func(k int) { dst.Codes = append(dst.Codes, vals[k]) }, func() { dst.Codes = append(dst.Codes, 0) })
	dst.Rows = len(dst.Codes)
	return nil
}

// genericText reads values one by one: booleans, INT96 and fixed-length
// byte arrays, which are rare in the columns msrtrain reads.
func (t *textDecoder) genericText(p parquet.Page) error {
	if t.generic == nil {
		t.generic = map[string]int32{}
	}
	return readValues(p, &t.buf, func(v parquet.Value) {
		if v.IsNull() {
			t.dst.Codes = append(t.dst.Codes, 0)
			return
		}
		var s string
		switch v.Kind() {
		case parquet.Boolean:
			s = strconv.FormatBool(v.Boolean())
		case parquet.Int96:
			s = strconv.FormatInt(int96Seconds(v.Int96()), 10)
		default:
			s = string(v.ByteArray())
		}
		c, ok := t.generic[s]
		if !ok {
			c = t.add(s)
			t.generic[s] = c
		}
		t.dst.Codes = append(t.dst.Codes, c)
	}, &t.dst.Rows)
}

// format renders value i of typed values as text.
func (t *textDecoder) format(v encoding.Values, i int) string {
	switch v.Kind() {
	case encoding.ByteArray:
		b, off := v.ByteArray()
		return string(b[off[i]:off[i+1]])
	case encoding.Int32:
		return formatInt(int64(v.Int32()[i]), t.col.Scale)
	case encoding.Int64:
		return formatInt(v.Int64()[i], t.col.Scale)
	case encoding.Float:
		return strconv.FormatFloat(float64(v.Float()[i]), 'g', -1, 32)
	case encoding.Double:
		return strconv.FormatFloat(v.Double()[i], 'g', -1, 64)
	case encoding.FixedLenByteArray:
		b, size := v.FixedLenByteArray()
		return string(b[i*size : (i+1)*size])
	case encoding.Boolean:
		// Dictionaries of booleans do not occur (the format forbids them).
	}
	return ""
}

func formatInt(v int64, scale int) string {
	if scale == 0 {
		return strconv.FormatInt(v, 10)
	}
	return strconv.FormatFloat(float64(v)/math.Pow10(scale), 'g', -1, 64)
}

func numValues(v encoding.Values) int {
	switch v.Kind() {
	case encoding.Int32:
		return len(v.Int32())
	case encoding.Int64:
		return len(v.Int64())
	case encoding.Float:
		return len(v.Float())
	case encoding.Double:
		return len(v.Double())
	}
	return 0
}

func numberBits(v encoding.Values, i int) uint64 {
	switch v.Kind() {
	case encoding.Int32:
		return uint64(v.Int32()[i])
	case encoding.Int64:
		return uint64(v.Int64()[i])
	case encoding.Float:
		return uint64(math.Float32bits(v.Float()[i]))
	case encoding.Double:
		return math.Float64bits(v.Double()[i])
	}
	return 0
}

// numberDecoder turns the pages of one chunk into numbers.
type numberDecoder struct {
	col *Column
	dst *Chunk
	buf []parquet.Value
}

func (d *numberDecoder) page(p parquet.Page) error {
	dst := d.dst
	data := p.Data()
	isInt := d.col.Kind == Int && !d.col.Int96
	var get func(k int) (float64, int64)
	if dict := p.Dictionary(); dict != nil {
		dv := dict.Page().Data()
		n := dict.Len()
		ix := data.Int32()
		for _, i := range ix {
			if i < 0 || int(i) >= n {
				return fmt.Errorf("%w: dictionary index %d of %d", ErrCorrupt, i, n)
			}
		}
		get = func(k int) (float64, int64) { return number(dv, int(ix[k])) }
	} else {
		switch data.Kind() {
		case encoding.Int32, encoding.Int64, encoding.Float, encoding.Double:
			get = func(k int) (float64, int64) { return number(data, k) }
		default:
			return d.generic(p)
		}
	}
	n := numValues(data)
	if p.Dictionary() != nil {
		n = len(data.Int32())
	}
	start := len(dst.Values)
	hasNull := false
	expand(p, d.col.maxDef, n, func(k int) {
		f, i := get(k)
		dst.Values = append(dst.Values, f)
		if isInt {
			dst.Ints = append(dst.Ints, i)
		}
	}, func() {
		hasNull = true
		dst.Values = append(dst.Values, 0)
		if isInt {
			dst.Ints = append(dst.Ints, 0)
		}
	})
	d.markNulls(p.DefinitionLevels(), start, hasNull)
	dst.Rows = len(dst.Values)
	return nil
}

// markNulls extends dst.Null over the rows a page added from start,
// making it when the page holds the chunk's first null.
func (d *numberDecoder) markNulls(def []byte, start int, hasNull bool) {
	dst := d.dst
	if dst.Null == nil {
		if !hasNull {
			return
		}
		dst.Null = make([]bool, start, cap(dst.Values))
	}
	if len(def) == 0 {
		for range len(dst.Values) - start {
			dst.Null = append(dst.Null, false)
		}
		return
	}
	for _, l := range def {
		dst.Null = append(dst.Null, int(l) < d.col.maxDef)
	}
}

func number(v encoding.Values, i int) (float64, int64) {
	switch v.Kind() {
	case encoding.Int32:
		x := int64(v.Int32()[i])
		return float64(x), x
	case encoding.Int64:
		x := v.Int64()[i]
		return float64(x), x
	case encoding.Float:
		return float64(v.Float()[i]), 0
	case encoding.Double:
		return v.Double()[i], 0
	}
	return 0, 0
}

// generic reads booleans and INT96 timestamps value by value.
func (d *numberDecoder) generic(p parquet.Page) error {
	dst := d.dst
	return readValues(p, &d.buf, func(v parquet.Value) {
		isNull := v.IsNull()
		if isNull && dst.Null == nil {
			dst.Null = make([]bool, len(dst.Values), cap(dst.Values))
		}
		if dst.Null != nil {
			dst.Null = append(dst.Null, isNull)
		}
		var f float64
		var i int64
		switch {
		case isNull:
		case v.Kind() == parquet.Boolean:
			if v.Boolean() {
				f, i = 1, 1
			}
		case v.Kind() == parquet.Int96:
			i = int96Seconds(v.Int96())
			f = float64(i)
		}
		dst.Values = append(dst.Values, f)
		if d.col.Kind == Int {
			dst.Ints = append(dst.Ints, i)
		}
	}, &dst.Rows)
}

func readValues(p parquet.Page, buf *[]parquet.Value, visit func(parquet.Value), rows *int) error {
	if *buf == nil {
		*buf = make([]parquet.Value, 1024)
	}
	r := p.Values()
	for {
		n, err := r.ReadValues(*buf)
		for _, v := range (*buf)[:n] {
			visit(v)
			*rows++
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
}

// int96Seconds converts a legacy INT96 timestamp (nanoseconds of the day,
// then the Julian day) to Unix seconds.
func int96Seconds(v deprecated.Int96) int64 {
	nanos := int64(v[1])<<32 | int64(v[0])
	day := int64(v[2])
	const unixEpochJulianDay = 2440588
	return (day-unixEpochJulianDay)*86400 + nanos/1_000_000_000
}
