package data

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// scanner reads delimited records (CSV/TSV) fast: fields are byte slices into
// its buffer, valid until the next call to scan. Quoted fields follow RFC
// 4180 ("" inside quotes, delimiters and newlines inside quotes); a quote
// inside an unquoted field is kept as text. Blank lines are skipped, a CR
// before the newline is dropped, and invalid UTF-8 is an error naming the
// field. delim 0 means whole lines (JSON lines).
type scanner struct {
	file      string
	r         *bufio.Reader
	delim     byte
	names     []string // header names, for error messages
	line      int      // line of the current record's start
	next      int      // line number of the next line read
	rec       []byte   // current record, without its newline
	fields    [][]byte
	noNewline bool  // the current record ended at EOF without a newline
	consumed  int64 // bytes read so far
	long      []byte
	unq       []byte
}

func newScanner(file string, r io.Reader, delim byte) *scanner {
	br := bufio.NewReaderSize(r, 1<<20)
	skipBOM(br)
	return &scanner{file: file, r: br, delim: delim, next: 1}
}

// utf8BOM is the byte-order mark spreadsheet programs put at the start of
// a UTF-8 file; it is not part of the first column's name or value.
const utf8BOM = "\ufeff"

// skipBOM drops a UTF-8 byte-order mark at the start of r.
func skipBOM(r *bufio.Reader) {
	if b, err := r.Peek(len(utf8BOM)); err == nil && string(b) == utf8BOM {
		r.Discard(len(utf8BOM))
	}
}

// readLine returns the next line without its newline, and whether it had one.
func (s *scanner) readLine() ([]byte, bool, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.r.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err != nil && err != io.EOF {
		return nil, false, &RowError{File: s.file, Line: s.next, Err: err}
	}
	s.consumed += int64(len(line))
	nl := len(line) > 0 && line[len(line)-1] == '\n'
	if nl {
		line = line[:len(line)-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if !nl && len(line) == 0 {
		return nil, false, io.EOF
	}
	return line, nl, nil
}

// scan moves to the next non-blank record. It returns false at the end.
func (s *scanner) scan() (bool, error) {
	for {
		line, nl, err := s.readLine()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		s.line = s.next
		s.next++
		if len(line) == 0 {
			continue
		}
		s.rec, s.noNewline = line, !nl
		if s.delim == 0 {
			s.fields = append(s.fields[:0], line)
		} else if bytes.IndexByte(line, '"') < 0 {
			s.splitPlain(line)
		} else if err := s.splitQuoted(line); err != nil {
			return false, err
		}
		if !utf8.Valid(s.rec) {
			for i, f := range s.fields {
				if !utf8.Valid(f) {
					return false, s.errAt(i, ErrInvalidUTF8)
				}
			}
		}
		return true, nil
	}
}

func (s *scanner) splitPlain(line []byte) {
	s.fields = s.fields[:0]
	for {
		i := bytes.IndexByte(line, s.delim)
		if i < 0 {
			s.fields = append(s.fields, line)
			return
		}
		s.fields = append(s.fields, line[:i])
		line = line[i+1:]
	}
}

// splitQuoted splits a record with quotes into s.unq, reading more lines
// while a quoted field is open.
func (s *scanner) splitQuoted(line []byte) error {
	s.unq = s.unq[:0]
	var ends []int // end offset of each field in s.unq
	s.rec = append([]byte(nil), line...)
	pos := 0
	for {
		if pos < len(s.rec) && s.rec[pos] == '"' {
			pos++
			for {
				i := bytes.IndexByte(s.rec[pos:], '"')
				if i < 0 {
					s.unq = append(s.unq, s.rec[pos:]...)
					more, nl, err := s.readLine()
					if err == io.EOF {
						return &RowError{File: s.file, Line: s.line, Column: s.colName(len(ends)), Value: string(s.unq), Err: ErrQuote}
					}
					if err != nil {
						return err
					}
					s.next++
					s.noNewline = !nl
					s.unq = append(s.unq, '\n')
					pos = len(s.rec) + 1
					s.rec = append(append(s.rec, '\n'), more...)
					continue
				}
				s.unq = append(s.unq, s.rec[pos:pos+i]...)
				pos += i + 1
				if pos < len(s.rec) && s.rec[pos] == '"' { // "" is a quote
					s.unq = append(s.unq, '"')
					pos++
					continue
				}
				break
			}
			// Text after the closing quote up to the delimiter is kept.
			i := bytes.IndexByte(s.rec[pos:], s.delim)
			if i < 0 {
				i = len(s.rec) - pos
			}
			s.unq = append(s.unq, s.rec[pos:pos+i]...)
			pos += i
		} else {
			i := bytes.IndexByte(s.rec[pos:], s.delim)
			if i < 0 {
				i = len(s.rec) - pos
			}
			s.unq = append(s.unq, s.rec[pos:pos+i]...)
			pos += i
		}
		ends = append(ends, len(s.unq))
		if pos >= len(s.rec) {
			break
		}
		pos++                  // the delimiter
		if pos == len(s.rec) { // trailing delimiter: one more empty field
			ends = append(ends, len(s.unq))
			break
		}
	}
	s.fields = s.fields[:0]
	start := 0
	for _, e := range ends {
		s.fields = append(s.fields, s.unq[start:e:e])
		start = e
	}
	return nil
}

// colName names field i by the header, or by position as "#i".
func (s *scanner) colName(i int) string {
	if i < len(s.names) {
		return s.names[i]
	}
	return "#" + strconv.Itoa(i)
}

// errAt is a RowError for field i of the current record.
func (s *scanner) errAt(i int, err error) *RowError {
	v := ""
	if i < len(s.fields) {
		v = string(s.fields[i])
	}
	return &RowError{File: s.file, Line: s.line, Column: s.colName(i), Value: v, Err: err}
}

// checkCount reports a record whose field count is not n. A short last line
// without a newline is reported as truncated.
func (s *scanner) checkCount(n int) error {
	got := len(s.fields)
	if got == n {
		return nil
	}
	err := ErrColumnCount
	if got < n && s.noNewline {
		err = ErrTruncated
	}
	col := s.colName(min(got, n))
	return &RowError{File: s.file, Line: s.line, Column: col, Value: string(s.rec),
		Err: fmt.Errorf("%w: expected %d, got %d", err, n, got)}
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
