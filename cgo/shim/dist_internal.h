// dist_internal.h: what dist.cpp needs from dist_nccl.cpp, which is compiled
// with NCCL (MSR_WITH_NCCL) only when the libtorch has it.
#ifndef MSR_DIST_INTERNAL_H
#define MSR_DIST_INTERNAL_H

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

int msr_nccl_compiled();
c10::intrusive_ptr<c10d::ProcessGroup> msr_nccl_new_group(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                          int size, std::chrono::milliseconds timeout);

#endif
