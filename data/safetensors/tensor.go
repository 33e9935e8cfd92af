package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrFormat is wrapped by every error about a malformed file or tensor.
var ErrFormat = errors.New("safetensors: invalid format")

// Tensor is one named array: its dtype (F32, I64, ...), shape and raw
// little-endian row-major bytes.
type Tensor struct {
	DType string
	Shape []int64
	Data  []byte
}

// NumElements is the product of the shape (1 for a scalar). It fails on a
// negative dimension or an overflowing product.
func NumElements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension in shape %v", ErrFormat, shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("%w: shape %v overflows", ErrFormat, shape)
		}
		n *= d
	}
	return n, nil
}

// Validate checks that the dtype is known and that len(Data) equals the
// shape's element count times the dtype size.
func (t Tensor) Validate() error {
	size, err := DTypeSize(t.DType)
	if err != nil {
		return err
	}
	n, err := NumElements(t.Shape)
	if err != nil {
		return err
	}
	if n > math.MaxInt64/size || int64(len(t.Data)) != n*size {
		return fmt.Errorf("%w: shape %v of %s needs %d×%d bytes, have %d", ErrFormat, t.Shape, t.DType, n, size, len(t.Data))
	}
	return nil
}

// FromFloat32 builds an F32 tensor. It does not check that shape matches
// len(values); Write does.
func FromFloat32(shape []int64, values []float32) Tensor {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{DType: F32, Shape: cloneShape(shape), Data: b}
}

// FromFloat64 builds an F64 tensor.
func FromFloat64(shape []int64, values []float64) Tensor {
	b := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return Tensor{DType: F64, Shape: cloneShape(shape), Data: b}
}

// FromInt64 builds an I64 tensor.
func FromInt64(shape []int64, values []int64) Tensor {
	b := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Tensor{DType: I64, Shape: cloneShape(shape), Data: b}
}

// FromInt32 builds an I32 tensor.
func FromInt32(shape []int64, values []int32) Tensor {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return Tensor{DType: I32, Shape: cloneShape(shape), Data: b}
}

// Float32 decodes an F32 tensor.
func (t Tensor) Float32() ([]float32, error) {
	if err := t.expect(F32); err != nil {
		return nil, err
	}
	out := make([]float32, len(t.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// Float64 decodes an F64 tensor.
func (t Tensor) Float64() ([]float64, error) {
	if err := t.expect(F64); err != nil {
		return nil, err
	}
	out := make([]float64, len(t.Data)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// Int64 decodes an I64 tensor.
func (t Tensor) Int64() ([]int64, error) {
	if err := t.expect(I64); err != nil {
		return nil, err
	}
	out := make([]int64, len(t.Data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// Int32 decodes an I32 tensor.
func (t Tensor) Int32() ([]int32, error) {
	if err := t.expect(I32); err != nil {
		return nil, err
	}
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, nil
}

// AsFloat32 decodes any floating-point tensor (F32, F64, F16, BF16) to
// float32, rounding F64 to the nearest float32.
func (t Tensor) AsFloat32() ([]float32, error) {
	switch t.DType {
	case F32:
		return t.Float32()
	case F64:
		f, err := t.Float64()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(f))
		for i, v := range f {
			out[i] = float32(v)
		}
		return out, nil
	case F16, BF16:
		if err := t.Validate(); err != nil {
			return nil, err
		}
		out := make([]float32, len(t.Data)/2)
		for i := range out {
			h := binary.LittleEndian.Uint16(t.Data[2*i:])
			if t.DType == BF16 {
				out[i] = math.Float32frombits(uint32(h) << 16)
			} else {
				out[i] = halfToFloat32(h)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: dtype %s is not a floating-point type", ErrFormat, t.DType)
}

func (t Tensor) expect(dtype string) error {
	if t.DType != dtype {
		return fmt.Errorf("%w: tensor is %s, not %s", ErrFormat, t.DType, dtype)
	}
	return t.Validate()
}

// halfToFloat32 converts an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = frac × 2^-24
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

func cloneShape(s []int64) []int64 {
	return append(make([]int64, 0, len(s)), s...)
}
