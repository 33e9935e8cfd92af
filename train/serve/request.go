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

// scoreRequest is the body of POST /v1/score.
type scoreRequest struct {
	Rows []map[string]json.RawMessage `json:"rows"`
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
		return nil, jsonError(body, err)
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
	raw := data.NewRawFor(s, "request")
	cat := make([]string, len(s.Categorical))
	num := make([]string, len(s.Numeric))
	for i, row := range req.Rows {
		if row == nil {
			e := badRequest(kindWrongType, "row %d: null: want an object of fields", i)
			e.Row = &i
			return nil, e
		}
		scenario, rerr := rowText(row, i, scenarioField, false)
		if rerr != nil {
			return nil, rerr
		}
		for j, f := range s.Categorical {
			if cat[j], rerr = rowText(row, i, f, false); rerr != nil {
				return nil, rerr
			}
		}
		for j, f := range s.Numeric {
			if num[j], rerr = rowText(row, i, f, true); rerr != nil {
				return nil, rerr
			}
		}
		if err := raw.AppendValues(scenario, cat, num); err != nil {
			return nil, rowError(err)
		}
	}
	return raw, nil
}

// rowText is the text of a row's field as a CSV file would hold it.
func rowText(row map[string]json.RawMessage, i int, field string, numeric bool) (string, *requestError) {
	v, ok := row[field]
	if !ok {
		return "", badValue(kindMissingField, i, field, "missing")
	}
	want := "want a string or a number"
	if numeric {
		want = "want a number"
	}
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return string(v[1 : len(v)-1]), nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
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

// describeJSON names the type of a JSON value for an error message.
func describeJSON(v json.RawMessage) string {
	switch v[0] {
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
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
func jsonError(body []byte, err error) *requestError {
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
		if typ.Field == "rows" && typ.Value != "array" {
			// The decoder does not say which element: find it.
			var outer struct{ Rows []json.RawMessage }
			if json.Unmarshal(body, &outer) == nil {
				for i, r := range outer.Rows {
					if r[0] != '{' && r[0] != 'n' {
						e := badRequest(kindWrongType, "row %d: %s: want an object of fields", i, describeJSON(r))
						e.Row = &i
						return e
					}
				}
			}
		}
		if typ.Field == "rows" {
			return badRequest(kindWrongType, `"rows" is %s: want an array of row objects`, typ.Value)
		}
		return badRequest(kindWrongType, `the body is %s: want {"rows": [{...}, ...]}`, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return badRequest(kindUnknownKey, `%v: a request is {"rows": [{...}, ...]}`, err)
	}
	return badRequest(kindMalformedJSON, "%v", err)
}
