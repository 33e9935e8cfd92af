package torch

/*
#include "msr.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// SetRequiresGrad marks a leaf tensor as a parameter whose gradient backward computes.
func (t *Tensor) SetRequiresGrad(on bool) error {
	if bad := firstErr(t); bad != nil {
		return bad.err
	}
	return check("set_requires_grad", C.msr_set_requires_grad(t.h, boolInt(on)))
}

// RequiresGrad reports whether autograd tracks t.
func (t *Tensor) RequiresGrad() bool {
	info, err := t.Info()
	return err == nil && info.RequiresGrad
}

// Backward accumulates d(t)/d(leaf) into every leaf's gradient; t must be a scalar.
func (t *Tensor) Backward() error {
	if bad := firstErr(t); bad != nil {
		return bad.err
	}
	return check("backward", C.msr_backward(t.h, nil, 0))
}

// BackwardWith back-propagates a given output gradient (for non-scalar t).
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph bool) error {
	if bad := firstErr(t, grad); bad != nil {
		return bad.err
	}
	return check("backward", C.msr_backward(t.h, grad.h, boolInt(retainGraph)))
}

// Grad returns t's accumulated gradient (an alias), or nil when it has none.
func (t *Tensor) Grad() *Tensor {
	if bad := firstErr(t); bad != nil {
		return bad
	}
	var out C.msr_tensor
	if err := check("grad", C.msr_grad(t.h, &out)); err != nil {
		return failed(err)
	}
	if out == nil {
		return nil
	}
	return wrap(out)
}

// ZeroGrad drops the gradients of ts (PyTorch's set_to_none).
func ZeroGrad(ts ...*Tensor) error {
	if len(ts) == 0 {
		return nil
	}
	if bad := firstErr(ts...); bad != nil {
		return bad.err
	}
	hs := handles(ts)
	return check("zero_grad", C.msr_zero_grad((*C.msr_tensor)(unsafe.Pointer(&hs[0])), C.int(len(hs))))
}

// CopyFrom overwrites t's data with src's (broadcast, converted), outside autograd.
func (t *Tensor) CopyFrom(src *Tensor) error {
	if bad := firstErrAnyDevice(2, t, src); bad != nil {
		return bad.err
	}
	return check("copy_", C.msr_copy_(t.h, src.h))
}

// ClipGradNorm scales the gradients of ts, and the gradient tensors grads
// (a sparse table's gradient rows), so that their joint L2 norm is at most
// maxNorm (maxNorm <= 0 only measures), and returns the norm before clipping.
func ClipGradNorm(ts []*Tensor, maxNorm float64, grads ...*Tensor) (float64, error) {
	if len(ts)+len(grads) == 0 {
		return 0, nil
	}
	if bad := firstErr(append(append([]*Tensor(nil), ts...), grads...)...); bad != nil {
		return 0, bad.err
	}
	hs, gs := handles(ts), handles(grads)
	var norm C.double
	err := check("clip_grad_norm", C.msr_clip_grad_norm(handlesPtr(hs), C.int(len(hs)), handlesPtr(gs), C.int(len(gs)), C.double(maxNorm), &norm))
	return float64(norm), err
}

func handlesPtr(hs []C.msr_tensor) *C.msr_tensor {
	if len(hs) == 0 {
		return nil
	}
	return (*C.msr_tensor)(unsafe.Pointer(&hs[0]))
}

// GradEnabled reports whether autograd records ops on this OS thread.
func GradEnabled() bool { return C.msr_grad_enabled() != 0 }

// NoGrad runs f with autograd off. It locks the goroutine to its OS thread
// for the duration, since grad mode is thread-local in libtorch.
func NoGrad(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.msr_grad_enabled()
	C.msr_set_grad_enabled(0)
	defer C.msr_set_grad_enabled(prev)
	f()
}

// InitKind names a parameter initialisation.
type InitKind int

// Initialisations (torch.nn.init).
const (
	InitUniform        InitKind = C.MSR_INIT_UNIFORM         // U(p1, p2)
	InitNormal         InitKind = C.MSR_INIT_NORMAL          // N(mean p1, std p2)
	InitConstant       InitKind = C.MSR_INIT_CONSTANT        // p1
	InitXavierUniform  InitKind = C.MSR_INIT_XAVIER_UNIFORM  // gain p1
	InitXavierNormal   InitKind = C.MSR_INIT_XAVIER_NORMAL   // gain p1
	InitKaimingUniform InitKind = C.MSR_INIT_KAIMING_UNIFORM // negative slope p1, fan_in, leaky_relu
	InitKaimingNormal  InitKind = C.MSR_INIT_KAIMING_NORMAL  // negative slope p1, fan_in, leaky_relu
)

// Init fills t in place (outside autograd) from libtorch's seeded generator.
func (t *Tensor) Init(kind InitKind, p1, p2 float64) error {
	if bad := firstErr(t); bad != nil {
		return bad.err
	}
	return check("init", C.msr_init(C.int(kind), t.h, C.double(p1), C.double(p2)))
}

// IndexCopyFrom writes src's slices into t at index along dim (t's
// index_copy_), in place and outside autograd.
func (t *Tensor) IndexCopyFrom(dim int64, index, src *Tensor) error {
	if bad := firstErr(t, index, src); bad != nil {
		return bad.err
	}
	return check("index_copy_", C.msr_index_copy_(t.h, C.int64_t(dim), index.h, src.h))
}
