package safetensors

import "fmt"

// Data types understood by this package. F16, BF16 and the integer types
// other than I32/I64 are carried as raw bytes; Tensor.AsFloat32 converts
// F16 and BF16.
const (
	F64  = "F64"
	F32  = "F32"
	F16  = "F16"
	BF16 = "BF16"
	I64  = "I64"
	I32  = "I32"
	I16  = "I16"
	I8   = "I8"
	U64  = "U64"
	U32  = "U32"
	U16  = "U16"
	U8   = "U8"
	BOOL = "BOOL"
)

var dtypeSizes = map[string]int64{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	BOOL: 1,
}

// DTypeSize returns the size in bytes of one element of dtype.
func DTypeSize(dtype string) (int64, error) {
	n, ok := dtypeSizes[dtype]
	if !ok {
		return 0, fmt.Errorf("%w: unknown dtype %q", ErrFormat, dtype)
	}
	return n, nil
}
