package torch

/*
#include "msr.h"
*/
import "C"

import (
	"strconv"
)

// DType is a tensor element type.
type DType int

// The element types the binding moves between Go and libtorch.
const (
	Float32  DType = C.MSR_F32
	Float64  DType = C.MSR_F64
	Int64    DType = C.MSR_I64
	Bool     DType = C.MSR_BOOL
	Int32    DType = C.MSR_I32
	Float16  DType = C.MSR_F16
	BFloat16 DType = C.MSR_BF16
	Uint8    DType = C.MSR_U8
)

var dtypeNames = map[DType]string{Float32: "float32", Float64: "float64", Int64: "int64", Bool: "bool",
	Int32: "int32", Float16: "float16", BFloat16: "bfloat16", Uint8: "uint8"}

func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	case Float16, BFloat16:
		return 2
	}
	return 1
}
