package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var npyMagic = []byte("\x93NUMPY")

// npyDTypes maps the little-endian (or byte-sized) NumPy descr strings this
// reader accepts to safetensors dtypes.
var npyDTypes = map[string]string{
	"<f8": F64, "<f4": F32, "<f2": F16,
	"<i8": I64, "<i4": I32, "|u1": U8, "|b1": BOOL,
}

var (
	npyDescrRe   = regexp.MustCompile(`['"]descr['"]\s*:\s*['"]([^'"]*)['"]`)
	npyFortranRe = regexp.MustCompile(`['"]fortran_order['"]\s*:\s*(True|False)`)
	npyShapeRe   = regexp.MustCompile(`['"]shape['"]\s*:\s*\(([^)]*)\)`)
)

// ReadNpy decodes a NumPy .npy array (format version 1, 2 or 3) in C order
// with one of the dtypes <f8, <f4, <f2, <i8, <i4, |u1, |b1.
func ReadNpy(r io.Reader) (Tensor, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Tensor{}, fmt.Errorf("npy: reading magic: %w", err)
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return Tensor{}, fmt.Errorf("npy: not a .npy file (bad magic)")
	}
	var hlen int64
	switch major := pre[6]; major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Tensor{}, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Tensor{}, fmt.Errorf("npy: reading header length: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint32(b[:]))
	default:
		return Tensor{}, fmt.Errorf("npy: unsupported format version %d.%d", major, pre[7])
	}
	if hlen > MaxHeaderSize {
		return Tensor{}, fmt.Errorf("npy: header length %d out of bounds", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return Tensor{}, fmt.Errorf("npy: reading %d-byte header: %w", hlen, err)
	}
	dtype, shape, err := parseNpyHeader(string(hb))
	if err != nil {
		return Tensor{}, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return Tensor{}, fmt.Errorf("npy: reading data: %w", err)
	}
	t := Tensor{DType: dtype, Shape: shape, Data: data}
	if err := t.Validate(); err != nil {
		return Tensor{}, fmt.Errorf("npy: %w", err)
	}
	return t, nil
}

// ReadNpyFile reads a .npy file; errors name the file.
func ReadNpyFile(path string) (Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return Tensor{}, err
	}
	defer f.Close()
	t, err := ReadNpy(f)
	if err != nil {
		return Tensor{}, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func parseNpyHeader(h string) (string, []int64, error) {
	m := npyDescrRe.FindStringSubmatch(h)
	if m == nil {
		return "", nil, fmt.Errorf("npy: header %q has no descr", strings.TrimSpace(h))
	}
	dtype, ok := npyDTypes[m[1]]
	if !ok {
		return "", nil, fmt.Errorf("npy: unsupported dtype %q (want little-endian <f4, <f8, <f2, <i4, <i8, |u1 or |b1)", m[1])
	}
	m = npyFortranRe.FindStringSubmatch(h)
	if m == nil {
		return "", nil, fmt.Errorf("npy: header %q has no fortran_order", strings.TrimSpace(h))
	}
	if m[1] == "True" {
		return "", nil, fmt.Errorf("npy: Fortran-order arrays are not supported; save np.ascontiguousarray(x)")
	}
	m = npyShapeRe.FindStringSubmatch(h)
	if m == nil {
		return "", nil, fmt.Errorf("npy: header %q has no shape", strings.TrimSpace(h))
	}
	shape := []int64{}
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.ParseInt(strings.TrimSuffix(f, "L"), 10, 64)
		if err != nil || d < 0 {
			return "", nil, fmt.Errorf("npy: bad shape (%s)", m[1])
		}
		shape = append(shape, d)
	}
	return dtype, shape, nil
}
