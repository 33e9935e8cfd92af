package torch

/*
#include "msr.h"
*/
import "C"

func toOp(t *Tensor, dt DType, devType, devIndex int, nonBlocking, copy bool) *Tensor {
	if t.err != nil {
		return t
	}
	var out C.msr_tensor
	if err := check("to", C.msr_to(t.h, C.int(dt), C.int(devType), C.int(devIndex), boolInt(nonBlocking), boolInt(copy), &out)); err != nil {
		return failed(err)
	}
	return wrap(out)
}

// To converts to a dtype and device (a no-op alias when both already match).
func (t *Tensor) To(dt DType, dev Device) *Tensor {
	return toOp(t, dt, int(dev.Type), dev.Index, false, false)
}

// ToDevice moves a tensor, keeping its dtype. nonBlocking overlaps the copy
// with compute when the source is in pinned host memory and the target is CUDA.
func (t *Tensor) ToDevice(dev Device, nonBlocking bool) *Tensor {
	return toOp(t, -1, int(dev.Type), dev.Index, nonBlocking, false)
}

// ToDType converts the element type, keeping the device.
func (t *Tensor) ToDType(dt DType) *Tensor { return toOp(t, dt, -1, 0, false, false) }

// PinMemory copies a CPU tensor into page-locked memory (needs CUDA).
func (t *Tensor) PinMemory() *Tensor {
	if t.err != nil {
		return t
	}
	var out C.msr_tensor
	if err := check("pin memory", C.msr_pin_memory(t.h, &out)); err != nil {
		return failed(err)
	}
	return wrap(out)
}
