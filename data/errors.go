package data

import (
	"errors"
	"fmt"
	"strings"

	pq "github.com/msrtrain/msrtrain/data/parquet"
)

// Sentinel errors wrapped by RowError, for errors.Is in callers and tests.
var (
	ErrColumnCount     = errors.New("wrong number of columns")
	ErrLabel           = errors.New("label must be 0 or 1")
	ErrNumber          = errors.New("not a number")
	ErrEmptyFile       = errors.New("no data rows")
	ErrMissingColumn   = errors.New("required column missing")
	ErrUnknownScenario = errors.New("scenario not seen in training data")
	ErrInvalidUTF8     = errors.New("invalid UTF-8")
	ErrTruncated       = errors.New("truncated last line")
	ErrQuote           = errors.New("unterminated quoted field")
	ErrSyntax          = errors.New("syntax error")
	ErrColumnType      = errors.New("wrong column type")
	// ErrCorrupt marks a Parquet file that is truncated or damaged.
	ErrCorrupt = pq.ErrCorrupt
)

// RowError locates a bad value: file, 1-based line (or, in a Parquet file,
// the place), column name and the value itself. Every error the readers
// return for bad input is a *RowError.
type RowError struct {
	File string
	Line int // 1-based; 0 when the error is about the whole file or it has no lines
	// Place locates the error in a file without lines (Parquet): "footer",
	// "schema", "row group 2", "row group 2, row 1500" (rows of the file
	// counted from 1).
	Place  string
	Column string // column name (or "#N" for a 0-based position); may be empty
	Value  string // the offending value, shortened to 80 bytes
	Err    error
}

func (e *RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Place != "" {
		b.WriteString(": ")
		b.WriteString(e.Place)
	}
	b.WriteString(": ")
	if e.Column != "" {
		fmt.Fprintf(&b, "column %q: ", e.Column)
	}
	if e.Value != "" || (e.Column != "" && e.inRow()) {
		fmt.Fprintf(&b, "value %q: ", shorten(e.Value))
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *RowError) Unwrap() error { return e.Err }

// inRow reports whether the error is about one row (so an empty value is
// worth showing), not a whole file, schema or row group.
func (e *RowError) inRow() bool {
	return e.Line > 0 || strings.HasPrefix(e.Place, "row ") || strings.Contains(e.Place, ", row ")
}

func shorten(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// BadRows reports the rows skipped under skip_bad_rows: how many, and the
// first few errors in full. Nothing is dropped without being counted here.
type BadRows struct {
	Count int
	First []error
}

// maxBadRowsKept is how many skipped-row errors BadRows keeps verbatim.
const maxBadRowsKept = 5

func (b *BadRows) add(err error) {
	b.Count++
	if len(b.First) < maxBadRowsKept {
		b.First = append(b.First, err)
	}
}

func (b *BadRows) merge(o BadRows) {
	for _, e := range o.First {
		if len(b.First) < maxBadRowsKept {
			b.First = append(b.First, e)
		}
	}
	b.Count += o.Count
}

// String summarises the skipped rows, e.g. for a log line.
func (b BadRows) String() string {
	if b.Count == 0 {
		return "no bad rows"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "skipped %d bad row(s); first:", b.Count)
	for _, e := range b.First {
		s.WriteString("\n  ")
		s.WriteString(e.Error())
	}
	return s.String()
}
