// dist_nccl.cpp: the NCCL process group, compiled only when
// cgo/find_libtorch.sh found a libtorch_cuda exporting ProcessGroupNCCL and
// the nccl.h and CUDA headers it needs (MSR_WITH_NCCL); dist.cpp holds the
// stub that explains its absence otherwise.
#ifdef MSR_WITH_NCCL

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

#include "dist_internal.h"

int msr_nccl_compiled() { return 1; }

c10::intrusive_ptr<c10d::ProcessGroup> msr_nccl_new_group(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                          int size, std::chrono::milliseconds timeout) {
  // Without blocking wait, a collective waits on the GPU stream and a dead
  // peer shows only as a hang; with it, Work::wait raises after the timeout
  // as Gloo does. The setting is read when the group is made.
  setenv("NCCL_BLOCKING_WAIT", "1", 0);
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
}

#endif
