package data

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func vocabRaw() *Raw {
	raw := newRaw([]string{"user", "item"}, nil, []string{"y"}, false)
	raw.addFile("mem")
	rows := [][3]string{{"s1", "a", "x"}, {"s1", "b", "x"}, {"s2", "a", "y"}, {"s10", "a", "z"}, {"s2", "c", ""}}
	for i, r := range rows {
		raw.appendRow(0, i+1, raw.Scenario.Dict.codeString(r[0]),
			[]int32{raw.Cat[0].Dict.codeString(r[1]), raw.Cat[1].Dict.codeString(r[2])}, nil, []float32{1}, 0)
	}
	return raw
}

func TestBuildVocabs(t *testing.T) {
	raw := vocabRaw()
	tests := []struct {
		minCount  int
		rows      []int32
		user, itm []string
		scen      []string
	}{
		{1, nil, []string{"a", "b", "c"}, []string{"x", "y", "z"}, []string{"s1", "s10", "s2"}},
		{2, nil, []string{"a"}, []string{"x"}, []string{"s1", "s10", "s2"}},
		{1, []int32{1, 4}, []string{"b", "c"}, []string{"x"}, []string{"s1", "s2"}}, // training rows only
	}
	for _, tt := range tests {
		v := BuildVocabs(raw, tt.rows, tt.minCount, nil)
		if !equal(v.Fields[0].Tokens, tt.user) || !equal(v.Fields[1].Tokens, tt.itm) || !equal(v.Schema().ScenarioNames(), tt.scen) {
			t.Errorf("min %d rows %v: users %v items %v scenarios %v", tt.minCount, tt.rows, v.Fields[0].Tokens, v.Fields[1].Tokens, v.Schema().ScenarioNames())
		}
	}
	v := BuildVocabs(raw, nil, 2, nil)
	if v.Fields[0].Size() != 2 || v.Fields[0].Index("a") != 1 || v.Fields[0].Index("b") != 0 || v.Fields[0].Token(1) != "a" || v.Fields[0].Token(0) != "" {
		t.Errorf("vocab %+v", v.Fields[0])
	}
	// A fixed scenario list sets the ids.
	v = BuildVocabs(raw, nil, 1, []ScenarioInfo{{Name: "s2"}, {Name: "s1"}, {Name: "s10"}})
	tab, err := Encode(raw, v)
	require.NoError(t, err)
	if !equal(tab.Scenario, []int32{1, 1, 0, 2, 0}) || tab.Cat[9] != 0 {
		t.Errorf("scenario ids %v, empty item -> %d", tab.Scenario, tab.Cat[9])
	}
}

func TestVocabsRoundTrip(t *testing.T) {
	raw := vocabRaw()
	v := BuildVocabs(raw, nil, 1, nil)
	v.Scenarios[0].Description = "first"
	var buf bytes.Buffer
	require.NoError(t, v.Save(&buf))
	w, err := LoadVocabs(&buf)
	require.NoError(t, err)
	a, _ := Encode(raw, v)
	b, _ := Encode(raw, w)
	if !equal(a.Cat, b.Cat) || !equal(a.Scenario, b.Scenario) || w.Scenarios[0].Description != "first" || !equal(w.Sizes(), v.Sizes()) {
		t.Errorf("round trip differs: %v %v", a.Cat, b.Cat)
	}
	if _, err := LoadVocabs(bytes.NewReader([]byte(`{"fields": [{"name": "u", "tokens": ["a", "a"]}]}`))); err == nil {
		t.Error("duplicate tokens accepted")
	}
}

func TestNaturalCompare(t *testing.T) {
	if naturalCompare("2", "10") >= 0 || naturalCompare("10", "b") >= 0 || naturalCompare("a", "b") >= 0 {
		t.Error("natural order")
	}
}

// Encoding the rows a vocabulary was counted on goes through their codes;
// any other rows through the tokens: both map alike, min_count included.
func TestEncodeByCodesAndByTokens(t *testing.T) {
	raw := vocabRaw()
	v := BuildVocabs(raw, nil, 2, nil)
	byCodes, err := Encode(raw, v)
	require.NoError(t, err)
	other := vocabRaw() // the same rows, another dictionary
	byTokens, err := Encode(other, v)
	require.NoError(t, err)
	require.Equal(t, byCodes.Cat, byTokens.Cat)
	require.Equal(t, []int32{1, 1, 0, 1, 1, 0, 1, 0, 0, 0}, byCodes.Cat, "a and x seen twice; the rest out of vocabulary")

	// A sealed dictionary still interns, the same codes as before.
	d := raw.Cat[0].Dict
	raw.seal()
	require.Equal(t, int32(1), d.codeString("a"))
	c := d.code([]byte("new"))
	require.Equal(t, "new", d.Strings[c])
	require.Equal(t, c, d.codeString("new"))

	// A row added after counting, with a value the counting did not see,
	// encodes as out of vocabulary; the rows counted keep their indices.
	raw.appendRow(0, 6, raw.Scenario.Dict.codeString("s1"), []int32{c, raw.Cat[1].Dict.codeString("x")}, nil, []float32{0}, 0)
	grown, err := Encode(raw, v)
	require.NoError(t, err)
	require.Equal(t, []int32{1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1}, grown.Cat)
}
