package torch

/*
#include "msr.h"
*/
import "C"

// GeneratedLayer applies to each row of z [B, in] a linear layer whose
// weights a linear head (weight [K, G], bias [K]) generates from that row's
// h [B, G]: the head's rows [offset, offset+in·out) reshaped to [in, out] and
// multiplied by scale are the layer's weight, the next out rows its bias.
// It never builds the per-row weights (see cgo/shim/meta_layer.cpp);
// forward and backward are one autograd node each, and every argument but
// the sizes receives a gradient.
func GeneratedLayer(z, weight, bias, h *Tensor, in, out, offset int64, scale float64) *Tensor {
	if bad := firstErr(z, weight, bias, h); bad != nil {
		return bad
	}
	var y C.msr_tensor
	return result("generated layer", C.msr_generated_layer(z.h, weight.h, bias.h, h.h, C.int64_t(in), C.int64_t(out), C.int64_t(offset), C.double(scale), &y), y)
}
