package torch

/*
#include <stdlib.h>
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
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

// DeviceType says where a tensor's memory lives.
type DeviceType int

// Device kinds.
const (
	CPUType  DeviceType = C.MSR_CPU
	CUDAType DeviceType = C.MSR_CUDA
)

// Device is a device type and, for CUDA, the device index.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: CPUType, Index: -1}

// CUDA returns the i-th CUDA device.
func CUDA(i int) Device { return Device{Type: CUDAType, Index: i} }

func (d Device) String() string {
	if d.Type == CPUType {
		return "cpu"
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

// Tensor is a handle to a libtorch tensor, or the error of the op that was
// meant to produce it.
type Tensor struct {
	h   C.msr_tensor
	err error
	// unowned tensors get a finalizer that reports a leak if Close was never called (watchLeak).
	owned bool
}

var liveTensors atomic.Int64
var leakedTensors atomic.Int64

// LiveTensors is the number of tensor handles not yet freed; tests use it to find leaks.
func LiveTensors() int64 { return liveTensors.Load() }

// LeakedTensors counts unowned tensors that the garbage collector found unreachable
// without Close: their libtorch memory was never freed.
func LeakedTensors() int64 { return leakedTensors.Load() }

// Err is the error of the op that produced t (or of the first op before it that failed).
func (t *Tensor) Err() error {
	if t == nil {
		return errorf("tensor", "nil tensor")
	}
	return t.err
}

// Defined reports whether t holds a tensor rather than an error.
func (t *Tensor) Defined() bool { return t != nil && t.err == nil && t.h != nil }

func failed(err error) *Tensor { return &Tensor{err: err} }

// wrap takes ownership of a fresh C handle: the innermost open scope owns it,
// or, outside any scope, the caller must Close it.
func wrap(h C.msr_tensor) *Tensor {
	liveTensors.Add(1)
	t := &Tensor{h: h}
	scopes.Lock()
	if s := scopes.top; s != nil {
		s.owned = append(s.owned, t)
		t.owned = true
	}
	scopes.Unlock()
	if !t.owned {
		watchLeak(t)
	}
	return t
}

// watchLeak counts t in LeakedTensors if the collector finds it unreachable
// before Close: a tensor no scope owns is the caller's to free.
func watchLeak(t *Tensor) {
	runtime.SetFinalizer(t, func(t *Tensor) {
		if t.h != nil {
			leakedTensors.Add(1)
		}
	})
}

// Close frees a tensor that no scope owns. Closing a scope-owned tensor is an
// error reported by returning it; the scope frees it.
func (t *Tensor) Close() error {
	if t == nil || t.h == nil {
		return nil
	}
	if t.owned {
		return errorf("close", "tensor belongs to a scope; close the scope instead")
	}
	freeHandles([]C.msr_tensor{t.h})
	t.h = nil
	runtime.SetFinalizer(t, nil)
	return nil
}

func freeHandles(hs []C.msr_tensor) {
	if len(hs) == 0 {
		return
	}
	C.msr_free_tensors((*C.msr_tensor)(unsafe.Pointer(&hs[0])), C.int(len(hs)))
	liveTensors.Add(-int64(len(hs)))
}

// Scope owns every tensor created while it is the innermost open scope and
// frees them all in one call when closed. One training step is one scope.
type Scope struct {
	owned  []*Tensor
	parent *Scope
	closed bool
}

// scopes is process-wide: torch work runs on one goroutine (see package doc).
var scopes struct {
	sync.Mutex
	top *Scope
}

// NewScope opens a scope inside the current one.
func NewScope() *Scope {
	scopes.Lock()
	defer scopes.Unlock()
	s := &Scope{parent: scopes.top}
	scopes.top = s
	return s
}

// Close frees every tensor the scope still owns. Scopes close innermost first.
func (s *Scope) Close() {
	scopes.Lock()
	if s.closed {
		scopes.Unlock()
		return
	}
	if scopes.top != s {
		scopes.Unlock()
		panic("torch: scopes must be closed innermost first")
	}
	scopes.top = s.parent
	s.closed = true
	owned := s.owned
	s.owned = nil
	scopes.Unlock()
	hs := make([]C.msr_tensor, 0, len(owned))
	for _, t := range owned {
		if t.h != nil {
			hs = append(hs, t.h)
			t.h = nil
		}
	}
	freeHandles(hs)
}

// Keep moves tensors out of the scope into its parent scope or, at the top,
// into the caller's hands (who must Close them). Keep a step's outputs that must survive it.
func (s *Scope) Keep(ts ...*Tensor) {
	scopes.Lock()
	defer scopes.Unlock()
	keep := make(map[*Tensor]bool, len(ts))
	for _, t := range ts {
		if t != nil && t.h != nil {
			keep[t] = true
		}
	}
	rest := s.owned[:0]
	for _, t := range s.owned {
		if !keep[t] {
			rest = append(rest, t)
			continue
		}
		if s.parent != nil {
			s.parent.owned = append(s.parent.owned, t)
		} else {
			t.owned = false
			watchLeak(t)
		}
	}
	s.owned = rest
}

// Len is the number of tensors the scope owns.
func (s *Scope) Len() int { return len(s.owned) }

// ---------------------------------------------------------------- creation

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

// ---------------------------------------------------------------- inspection and transfer

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

// Shape returns the tensor's shape, or nil if it holds an error.
func (t *Tensor) Shape() []int64 {
	info, err := t.Info()
	if err != nil {
		return nil
	}
	return info.Shape
}

// Numel is the number of elements (0 if the tensor holds an error).
func (t *Tensor) Numel() int64 {
	s := t.Shape()
	if s == nil {
		return 0
	}
	return numel(s)
}

// DType returns the element type (-1 if the tensor holds an error).
func (t *Tensor) DType() DType {
	info, err := t.Info()
	if err != nil {
		return -1
	}
	return info.DType
}

// Device returns where the tensor lives (CPU if it holds an error).
func (t *Tensor) Device() Device {
	info, err := t.Info()
	if err != nil {
		return CPU
	}
	return info.Device
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
