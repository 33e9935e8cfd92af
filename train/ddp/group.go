package ddp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// Backend chooses the process group's implementation: auto takes NCCL on
// CUDA devices and Gloo on the CPU.
type Backend int

// Backend choices.
const (
	BackendAuto Backend = iota
	BackendGloo
	BackendNCCL
)

// BackendNames lists the choices in the order errors and docs show them.
var BackendNames = []string{"auto", "gloo", "nccl"}

func (b Backend) String() string {
	if int(b) >= 0 && int(b) < len(BackendNames) {
		return BackendNames[b]
	}
	return fmt.Sprintf("backend(%d)", int(b))
}

// MarshalText writes the choice's name (YAML and JSON use it).
func (b Backend) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText reads a choice's name.
func (b *Backend) UnmarshalText(text []byte) error {
	for i, n := range BackendNames {
		if strings.EqualFold(string(text), n) {
			*b = Backend(i)
			return nil
		}
	}
	return fmt.Errorf("unknown backend %q: want %s", text, strings.Join(BackendNames, ", "))
}

// resolve picks the c10d backend for a rank that computes on dev.
func (b Backend) resolve(dev torch.Device) torch.Backend {
	switch {
	case b == BackendNCCL, b == BackendAuto && dev.IsCUDA():
		return torch.NCCL
	}
	return torch.Gloo
}

// Options configure a Group.
type Options struct {
	Backend Backend
	// Timeout bounds joining and every collective: a rank that has not
	// answered within it is reported dead.
	Timeout time.Duration
	// BucketBytes caps each flat bucket of the gradient all-reduce.
	BucketBytes int64
}

// Group is this process's place in a data-parallel job: a c10d process
// group plus the store it met the others at. Collectives must be called by
// every rank in the same order, on the torch goroutine.
type Group struct {
	Launch
	pg      *torch.ProcessGroup
	store   *torch.Store // used from the torch goroutine
	beat    *torch.Store // used by the heartbeat goroutine
	timeout time.Duration
	bucket  int64
	every   time.Duration // between heartbeats
	stop    chan struct{}
	wg      sync.WaitGroup
	agreed  int
}

// Join meets the other ranks of l's job and opens the process group; dev
// is this rank's device (NCCL wants a GPU per rank).
func Join(l *Launch, dev torch.Device, o Options) (*Group, error) {
	if o.Timeout <= 0 {
		return nil, fmt.Errorf("dist: timeout %v must be positive", o.Timeout)
	}
	backend := o.Backend.resolve(dev)
	if !backend.Compiled() {
		return nil, fmt.Errorf("dist: rank %d: %s is not in this build of msrtrain (see docs/distributed.md)", l.Rank, backend)
	}
	g := &Group{Launch: *l, timeout: o.Timeout, bucket: o.BucketBytes, stop: make(chan struct{})}
	g.every = min(max(o.Timeout/20, 100*time.Millisecond), 2*time.Second)
	where := fmt.Sprintf("%s:%d", l.MasterAddr, l.MasterPort)
	host := !l.AgentStore && l.Rank == 0
	var err error
	g.store, err = torch.NewStore(torch.StoreOptions{Host: l.MasterAddr, Port: l.MasterPort, Server: host,
		WorldSize: l.WorldSize, Timeout: o.Timeout, Prefix: l.storePrefix()})
	if err != nil {
		return nil, fmt.Errorf("dist: rank %d: the store at %s: %w", l.Rank, where, err)
	}
	if host {
		g.MasterPort = g.store.Port() // the one bound, when asked for any
	}
	g.beat, err = torch.NewStore(torch.StoreOptions{Host: l.MasterAddr, Port: g.MasterPort, Timeout: o.Timeout, Prefix: l.storePrefix()})
	if err != nil {
		g.store.Close()
		return nil, fmt.Errorf("dist: rank %d: the store at %s: %w", l.Rank, where, err)
	}
	g.wg.Add(1)
	go g.heartbeat()
	g.pg, err = torch.NewProcessGroup(backend, g.store, l.Rank, l.WorldSize, o.Timeout)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("dist: joining %d ranks at %s: %w", l.WorldSize, where, err)
	}
	return g, nil
}

// Rank is this process's rank; Size the number of ranks.
func (g *Group) Rank() int { return g.Launch.Rank }

// Size is the number of ranks in the job.
func (g *Group) Size() int { return g.Launch.WorldSize }

// Backend is the process group's implementation.
func (g *Group) Backend() torch.Backend { return g.pg.Backend() }

// LaunchInfo is what the launcher said of this rank; nil for a nil group (one process).
func (g *Group) LaunchInfo() *Launch {
	if g == nil {
		return nil
	}
	return &g.Launch
}

// Close leaves the group and stops the heartbeat.
func (g *Group) Close() {
	if g == nil || g.stop == nil {
		return
	}
	close(g.stop)
	g.wg.Wait()
	g.stop = nil
	g.pg.Close()
	g.beat.Close()
	g.store.Close()
}

func heartbeatKey(rank int) string { return fmt.Sprintf("heartbeat/%d", rank) }
func failedKey(rank int) string    { return fmt.Sprintf("failed/%d", rank) }

// heartbeat bumps this rank's counter in the store until Close, so that a
// peer whose collective failed can tell a live rank from a dead or hung one.
func (g *Group) heartbeat() {
	defer g.wg.Done()
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		if _, err := g.beat.Add(heartbeatKey(g.Rank()), 1); err != nil {
			return // the store is gone; a failing collective will say so
		}
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
	}
}

// Fail records why this rank is stopping, for the peers' error messages.
// Call it before exiting on an error; it never blocks long.
func (g *Group) Fail(err error) {
	if g == nil || err == nil {
		return
	}
	g.beat.Set(failedKey(g.Rank()), []byte(err.Error()))
}

// blame names the rank at fault after a failed collective: one that
// recorded a failure, else one whose heartbeat stopped, else the store
// itself when it cannot be reached.
func (g *Group) blame() string {
	var failed []string
	for r := range g.Size() {
		if r == g.Rank() {
			continue
		}
		has, err := g.beat.Has(failedKey(r))
		if err != nil {
			return fmt.Sprintf("the store at %s:%d is unreachable (%v): the process hosting it (rank 0, or torchrun's agent) is gone", g.MasterAddr, g.MasterPort, err)
		}
		if has {
			msg, _ := g.beat.Get(failedKey(r), g.every)
			failed = append(failed, fmt.Sprintf("rank %d failed: %s", r, msg))
		}
	}
	if len(failed) > 0 {
		return strings.Join(failed, "; ")
	}
	beats := func() []int64 {
		out := make([]int64, g.Size())
		for r := range out {
			out[r], _ = g.beat.Add(heartbeatKey(r), 0)
		}
		return out
	}
	before := beats()
	wait := 4 * g.every
	time.Sleep(wait)
	after := beats()
	var silent []string
	for r := range after {
		if r != g.Rank() && after[r] == before[r] {
			silent = append(silent, fmt.Sprint(r))
		}
	}
	switch len(silent) {
	case 0:
		return "every rank is alive: one of them left the collective (an error it has not recorded yet, or ranks out of step)"
	case 1:
		return fmt.Sprintf("rank %s stopped answering (no heartbeat in %v): it died or hangs", silent[0], wait)
	}
	return fmt.Sprintf("ranks %s stopped answering (no heartbeat in %v): they died or hang", strings.Join(silent, ", "), wait)
}

// explain turns a collective's failure into one that names the culprit.
func (g *Group) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	return &RankError{Op: op, Rank: g.Rank(), Size: g.Size(), Blame: g.blame(), Err: err}
}

// RankError is a failed collective, with the rank it happened on and what
// the store says about the others.
type RankError struct {
	Op         string
	Rank, Size int
	Blame      string
	Err        error
}

func (e *RankError) Error() string {
	return fmt.Sprintf("dist: rank %d of %d: %s failed: %s (%v)", e.Rank, e.Size, e.Op, e.Blame, e.Err)
}

func (e *RankError) Unwrap() error { return e.Err }

// ErrMismatch marks ranks that disagree on what they train with.
var ErrMismatch = errors.New("ranks disagree")

// Agree checks that every rank holds the same value of what (a config, a
// vocabulary's fingerprint): a job whose ranks differ would train on
// nonsense, so that is an error before training, naming the ranks.
func (g *Group) Agree(what string, value []byte) error {
	g.agreed++
	prefix := fmt.Sprintf("agree/%d/%s/", g.agreed, what)
	if err := g.store.Set(prefix+fmt.Sprint(g.Rank()), value); err != nil {
		return g.explain("agreeing on "+what, err)
	}
	var differ []string
	for r := range g.Size() {
		v, err := g.store.Get(prefix+fmt.Sprint(r), g.timeout)
		if err != nil {
			return g.explain("agreeing on "+what, err)
		}
		if !bytes.Equal(v, value) {
			differ = append(differ, fmt.Sprint(r))
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("dist: rank %d: %w: the %s of rank(s) %s differs from this rank's", g.Rank(), ErrMismatch, what, strings.Join(differ, ", "))
	}
	return nil
}

// Broadcast overwrites ts with rank 0's values on every rank.
func (g *Group) Broadcast(ts []*torch.Tensor) error {
	return g.explain("broadcast", g.pg.Broadcast(ts, 0, g.bucket))
}

// AverageGrads averages the parameters' gradients over the ranks (see
// torch.ProcessGroup.AverageGrads) and sums flags over them.
func (g *Group) AverageGrads(params []*torch.Tensor, flags []float64) error {
	return g.explain("averaging gradients", g.pg.AverageGrads(params, g.bucket, flags))
}

// Reducer averages gradients like AverageGrads, overlapped with the backward
// pass (see torch.Reducer); its errors name the culprit as AverageGrads' do.
type Reducer struct {
	group *Group
	r     *torch.Reducer
}

// NewReducer watches params' gradients in the group's buckets.
func (g *Group) NewReducer(params []*torch.Tensor) (*Reducer, error) {
	r, err := g.pg.NewReducer(params, g.bucket)
	if err != nil {
		return nil, err
	}
	return &Reducer{group: g, r: r}, nil
}

// Begin arms the reducer for the next backward pass.
func (r *Reducer) Begin() error { return r.group.explain("averaging gradients", r.r.Begin()) }

// Finish completes the average after the backward pass and sums flags over the ranks.
func (r *Reducer) Finish(flags []float64) error {
	_, err := r.r.Finish(flags)
	return r.group.explain("averaging gradients", err)
}

// Close removes the reducer's hooks; a nil reducer is fine.
func (r *Reducer) Close() {
	if r != nil {
		r.r.Close()
	}
}

// AllGather concatenates t from every rank in rank order (lengths may differ).
func (g *Group) AllGather(t *torch.Tensor) (*torch.Tensor, []int64, error) {
	out, counts, err := g.pg.AllGather(t)
	return out, counts, g.explain("gathering", err)
}

// AllReduce combines t over the ranks in place.
func (g *Group) AllReduce(t *torch.Tensor, op torch.ReduceOp) error {
	return g.explain("all-reduce", g.pg.AllReduce(t, op))
}

// SumOverRanks sums t over the ranks as an op autograd sees (see
// torch.ProcessGroup.SumOverRanks); a failure travels in the result.
func (g *Group) SumOverRanks(t *torch.Tensor) *torch.Tensor {
	out := g.pg.SumOverRanks(t)
	if err := out.Err(); err != nil {
		return torch.Failed(g.explain("synchronising batch statistics", err))
	}
	return out
}

// Barrier returns once every rank reached it.
func (g *Group) Barrier(what string) error {
	return g.explain(what, g.pg.Barrier())
}

// WaitFor waits for rank 0 to announce key through Announce, for as long as
// rank 0 keeps its heartbeat (knowledge can take hours to build), and
// returns rank 0's failure if it announced one.
func (g *Group) WaitFor(key string) error {
	for {
		v, err := g.store.Get("announce/"+key, 10*g.every)
		if err == nil {
			if len(v) > 0 {
				return fmt.Errorf("dist: rank %d: rank 0 failed %s: %s", g.Rank(), key, v)
			}
			return nil
		}
		before, _ := g.beat.Add(heartbeatKey(0), 0)
		time.Sleep(4 * g.every)
		after, aerr := g.beat.Add(heartbeatKey(0), 0)
		if aerr != nil || after == before {
			return &RankError{Op: "waiting for " + key, Rank: g.Rank(), Size: g.Size(), Blame: g.blame(), Err: err}
		}
	}
}

// Announce tells the ranks in WaitFor that key is done (failure nil) or failed.
func (g *Group) Announce(key string, failure error) error {
	var msg []byte
	if failure != nil {
		msg = []byte(failure.Error())
	}
	return g.store.Set("announce/"+key, msg)
}
