// Package torch is msrtrain's binding to libtorch: tensors, autograd,
// optimizers and devices over the small C ABI in shim/msr.h.
//
// Three rules shape it (see DESIGN.md):
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
#cgo CFLAGS: -I${SRCDIR}/shim
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

// Must panics on error; for tests and examples only.
func Must(t *Tensor) *Tensor {
	if err := t.Err(); err != nil {
		panic(err)
	}
	return t
}

func errorf(op, format string, args ...any) error {
	return &Error{Op: op, Msg: fmt.Sprintf(format, args...)}
}
