// internal.h: what the shim's C++ files share and Go never sees.
#ifndef MSR_INTERNAL_H
#define MSR_INTERNAL_H

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "msr.h"

// A handle is one reference to a tensor; deleting it drops that reference.
struct msr_tensor_s {
  at::Tensor t;
};

// T reads the tensor behind a handle; a null handle is an error, not a crash.
inline const at::Tensor& T(msr_tensor h) {
  if (h == nullptr) throw std::invalid_argument("null tensor handle");
  return h->t;
}

// make_err copies a message into malloc'd memory that Go frees with msr_free_err.
inline msr_err make_err(const std::string& prefix, const char* what) {
  std::string msg = prefix + (what ? what : "unknown error");
  char* out = static_cast<char*>(std::malloc(msg.size() + 1));
  if (out == nullptr) return nullptr;  // nothing better to do when even this fails
  std::memcpy(out, msg.c_str(), msg.size() + 1);
  return out;
}

// msr_is_oom spots allocation failures that libtorch raises as a plain
// c10::Error: the CPU allocator reports them with CAFFE_ENFORCE, not as
// c10::OutOfMemoryError, so without this errors.Is(err, ErrOutOfMemory)
// would miss every host-memory OOM.
inline bool msr_is_oom(const c10::Error& e) {
  const char* m = e.what_without_backtrace();
  return m != nullptr && (std::strstr(m, "DefaultCPUAllocator: can't allocate memory") != nullptr ||
                          std::strstr(m, "DefaultCPUAllocator: not enough memory") != nullptr);
}

// kLargeTableBytes is where a table stops fitting any cache, so that how
// its rows are laid out and visited starts to matter (alloc.cpp,
// sparse.cpp).
constexpr int64_t kLargeTableBytes = int64_t(64) << 20;

// msr_empty_table allocates an uninitialised CPU tensor for a large table
// or its optimizer state; see alloc.cpp for why it is not at::empty.
at::Tensor msr_empty_table(at::IntArrayRef sizes, const at::TensorOptions& options);

// msr_register_meta_kernels adds the meta kernels libtorch lacks (meta.cpp);
// it runs once, the first time a tensor is placed on the meta device.
void msr_register_meta_kernels();

// GUARD runs a body and turns whatever libtorch throws into a returned
// message: an exception crossing into Go would abort the process.
#define GUARD(...)                                                \
  try {                                                           \
    __VA_ARGS__;                                                  \
    return nullptr;                                               \
  } catch (const c10::OutOfMemoryError& e) {                      \
    return make_err(MSR_OOM_PREFIX, e.what_without_backtrace());  \
  } catch (const c10::Error& e) {                                 \
    return make_err(msr_is_oom(e) ? MSR_OOM_PREFIX : "",          \
                    e.what_without_backtrace());                  \
  } catch (const std::bad_alloc& e) {                             \
    return make_err(MSR_OOM_PREFIX, e.what());                    \
  } catch (const std::exception& e) {                             \
    return make_err("", e.what());                                \
  } catch (...) {                                                 \
    return make_err("", "unknown C++ exception");                 \
  }

#endif
