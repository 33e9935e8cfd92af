package torch

/*
#include "msr.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

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
