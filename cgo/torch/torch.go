// Package torch is msrtrain's binding to libtorch: tensors, autograd,
// optimizers and devices over the small C ABI in ../shim/msr.h.
//
// Three rules shape it (the README's Design section says more):
//
//   - Errors: every C call returns its error in the same call. An op that
//     fails returns a *Tensor carrying the error; ops on it pass the first
//     error along without calling libtorch, so a model's forward pass reads
//     like its equations and the caller checks Err() once.
//   - Memory: Go's GC cannot see libtorch memory. Tensors created while a
//     Scope is open belong to it and are freed together by Scope.Close;
//     tensors created outside any scope (parameters) are closed explicitly.
//   - Threads: grad mode, device and stream are thread-local in libtorch, so
//     all torch work belongs on one goroutine locked to its OS thread
//     (runtime.LockOSThread); NoGrad locks the thread itself.
package torch

/*
#cgo CFLAGS: -I${SRCDIR}/../shim
// The per-op entry points keep no Go pointer past their return and never
// call back into Go: telling cgo so lets the out-parameter of each op stay on
// the stack instead of costing a heap allocation per op.
#cgo noescape msr_from_blob
#cgo nocallback msr_from_blob
#cgo noescape msr_copy_to_host
#cgo nocallback msr_copy_to_host
#cgo noescape msr_info
#cgo nocallback msr_info
#cgo noescape msr_create
#cgo nocallback msr_create
#cgo noescape msr_to
#cgo nocallback msr_to
#cgo noescape msr_unary
#cgo nocallback msr_unary
#cgo noescape msr_binary
#cgo noescape msr_bench_add_once
#cgo nocallback msr_bench_add_once
#cgo nocallback msr_binary
#cgo noescape msr_scalar
#cgo nocallback msr_scalar
#cgo noescape msr_reduce
#cgo nocallback msr_reduce
#cgo noescape msr_shape
#cgo nocallback msr_shape
#cgo noescape msr_cat
#cgo nocallback msr_cat
#cgo noescape msr_einsum
#cgo nocallback msr_einsum
#cgo noescape msr_linear
#cgo nocallback msr_linear
#cgo noescape msr_addmm
#cgo nocallback msr_addmm
#cgo noescape msr_baddbmm
#cgo nocallback msr_baddbmm
#cgo noescape msr_index
#cgo nocallback msr_index
#cgo noescape msr_masked_fill
#cgo nocallback msr_masked_fill
#cgo noescape msr_masked_select
#cgo nocallback msr_masked_select
#cgo noescape msr_where
#cgo nocallback msr_where
#cgo noescape msr_clamp
#cgo nocallback msr_clamp
#cgo noescape msr_softmax
#cgo nocallback msr_softmax
#cgo noescape msr_layer_norm
#cgo nocallback msr_layer_norm
#cgo noescape msr_batch_norm
#cgo nocallback msr_batch_norm
#cgo noescape msr_dropout
#cgo nocallback msr_dropout
#cgo noescape msr_embedding
#cgo nocallback msr_embedding
#cgo noescape msr_embedding_bag
#cgo nocallback msr_embedding_bag
#cgo noescape msr_bce_with_logits
#cgo nocallback msr_bce_with_logits
#cgo noescape msr_grad
#cgo nocallback msr_grad
#cgo noescape msr_backward
#cgo nocallback msr_backward
#cgo noescape msr_free_tensors
#cgo nocallback msr_free_tensors
#include <stdlib.h>
#include "msr.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// ErrOutOfMemory matches (errors.Is) any failure libtorch reported as out of memory.
var ErrOutOfMemory = errors.New("out of memory")

// Error is a libtorch failure, with the op that raised it.
type Error struct {
	Op  string
	Msg string
	OOM bool
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// Is lets errors.Is(err, ErrOutOfMemory) find out-of-memory failures.
func (e *Error) Is(target error) bool { return target == ErrOutOfMemory && e.OOM }

// check turns a C error into a Go error and frees the C string.
func check(op string, e C.msr_err) error {
	if e == nil {
		return nil
	}
	msg := C.GoString(e)
	C.msr_free_err(e)
	oom := strings.HasPrefix(msg, C.MSR_OOM_PREFIX)
	msg = strings.TrimPrefix(msg, C.MSR_OOM_PREFIX)
	// libtorch appends C++ source locations after a newline; the first
	// lines say what went wrong, which is what a user needs.
	msg = strings.TrimSpace(msg)
	return &Error{Op: op, Msg: msg, OOM: oom}
}

// cstring returns a NUL-terminated copy of a Go byte buffer filled by C.
func cstring(buf []byte) string {
	if i := strings.IndexByte(string(buf), 0); i >= 0 {
		return string(buf[:i])
	}
	return string(buf)
}

func bytesPtr(b []byte) *C.char { return (*C.char)(unsafe.Pointer(&b[0])) }

func int64Ptr(v []int64) *C.int64_t {
	if len(v) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&v[0]))
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func errorf(op, format string, args ...any) error {
	return &Error{Op: op, Msg: fmt.Sprintf(format, args...)}
}
