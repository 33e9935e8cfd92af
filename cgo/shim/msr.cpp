// msr.cpp: the C ABI of msr.h over libtorch's C++ API.
//
// Written against the API that libtorch 1.13 and 2.x share. Every entry point
// catches what libtorch throws and turns it into a returned message, because
// an exception crossing the C boundary into Go would abort the process.

#include "msr.h"
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

msr_tensor wrap(at::Tensor t) { return new msr_tensor_s{std::move(t)}; }


c10::optional<at::Tensor> opt(msr_tensor h) {
  if (h == nullptr) return c10::nullopt;
  return h->t;
}

at::ScalarType to_scalar_type(int dtype) {
  switch (dtype) {
    case MSR_F32: return at::kFloat;
    case MSR_F64: return at::kDouble;
    case MSR_I64: return at::kLong;
    case MSR_BOOL: return at::kBool;
    case MSR_I32: return at::kInt;
    case MSR_F16: return at::kHalf;
    case MSR_BF16: return at::kBFloat16;
    case MSR_U8: return at::kByte;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int from_scalar_type(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return MSR_F32;
    case at::kDouble: return MSR_F64;
    case at::kLong: return MSR_I64;
    case at::kBool: return MSR_BOOL;
    case at::kInt: return MSR_I32;
    case at::kHalf: return MSR_F16;
    case at::kBFloat16: return MSR_BF16;
    case at::kByte: return MSR_U8;
    default: return -1;
  }
}

at::Device to_device(int type, int index) {
  if (type == MSR_CPU) return at::Device(at::kCPU);
  if (type == MSR_CUDA) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  if (type == MSR_META) {
    msr_register_meta_kernels();
    return at::Device(at::kMeta);
  }
  throw std::invalid_argument("unknown device type " + std::to_string(type));
}

at::IntArrayRef dims(const int64_t* p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

std::vector<at::Tensor> tensor_list(const msr_tensor* ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

}  // namespace

extern "C" {

void msr_free_err(msr_err e) { std::free(e); }

void msr_free_tensors(msr_tensor* ts, int n) {
  for (int i = 0; i < n; i++) delete ts[i];
}

// ---------------------------------------------------------------- runtime

void msr_version_compiled(int* major, int* minor, int* patch) {
  *major = TORCH_VERSION_MAJOR;
  *minor = TORCH_VERSION_MINOR;
  *patch = TORCH_VERSION_PATCH;
}

msr_err msr_loaded_library(const char* fragment, char* buf, int cap) {
  GUARD({
    // dladdr on a libtorch symbol can name the executable's PLT stub, so
    // walk the loaded objects instead.
    struct Search {
      const char* fragment;
      std::string found;
    } search{fragment, ""};
    dl_iterate_phdr(
        [](struct dl_phdr_info* info, size_t, void* data) {
          auto* s = static_cast<Search*>(data);
          const char* name = info->dlpi_name;
          if (name != nullptr && std::strstr(name, s->fragment) != nullptr) {
            s->found = name;
            return 1;
          }
          return 0;
        },
        &search);
    if (search.found.empty()) throw std::runtime_error(std::string(fragment) + " is not among the loaded libraries");
    std::snprintf(buf, cap, "%s", search.found.c_str());
  })
}

msr_err msr_set_num_threads(int intra_op, int blas) {
  GUARD({
    if (intra_op > 0) at::set_num_threads(intra_op);
    // OpenBLAS keeps its own pool beside libtorch's OpenMP threads; both at
    // full width oversubscribe the cores, so the BLAS gets its own count.
    using set_fn = void (*)(int);
    if (blas > 0) {
      if (auto f = reinterpret_cast<set_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(blas);
    }
  })
}

int msr_get_num_threads(void) { return at::get_num_threads(); }

int msr_blas_threads(void) {
  using get_fn = int (*)();
  if (auto f = reinterpret_cast<get_fn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) return f();
  return -1;
}

void msr_blas_core(char* buf, int len) {
  if (len <= 0) return;
  buf[0] = 0;
  using name_fn = char* (*)();
  if (auto f = reinterpret_cast<name_fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) {
    if (const char* name = f()) std::snprintf(buf, static_cast<size_t>(len), "%s", name);
  }
}

msr_err msr_manual_seed(uint64_t seed) { GUARD(torch::manual_seed(seed)) }

int msr_grad_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }
void msr_set_grad_enabled(int enabled) { at::GradMode::set_enabled(enabled != 0); }

void msr_cuda_info(int* cuda_built, int* devices) {
  // libtorch_cuda registers the CUDA hooks when it is loaded; a CPU-only
  // libtorch (or a link that dropped it) has none.
  void* h = dlopen("libtorch_cuda.so", RTLD_NOLOAD | RTLD_LAZY);
  *cuda_built = h != nullptr ? 1 : 0;
  if (h != nullptr) dlclose(h);
  try {
    *devices = static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    *devices = 0;
  }
}

msr_err msr_cuda_synchronize(int device) {
  GUARD({
    int built = 0, devices = 0;
    msr_cuda_info(&built, &devices);
    if (devices > 0) torch::cuda::synchronize(device);
  })
}

msr_err msr_cuda_device_name(int device, char* buf, int cap) {
  GUARD({
    // The CUDA runtime is loaded with libtorch_cuda; its device properties
    // struct starts with the name (char[256]) in every CUDA version.
    using props_fn = int (*)(void*, int);
    auto f = reinterpret_cast<props_fn>(dlsym(RTLD_DEFAULT, "cudaGetDeviceProperties"));
    if (f == nullptr) throw std::runtime_error("the CUDA runtime is not loaded");
    std::vector<char> props(16384, 0);
    int rc = f(props.data(), device);
    if (rc != 0) throw std::runtime_error("cudaGetDeviceProperties failed with code " + std::to_string(rc));
    props[255] = 0;
    std::snprintf(buf, cap, "%s", props.data());
  })
}

msr_err msr_config(char* buf, int cap) { GUARD(std::snprintf(buf, cap, "%s", at::show_config().c_str())) }

// ---------------------------------------------------------------- creation

msr_err msr_from_blob(const void* data, const int64_t* shape, int ndim, int dtype, msr_tensor* out) {
  GUARD({
    auto opts = at::TensorOptions().dtype(to_scalar_type(dtype));
    at::Tensor t = at::empty(dims(shape, ndim), opts);
    std::memcpy(t.data_ptr(), data, t.nbytes());
    *out = wrap(std::move(t));
  })
}

msr_err msr_copy_to_host(msr_tensor h, void* dst, int64_t nbytes) {
  GUARD({
    at::Tensor t = T(h).detach().to(at::kCPU).contiguous();
    if (static_cast<int64_t>(t.nbytes()) != nbytes)
      throw std::invalid_argument("copy to host: tensor holds " + std::to_string(t.nbytes()) + " bytes, buffer " +
                                  std::to_string(nbytes));
    std::memcpy(dst, t.data_ptr(), t.nbytes());
  })
}

msr_err msr_info(msr_tensor h, int* dtype, int* ndim, int64_t* shape, int* device_type, int* device_index,
                 int* requires_grad) {
  GUARD({
    const at::Tensor& t = T(h);
    if (!t.defined()) throw std::invalid_argument("undefined tensor");
    *dtype = from_scalar_type(t.scalar_type());
    *ndim = static_cast<int>(t.dim());
    if (t.dim() > MSR_MAX_DIMS) throw std::invalid_argument("tensor has more than 16 dimensions");
    for (int64_t i = 0; i < t.dim(); i++) shape[i] = t.size(i);
    *device_type = t.is_cuda() ? MSR_CUDA : t.is_meta() ? MSR_META : MSR_CPU;
    *device_index = t.is_cuda() ? t.device().index() : -1;
    *requires_grad = t.requires_grad() ? 1 : 0;
  })
}

msr_err msr_create(int op, const int64_t* shape, int ndim, int dtype, int device_type, int device_index, double a,
                   double b, msr_tensor* out) {
  GUARD({
    auto opts = at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(device_type, device_index));
    auto size = dims(shape, ndim);
    at::Tensor t;
    switch (op) {
      case MSR_ZEROS: t = at::zeros(size, opts); break;
      case MSR_ONES: t = at::ones(size, opts); break;
      case MSR_FULL: t = at::full(size, a, opts); break;
      case MSR_RANDN: t = at::randn(size, opts); break;
      case MSR_RAND: t = at::rand(size, opts); break;
      case MSR_EMPTY: t = msr_empty_table(size, opts); break;
      case MSR_RANDINT: t = at::randint(static_cast<int64_t>(a), static_cast<int64_t>(b), size, opts); break;
      default: throw std::invalid_argument("unknown create op " + std::to_string(op));
    }
    *out = wrap(std::move(t));
  })
}

msr_err msr_arange(double start, double end, double step, int dtype, int device_type, int device_index,
                   msr_tensor* out) {
  GUARD({
    auto opts = at::TensorOptions().dtype(to_scalar_type(dtype)).device(to_device(device_type, device_index));
    *out = wrap(at::arange(start, end, step, opts));
  })
}

msr_err msr_to(msr_tensor a, int dtype, int device_type, int device_index, int non_blocking, int copy,
               msr_tensor* out) {
  GUARD({
    const at::Tensor& t = T(a);
    at::ScalarType st = dtype < 0 ? t.scalar_type() : to_scalar_type(dtype);
    at::Device dev = device_type < 0 ? t.device() : to_device(device_type, device_index);
    *out = wrap(t.to(dev, st, non_blocking != 0, copy != 0));
  })
}

msr_err msr_pin_memory(msr_tensor a, msr_tensor* out) { GUARD(*out = wrap(T(a).pin_memory())) }

// ---------------------------------------------------------------- math

msr_err msr_unary(int op, msr_tensor a, msr_tensor* out) {
  GUARD({
    const at::Tensor& x = T(a);
    at::Tensor r;
    switch (op) {
      case MSR_RELU: r = at::relu(x); break;
      case MSR_SIGMOID: r = at::sigmoid(x); break;
      case MSR_TANH: r = at::tanh(x); break;
      case MSR_EXP: r = at::exp(x); break;
      case MSR_LOG: r = at::log(x); break;
      case MSR_NEG: r = at::neg(x); break;
      case MSR_ABS: r = at::abs(x); break;
      case MSR_SQRT: r = at::sqrt(x); break;
      case MSR_CLONE: r = x.clone(); break;
      case MSR_DETACH: r = x.detach(); break;
      case MSR_CONTIGUOUS: r = x.contiguous(); break;
      case MSR_T: r = x.t(); break;
      case MSR_LOGICAL_NOT: r = at::logical_not(x); break;
      case MSR_SQUARE: r = at::square(x); break;
      case MSR_ISFINITE_ALL: r = at::isfinite(x).all(); break;
      case MSR_LOG_SIGMOID: r = at::log_sigmoid(x); break;
      case MSR_GELU: r = at::gelu(x); break;
      case MSR_SILU: r = at::silu(x); break;
      default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
    }
    *out = wrap(std::move(r));
  })
}

msr_err msr_binary(int op, msr_tensor a, msr_tensor b, msr_tensor* out) {
  GUARD({
    const at::Tensor& x = T(a);
    const at::Tensor& y = T(b);
    at::Tensor r;
    switch (op) {
      case MSR_ADD: r = at::add(x, y); break;
      case MSR_SUB: r = at::sub(x, y); break;
      case MSR_MUL: r = at::mul(x, y); break;
      case MSR_DIV: r = at::div(x, y); break;
      case MSR_MATMUL: r = at::matmul(x, y); break;
      case MSR_BMM: r = at::bmm(x, y); break;
      case MSR_MM: r = at::mm(x, y); break;
      case MSR_EQ: r = at::eq(x, y); break;
      case MSR_NE: r = at::ne(x, y); break;
      case MSR_LT: r = at::lt(x, y); break;
      case MSR_LE: r = at::le(x, y); break;
      case MSR_GT: r = at::gt(x, y); break;
      case MSR_GE: r = at::ge(x, y); break;
      case MSR_MAXIMUM: r = at::maximum(x, y); break;
      case MSR_MINIMUM: r = at::minimum(x, y); break;
      case MSR_POW: r = at::pow(x, y); break;
      case MSR_LOGICAL_AND: r = at::logical_and(x, y); break;
      case MSR_LOGICAL_OR: r = at::logical_or(x, y); break;
      default: throw std::invalid_argument("unknown binary op " + std::to_string(op));
    }
    *out = wrap(std::move(r));
  })
}

msr_err msr_scalar(int op, msr_tensor a, double s, msr_tensor* out) {
  GUARD({
    const at::Tensor& x = T(a);
    // A whole number stays an integer scalar, so that index + offset keeps an
    // int64 tensor int64 instead of promoting it to float.
    bool integral = at::isIntegralType(x.scalar_type(), /*includeBool=*/false) && s == static_cast<double>(static_cast<int64_t>(s));
    at::Scalar v = integral ? at::Scalar(static_cast<int64_t>(s)) : at::Scalar(s);
    at::Tensor r;
    switch (op) {
      case MSR_S_ADD: r = at::add(x, v); break;
      case MSR_S_SUB: r = at::sub(x, v); break;
      case MSR_S_MUL: r = at::mul(x, v); break;
      case MSR_S_DIV: r = at::div(x, v); break;
      case MSR_S_POW: r = at::pow(x, v); break;
      case MSR_S_EQ: r = at::eq(x, v); break;
      case MSR_S_NE: r = at::ne(x, v); break;
      case MSR_S_LT: r = at::lt(x, v); break;
      case MSR_S_LE: r = at::le(x, v); break;
      case MSR_S_GT: r = at::gt(x, v); break;
      case MSR_S_GE: r = at::ge(x, v); break;
      case MSR_S_LEAKY_RELU: r = at::leaky_relu(x, v); break;
      case MSR_S_RSUB: r = at::rsub(x, v); break;
      default: throw std::invalid_argument("unknown scalar op " + std::to_string(op));
    }
    *out = wrap(std::move(r));
  })
}

msr_err msr_reduce(int op, msr_tensor a, const int64_t* ds, int ndims, int keepdim, msr_tensor* out) {
  GUARD({
    const at::Tensor& x = T(a);
    bool keep = keepdim != 0;
    bool all = ndims == 0;
    at::Tensor r;
    switch (op) {
      case MSR_SUM: r = all ? x.sum() : x.sum(dims(ds, ndims), keep); break;
      case MSR_MEAN: r = all ? x.mean() : x.mean(dims(ds, ndims), keep); break;
      case MSR_AMAX: r = x.amax(dims(ds, ndims), keep); break;
      case MSR_AMIN: r = x.amin(dims(ds, ndims), keep); break;
      case MSR_LOGSUMEXP:
        if (all) throw std::invalid_argument("logsumexp needs a dimension");
        r = at::logsumexp(x, dims(ds, ndims), keep);
        break;
      case MSR_ARGMAX:
        if (ndims > 1) throw std::invalid_argument("argmax takes at most one dimension");
        r = all ? x.argmax() : x.argmax(ds[0], keep);
        break;
      case MSR_NORM: r = all ? x.norm() : at::norm(x, 2, dims(ds, ndims), keep); break;
      default: throw std::invalid_argument("unknown reduce op " + std::to_string(op));
    }
    *out = wrap(std::move(r));
  })
}

msr_err msr_shape(int op, msr_tensor a, const int64_t* args, int nargs, msr_tensor* out) {
  GUARD({
    const at::Tensor& x = T(a);
    auto need = [&](int n, const char* name) {
      if (nargs != n) throw std::invalid_argument(std::string(name) + " takes " + std::to_string(n) + " arguments");
    };
    at::Tensor r;
    switch (op) {
      case MSR_RESHAPE: r = x.reshape(dims(args, nargs)); break;
      case MSR_VIEW: r = x.view(dims(args, nargs)); break;
      case MSR_PERMUTE: r = x.permute(dims(args, nargs)); break;
      case MSR_EXPAND: r = x.expand(dims(args, nargs)); break;
      case MSR_REPEAT: r = x.repeat(dims(args, nargs)); break;
      case MSR_SQUEEZE: r = nargs == 0 ? x.squeeze() : (need(1, "squeeze"), x.squeeze(args[0])); break;
      case MSR_UNSQUEEZE: need(1, "unsqueeze"); r = x.unsqueeze(args[0]); break;
      case MSR_TRANSPOSE: need(2, "transpose"); r = x.transpose(args[0], args[1]); break;
      case MSR_NARROW: need(3, "narrow"); r = x.narrow(args[0], args[1], args[2]); break;
      case MSR_FLATTEN: need(2, "flatten"); r = x.flatten(args[0], args[1]); break;
      case MSR_SELECT: need(2, "select"); r = x.select(args[0], args[1]); break;
      default: throw std::invalid_argument("unknown shape op " + std::to_string(op));
    }
    *out = wrap(std::move(r));
  })
}

msr_err msr_cat(const msr_tensor* ts, int n, int64_t dim, int stack, msr_tensor* out) {
  GUARD({
    auto v = tensor_list(ts, n);
    *out = wrap(stack ? at::stack(v, dim) : at::cat(v, dim));
  })
}

msr_err msr_einsum(const char* equation, const msr_tensor* ts, int n, msr_tensor* out) {
  GUARD(*out = wrap(at::einsum(equation, tensor_list(ts, n))))
}

msr_err msr_linear(msr_tensor x, msr_tensor w, msr_tensor b, msr_tensor* out) {
  GUARD(*out = wrap(at::linear(T(x), T(w), opt(b))))
}

msr_err msr_addmm(msr_tensor c, msr_tensor a, msr_tensor b, double beta, double alpha, msr_tensor* out) {
  GUARD(*out = wrap(at::addmm(T(c), T(a), T(b), beta, alpha)))
}

msr_err msr_baddbmm(msr_tensor c, msr_tensor a, msr_tensor b, double beta, double alpha, msr_tensor* out) {
  GUARD(*out = wrap(at::baddbmm(T(c), T(a), T(b), beta, alpha)))
}

msr_err msr_index(int op, msr_tensor a, int64_t dim, msr_tensor index, msr_tensor src, msr_tensor* out) {
  GUARD({
    const at::Tensor& x = T(a);
    const at::Tensor& idx = T(index);
    at::Tensor r;
    switch (op) {
      case MSR_INDEX_SELECT: r = at::index_select(x, dim, idx); break;
      case MSR_GATHER: r = at::gather(x, dim, idx); break;
      case MSR_SCATTER_ADD: r = at::scatter_add(x, dim, idx, T(src)); break;
      case MSR_INDEX_ADD: r = at::index_add(x, dim, idx, T(src)); break;
      default: throw std::invalid_argument("unknown index op " + std::to_string(op));
    }
    *out = wrap(std::move(r));
  })
}

msr_err msr_masked_fill(msr_tensor a, msr_tensor mask, double value, msr_tensor* out) {
  GUARD(*out = wrap(at::masked_fill(T(a), T(mask), value)))
}

msr_err msr_masked_select(msr_tensor a, msr_tensor mask, msr_tensor* out) {
  GUARD(*out = wrap(at::masked_select(T(a), T(mask))))
}

msr_err msr_where(msr_tensor cond, msr_tensor a, msr_tensor b, msr_tensor* out) {
  GUARD(*out = wrap(at::where(T(cond), T(a), T(b))))
}

msr_err msr_clamp(msr_tensor a, double lo, double hi, int has_lo, int has_hi, msr_tensor* out) {
  GUARD({
    c10::optional<at::Scalar> l, h;
    if (has_lo) l = lo;
    if (has_hi) h = hi;
    *out = wrap(at::clamp(T(a), l, h));
  })
}

msr_err msr_softmax(msr_tensor a, int64_t dim, int log, msr_tensor* out) {
  GUARD(*out = wrap(log ? at::log_softmax(T(a), dim) : at::softmax(T(a), dim)))
}

// meta_unique stands in for unique on the meta device, which has no data
// to find the distinct values in: it takes every element as distinct, the
// largest result unique can give, so that placement tests run the code after it.
static std::tuple<at::Tensor, at::Tensor> meta_unique(const at::Tensor& x) {
  return {x.reshape(-1).clone(), at::arange(x.numel(), x.options().dtype(at::kLong)).view(x.sizes())};
}

msr_err msr_unique(msr_tensor a, msr_tensor* values, msr_tensor* inverse) {
  GUARD({
    auto r = T(a).is_meta() ? meta_unique(T(a)) : at::_unique(T(a), /*sorted=*/true, /*return_inverse=*/true);
    *values = wrap(std::get<0>(r));
    *inverse = wrap(std::get<1>(r));
  })
}

// ---------------------------------------------------------------- nn functions

msr_err msr_layer_norm(msr_tensor x, const int64_t* normalized_shape, int n, msr_tensor w, msr_tensor b, double eps,
                       msr_tensor* out) {
  GUARD(*out = wrap(at::layer_norm(T(x), dims(normalized_shape, n), opt(w), opt(b), eps)))
}

msr_err msr_batch_norm(msr_tensor x, msr_tensor w, msr_tensor b, msr_tensor running_mean, msr_tensor running_var,
                       int training, double momentum, double eps, msr_tensor* out) {
  GUARD(*out = wrap(at::batch_norm(T(x), opt(w), opt(b), opt(running_mean), opt(running_var), training != 0, momentum,
                                   eps, /*cudnn_enabled=*/true)))
}

msr_err msr_dropout(msr_tensor x, double p, int training, msr_tensor* out) {
  GUARD(*out = wrap(at::dropout(T(x), p, training != 0)))
}

msr_err msr_embedding(msr_tensor weight, msr_tensor indices, msr_tensor* out) {
  GUARD(*out = wrap(at::embedding(T(weight), T(indices))))
}

msr_err msr_embedding_bag(msr_tensor weight, msr_tensor indices, msr_tensor offsets, int mode,
                          msr_tensor per_sample_weights, msr_tensor* out) {
  GUARD({
    auto r = at::embedding_bag(T(weight), T(indices), T(offsets), /*scale_grad_by_freq=*/false, mode,
                               /*sparse=*/false, opt(per_sample_weights));
    *out = wrap(std::get<0>(r));
  })
}

msr_err msr_bce_with_logits(msr_tensor logits, msr_tensor target, msr_tensor weight, msr_tensor pos_weight,
                            int reduction, msr_tensor* out) {
  GUARD({
    if (reduction < 0 || reduction > 2) throw std::invalid_argument("unknown reduction " + std::to_string(reduction));
    // at::Reduction: None = 0, Mean = 1, Sum = 2.
    *out = wrap(at::binary_cross_entropy_with_logits(T(logits), T(target), opt(weight), opt(pos_weight), reduction));
  })
}

// ---------------------------------------------------------------- autograd

msr_err msr_set_requires_grad(msr_tensor a, int on) { GUARD(a->t.set_requires_grad(on != 0)) }

msr_err msr_backward(msr_tensor loss, msr_tensor grad, int retain_graph) {
  GUARD({
    at::Tensor g = grad ? T(grad) : at::Tensor();
    T(loss).backward(g, retain_graph != 0 ? c10::optional<bool>(true) : c10::nullopt);
  })
}

msr_err msr_grad(msr_tensor a, msr_tensor* out) {
  GUARD({
    const at::Tensor& g = T(a).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  })
}

msr_err msr_zero_grad(const msr_tensor* ts, int n) {
  GUARD({
    // Dropping the gradient (set_to_none) saves a fill and lets backward write it fresh.
    for (int i = 0; i < n; i++) {
      at::Tensor& t = ts[i]->t;
      if (t.grad().defined()) t.mutable_grad().reset();
    }
  })
}

msr_err msr_index_copy_(msr_tensor dst, int64_t dim, msr_tensor index, msr_tensor src) {
  GUARD({
    at::NoGradGuard no_grad;
    T(dst).index_copy_(dim, T(index), T(src));
  })
}

msr_err msr_copy_(msr_tensor dst, msr_tensor src) {
  GUARD({
    at::NoGradGuard no_grad;
    dst->t.copy_(T(src));
  })
}

msr_err msr_init(int op, msr_tensor a, double p1, double p2) {
  GUARD({
    at::Tensor& t = a->t;
    switch (op) {
      case MSR_INIT_UNIFORM: torch::nn::init::uniform_(t, p1, p2); break;
      case MSR_INIT_NORMAL: torch::nn::init::normal_(t, p1, p2); break;
      case MSR_INIT_CONSTANT: torch::nn::init::constant_(t, p1); break;
      case MSR_INIT_XAVIER_UNIFORM: torch::nn::init::xavier_uniform_(t, p1); break;
      case MSR_INIT_XAVIER_NORMAL: torch::nn::init::xavier_normal_(t, p1); break;
      case MSR_INIT_KAIMING_UNIFORM: torch::nn::init::kaiming_uniform_(t, p1, torch::kFanIn, torch::kLeakyReLU); break;
      case MSR_INIT_KAIMING_NORMAL: torch::nn::init::kaiming_normal_(t, p1, torch::kFanIn, torch::kLeakyReLU); break;
      default: throw std::invalid_argument("unknown init op " + std::to_string(op));
    }
  })
}

msr_err msr_clip_grad_norm(const msr_tensor* ts, int n, const msr_tensor* grad_ts, int ngrad, double max_norm,
                           double* total_norm) {
  GUARD({
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> grads;
    for (int i = 0; i < n; i++) {
      const at::Tensor& g = T(ts[i]).grad();
      if (g.defined()) grads.push_back(g);
    }
    for (int i = 0; i < ngrad; i++) grads.push_back(T(grad_ts[i]));
    if (grads.empty()) {
      *total_norm = 0;
      return nullptr;
    }
    std::vector<at::Tensor> norms;
    norms.reserve(grads.size());
    for (auto& g : grads) norms.push_back(g.norm().to(at::kDouble));
    double total = at::stack(norms).norm().item<double>();
    *total_norm = total;
    if (max_norm > 0 && total > max_norm) {
      double scale = max_norm / (total + 1e-6);
      for (auto& g : grads) g.mul_(scale);
    }
  })
}

msr_err msr_bench_add_loop(msr_tensor a, msr_tensor b, int iters, double* seconds) {
  GUARD({
    const at::Tensor& x = T(a);
    const at::Tensor& y = T(b);
    // Results live in batches of 100 and are freed together, as the Go side's
    // scope (and any training step's graph) keeps them, so the comparison
    // isolates the cgo crossing and the Go bookkeeping.
    constexpr int per_scope = 100;
    std::vector<msr_tensor> held;
    held.reserve(per_scope);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; i++) {
      held.push_back(wrap(at::add(x, y)));
      if (static_cast<int>(held.size()) == per_scope) {
        msr_free_tensors(held.data(), per_scope);
        held.clear();
      }
    }
    msr_free_tensors(held.data(), static_cast<int>(held.size()));
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  })
}

void msr_bench_add_once(msr_tensor a, msr_tensor b, msr_tensor* out) { *out = wrap(at::add(a->t, b->t)); }

}  // extern "C"
