package safetensors

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// The testdata .npy files were written by numpy.lib.format.write_array from
// [[1.5, -2, 3.25], [0, 0.001, -7]] (and [3, -1, 7] for i8_1d).
func TestReadNpyFile(t *testing.T) {
	want := []float32{1.5, -2, 3.25, 0, 0.001, -7}
	tests := []struct {
		file  string
		dtype string
		shape []int64
		want  []float32
	}{
		{"f4_v1.npy", F32, []int64{2, 3}, want},
		{"f4_v2.npy", F32, []int64{2, 3}, want},
		{"f4_v3.npy", F32, []int64{2, 3}, want},
		{"f8_v1.npy", F64, []int64{2, 3}, want},
		{"f2_v1.npy", F16, []int64{2, 3}, []float32{1.5, -2, 3.25, 0, 0.0010004044, -7}},
	}
	for _, tc := range tests {
		tn, err := ReadNpyFile("testdata/" + tc.file)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		got, err := tn.AsFloat32()
		if tn.DType != tc.dtype || !reflect.DeepEqual(tn.Shape, tc.shape) || err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %s %v %v (%v); want %s %v %v", tc.file, tn.DType, tn.Shape, got, err, tc.dtype, tc.shape, tc.want)
		}
	}
	tn, err := ReadNpyFile("testdata/i8_1d.npy")
	if v, _ := tn.Int64(); err != nil || !reflect.DeepEqual(v, []int64{3, -1, 7}) {
		t.Errorf("i8_1d = %v, %v", v, err)
	}
}

func TestReadNpyErrors(t *testing.T) {
	v1 := func(header string, data ...byte) []byte {
		b := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
		return append(append(b, header...), data...)
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"bad magic", []byte("PK\x03\x04 zip file"), "bad magic"},
		{"truncated", []byte("\x93NUM"), "reading magic"},
		{"version 9", []byte("\x93NUMPY\x09\x00\x00\x00"), "unsupported format version 9.0"},
		{"big endian", v1("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", 0, 0, 0, 0), `unsupported dtype ">f4"`},
		{"object dtype", v1("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n"), `unsupported dtype "|O"`},
		{"fortran", v1("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", 0, 0, 0, 0), "Fortran-order"},
		{"short data", v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n", 0, 0, 0, 0), "needs 4×4 bytes, have 4"},
		{"bad shape", v1("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }\n"), "bad shape"},
		{"header cut", append([]byte("\x93NUMPY\x01\x00\x40\x00"), "{'descr'"...), "reading 64-byte header"},
	}
	for _, tc := range tests {
		_, err := ReadNpy(bytes.NewReader(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.name, err, tc.want)
		}
	}
	_, err := ReadNpyFile("testdata/f4_fortran.npy")
	if err == nil || !strings.Contains(err.Error(), "testdata/f4_fortran.npy: npy: Fortran-order") {
		t.Errorf("fortran file error = %v", err)
	}
	_, err = ReadNpyFile("testdata/f4_bigendian.npy")
	if err == nil || !strings.Contains(err.Error(), `">f4"`) {
		t.Errorf("big-endian file error = %v", err)
	}
}
