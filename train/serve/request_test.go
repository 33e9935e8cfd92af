package serve

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanned is what scanObject finds in obj, keyed as encoding/json keys a map.
func scanned(t *testing.T, obj []byte) map[string]string {
	got := map[string]string{}
	require.NoError(t, scanObject(obj, func(k, v []byte) { got[string(k)] = string(v) }))
	return got
}

// decoded is obj decoded by encoding/json, each value as its raw text.
func decoded(obj []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out, nil
}

var objectSeeds = []string{
	`{}`,
	`{ }`,
	`{"a":1}`,
	`{"a" : "x" , "b":-1.5e3,"c":null,"d":true,"e":false}`,
	"{\n\t\"user\": \"u\\\"1\",\r\n \"item\" : \"\\u00e9t\\u00e9\"}",
	`{"k\"ey": "v", "n\\": [1, {"x": "]}"}], "o": {"p": {"q": []}}}`,
	`{"a": "}", "b": "{", "a": 2}`,
	`{"emoji":"😀","tab":"a\tb"}`,
}

// scanObject reads every key and value of a valid object as encoding/json does.
func TestScanObjectAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range objectSeeds {
		want, err := decoded([]byte(s))
		require.NoError(t, err, s)
		assert.Equal(t, want, scanned(t, []byte(s)), s)
	}
}

func FuzzScanObject(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := decoded([]byte(s))
		if err != nil || len(s) == 0 || s[0] != '{' || !utf8.ValidString(s) {
			return // parseRows scans only what the decoder accepted, as an object; jsonString refuses invalid UTF-8
		}
		assert.Equal(t, want, scanned(t, []byte(s)), s)
	})
}
