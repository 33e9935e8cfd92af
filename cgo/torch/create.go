package torch

/*
#include "msr.h"
*/
import "C"

import (
	"reflect"
	"unsafe"
)

type element interface {
	~float32 | ~float64 | ~int64 | ~int32 | ~bool | ~uint8
}

// dtypeOf goes by the underlying kind, so that named element types
// (type score float64) map to their dtype rather than to uint8.
func dtypeOf[T element]() DType {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Float32:
		return Float32
	case reflect.Float64:
		return Float64
	case reflect.Int64:
		return Int64
	case reflect.Int32:
		return Int32
	case reflect.Bool:
		return Bool
	}
	return Uint8
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// FromSlice copies data into a new CPU tensor of the given shape (1-D when shape is empty).
func FromSlice[T element](data []T, shape ...int64) *Tensor {
	if len(shape) == 0 {
		shape = []int64{int64(len(data))}
	}
	for _, d := range shape {
		if d < 0 {
			return failed(errorf("from slice", "negative dimension in shape %v", shape))
		}
	}
	if n := numel(shape); n != int64(len(data)) {
		return failed(errorf("from slice", "shape %v holds %d elements, data has %d", shape, n, len(data)))
	}
	var p unsafe.Pointer
	var dummy T
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	} else {
		p = unsafe.Pointer(&dummy)
	}
	var out C.msr_tensor
	if err := check("from slice", C.msr_from_blob(p, int64Ptr(shape), C.int(len(shape)), C.int(dtypeOf[T]()), &out)); err != nil {
		return failed(err)
	}
	return wrap(out)
}

// Scalar returns a 0-dimensional float32 CPU tensor.
func Scalar(v float32) *Tensor {
	var out C.msr_tensor
	if err := check("scalar", C.msr_from_blob(unsafe.Pointer(&v), nil, 0, C.int(Float32), &out)); err != nil {
		return failed(err)
	}
	return wrap(out)
}

func create(op C.int, name string, shape []int64, dt DType, dev Device, a, b float64) *Tensor {
	var out C.msr_tensor
	err := C.msr_create(op, int64Ptr(shape), C.int(len(shape)), C.int(dt), C.int(dev.Type), C.int(dev.Index), C.double(a), C.double(b), &out)
	if err := check(name, err); err != nil {
		return failed(err)
	}
	return wrap(out)
}

// Zeros returns a tensor of zeros.
func Zeros(shape []int64, dt DType, dev Device) *Tensor {
	return create(C.MSR_ZEROS, "zeros", shape, dt, dev, 0, 0)
}

// Ones returns a tensor of ones.
func Ones(shape []int64, dt DType, dev Device) *Tensor {
	return create(C.MSR_ONES, "ones", shape, dt, dev, 0, 0)
}

// Full returns a tensor filled with v.
func Full(shape []int64, v float64, dt DType, dev Device) *Tensor {
	return create(C.MSR_FULL, "full", shape, dt, dev, v, 0)
}

// Randn samples a standard normal from libtorch's generator (see ManualSeed).
func Randn(shape []int64, dt DType, dev Device) *Tensor {
	return create(C.MSR_RANDN, "randn", shape, dt, dev, 0, 0)
}

// Rand samples uniformly from [0, 1).
func Rand(shape []int64, dt DType, dev Device) *Tensor {
	return create(C.MSR_RAND, "rand", shape, dt, dev, 0, 0)
}

// Randint samples integers uniformly from [lo, hi).
func Randint(lo, hi int64, shape []int64, dev Device) *Tensor {
	return create(C.MSR_RANDINT, "randint", shape, Int64, dev, float64(lo), float64(hi))
}

// Empty returns an uninitialised tensor.
func Empty(shape []int64, dt DType, dev Device) *Tensor {
	return create(C.MSR_EMPTY, "empty", shape, dt, dev, 0, 0)
}

// Arange returns [start, start+step, ...) below end.
func Arange(start, end, step float64, dt DType, dev Device) *Tensor {
	var out C.msr_tensor
	if err := check("arange", C.msr_arange(C.double(start), C.double(end), C.double(step), C.int(dt), C.int(dev.Type), C.int(dev.Index), &out)); err != nil {
		return failed(err)
	}
	return wrap(out)
}
