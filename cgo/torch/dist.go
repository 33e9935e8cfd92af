package torch

/*
#include <stdlib.h>
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// Data-parallel training rests on libtorch's c10d: a TCPStore where the
// processes meet and exchange small values, and a process group (Gloo on
// CPUs, NCCL on GPUs) that runs collectives over tensors. Every collective
// waits at most the group's timeout, so a peer that died or stopped
// answering turns into an error naming this rank, never a hang.

// Backend is a c10d process-group implementation.
type Backend int

// Backends.
const (
	Gloo Backend = C.MSR_GLOO
	NCCL Backend = C.MSR_NCCL
)

// BackendNames lists the backends by name, in the order errors and docs show them.
var BackendNames = []string{"gloo", "nccl"}

func (b Backend) String() string {
	if int(b) >= 0 && int(b) < len(BackendNames) {
		return BackendNames[b]
	}
	return fmt.Sprintf("backend(%d)", int(b))
}

// ParseBackend reads a backend name.
func ParseBackend(name string) (Backend, error) {
	for i, n := range BackendNames {
		if strings.EqualFold(name, n) {
			return Backend(i), nil
		}
	}
	return 0, fmt.Errorf("unknown backend %q: want %s", name, strings.Join(BackendNames, " or "))
}

// Compiled reports whether this build of msrtrain can create b's groups.
func (b Backend) Compiled() bool {
	var gloo, nccl C.int
	C.msr_dist_backends(&gloo, &nccl)
	switch b {
	case Gloo:
		return gloo != 0
	case NCCL:
		return nccl != 0
	}
	return false
}

// StoreOptions say where a TCPStore is and who hosts it.
type StoreOptions struct {
	Host string
	Port int // with Server, 0 binds a free port (see Store.Port)
	// Server makes this process host the store (and join it).
	Server bool
	// WorldSize is the number of processes that will join (0: not checked).
	WorldSize int
	// Timeout bounds connecting and every wait on a key.
	Timeout time.Duration
	// Prefix, when set, puts every key under it (torchrun's
	// "/worker/attempt_N" keeps a restarted job's keys apart).
	Prefix string
}

// Store is a client of (and, with StoreOptions.Server, the host of) a c10d
// TCPStore. Its methods may be called from any goroutine. Close it.
type Store struct {
	h       C.msr_store
	timeout time.Duration
}

// NewStore connects to the store at o.Host:o.Port, or hosts one there.
func NewStore(o StoreOptions) (*Store, error) {
	host := C.CString(o.Host)
	defer C.free(unsafe.Pointer(host))
	prefix := C.CString(o.Prefix)
	defer C.free(unsafe.Pointer(prefix))
	var h C.msr_store
	err := check("tcp store", C.msr_store_new(host, C.int(o.Port), boolInt(o.Server), C.int(o.WorldSize),
		C.int64_t(o.Timeout.Milliseconds()), prefix, &h))
	if err != nil {
		return nil, fmt.Errorf("store at %s:%d: %w", o.Host, o.Port, err)
	}
	return &Store{h: h, timeout: o.Timeout}, nil
}

// Port is the port the store listens on (the bound one when hosting on port 0).
func (s *Store) Port() int { return int(C.msr_store_port(s.h)) }

// Close disconnects; a hosting store stops serving.
func (s *Store) Close() {
	if s != nil && s.h != nil {
		C.msr_store_free(s.h)
		s.h = nil
	}
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return check("store set "+key, C.msr_store_set(s.h, k, p, C.int64_t(len(value))))
}

// Get waits up to timeout (0: the store's) for key and returns its value.
func (s *Store) Get(key string, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		timeout = s.timeout
	}
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var p unsafe.Pointer
	var n C.int64_t
	if err := check("store get "+key, C.msr_store_get(s.h, k, C.int64_t(timeout.Milliseconds()), &p, &n)); err != nil {
		return nil, err
	}
	defer C.msr_free_buf(p)
	return C.GoBytes(p, C.int(n)), nil
}

// Add adds delta to the counter at key (0 when absent) and returns the new
// value; Add(key, 0) reads a counter without waiting for it.
func (s *Store) Add(key string, delta int64) (int64, error) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var out C.int64_t
	err := check("store add "+key, C.msr_store_add(s.h, k, C.int64_t(delta), &out))
	return int64(out), err
}

// Has reports whether key is set, without waiting.
func (s *Store) Has(key string) (bool, error) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var present C.int
	err := check("store check "+key, C.msr_store_check(s.h, k, &present))
	return present != 0, err
}

// ReduceOp combines values across ranks in AllReduce.
type ReduceOp int

// Reductions.
const (
	AllReduceSum ReduceOp = C.MSR_REDUCE_SUM
	AllReduceMax ReduceOp = C.MSR_REDUCE_MAX
	AllReduceMin ReduceOp = C.MSR_REDUCE_MIN
)

// ProcessGroup runs collectives among Size processes; this one is Rank.
// Every rank must call the same collectives in the same order. Collectives
// run on the calling goroutine's torch thread like any other op. Close it.
type ProcessGroup struct {
	h       C.msr_pg
	rank    int
	size    int
	backend Backend
}

// NewProcessGroup joins a group of size processes through store; it
// returns once all have joined, or fails after timeout. timeout also bounds
// every later collective.
func NewProcessGroup(b Backend, store *Store, rank, size int, timeout time.Duration) (*ProcessGroup, error) {
	var h C.msr_pg
	err := check("process group", C.msr_pg_new(C.int(b), store.h, C.int(rank), C.int(size), C.int64_t(timeout.Milliseconds()), &h))
	if err != nil {
		return nil, fmt.Errorf("%s group, rank %d of %d: %w", b, rank, size, err)
	}
	return &ProcessGroup{h: h, rank: rank, size: size, backend: b}, nil
}

// Rank is this process's rank in the group.
func (g *ProcessGroup) Rank() int { return g.rank }

// Size is the number of processes in the group.
func (g *ProcessGroup) Size() int { return g.size }

// Backend is the group's implementation.
func (g *ProcessGroup) Backend() Backend { return g.backend }

// Close leaves the group.
func (g *ProcessGroup) Close() {
	if g != nil && g.h != nil {
		C.msr_pg_free(g.h)
		g.h = nil
	}
}

func tensorArgs(op string, ts []*Tensor) ([]C.msr_tensor, error) {
	if bad := firstErr(ts...); bad != nil {
		return nil, fmt.Errorf("%s: %w", op, bad.err)
	}
	return handles(ts), nil
}

func handlePtr(hs []C.msr_tensor) *C.msr_tensor {
	if len(hs) == 0 {
		return nil
	}
	return (*C.msr_tensor)(unsafe.Pointer(&hs[0]))
}

// Broadcast overwrites ts on every rank with root's values, moving them in
// flat buckets of at most bucketBytes.
func (g *ProcessGroup) Broadcast(ts []*Tensor, root int, bucketBytes int64) error {
	hs, err := tensorArgs("broadcast", ts)
	if err != nil {
		return err
	}
	return check("broadcast", C.msr_pg_broadcast(g.h, handlePtr(hs), C.int(len(hs)), C.int(root), C.int64_t(bucketBytes)))
}

// AllReduce combines t across ranks in place.
func (g *ProcessGroup) AllReduce(t *Tensor, op ReduceOp) error {
	if bad := firstErr(t); bad != nil {
		return bad.err
	}
	return check("allreduce", C.msr_pg_allreduce(g.h, t.h, C.int(op)))
}

// SumOverRanks returns the sum of t over the ranks as an op that autograd
// sees: the backward pass sums the gradient over the ranks too, so each
// rank's t receives the gradient of every rank's loss (what synchronised
// batch statistics need). Every rank must call it in the same order, and
// run the backward pass; the group must outlive the graph.
func (g *ProcessGroup) SumOverRanks(t *Tensor) *Tensor {
	if bad := firstErr(t); bad != nil {
		return bad
	}
	var out C.msr_tensor
	return result("sum over ranks", C.msr_pg_allreduce_differentiable(g.h, t.h, &out), out)
}

// AllGather concatenates t from every rank along dimension 0, in rank
// order; the ranks' lengths may differ (counts says each one's). The
// result belongs to the current scope like any op's.
func (g *ProcessGroup) AllGather(t *Tensor) (*Tensor, []int64, error) {
	if bad := firstErr(t); bad != nil {
		return nil, nil, bad.err
	}
	counts := make([]int64, g.size)
	var out C.msr_tensor
	if err := check("allgather", C.msr_pg_allgather_cat(g.h, t.h, &out, (*C.int64_t)(unsafe.Pointer(&counts[0])))); err != nil {
		return nil, nil, err
	}
	return wrap(out), counts, nil
}

// Barrier returns when every rank has reached it.
func (g *ProcessGroup) Barrier() error { return check("barrier", C.msr_pg_barrier(g.h)) }

// AverageGrads replaces each parameter's dense gradient by its mean over
// the ranks, all-reducing flat buckets of at most bucketBytes. A parameter
// that has no gradient on one rank counts as zero there; one that has none
// on any rank keeps none (an optimizer then skips it, as in one process).
// flags, small integers such as "this rank was asked to stop", are summed
// over the ranks in place, riding in the same collective.
func (g *ProcessGroup) AverageGrads(params []*Tensor, bucketBytes int64, flags []float64) error {
	hs, err := tensorArgs("average gradients", params)
	if err != nil {
		return err
	}
	var fp *C.double
	if len(flags) > 0 {
		fp = (*C.double)(unsafe.Pointer(&flags[0]))
	}
	return check("average gradients", C.msr_pg_average_grads(g.h, handlePtr(hs), C.int(len(hs)), C.int64_t(bucketBytes), fp, C.int(len(flags))))
}

// Reducer is AverageGrads overlapped with the backward pass, as
// DistributedDataParallel does it: each bucket's all-reduce starts as soon
// as the backward pass has finished its gradients (and every earlier
// bucket's), while autograd computes the rest. Call Begin before each
// backward pass and Finish after it, on every rank.
type Reducer struct {
	h     C.msr_reducer
	group *ProcessGroup
}

// NewReducer watches params' gradients, in buckets of at most bucketBytes;
// params must be leaves that require grad and stay alive until Close.
func (g *ProcessGroup) NewReducer(params []*Tensor, bucketBytes int64) (*Reducer, error) {
	hs, err := tensorArgs("gradient reducer", params)
	if err != nil {
		return nil, err
	}
	var h C.msr_reducer
	if err := check("gradient reducer", C.msr_reducer_new(g.h, handlePtr(hs), C.int(len(hs)), C.int64_t(bucketBytes), &h)); err != nil {
		return nil, err
	}
	return &Reducer{h: h, group: g}, nil
}

// Begin arms the reducer for the next backward pass.
func (r *Reducer) Begin() error { return check("gradient reducer", C.msr_reducer_begin(r.h)) }

// Finish starts what the backward pass did not, waits, and leaves every
// parameter's gradient averaged over the ranks, with AverageGrads'
// semantics (flags summed over the ranks included). overlapped is how many
// buckets the backward pass had started.
func (r *Reducer) Finish(flags []float64) (overlapped int, err error) {
	var fp *C.double
	if len(flags) > 0 {
		fp = (*C.double)(unsafe.Pointer(&flags[0]))
	}
	var early C.int
	err = check("average gradients", C.msr_reducer_finish(r.h, fp, C.int(len(flags)), &early))
	return int(early), err
}

// Close removes the reducer's hooks.
func (r *Reducer) Close() {
	if r != nil && r.h != nil {
		C.msr_reducer_free(r.h)
		r.h = nil
	}
}
