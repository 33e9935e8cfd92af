// alloc.cpp: glibc allocator settings for tensor-sized blocks.
//
// By default glibc serves large blocks with mmap (above a threshold that
// adapts) and returns freed memory at the top of a heap to the kernel, so
// a training loop maps, faults in and unmaps the same megabytes of
// activations and gradients every step. The torch goroutine's locked thread
// is not the main thread, so its allocations come from a secondary arena,
// which trims eagerly. Keeping the blocks in the heap trades a higher
// resident peak for no page faults in the loop.

#include <malloc.h>
#include <sys/mman.h>

#include <cstdlib>
#include <new>

#include "internal.h"
#include "msr.h"

extern "C" int msr_tune_allocator(long mmap_threshold, long trim_threshold) {
  int ok = 1;
  if (mmap_threshold > 0) ok &= mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  if (trim_threshold > 0) ok &= mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold));
  return ok;
}

// A sparse step touches a few thousand rows scattered over a table of
// hundreds of megabytes: with 4 KiB pages nearly every row also misses the
// TLB, and under a hypervisor a page walk is itself a chain of misses.
// Large tables therefore live in 2 MiB-aligned memory advised for
// transparent huge pages (which need no set-up where the kernel's THP mode
// is "always" or "madvise"; elsewhere the advice is ignored). The advice
// must come before the first touch, so the pages are born huge.
at::Tensor msr_empty_table(at::IntArrayRef sizes, const at::TensorOptions& options) {
  constexpr size_t kHugePage = size_t(2) << 20;
  int64_t bytes = options.dtype().itemsize();
  bool overflow = false;
  for (int64_t d : sizes) overflow |= d < 0 || __builtin_mul_overflow(bytes, d, &bytes);
  // Anything unusual (not the CPU, small, a size that overflows) and any
  // failure here goes to libtorch's own allocator, whose errors say what
  // was asked for.
  if (!options.device().is_cpu() || overflow || bytes < kLargeTableBytes) return at::empty(sizes, options);
  const size_t rounded = (static_cast<size_t>(bytes) + kHugePage - 1) & ~(kHugePage - 1);
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, rounded) != 0) return at::empty(sizes, options);
  madvise(p, rounded, MADV_HUGEPAGE);  // only advice: failure leaves ordinary pages
  return at::from_blob(p, sizes, [](void* q) { std::free(q); }, options);
}
