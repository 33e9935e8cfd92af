package torch

/*
#include "msr.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// TuneAllocator keeps tensor-sized blocks (up to 1 GiB) in the C heap and
// stops glibc from handing freed memory back to the kernel, so a training
// loop that allocates the same activations every step stops mapping and
// faulting them in each time (what that saves: docs/benchmarks.md). Call it
// once at start-up, before the first tensor; the process then keeps its
// peak resident memory.
func TuneAllocator() error {
	if C.msr_tune_allocator(mmapThreshold, trimThreshold) != 1 {
		return errors.New("torch: mallopt refused the allocator settings")
	}
	return nil
}

const (
	mmapThreshold = 1 << 30
	trimThreshold = 1<<31 - 1
)

// AllocatorTunables is TuneAllocator's setting as a GLIBC_TUNABLES value,
// for a baseline process (a PyTorch benchmark) that must run with the same.
func AllocatorTunables() string {
	return fmt.Sprintf("glibc.malloc.mmap_threshold=%d:glibc.malloc.trim_threshold=%d", mmapThreshold, trimThreshold)
}
