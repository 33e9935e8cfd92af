// meta_layer.cpp: a linear layer whose weights a linear head generates
// per row, forward and backward in one autograd node.
//
// LLM4MSR's user-level meta layer gives each row its own weights,
// W(h) = s·reshape(H·h + c) [in, out] and b(h) = H_b·h + c_b, where h [G] is
// the generator's output for the row's user and H, c a slice of the head's
// weight and bias. Through the head's linearity the layer is
//
//	y = Σ_g h[g]·(z·s·H_g) + z·s·C + H_b·h + c_b
//
// one product of the rows with the G+1 stacked slices (the "basis"), then a
// weighted sum over G+1. Written as libtorch ops, the weighted sum and its
// gradient are a broadcast product, a sum and their backward: several
// passes over [rows, G+1, out] and a dozen autograd nodes. Here forward and
// backward each make one pass over it (a plain loop on the CPU, libtorch
// ops elsewhere) around the same matrix products.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "msr.h"
#include "internal.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;


bool plain_cpu_float(std::initializer_list<const at::Tensor*> ts) {
  for (const at::Tensor* t : ts) {
    if (!t->is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous()) return false;
  }
  return true;
}

// weighted_sum is y[b, o] = s·(Σ_{g<G} h[b, g]·P[b, g, o] + P[b, G, o]) for
// P [B, (G+1)·out] and h [B, G].
at::Tensor weighted_sum(const at::Tensor& p, const at::Tensor& h, int64_t out, double scale) {
  const int64_t rows = p.size(0), gens = h.size(1);
  if (!plain_cpu_float({&p, &h})) {
    at::Tensor ht = at::cat({h, at::ones({rows, 1}, h.options())}, 1).unsqueeze(2);
    return p.view({rows, gens + 1, out}).mul(ht).sum(1).mul_(scale);
  }
  at::Tensor y = at::empty({rows, out}, p.options());
  const float* pp = p.data_ptr<float>();
  const float* hp = h.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const float s = static_cast<float>(scale);
  for (int64_t b = 0; b < rows; b++) {
    const float* pr = pp + b * (gens + 1) * out;
    const float* hr = hp + b * gens;
    float* yr = yp + b * out;
    for (int64_t o = 0; o < out; o++) yr[o] = pr[gens * out + o];
    for (int64_t g = 0; g < gens; g++) {
      const float w = hr[g];
      const float* pg = pr + g * out;
      for (int64_t o = 0; o < out; o++) yr[o] += w * pg[o];
    }
    for (int64_t o = 0; o < out; o++) yr[o] *= s;
  }
  return y;
}

// weighted_sum_backward gives weighted_sum's gradients for dy [B, out]:
// dP[b, g, o] = s·h̃[b, g]·dy[b, o] with h̃ = [h, 1], and
// dh[b, g] = s·Σ_o P[b, g, o]·dy[b, o].
void weighted_sum_backward(const at::Tensor& p, const at::Tensor& h, const at::Tensor& dy_in, double scale,
                           at::Tensor& dp, at::Tensor& dh) {
  const int64_t rows = p.size(0), gens = h.size(1), out = dy_in.size(1);
  at::Tensor dy = dy_in.contiguous();
  if (!plain_cpu_float({&p, &h, &dy})) {
    at::Tensor ht = at::cat({h, at::ones({rows, 1}, h.options())}, 1).unsqueeze(2);
    at::Tensor dys = dy.mul(scale).unsqueeze(1);  // [B, 1, out]
    dp = ht.mul(dys).view({rows, (gens + 1) * out});
    dh = p.view({rows, gens + 1, out}).narrow(1, 0, gens).mul(dys).sum(2);
    return;
  }
  dp = at::empty({rows, (gens + 1) * out}, p.options());
  dh = at::empty({rows, gens}, h.options());
  const float* pp = p.data_ptr<float>();
  const float* hp = h.data_ptr<float>();
  const float* dyp = dy.data_ptr<float>();
  float* dpp = dp.data_ptr<float>();
  float* dhp = dh.data_ptr<float>();
  const float s = static_cast<float>(scale);
  std::vector<float> dys(out);
  for (int64_t b = 0; b < rows; b++) {
    const float* pr = pp + b * (gens + 1) * out;
    const float* hr = hp + b * gens;
    float* dpr = dpp + b * (gens + 1) * out;
    for (int64_t o = 0; o < out; o++) dys[o] = s * dyp[b * out + o];
    for (int64_t g = 0; g < gens; g++) {
      const float w = hr[g];
      const float* pg = pr + g * out;
      float* dpg = dpr + g * out;
      float acc = 0;
      for (int64_t o = 0; o < out; o++) {
        dpg[o] = w * dys[o];
        acc += pg[o] * dys[o];
      }
      dhp[b * gens + g] = acc;
    }
    for (int64_t o = 0; o < out; o++) dpr[gens * out + o] = dys[o];
  }
}

struct GeneratedLayer : public torch::autograd::Function<GeneratedLayer> {
  // forward: z [B, in], the head's weight [K, G] and bias [K], h [B, G]; the
  // layer's slice starts at row offset: in·out rows of W, then out of b.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& z, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& h, int64_t in, int64_t out, int64_t offset,
                            double scale) {
    check(z, weight, bias, h, in, out, offset);
    const int64_t gens = weight.size(1);
    at::Tensor basis = at::cat({weight.narrow(0, offset, in * out), bias.narrow(0, offset, in * out).unsqueeze(1)}, 1)
                           .view({in, out, gens + 1})
                           .permute({0, 2, 1})
                           .reshape({in, (gens + 1) * out});
    at::Tensor p = z.mm(basis);
    at::Tensor y = weighted_sum(p, h.contiguous(), out, scale);
    y.addmm_(h, weight.narrow(0, offset + in * out, out).t()).add_(bias.narrow(0, offset + in * out, out));
    ctx->save_for_backward({z, weight, h, basis, p});
    ctx->saved_data["in"] = in;
    ctx->saved_data["out"] = out;
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["scale"] = scale;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &z = saved[0], &weight = saved[1], &h = saved[2], &basis = saved[3], &p = saved[4];
    const int64_t in = ctx->saved_data["in"].toInt(), out = ctx->saved_data["out"].toInt();
    const int64_t offset = ctx->saved_data["offset"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t gens = weight.size(1);
    const at::Tensor& dy = grads[0];
    at::Tensor dp, dh;
    weighted_sum_backward(p, h.contiguous(), dy, scale, dp, dh);
    at::Tensor wb = weight.narrow(0, offset + in * out, out);
    at::Tensor dz, dweight, dbias;
    if (ctx->needs_input_grad(0)) dz = dp.mm(basis.t());
    if (ctx->needs_input_grad(3)) dh.addmm_(dy, wb);
    if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
      // Back from the basis' layout [in, G+1, out] to the head's rows i·out + o.
      at::Tensor dbasis = z.t().mm(dp).view({in, gens + 1, out}).permute({0, 2, 1}).reshape({in * out, gens + 1});
      if (ctx->needs_input_grad(1)) {
        dweight = at::zeros_like(weight);
        dweight.narrow(0, offset, in * out).copy_(dbasis.narrow(1, 0, gens));
        dweight.narrow(0, offset + in * out, out).copy_(dy.t().mm(h));
      }
      if (ctx->needs_input_grad(2)) {
        dbias = at::zeros({weight.size(0)}, weight.options());
        dbias.narrow(0, offset, in * out).copy_(dbasis.select(1, gens));
        dbias.narrow(0, offset + in * out, out).copy_(dy.sum(0));
      }
    }
    return {dz, dweight, dbias, ctx->needs_input_grad(3) ? dh : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

  static void check(const at::Tensor& z, const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& h,
                    int64_t in, int64_t out, int64_t offset) {
    auto fail = [&](const std::string& why) {
      throw std::invalid_argument("generated layer: z " + c10::str(z.sizes()) + ", head weight " +
                                  c10::str(weight.sizes()) + ", bias " + c10::str(bias.sizes()) + ", h " +
                                  c10::str(h.sizes()) + ", in " + std::to_string(in) + ", out " +
                                  std::to_string(out) + ", offset " + std::to_string(offset) + ": " + why);
    };
    if (z.dim() != 2 || weight.dim() != 2 || bias.dim() != 1 || h.dim() != 2) fail("want z, weight and h 2-D, bias 1-D");
    if (in <= 0 || out <= 0 || offset < 0) fail("in and out must be positive, offset not negative");
    if (z.size(1) != in) fail("z is not in wide");
    if (h.size(0) != z.size(0) || h.size(1) != weight.size(1)) fail("h must have z's rows and the weight's columns");
    if (bias.size(0) != weight.size(0)) fail("bias and weight differ in rows");
    if (offset + in * out + out > weight.size(0)) fail("the layer's slice runs past the head");
  }
};

}  // namespace

extern "C" {

msr_err msr_generated_layer(msr_tensor z, msr_tensor head_weight, msr_tensor head_bias, msr_tensor h, int64_t in,
                            int64_t out, int64_t offset, double scale, msr_tensor* y) {
  GUARD({ *y = new msr_tensor_s{GeneratedLayer::apply(T(z), T(head_weight), T(head_bias), T(h), in, out, offset, scale)}; })
}

}  // extern "C"
