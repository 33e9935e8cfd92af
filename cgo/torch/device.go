package torch

/*
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceType says where a tensor's memory lives.
type DeviceType int

// Device kinds.
const (
	CPUType  DeviceType = C.MSR_CPU
	CUDAType DeviceType = C.MSR_CUDA
	// MetaType is libtorch's meta device: tensors with shapes and no data.
	// Placement tests run a model there to find tensors made on the wrong
	// device without a GPU (see CheckPlacement).
	MetaType DeviceType = C.MSR_META
)

// Device is a device type and, for CUDA, the device index.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: CPUType, Index: -1}

// Meta is libtorch's meta device. Ops run there compute shapes only; reading
// a value back (Item, Float32s) fails, and unique treats every element as
// distinct. It is not a device for training, and ParseDevice does not accept it.
var Meta = Device{Type: MetaType, Index: -1}

// CUDA returns the i-th CUDA device.
func CUDA(i int) Device { return Device{Type: CUDAType, Index: i} }

func (d Device) String() string {
	switch d.Type {
	case CPUType:
		return "cpu"
	case MetaType:
		return "meta"
	}
	return "cuda:" + strconv.Itoa(d.Index)
}

// IsCUDA reports whether the device is a GPU.
func (d Device) IsCUDA() bool { return d.Type == CUDAType }

// ParseDevice reads "cpu", "cuda" or "cuda:N". It does not check that the device exists; see CheckDevice.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		i, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || i < 0 {
			return Device{}, fmt.Errorf("device %q: the CUDA index must be a non-negative integer", s)
		}
		return CUDA(i), nil
	}
	return Device{}, fmt.Errorf("device %q: want cpu, cuda or cuda:N", s)
}
