// meta.cpp: shape-only kernels for the meta device where libtorch has none.
//
// libtorch's C++ library lacks meta kernels for some ops a training step
// uses (index_select, relu, batch and layer norm, ...); PyTorch's Python
// package registers them in Python (torch/_meta_registrations.py), which a
// C++ program never loads. Placement tests run whole models on meta, so the
// shim registers the missing ones the first time a tensor goes to meta,
// and only where the dispatcher has no meta kernel: a libtorch that has its
// own keeps it. Each kernel allocates its outputs' shapes on meta; none
// computes anything.

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "internal.h"

namespace {

using at::Tensor;

Tensor meta_index_select(const Tensor& self, int64_t dim, const Tensor& index) {
  std::vector<int64_t> size = self.sizes().vec();
  if (!size.empty()) size[c10::maybe_wrap_dim(dim, self.dim())] = index.numel();
  return at::empty(size, self.options());
}

Tensor meta_relu(const Tensor& self) { return at::empty_like(self); }

Tensor meta_where(const Tensor& condition, const Tensor& self, const Tensor& other) {
  auto size = at::infer_size(at::infer_size(condition.sizes(), self.sizes()), other.sizes());
  return at::empty(size, self.options().dtype(at::result_type(self, other)));
}

std::tuple<Tensor, Tensor, Tensor> meta_native_batch_norm(const Tensor& input, const c10::optional<Tensor>&,
                                                          const c10::optional<Tensor>&, const c10::optional<Tensor>&,
                                                          const c10::optional<Tensor>&, bool, double, double) {
  const int64_t channels = input.dim() > 1 ? input.size(1) : 1;
  return {at::empty_like(input), at::empty({channels}, input.options()), at::empty({channels}, input.options())};
}

std::tuple<Tensor, Tensor, Tensor> meta_native_batch_norm_backward(
    const Tensor& grad_out, const Tensor& input, const c10::optional<Tensor>& weight, const c10::optional<Tensor>&,
    const c10::optional<Tensor>&, const c10::optional<Tensor>&, const c10::optional<Tensor>&, bool, double,
    std::array<bool, 3> mask) {
  const int64_t channels = input.dim() > 1 ? input.size(1) : 1;
  auto per_channel = [&] { return at::empty({channels}, input.options()); };
  return {mask[0] ? at::empty_like(input) : Tensor(), mask[1] ? per_channel() : Tensor(),
          mask[2] ? per_channel() : Tensor()};
}

Tensor meta_embedding_dense_backward(const Tensor& grad_output, const Tensor&, int64_t num_weights, int64_t,
                                     bool) {
  return at::empty({num_weights, grad_output.size(-1)}, grad_output.options());
}

std::tuple<Tensor, Tensor, Tensor> meta_native_layer_norm_backward(
    const Tensor& grad_out, const Tensor& input, at::IntArrayRef, const Tensor&, const Tensor&,
    const c10::optional<Tensor>& weight, const c10::optional<Tensor>& bias, std::array<bool, 3> mask) {
  auto like = [](const c10::optional<Tensor>& t) { return t.has_value() && t->defined() ? at::empty_like(*t) : Tensor(); };
  return {mask[0] ? at::empty_like(input) : Tensor(), mask[1] ? like(weight) : Tensor(), mask[2] ? like(bias) : Tensor()};
}

bool has_meta_kernel(const char* name, const char* overload) {
  auto op = c10::Dispatcher::singleton().findSchema({name, overload});
  return !op.has_value() || op->hasKernelForDispatchKey(c10::DispatchKey::Meta);
}

void register_missing() {
  // The library object must outlive every use of its kernels: the process.
  static auto* lib = new torch::Library(torch::Library::IMPL, "aten", c10::DispatchKey::Meta, __FILE__, __LINE__);
  // One kernel the dispatcher refuses (a schema a later libtorch changed)
  // leaves that op without a meta kernel, to fail by name when a placement
  // test reaches it, and the others registered.
  auto add = [](const char* name, const char* overload, auto kernel) {
    if (has_meta_kernel(name, overload)) return;
    std::string op = std::string(name).substr(6) + (*overload ? std::string(".") + overload : "");  // drop "aten::"
    try {
      lib->impl(op.c_str(), kernel);
    } catch (const c10::Error&) {
    }
  };
  add("aten::index_select", "", TORCH_FN(meta_index_select));
  add("aten::relu", "", TORCH_FN(meta_relu));
  add("aten::where", "self", TORCH_FN(meta_where));
  add("aten::native_batch_norm", "", TORCH_FN(meta_native_batch_norm));
  add("aten::native_batch_norm_backward", "", TORCH_FN(meta_native_batch_norm_backward));
  add("aten::embedding_dense_backward", "", TORCH_FN(meta_embedding_dense_backward));
  add("aten::native_layer_norm_backward", "", TORCH_FN(meta_native_layer_norm_backward));
}

}  // namespace

void msr_register_meta_kernels() {
  static std::once_flag once;
  std::call_once(once, register_missing);
}
