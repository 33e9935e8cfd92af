package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// frame prefixes a header with its little-endian length and appends data.
func frame(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestRoundTripFile(t *testing.T) {
	tensors := map[string]Tensor{
		"f32":    FromFloat32([]int64{2, 3}, []float32{1, -2, 3.5, 0, float32(math.Inf(1)), 1e-30}),
		"f64":    FromFloat64([]int64{2}, []float64{math.Pi, -1e300}),
		"i64":    FromInt64([]int64{3}, []int64{math.MinInt64, 0, math.MaxInt64}),
		"i32":    FromInt32([]int64{1, 2}, []int32{-7, 1 << 30}),
		"scalar": FromFloat32([]int64{}, []float32{42}),
		"empty":  FromFloat32([]int64{0, 3}, nil),
		"bool":   {DType: BOOL, Shape: []int64{3}, Data: []byte{1, 0, 1}},
		"u8":     {DType: U8, Shape: []int64{2}, Data: []byte{0, 255}},
		"f16":    {DType: F16, Shape: []int64{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}},
		"bf16":   {DType: BF16, Shape: []int64{1}, Data: []byte{0x80, 0x3f}},
	}
	meta := map[string]string{"format": "pt", "note": "<&>"}
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	require.NoError(t, WriteFile(path, tensors, meta))
	got, gotMeta, err := ReadFile(path)
	require.NoError(t, err)
	if !reflect.DeepEqual(gotMeta, meta) {
		t.Errorf("metadata = %v, want %v", gotMeta, meta)
	}
	if len(got) != len(tensors) {
		t.Fatalf("read %d tensors, want %d", len(got), len(tensors))
	}
	for name, want := range tensors {
		g := got[name]
		if g.DType != want.DType || !reflect.DeepEqual(g.Shape, want.Shape) || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("%s: got %+v, want %+v", name, g, want)
		}
	}
	if v, err := got["f64"].Float64(); err != nil || v[0] != math.Pi || v[1] != -1e300 {
		t.Errorf("f64 = %v, %v", v, err)
	}
	if v, err := got["i64"].Int64(); err != nil || v[0] != math.MinInt64 || v[2] != math.MaxInt64 {
		t.Errorf("i64 = %v, %v", v, err)
	}
	if v, err := got["i32"].Int32(); err != nil || v[0] != -7 || v[1] != 1<<30 {
		t.Errorf("i32 = %v, %v", v, err)
	}
	if v, err := got["f32"].Float32(); err != nil || v[2] != 3.5 || !math.IsInf(float64(v[4]), 1) {
		t.Errorf("f32 = %v, %v", v, err)
	}
	if _, err := got["f32"].Int64(); err == nil {
		t.Error("Int64 of an F32 tensor succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temp files)", len(entries))
	}
	raw, _ := os.ReadFile(path)
	if hl := binary.LittleEndian.Uint64(raw); (8+hl)%8 != 0 {
		t.Errorf("header length %d leaves data unaligned", hl)
	}
	// Writing again gives identical bytes.
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil || !bytes.Equal(buf.Bytes(), raw) {
		t.Errorf("second Write differs (err %v)", err)
	}
}

func TestWriteGolden(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, map[string]Tensor{
		"w": FromFloat32([]int64{2}, []float32{1, -2}),
		"b": FromInt64([]int64{1}, []int64{5}),
	}, map[string]string{"k": "v"})
	require.NoError(t, err)
	header := `{"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}` + "   " // pads N to 136, a multiple of 8
	want := frame(header, []byte{
		5, 0, 0, 0, 0, 0, 0, 0, // b = 5
		0x00, 0x00, 0x80, 0x3f, // 1.0f
		0x00, 0x00, 0x00, 0xc0, // -2.0f
	})
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Write =\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

// TestReadGolden reads bytes laid out the way the Python safetensors package
// writes them: metadata first, tensors ordered by alignment, then name.
func TestReadGolden(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"emb":{"dtype":"F32","shape":[1,2],"data_offsets":[16,24]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	data := []byte{
		1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // [1, -1]
		0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x40, 0x40, // [0.5, 3]
	}
	tensors, meta, err := Read(bytes.NewReader(frame(header, data)))
	require.NoError(t, err)
	if meta["format"] != "pt" {
		t.Errorf("metadata = %v", meta)
	}
	ids, err := tensors["ids"].Int64()
	if err != nil || !reflect.DeepEqual(ids, []int64{1, -1}) {
		t.Errorf("ids = %v, %v", ids, err)
	}
	emb, err := tensors["emb"].Float32()
	if err != nil || !reflect.DeepEqual(emb, []float32{0.5, 3}) || !reflect.DeepEqual(tensors["emb"].Shape, []int64{1, 2}) {
		t.Errorf("emb = %v %v, %v", emb, tensors["emb"].Shape, err)
	}
}

func TestReadCorrupt(t *testing.T) {
	f32 := func(name, offsets, shape string) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	eight := make([]byte, 8)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "header length"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<40), "out of bounds"},
		{"header longer than file", binary.LittleEndian.AppendUint64(nil, 64), "header"},
		{"tiny header length", frame("{", nil), "out of bounds"},
		{"not json", frame("[1,2]   ", nil), "not a JSON object"},
		{"broken json", frame(`{"a":{"dtype"`, nil), `tensor "a"`},
		{"trailing header content", frame(`{} {}`, nil), "trailing content"},
		{"duplicate tensor", frame("{"+f32("a", "[0,4]", "[1]")+","+f32("a", "[4,8]", "[1]")+"}", eight), `duplicate header entry "a"`},
		{"unknown dtype", frame(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,8]}}`, eight), `tensor "a": safetensors: invalid format: unknown dtype "F128"`},
		{"missing offsets", frame(`{"a":{"dtype":"F32","shape":[1]}}`, eight), `tensor "a": needs dtype`},
		{"shape mismatch", frame("{"+f32("a", "[0,8]", "[3]")+"}", eight), `tensor "a"`},
		{"negative dim", frame("{"+f32("a", "[0,8]", "[-2]")+"}", eight), "negative dimension"},
		{"out of range", frame("{"+f32("a", "[0,12]", "[3]")+"}", eight), `tensor "a": data_offsets [0, 12] outside`},
		{"reversed offsets", frame("{"+f32("a", "[8,4]", "[1]")+"}", eight), `tensor "a"`},
		{"overlap", frame("{"+f32("a", "[0,8]", "[2]")+","+f32("b", "[4,8]", "[1]")+"}", eight), `tensor "b": data_offsets [4, 8] overlaps`},
		{"gap", frame("{"+f32("a", "[4,8]", "[1]")+"}", eight), `tensor "a": data_offsets [4, 8] leaves a gap`},
		{"trailing data", frame("{"+f32("a", "[0,4]", "[1]")+"}", eight), "cover 4 of 8 data bytes"},
		{"bad metadata", frame(`{"__metadata__":{"k":1}}`, nil), "__metadata__ must map strings"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Read(bytes.NewReader(tc.file))
			if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read error = %v, want ErrFormat containing %q", err, tc.want)
			}
			path := filepath.Join(dir, "bad.safetensors")
			require.NoError(t, os.WriteFile(path, tc.file, 0o644))
			_, _, err = ReadFile(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadFile error = %v, want the path and %q", err, tc.want)
			}
		})
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	tests := []struct {
		name    string
		tensors map[string]Tensor
		want    string
	}{
		{"size mismatch", map[string]Tensor{"w": FromFloat32([]int64{3}, []float32{1})}, `tensor "w"`},
		{"unknown dtype", map[string]Tensor{"w": {DType: "X", Shape: []int64{1}, Data: []byte{1}}}, `unknown dtype "X"`},
		{"reserved name", map[string]Tensor{MetadataKey: FromFloat32([]int64{1}, []float32{1})}, "invalid tensor name"},
	}
	for _, tc := range tests {
		err := Write(&bytes.Buffer{}, tc.tensors, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.name, err, tc.want)
		}
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, tests[0].tensors, nil); err == nil {
		t.Fatal("WriteFile accepted an invalid tensor")
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("failed WriteFile left %d files behind", len(entries))
	}
}

func TestAsFloat32(t *testing.T) {
	h := func(v ...uint16) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	inf := float32(math.Inf(1))
	tests := []struct {
		name string
		t    Tensor
		want []float32
	}{
		{"f16", Tensor{F16, []int64{6}, h(0x3c00, 0xc000, 0x3800, 0x0001, 0x7c00, 0x8000)}, []float32{1, -2, 0.5, 1.0 / (1 << 24), inf, 0}},
		{"bf16", Tensor{BF16, []int64{2}, h(0x3f80, 0xc040)}, []float32{1, -3}},
		{"f64", FromFloat64([]int64{2}, []float64{0.25, -1}), []float32{0.25, -1}},
		{"f32", FromFloat32([]int64{1}, []float32{7}), []float32{7}},
	}
	for _, tc := range tests {
		got, err := tc.t.AsFloat32()
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: AsFloat32 = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := FromInt64([]int64{1}, []int64{1}).AsFloat32(); err == nil {
		t.Error("AsFloat32 of I64 succeeded")
	}
}
