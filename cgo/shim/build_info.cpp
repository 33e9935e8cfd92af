// build_info.cpp: what the build found out about the libtorch the shim was
// compiled against. It lives in the shim, not in the Go package, so that a
// Go side compiled elsewhere (the GPU bundle's C archive) still reports the
// libtorch of the machine that compiled the shim.

#include "msr.h"

// find_libtorch.sh passes the distribution's version as a bare token (1.13.1).
#define MSR_STR2(x) #x
#define MSR_STR(x) MSR_STR2(x)
#ifndef MSR_TORCH_VERSION
#define MSR_TORCH_VERSION unknown
#endif

extern "C" const char* msr_torch_distribution(void) { return MSR_STR(MSR_TORCH_VERSION); }
