package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/msrtrain/msrtrain/data"
)

// scenarioField is the key of a request row that holds its scenario's name.
const scenarioField = "scenario"

// errorKind classifies failed requests in error responses and metrics.
type errorKind string

// Bad input: a 4xx naming the row and field where there is one.
const (
	kindMalformedJSON   errorKind = "malformed_json"
	kindUnknownKey      errorKind = "unknown_key"
	kindNoRows          errorKind = "no_rows"
	kindMissingField    errorKind = "missing_field"
	kindWrongType       errorKind = "wrong_type"
	kindUnknownScenario errorKind = "unknown_scenario"
	kindBodyTooLarge    errorKind = "body_too_large"
	kindTooManyRows     errorKind = "too_many_rows"
	kindMethod          errorKind = "method_not_allowed"
	kindUnauthorized    errorKind = "unauthorized"
)

// The server's side: a 5xx, or no answer when the client has gone.
const (
	kindUnavailable   errorKind = "unavailable"    // no model, or shutting down
	kindTimeout       errorKind = "timeout"        // not scored within the request timeout
	kindClientGone    errorKind = "client_gone"    // the client closed the connection first
	kindInternal      errorKind = "internal"       // the model failed
	kindReloadRefused errorKind = "reload_refused" // admin: the new model failed to load or check
)

// requestError is a failed request: its status and the JSON error body.
type requestError struct {
	status  int
	Kind    errorKind `json:"kind"`
	Row     *int      `json:"row,omitempty"`
	Field   string    `json:"field,omitempty"`
	Message string    `json:"message"`
}

func (e *requestError) Error() string { return e.Message }

func badRequest(kind errorKind, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// badValue is bad input in one row's field (row counts from 0).
func badValue(kind errorKind, row int, field, format string, args ...any) *requestError {
	e := badRequest(kind, "row %d: field %q: %s", row, field, fmt.Sprintf(format, args...))
	e.Row, e.Field = &row, field
	return e
}

// scoreRequest is the body of POST /v1/score. Rows stay raw: the decoder
// checks their syntax, and scanObject reads the fields a model needs
// without a map per row.
type scoreRequest struct {
	Rows []json.RawMessage `json:"rows"`
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *requestError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, &requestError{status: http.StatusRequestEntityTooLarge, Kind: kindBodyTooLarge,
			Message: fmt.Sprintf("the body is over the limit of %d bytes", limit)}
	case err != nil:
		return nil, badRequest(kindMalformedJSON, "reading the body: %v", err)
	}
	return body, nil
}

// parseRows reads the rows of a score request into a data.Raw with the
// fields of s, as the CSV reader would read the same values: a string is
// taken as it is, a number by its literal text (so 42 and "42" are the
// same id), null is a missing categorical value. Keys other than the
// scenario and s's fields are ignored.
func parseRows(body []byte, s *data.Schema, maxRows int) (*data.Raw, *requestError) {
	var req scoreRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest(kindMalformedJSON, "data after the request object at byte %d", dec.InputOffset())
	}
	switch {
	case len(req.Rows) == 0:
		return nil, badRequest(kindNoRows, `the request has no rows: want {"rows": [{...}, ...]}`)
	case len(req.Rows) > maxRows:
		return nil, &requestError{status: http.StatusRequestEntityTooLarge, Kind: kindTooManyRows,
			Message: fmt.Sprintf("%d rows: the limit is %d per request", len(req.Rows), maxRows)}
	}
	// A row's values by field: the scenario, the categorical fields, the numeric ones.
	fields := append(append([]string{scenarioField}, s.Categorical...), s.Numeric...)
	index := make(map[string]int, len(fields))
	for i, f := range fields {
		index[f] = i
	}
	values := make([][]byte, len(fields))
	text := make([]string, len(fields))
	nc := len(s.Categorical)
	raw := data.NewRawFor(s, "request")
	for i, row := range req.Rows {
		if row[0] != '{' {
			e := badRequest(kindWrongType, "row %d: %s: want an object of fields", i, describeJSON(row))
			e.Row = &i
			return nil, e
		}
		clear(values)
		if err := scanObject(row, func(key, value []byte) {
			if k, ok := index[string(key)]; ok {
				values[k] = value
			}
		}); err != nil {
			return nil, badRequest(kindMalformedJSON, "row %d: %v", i, err)
		}
		for k, f := range fields {
			var rerr *requestError
			if text[k], rerr = rowText(values[k], i, f, k > nc); rerr != nil {
				return nil, rerr
			}
		}
		if err := raw.AppendValues(text[0], text[1:1+nc], text[1+nc:]); err != nil {
			return nil, rowError(err)
		}
	}
	return raw, nil
}

// rowText is the text of a row's field as a CSV file would hold it; v is
// its JSON value, nil when the row lacks the field.
func rowText(v []byte, i int, field string, numeric bool) (string, *requestError) {
	if v == nil {
		return "", badValue(kindMissingField, i, field, "missing")
	}
	want := "want a string or a number"
	if numeric {
		want = "want a number"
	}
	switch v[0] {
	case '"':
		s, err := jsonString(v)
		if err != nil {
			return "", badValue(kindMalformedJSON, i, field, "%v", err)
		}
		return s, nil
	case 'n':
		if numeric {
			return "", badValue(kindWrongType, i, field, "null: %s", want)
		}
		return "", nil // a missing value, as an empty CSV cell
	case 't', 'f', '{', '[':
		return "", badValue(kindWrongType, i, field, "%s: %s", describeJSON(v), want)
	}
	return string(v), nil // a number's literal text
}

// jsonString decodes a JSON string, quotes included. Invalid UTF-8 is an
// error, as in a CSV file (encoding/json would replace it).
func jsonString(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", data.ErrInvalidUTF8
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// scanObject calls f with each key (decoded) and raw value of a JSON
// object whose syntax the decoder has already checked.
func scanObject(obj []byte, f func(key, value []byte)) error {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] != '}' {
		if obj[i] != '"' {
			return fmt.Errorf("malformed object at byte %d", i)
		}
		end := skipValue(obj, i) // the key
		if end < i+2 {
			return fmt.Errorf("malformed object at byte %d", i)
		}
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			k, err := jsonString(obj[i:end])
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return fmt.Errorf("malformed object at byte %d", i)
		}
		i = skipSpace(obj, i+1)
		end = skipValue(obj, i)
		f(key, obj[i:end])
		i = skipSpace(obj, end)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the (valid) JSON value at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for i++; i < len(b) && b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return min(i+1, len(b))
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for ; i < len(b); i++ { // a number, true, false or null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// describeJSON names the type of a JSON value for an error message.
func describeJSON(v json.RawMessage) string {
	switch v[0] {
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	}
	return "a " + strconv.Quote(string(v[:min(len(v), 20)]))
}

// rowError turns what data says about a request row (numbered from 1, as
// a line) into bad input naming the row (from 0) and field.
func rowError(err error) *requestError {
	var re *data.RowError
	if !errors.As(err, &re) || re.Line < 1 {
		return nil
	}
	kind := kindWrongType
	switch {
	case errors.Is(err, data.ErrUnknownScenario):
		kind = kindUnknownScenario
	case errors.Is(err, data.ErrMissingColumn):
		kind = kindMissingField
	}
	msg := re.Err.Error()
	if re.Value != "" {
		msg = fmt.Sprintf("%q: %s", re.Value, msg)
	}
	return badValue(kind, re.Line-1, re.Column, "%s", msg)
}

// jsonError explains why a body does not decode as a score request.
func jsonError(err error) *requestError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest(kindMalformedJSON, "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.Is(err, io.EOF):
		return badRequest(kindMalformedJSON, `the body is empty: want {"rows": [{...}, ...]}`)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(kindMalformedJSON, "the JSON ends early")
	case errors.As(err, &typ):
		if typ.Field == "rows" {
			return badRequest(kindWrongType, `"rows" is %s: want an array of row objects`, typ.Value)
		}
		return badRequest(kindWrongType, `the body is %s: want {"rows": [{...}, ...]}`, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return badRequest(kindUnknownKey, `%v: a request is {"rows": [{...}, ...]}`, err)
	}
	return badRequest(kindMalformedJSON, "%v", err)
}
