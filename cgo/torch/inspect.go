package torch

/*
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Info is a tensor's metadata.
type Info struct {
	DType        DType
	Shape        []int64
	Device       Device
	RequiresGrad bool
}

// Info reads a tensor's metadata in one call.
func (t *Tensor) Info() (Info, error) {
	if t.err != nil {
		return Info{}, t.err
	}
	if t.h == nil {
		return Info{}, errorf("info", "tensor was freed")
	}
	var dt, nd, dtyp, didx, rg C.int
	var shape [C.MSR_MAX_DIMS]C.int64_t
	if err := check("info", C.msr_info(t.h, &dt, &nd, &shape[0], &dtyp, &didx, &rg)); err != nil {
		return Info{}, err
	}
	s := make([]int64, int(nd))
	for i := range s {
		s[i] = int64(shape[i])
	}
	return Info{DType: DType(dt), Shape: s, Device: Device{Type: DeviceType(dtyp), Index: int(didx)}, RequiresGrad: rg != 0}, nil
}

// The getters below (Shape, Numel, DType, Device) are for tensors known to
// be good: parameters, or results whose Err was checked. On a tensor that
// holds an error or was freed they panic, naming the error: there is no
// shape to return, and a default (nil, -1, CPU) would pass for a real one.
// Code that may hold a failed tensor calls Info, which returns the error.

// Shape returns the tensor's shape; it panics if the tensor holds an error (see Info).
func (t *Tensor) Shape() []int64 { return t.mustInfo("Shape").Shape }

// Numel is the number of elements; it panics if the tensor holds an error (see Info).
func (t *Tensor) Numel() int64 { return numel(t.mustInfo("Numel").Shape) }

// DType returns the element type; it panics if the tensor holds an error (see Info).
func (t *Tensor) DType() DType { return t.mustInfo("DType").DType }

// Device returns where the tensor lives; it panics if the tensor holds an error (see Info).
func (t *Tensor) Device() Device { return t.mustInfo("Device").Device }

func (t *Tensor) mustInfo(getter string) Info {
	info, err := t.Info()
	if err != nil {
		panic(fmt.Errorf("torch: %s of a failed tensor (check Err or call Info first): %w", getter, err))
	}
	return info
}

func (t *Tensor) String() string {
	if t == nil {
		return "Tensor(nil)"
	}
	info, err := t.Info()
	if err != nil {
		return "Tensor(error: " + err.Error() + ")"
	}
	return fmt.Sprintf("Tensor(%s, %v, %s)", info.DType, info.Shape, info.Device)
}

// Values copies a tensor of element type T to a Go slice (from any device).
func Values[T element](t *Tensor) ([]T, error) {
	info, err := t.Info()
	if err != nil {
		return nil, err
	}
	if want := dtypeOf[T](); info.DType != want {
		return nil, errorf("values", "tensor is %s, asked for %s", info.DType, want)
	}
	out := make([]T, numel(info.Shape))
	if len(out) == 0 {
		return out, nil
	}
	nbytes := C.int64_t(len(out) * info.DType.Size())
	if err := check("values", C.msr_copy_to_host(t.h, unsafe.Pointer(&out[0]), nbytes)); err != nil {
		return nil, err
	}
	return out, nil
}

// Float32s copies a float32 tensor to Go.
func (t *Tensor) Float32s() ([]float32, error) { return Values[float32](t) }

// Float64s copies a float64 tensor to Go.
func (t *Tensor) Float64s() ([]float64, error) { return Values[float64](t) }

// Int64s copies an int64 tensor to Go.
func (t *Tensor) Int64s() ([]int64, error) { return Values[int64](t) }

// Bools copies a bool tensor to Go.
func (t *Tensor) Bools() ([]bool, error) { return Values[bool](t) }

// Item returns the value of a one-element tensor of any numeric type as float64.
func (t *Tensor) Item() (float64, error) {
	d := t.To(Float64, CPU)
	if !d.owned && d != t {
		defer d.Close() // outside a scope the temporary is ours to free
	}
	v, err := d.Float64s()
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, errorf("item", "tensor has %d elements, want 1", len(v))
	}
	return v[0], nil
}
