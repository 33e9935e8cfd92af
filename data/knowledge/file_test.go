package knowledge

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/data/safetensors"
)

// writeNpyF8 writes a [rows, cols] float64 .npy file (format 1.0).
func writeNpyF8(t *testing.T, path string, rows, cols int, vals []float64) {
	t.Helper()
	header := "{'descr': '<f8', 'fortran_order': False, 'shape': (" + strconv.Itoa(rows) + ", " + strconv.Itoa(cols) + "), }"
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	b = append(b, header...)
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func writeText(t *testing.T, path, text string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestReadVectorFile(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "emb.safetensors")
	err := safetensors.WriteFile(st, map[string]safetensors.Tensor{
		"emb":   safetensors.FromFloat32([]int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}),
		"other": safetensors.FromFloat32([]int64{1}, []float32{0}),
	}, nil)
	require.NoError(t, err)
	single := filepath.Join(dir, "single.safetensors")
	safetensors.WriteFile(single, map[string]safetensors.Tensor{"h": safetensors.FromFloat64([]int64{3, 2}, []float64{1, 2, 3, 4, 5, 6})}, nil)
	npy := filepath.Join(dir, "emb.npy")
	writeNpyF8(t, npy, 3, 2, []float64{1, 2, 3, 4, 5, 6})
	nan := filepath.Join(dir, "nan.npy")
	writeNpyF8(t, nan, 3, 2, []float64{1, 2, 3, math.NaN(), 5, 6})

	jsonIDs := writeText(t, filepath.Join(dir, "ids.json"), `["scenario:a", "user:1", "user:2"]`)
	csvIDs := writeText(t, filepath.Join(dir, "ids.csv"), "key\nscenario:a\nuser:1\n\"user:2\"\n")
	plainIDs := writeText(t, filepath.Join(dir, "ids.txt"), "scenario:a\nuser:1\nuser:2\n")
	twoIDs := writeText(t, filepath.Join(dir, "two.json"), `["user:1", "user:2"]`)
	badKey := writeText(t, filepath.Join(dir, "bad.csv"), "scenario:a\n17\nuser:2\n")
	dupKey := writeText(t, filepath.Join(dir, "dup.csv"), "user:1\nuser:2\nuser:1\n")
	notArray := writeText(t, filepath.Join(dir, "obj.json"), `{"ids": []}`)

	want := &VectorFile{Keys: []string{"scenario:a", "user:1", "user:2"}, Dim: 2, Data: []float32{1, 2, 3, 4, 5, 6}}
	ok := []struct{ vectors, ids, tensor string }{
		{st, jsonIDs, "emb"}, {single, csvIDs, ""}, {npy, plainIDs, ""}, {npy, csvIDs, ""},
	}
	for _, tc := range ok {
		got, err := ReadVectorFile(tc.vectors, tc.ids, tc.tensor)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s + %s: %+v, %v", tc.vectors, tc.ids, got, err)
		}
	}
	bad := []struct {
		name, vectors, ids, tensor string
		want                       []string
	}{
		{"count mismatch", npy, twoIDs, "", []string{"vectors file " + npy + " has 3 rows", "ids file " + twoIDs + " has 2 ids"}},
		{"ambiguous tensor", st, jsonIDs, "", []string{"holds 2 tensors (emb, other)"}},
		{"missing tensor", st, jsonIDs, "nope", []string{`no tensor "nope"`}},
		{"1-D tensor", st, jsonIDs, "other", []string{"want a [N, D] matrix"}},
		{"NaN", nan, jsonIDs, "", []string{nan, "row 1 column 1 is NaN"}},
		{"bad key", npy, badKey, "", []string{badKey, `id 1 "17" is not a key`}},
		{"duplicate key", npy, dupKey, "", []string{`"user:1" appears at ids 0 and 2`}},
		{"not an array", npy, notArray, "", []string{notArray, "JSON array"}},
		{"unknown extension", jsonIDs, jsonIDs, "", []string{".npy or .safetensors"}},
	}
	for _, tc := range bad {
		_, err := ReadVectorFile(tc.vectors, tc.ids, tc.tensor)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error = %v, want %q", tc.name, err, w)
			}
		}
	}
}

func TestImportAndFileEncoder(t *testing.T) {
	dir := t.TempDir()
	npy := filepath.Join(dir, "emb.npy")
	writeNpyF8(t, npy, 3, 2, []float64{1, 0, 0, 1, 0.5, 0.5})
	ids := writeText(t, filepath.Join(dir, "ids.json"), `["scenario:a", "user:1", "user:2"]`)

	s, err := Open(filepath.Join(dir, "store"), Meta{Encoder: "file", Model: "chatglm2-6b", Dim: 2})
	require.NoError(t, err)
	n, err := Import(s, npy, ids, "")
	if err != nil || n != 3 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	if n, err := Import(s, npy, ids, ""); err != nil || n != 0 {
		t.Errorf("second Import = %d, %v; want 0 (already stored)", n, err)
	}
	if v, ok := s.Lookup("user:2"); !ok || !reflect.DeepEqual(v, []float32{0.5, 0.5}) {
		t.Errorf("user:2 = %v", v)
	}
	small, _ := Open(filepath.Join(dir, "small"), Meta{Encoder: "file", Dim: 3})
	if _, err := Import(small, npy, ids, ""); err == nil || !strings.Contains(err.Error(), "dimension 2, store") {
		t.Errorf("dim mismatch error = %v", err)
	}

	enc, err := NewFileEncoder(npy, ids, "", "chatglm2-6b")
	require.NoError(t, err)
	s2, _ := Open(filepath.Join(dir, "built"), Meta{Encoder: enc.Name(), Model: enc.Model(), Dim: enc.Dim()})
	st, err := Build(context.Background(), s2, enc, []Prompt{{Key: "user:1", Text: "p"}, {Key: "user:9", Text: "q"}}, nil)
	if err != nil || st != (BuildStats{Prompts: 2, Encoded: 1, Missing: 1}) {
		t.Errorf("Build with file encoder = %+v, %v", st, err)
	}
	if v, ok := s2.Lookup("user:1"); !ok || !reflect.DeepEqual(v, []float32{0, 1}) {
		t.Errorf("user:1 = %v", v)
	}
}
