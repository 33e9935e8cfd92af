package torch

/*
#include <stdlib.h>
#include "msr.h"
*/
import "C"

import "unsafe"

// Failed returns a tensor that carries err, for code that detects a problem
// before any op runs (a malformed batch) and must return a tensor: the
// caller's Err() then reports err itself.
func Failed(err error) *Tensor {
	if err == nil {
		err = errorf("failed", "nil error")
	}
	return failed(err)
}

// firstErr returns the first input that carries an error, so that ops pass it along.
func firstErr(ts ...*Tensor) *Tensor { return firstErrOpt(len(ts), ts...) }

// firstErrOpt is firstErr for ops whose arguments after the first nRequired
// are optional: a nil one among those is left out (the shim gets NULL), a nil
// required one is an error. Under CheckPlacement, arguments on different
// devices are an error too.
func firstErrOpt(nRequired int, ts ...*Tensor) *Tensor {
	if bad := firstErrAnyDevice(nRequired, ts...); bad != nil {
		return bad
	}
	if placementCheck.Load() {
		if err := mixedDevices(ts); err != nil {
			return failed(err)
		}
	}
	return nil
}

// firstErrAnyDevice is firstErrOpt for transfers, whose arguments may lie on different devices.
func firstErrAnyDevice(nRequired int, ts ...*Tensor) *Tensor {
	for i, t := range ts {
		if t == nil {
			if i >= nRequired {
				continue
			}
			return failed(errorf("op", "nil tensor argument"))
		}
		if t.err != nil {
			return t
		}
		if t.h == nil {
			return failed(errorf("op", "tensor was freed (its scope was closed)"))
		}
	}
	return nil
}

// result wraps the outcome of one C call.
func result(name string, e C.msr_err, out C.msr_tensor) *Tensor {
	if err := check(name, e); err != nil {
		return failed(err)
	}
	return wrap(out)
}

// handle returns t's C handle, or NULL for an optional tensor left out.
func handle(t *Tensor) C.msr_tensor {
	if t == nil {
		return nil
	}
	return t.h
}

func handles(ts []*Tensor) []C.msr_tensor {
	hs := make([]C.msr_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs
}

func unary(op C.int, name string, a *Tensor) *Tensor {
	if bad := firstErr(a); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result(name, C.msr_unary(op, a.h, &out), out)
}

func binary(op C.int, name string, a, b *Tensor) *Tensor {
	if bad := firstErr(a, b); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result(name, C.msr_binary(op, a.h, b.h, &out), out)
}

func scalar(op C.int, name string, a *Tensor, s float64) *Tensor {
	if bad := firstErr(a); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result(name, C.msr_scalar(op, a.h, C.double(s), &out), out)
}

func reduce(op C.int, name string, a *Tensor, dims []int64, keep bool) *Tensor {
	if bad := firstErr(a); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result(name, C.msr_reduce(op, a.h, int64Ptr(dims), C.int(len(dims)), boolInt(keep), &out), out)
}

func reshape(op C.int, name string, a *Tensor, args []int64) *Tensor {
	if bad := firstErr(a); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result(name, C.msr_shape(op, a.h, int64Ptr(args), C.int(len(args)), &out), out)
}

// Elementwise functions.

func (t *Tensor) Relu() *Tensor       { return unary(C.MSR_RELU, "relu", t) }
func (t *Tensor) Sigmoid() *Tensor    { return unary(C.MSR_SIGMOID, "sigmoid", t) }
func (t *Tensor) Tanh() *Tensor       { return unary(C.MSR_TANH, "tanh", t) }
func (t *Tensor) Exp() *Tensor        { return unary(C.MSR_EXP, "exp", t) }
func (t *Tensor) Log() *Tensor        { return unary(C.MSR_LOG, "log", t) }
func (t *Tensor) Neg() *Tensor        { return unary(C.MSR_NEG, "neg", t) }
func (t *Tensor) Abs() *Tensor        { return unary(C.MSR_ABS, "abs", t) }
func (t *Tensor) Sqrt() *Tensor       { return unary(C.MSR_SQRT, "sqrt", t) }
func (t *Tensor) Square() *Tensor     { return unary(C.MSR_SQUARE, "square", t) }
func (t *Tensor) Gelu() *Tensor       { return unary(C.MSR_GELU, "gelu", t) }
func (t *Tensor) Silu() *Tensor       { return unary(C.MSR_SILU, "silu", t) }
func (t *Tensor) LogSigmoid() *Tensor { return unary(C.MSR_LOG_SIGMOID, "log_sigmoid", t) }
func (t *Tensor) LogicalNot() *Tensor { return unary(C.MSR_LOGICAL_NOT, "logical_not", t) }

// Clone copies the data; the copy stays in the autograd graph.
func (t *Tensor) Clone() *Tensor { return unary(C.MSR_CLONE, "clone", t) }

// Detach shares the data but leaves the autograd graph.
func (t *Tensor) Detach() *Tensor { return unary(C.MSR_DETACH, "detach", t) }

// Contiguous returns t laid out row-major (an alias when it already is).
func (t *Tensor) Contiguous() *Tensor { return unary(C.MSR_CONTIGUOUS, "contiguous", t) }

// T transposes a 2-D tensor.
func (t *Tensor) T() *Tensor { return unary(C.MSR_T, "t", t) }

// AllFinite is a bool scalar: no NaN or Inf in t.
func (t *Tensor) AllFinite() *Tensor { return unary(C.MSR_ISFINITE_ALL, "isfinite", t) }

// LeakyRelu is max(x, 0) + slope*min(x, 0).
func (t *Tensor) LeakyRelu(slope float64) *Tensor {
	return scalar(C.MSR_S_LEAKY_RELU, "leaky_relu", t, slope)
}

// Broadcasting binary ops.

func (t *Tensor) Add(o *Tensor) *Tensor        { return binary(C.MSR_ADD, "add", t, o) }
func (t *Tensor) Sub(o *Tensor) *Tensor        { return binary(C.MSR_SUB, "sub", t, o) }
func (t *Tensor) Mul(o *Tensor) *Tensor        { return binary(C.MSR_MUL, "mul", t, o) }
func (t *Tensor) Div(o *Tensor) *Tensor        { return binary(C.MSR_DIV, "div", t, o) }
func (t *Tensor) Pow(o *Tensor) *Tensor        { return binary(C.MSR_POW, "pow", t, o) }
func (t *Tensor) Maximum(o *Tensor) *Tensor    { return binary(C.MSR_MAXIMUM, "maximum", t, o) }
func (t *Tensor) Minimum(o *Tensor) *Tensor    { return binary(C.MSR_MINIMUM, "minimum", t, o) }
func (t *Tensor) Eq(o *Tensor) *Tensor         { return binary(C.MSR_EQ, "eq", t, o) }
func (t *Tensor) Ne(o *Tensor) *Tensor         { return binary(C.MSR_NE, "ne", t, o) }
func (t *Tensor) Lt(o *Tensor) *Tensor         { return binary(C.MSR_LT, "lt", t, o) }
func (t *Tensor) Le(o *Tensor) *Tensor         { return binary(C.MSR_LE, "le", t, o) }
func (t *Tensor) Gt(o *Tensor) *Tensor         { return binary(C.MSR_GT, "gt", t, o) }
func (t *Tensor) Ge(o *Tensor) *Tensor         { return binary(C.MSR_GE, "ge", t, o) }
func (t *Tensor) LogicalAnd(o *Tensor) *Tensor { return binary(C.MSR_LOGICAL_AND, "logical_and", t, o) }
func (t *Tensor) LogicalOr(o *Tensor) *Tensor  { return binary(C.MSR_LOGICAL_OR, "logical_or", t, o) }

// Matmul follows torch.matmul's broadcasting rules.
func (t *Tensor) Matmul(o *Tensor) *Tensor { return binary(C.MSR_MATMUL, "matmul", t, o) }

// Mm multiplies two matrices.
func (t *Tensor) Mm(o *Tensor) *Tensor { return binary(C.MSR_MM, "mm", t, o) }

// Bmm multiplies batches of matrices: [B,n,k] x [B,k,m] -> [B,n,m].
func (t *Tensor) Bmm(o *Tensor) *Tensor { return binary(C.MSR_BMM, "bmm", t, o) }

// Scalar ops.

func (t *Tensor) AddScalar(s float64) *Tensor { return scalar(C.MSR_S_ADD, "add", t, s) }
func (t *Tensor) SubScalar(s float64) *Tensor { return scalar(C.MSR_S_SUB, "sub", t, s) }
func (t *Tensor) MulScalar(s float64) *Tensor { return scalar(C.MSR_S_MUL, "mul", t, s) }
func (t *Tensor) DivScalar(s float64) *Tensor { return scalar(C.MSR_S_DIV, "div", t, s) }
func (t *Tensor) PowScalar(s float64) *Tensor { return scalar(C.MSR_S_POW, "pow", t, s) }
func (t *Tensor) EqScalar(s float64) *Tensor  { return scalar(C.MSR_S_EQ, "eq", t, s) }
func (t *Tensor) NeScalar(s float64) *Tensor  { return scalar(C.MSR_S_NE, "ne", t, s) }
func (t *Tensor) LtScalar(s float64) *Tensor  { return scalar(C.MSR_S_LT, "lt", t, s) }
func (t *Tensor) LeScalar(s float64) *Tensor  { return scalar(C.MSR_S_LE, "le", t, s) }
func (t *Tensor) GtScalar(s float64) *Tensor  { return scalar(C.MSR_S_GT, "gt", t, s) }
func (t *Tensor) GeScalar(s float64) *Tensor  { return scalar(C.MSR_S_GE, "ge", t, s) }

// RSubScalar is s - t.
func (t *Tensor) RSubScalar(s float64) *Tensor { return scalar(C.MSR_S_RSUB, "rsub", t, s) }

// Reductions. With no dims they reduce over every dimension.

func (t *Tensor) Sum(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_SUM, "sum", t, dims, keep)
}
func (t *Tensor) Mean(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_MEAN, "mean", t, dims, keep)
}
func (t *Tensor) Amax(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_AMAX, "amax", t, dims, keep)
}
func (t *Tensor) Amin(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_AMIN, "amin", t, dims, keep)
}
func (t *Tensor) Norm(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_NORM, "norm", t, dims, keep)
}
func (t *Tensor) LogSumExp(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_LOGSUMEXP, "logsumexp", t, dims, keep)
}

// Argmax over one dimension, or over the flattened tensor when dims is empty.
func (t *Tensor) Argmax(keep bool, dims ...int64) *Tensor {
	return reduce(C.MSR_ARGMAX, "argmax", t, dims, keep)
}

// Shapes.

func (t *Tensor) Reshape(shape ...int64) *Tensor { return reshape(C.MSR_RESHAPE, "reshape", t, shape) }
func (t *Tensor) View(shape ...int64) *Tensor    { return reshape(C.MSR_VIEW, "view", t, shape) }
func (t *Tensor) Permute(dims ...int64) *Tensor  { return reshape(C.MSR_PERMUTE, "permute", t, dims) }
func (t *Tensor) Expand(shape ...int64) *Tensor  { return reshape(C.MSR_EXPAND, "expand", t, shape) }
func (t *Tensor) Repeat(times ...int64) *Tensor  { return reshape(C.MSR_REPEAT, "repeat", t, times) }
func (t *Tensor) Squeeze(dim int64) *Tensor {
	return reshape(C.MSR_SQUEEZE, "squeeze", t, []int64{dim})
}
func (t *Tensor) SqueezeAll() *Tensor { return reshape(C.MSR_SQUEEZE, "squeeze", t, nil) }
func (t *Tensor) Unsqueeze(dim int64) *Tensor {
	return reshape(C.MSR_UNSQUEEZE, "unsqueeze", t, []int64{dim})
}
func (t *Tensor) Transpose(d0, d1 int64) *Tensor {
	return reshape(C.MSR_TRANSPOSE, "transpose", t, []int64{d0, d1})
}

// Narrow is t[..., start:start+length, ...] along dim (an alias).
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	return reshape(C.MSR_NARROW, "narrow", t, []int64{dim, start, length})
}

// Flatten merges dimensions start..end (inclusive; negative counts from the end).
func (t *Tensor) Flatten(start, end int64) *Tensor {
	return reshape(C.MSR_FLATTEN, "flatten", t, []int64{start, end})
}

// Select is t[..., index, ...] along dim, dropping that dimension.
func (t *Tensor) Select(dim, index int64) *Tensor {
	return reshape(C.MSR_SELECT, "select", t, []int64{dim, index})
}

func catOrStack(name string, ts []*Tensor, dim int64, stack bool) *Tensor {
	if len(ts) == 0 {
		return failed(errorf(name, "no tensors"))
	}
	if bad := firstErr(ts...); bad != nil {
		return bad
	}
	hs := handles(ts)
	var out C.msr_tensor
	return result(name, C.msr_cat((*C.msr_tensor)(unsafe.Pointer(&hs[0])), C.int(len(hs)), C.int64_t(dim), boolInt(stack), &out), out)
}

// Cat joins tensors along an existing dimension.
func Cat(ts []*Tensor, dim int64) *Tensor { return catOrStack("cat", ts, dim, false) }

// Stack joins tensors along a new dimension.
func Stack(ts []*Tensor, dim int64) *Tensor { return catOrStack("stack", ts, dim, true) }

// Einsum evaluates an Einstein summation, e.g. "bi,bio->bo" for per-sample weights.
func Einsum(equation string, ts ...*Tensor) *Tensor {
	if len(ts) == 0 {
		return failed(errorf("einsum", "no operands"))
	}
	if bad := firstErr(ts...); bad != nil {
		return bad
	}
	eq := C.CString(equation)
	defer C.free(unsafe.Pointer(eq))
	hs := handles(ts)
	var out C.msr_tensor
	return result("einsum", C.msr_einsum(eq, (*C.msr_tensor)(unsafe.Pointer(&hs[0])), C.int(len(hs)), &out), out)
}

// Linear is x·wᵀ + b with w of shape [out, in]; b may be nil.
func Linear(x, w, b *Tensor) *Tensor {
	if bad := firstErrOpt(2, x, w, b); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("linear", C.msr_linear(x.h, w.h, handle(b), &out), out)
}

// Addmm is beta·c + alpha·(a·b).
func Addmm(c, a, b *Tensor, beta, alpha float64) *Tensor {
	if bad := firstErr(c, a, b); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("addmm", C.msr_addmm(c.h, a.h, b.h, C.double(beta), C.double(alpha), &out), out)
}

// Baddbmm is beta·c + alpha·bmm(a, b), the batched Addmm.
func Baddbmm(c, a, b *Tensor, beta, alpha float64) *Tensor {
	if bad := firstErr(c, a, b); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("baddbmm", C.msr_baddbmm(c.h, a.h, b.h, C.double(beta), C.double(alpha), &out), out)
}

func indexOp(op C.int, name string, t *Tensor, dim int64, index, src *Tensor) *Tensor {
	if bad := firstErrOpt(2, t, index, src); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result(name, C.msr_index(op, t.h, C.int64_t(dim), index.h, handle(src), &out), out)
}

// IndexSelect picks slices of t along dim by an int64 index vector.
func (t *Tensor) IndexSelect(dim int64, index *Tensor) *Tensor {
	return indexOp(C.MSR_INDEX_SELECT, "index_select", t, dim, index, nil)
}

// Gather picks t[..., index[i][j], ...] along dim.
func (t *Tensor) Gather(dim int64, index *Tensor) *Tensor {
	return indexOp(C.MSR_GATHER, "gather", t, dim, index, nil)
}

// ScatterAdd returns a copy of t with src added at index along dim.
func (t *Tensor) ScatterAdd(dim int64, index, src *Tensor) *Tensor {
	return indexOp(C.MSR_SCATTER_ADD, "scatter_add", t, dim, index, src)
}

// IndexAdd returns a copy of t with slices of src added at the positions of a 1-D index along dim.
func (t *Tensor) IndexAdd(dim int64, index, src *Tensor) *Tensor {
	return indexOp(C.MSR_INDEX_ADD, "index_add", t, dim, index, src)
}

// MaskedFill replaces entries where mask is true by v.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	if bad := firstErr(t, mask); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("masked_fill", C.msr_masked_fill(t.h, mask.h, C.double(v), &out), out)
}

// MaskedSelect returns the 1-D tensor of entries where mask is true.
func (t *Tensor) MaskedSelect(mask *Tensor) *Tensor {
	if bad := firstErr(t, mask); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("masked_select", C.msr_masked_select(t.h, mask.h, &out), out)
}

// Where picks a where cond is true, else b.
func Where(cond, a, b *Tensor) *Tensor {
	if bad := firstErr(cond, a, b); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("where", C.msr_where(cond.h, a.h, b.h, &out), out)
}

// Clamp limits t to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor { return clamp(t, lo, hi, true, true) }

// ClampMin limits t from below.
func (t *Tensor) ClampMin(lo float64) *Tensor { return clamp(t, lo, 0, true, false) }

func clamp(t *Tensor, lo, hi float64, hasLo, hasHi bool) *Tensor {
	if bad := firstErr(t); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("clamp", C.msr_clamp(t.h, C.double(lo), C.double(hi), boolInt(hasLo), boolInt(hasHi), &out), out)
}

// Softmax normalises along dim.
func (t *Tensor) Softmax(dim int64) *Tensor { return softmax(t, dim, false) }

// LogSoftmax is log(softmax) computed stably.
func (t *Tensor) LogSoftmax(dim int64) *Tensor { return softmax(t, dim, true) }

func softmax(t *Tensor, dim int64, log bool) *Tensor {
	if bad := firstErr(t); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("softmax", C.msr_softmax(t.h, C.int64_t(dim), boolInt(log), &out), out)
}

// Unique returns the sorted distinct values of t and, for each entry of t, its position among them.
func (t *Tensor) Unique() (values, inverse *Tensor) {
	if bad := firstErr(t); bad != nil {
		return bad, bad
	}
	var v, inv C.msr_tensor
	if err := check("unique", C.msr_unique(t.h, &v, &inv)); err != nil {
		return failed(err), failed(err)
	}
	return wrap(v), wrap(inv)
}
