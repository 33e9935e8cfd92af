package torch

/*
#include "msr.h"
*/
import "C"

// LayerNorm normalises over the trailing dimensions given by shape; w and b may be nil.
func LayerNorm(x *Tensor, shape []int64, w, b *Tensor, eps float64) *Tensor {
	if bad := firstErrOpt(1, x, w, b); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("layer_norm", C.msr_layer_norm(x.h, int64Ptr(shape), C.int(len(shape)), handle(w), handle(b), C.double(eps), &out), out)
}

// BatchNorm normalises over the batch. In training it uses batch statistics
// and updates runningMean/runningVar in place (momentum as in PyTorch); in
// eval it uses the running statistics. w, b and the running tensors may be nil.
func BatchNorm(x, w, b, runningMean, runningVar *Tensor, training bool, momentum, eps float64) *Tensor {
	if bad := firstErrOpt(1, x, w, b, runningMean, runningVar); bad != nil {
		return bad
	}
	var out C.msr_tensor
	e := C.msr_batch_norm(x.h, handle(w), handle(b), handle(runningMean), handle(runningVar), boolInt(training), C.double(momentum), C.double(eps), &out)
	return result("batch_norm", e, out)
}

// Dropout zeroes entries with probability p and scales the rest by 1/(1-p) when training.
func Dropout(x *Tensor, p float64, training bool) *Tensor {
	if bad := firstErr(x); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("dropout", C.msr_dropout(x.h, C.double(p), boolInt(training), &out), out)
}

// Embedding looks up rows of weight by int64 indices of any shape.
func Embedding(weight, indices *Tensor) *Tensor {
	if bad := firstErr(weight, indices); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("embedding", C.msr_embedding(weight.h, indices.h, &out), out)
}

// BagMode is how EmbeddingBag reduces each bag.
type BagMode int

// Bag reductions.
const (
	BagSum  BagMode = 0
	BagMean BagMode = 1
	BagMax  BagMode = 2
)

// EmbeddingBag reduces the rows of each bag (indices[offsets[i]:offsets[i+1]]) in one op;
// perSampleWeights (sum mode only) may be nil.
func EmbeddingBag(weight, indices, offsets *Tensor, mode BagMode, perSampleWeights *Tensor) *Tensor {
	if bad := firstErrOpt(3, weight, indices, offsets, perSampleWeights); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("embedding_bag", C.msr_embedding_bag(weight.h, indices.h, offsets.h, C.int(mode), handle(perSampleWeights), &out), out)
}

// Reduction says how a loss combines its per-element values.
type Reduction int

// Loss reductions (values match libtorch's).
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// BCEWithLogits is binary cross-entropy on logits, computed stably; weight
// (per element) and posWeight (per class) may be nil.
func BCEWithLogits(logits, target, weight, posWeight *Tensor, reduction Reduction) *Tensor {
	if bad := firstErrOpt(2, logits, target, weight, posWeight); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("binary_cross_entropy_with_logits", C.msr_bce_with_logits(logits.h, target.h, handle(weight), handle(posWeight), C.int(reduction), &out), out)
}
