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

#include "msr.h"

extern "C" int msr_tune_allocator(long mmap_threshold, long trim_threshold) {
  int ok = 1;
  if (mmap_threshold > 0) ok &= mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  if (trim_threshold > 0) ok &= mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold));
  return ok;
}
