package torch

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ranks of these tests are goroutines of the test process (each locked
// to its own OS thread, outside any scope, since scopes are process-wide),
// or, where a rank must die or go silent, a child process: the test binary
// re-run with distWorkerEnv set.

const distWorkerEnv = "MSR_TORCH_DIST_WORKER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(distWorkerEnv); mode != "" {
		os.Exit(distWorker(mode))
	}
	os.Exit(m.Run())
}

// hostStore hosts a store on a free loopback port, as torchrun's agent does.
func hostStore(t *testing.T, world int) *Store {
	t.Helper()
	s, err := NewStore(StoreOptions{Host: "127.0.0.1", Server: true, WorldSize: world, Timeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func joinStore(port int) (*Store, error) {
	return NewStore(StoreOptions{Host: "127.0.0.1", Port: port, Timeout: 30 * time.Second})
}

// runRanks runs body as every rank of a Gloo group of size world, each in
// its own goroutine, and returns their errors by rank.
func runRanks(t *testing.T, world int, timeout time.Duration, body func(g *ProcessGroup) error) []error {
	t.Helper()
	t.Setenv("GLOO_SOCKET_IFNAME", loopbackInterface(t))
	host := hostStore(t, world)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s, err := joinStore(host.Port())
			if err != nil {
				errs[r] = err
				return
			}
			defer s.Close()
			g, err := NewProcessGroup(Gloo, s, r, world, timeout)
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = body(g)
		}()
	}
	wg.Wait()
	return errs
}

// loopbackInterface names the loopback interface for GLOO_SOCKET_IFNAME, so
// that the tests never depend on how the machine's hostname resolves.
func loopbackInterface(t *testing.T) string {
	t.Helper()
	if !Gloo.Compiled() {
		t.Skip("this build has no Gloo (see cgo/find_libtorch.sh)")
	}
	return "lo"
}

func closeAll(ts ...*Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Close()
		}
	}
}

func TestParseBackend(t *testing.T) {
	for _, name := range BackendNames {
		b, err := ParseBackend(name)
		require.NoError(t, err)
		assert.Equal(t, name, b.String())
	}
	_, err := ParseBackend("mpi")
	require.ErrorContains(t, err, `"mpi": want gloo or nccl`)
}

func TestStore(t *testing.T) {
	host := hostStore(t, 2)
	require.NotZero(t, host.Port())
	c, err := joinStore(host.Port())
	require.NoError(t, err)
	defer c.Close()

	require.NoError(t, host.Set("config", []byte("hash-1")))
	v, err := c.Get("config", 0)
	require.NoError(t, err)
	assert.Equal(t, "hash-1", string(v))

	n, err := c.Add("joined", 1)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	n, err = host.Add("joined", 0)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "Add(key, 0) reads the counter")

	has, err := c.Has("missing")
	require.NoError(t, err)
	assert.False(t, has)
	_, err = c.Get("missing", 200*time.Millisecond)
	require.Error(t, err, "a key nobody sets is a timeout, not a hang")
	assert.Contains(t, err.Error(), "store get missing")

	prefixed, err := NewStore(StoreOptions{Host: "127.0.0.1", Port: host.Port(), Timeout: time.Second, Prefix: "/attempt_1"})
	require.NoError(t, err)
	defer prefixed.Close()
	has, err = prefixed.Has("config")
	require.NoError(t, err)
	assert.False(t, has, "a prefixed store sees only its own keys")
}

func TestStoreUnreachable(t *testing.T) {
	host := hostStore(t, 1)
	port := host.Port()
	host.Close() // nothing listens there now
	_, err := NewStore(StoreOptions{Host: "127.0.0.1", Port: port, Timeout: 500 * time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("127.0.0.1:%d", port))
}

func TestCollectives(t *testing.T) {
	const world = 3
	got := make([][]float32, world)
	gathered := make([][]float32, world)
	counts := make([][]int64, world)
	maxes := make([][]float32, world)
	errs := runRanks(t, world, 30*time.Second, func(g *ProcessGroup) error {
		r := g.Rank()
		// Broadcast: rank 1's two tensors, in buckets small enough to split them.
		a := FromSlice([]float32{float32(r), float32(r)})
		b := FromSlice([]float32{10 * float32(r), 1, 2}, 3, 1)
		defer closeAll(a, b)
		if err := g.Broadcast([]*Tensor{a, b}, 1, 8); err != nil {
			return err
		}
		av, _ := a.Float32s()
		bv, _ := b.Float32s()
		got[r] = append(av, bv...)

		m := FromSlice([]float32{float32(r), -float32(r)})
		defer closeAll(m)
		if err := g.AllReduce(m, AllReduceMax); err != nil {
			return err
		}
		maxes[r], _ = m.Float32s()

		// AllGather: rank r contributes r rows of width 2.
		rows := make([]float32, 2*r)
		for i := range rows {
			rows[i] = float32(10*r + i)
		}
		part := FromSlice(rows, int64(r), 2)
		defer closeAll(part)
		all, n, err := g.AllGather(part)
		if err != nil {
			return err
		}
		defer closeAll(all)
		gathered[r], _ = all.Float32s()
		counts[r] = n
		return g.Barrier()
	})
	for r, err := range errs {
		require.NoError(t, err, "rank %d", r)
	}
	for r := range world {
		assert.Equal(t, []float32{1, 1, 10, 1, 2}, got[r], "rank %d after broadcast", r)
		assert.Equal(t, []float32{2, 0}, maxes[r], "rank %d after allreduce max", r)
		assert.Equal(t, []int64{0, 1, 2}, counts[r], "rank %d counts", r)
		assert.Equal(t, []float32{10, 11, 20, 21, 22, 23}, gathered[r], "rank %d gathered", r)
	}
}

// TestAverageGrads: after the backward pass (AverageGrads) and overlapped
// with it (Reducer), a parameter every rank uses gets the mean of the
// ranks' gradients; one only rank 0 uses gets half its gradient (the other
// rank counts zero, as one process over both ranks' samples would); one
// nobody uses keeps no gradient; flags are summed. The reducer sees the parameters in an
// order where the backward pass can start the shared one's bucket on both
// ranks and the one-rank parameter's on rank 0 only.
func TestAverageGrads(t *testing.T) {
	const world = 2
	for _, overlap := range []bool{false, true} {
		t.Run(fmt.Sprintf("overlap=%v", overlap), func(t *testing.T) {
			grads := make([][][]float32, world)
			hasUnused := make([]bool, world)
			flags := make([][]float64, world)
			early := make([]int, world)
			errs := runRanks(t, world, 30*time.Second, func(g *ProcessGroup) error {
				r := g.Rank()
				shared := FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
				onlyRank0 := FromSlice([]float32{1, 1, 1, 1})
				unused := FromSlice([]float32{7, 7, 7})
				params := []*Tensor{shared, onlyRank0, unused}
				defer closeAll(params...)
				for _, p := range params {
					if err := p.SetRequiresGrad(true); err != nil {
						return err
					}
				}
				var reducer *Reducer
				if overlap {
					// 8 bytes per bucket: every parameter in its own; the
					// reducer buckets them last first.
					var err error
					if reducer, err = g.NewReducer([]*Tensor{unused, onlyRank0, shared}, 8); err != nil {
						return err
					}
					defer reducer.Close()
					if err := reducer.Begin(); err != nil {
						return err
					}
				}
				coef := FromSlice([]float32{float32(r + 1), 0, 1, 2, 3, float32(-r)}, 2, 3)
				loss := shared.Mul(coef).Sum(false)
				var more []*Tensor
				if r == 0 {
					more = append(more, onlyRank0.MulScalar(2).Sum(false))
					loss = loss.Add(more[0])
				}
				defer closeAll(append(more, coef, loss)...)
				if err := loss.Backward(); err != nil {
					return err
				}
				flags[r] = []float64{float64(r), 1}
				if overlap {
					var err error
					if early[r], err = reducer.Finish(flags[r]); err != nil {
						return err
					}
				} else if err := g.AverageGrads(params, 8, flags[r]); err != nil { // 8 bytes: several collectives
					return err
				}
				for _, p := range params[:2] {
					gr := p.Grad()
					if gr == nil {
						return fmt.Errorf("rank %d: a parameter lost its gradient", r)
					}
					v, err := gr.Float32s()
					gr.Close()
					if err != nil {
						return err
					}
					grads[r] = append(grads[r], v)
				}
				if gr := unused.Grad(); gr != nil {
					hasUnused[r] = true
					gr.Close()
				}
				return nil
			})
			for r, err := range errs {
				require.NoError(t, err, "rank %d", r)
			}
			for r := range world {
				assert.Equal(t, []float32{1.5, 0, 1, 2, 3, -0.5}, grads[r][0], "rank %d shared", r)
				assert.Equal(t, []float32{1, 1, 1, 1}, grads[r][1], "rank %d only-rank-0", r)
				assert.False(t, hasUnused[r], "rank %d: a parameter no rank used gained a gradient", r)
				assert.Equal(t, []float64{1, 2}, flags[r], "rank %d: flags summed over the ranks", r)
			}
			if overlap {
				assert.Equal(t, []int{2, 1}, early, "buckets the backward pass started on each rank")
			}
		})
	}
}

// distWorker is a child process's rank 1: it joins the group, takes part in
// one all-reduce, then dies or goes silent as mode says.
func distWorker(mode string) int {
	runtime.LockOSThread()
	port, _ := strconv.Atoi(os.Getenv("MSR_TORCH_DIST_PORT"))
	s, err := joinStore(port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Set("child ready", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g, err := NewProcessGroup(Gloo, s, 1, 2, 30*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	x := FromSlice([]float32{1})
	if err := g.AllReduce(x, AllReduceSum); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch mode {
	case "die":
		return 3 // exits without leaving the group, as a crash would
	case "silent":
		time.Sleep(time.Hour) // the test kills it
	}
	return 0
}

// TestPeerFailure: when the other rank dies, or stops answering, the next
// collective fails (within the group's timeout) with an error naming this rank.
func TestPeerFailure(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, mode := range []string{"die", "silent"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("GLOO_SOCKET_IFNAME", loopbackInterface(t))
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			host := hostStore(t, 2)
			child := exec.Command(exe, "-test.run", "^$")
			child.Env = append(os.Environ(), distWorkerEnv+"="+mode, fmt.Sprintf("MSR_TORCH_DIST_PORT=%d", host.Port()))
			child.Stderr = os.Stderr
			require.NoError(t, child.Start())
			defer func() {
				child.Process.Kill()
				child.Wait()
			}()
			// The group's timeout bounds its rendezvous too: start it once
			// the child (slow to load libtorch on a busy machine) is up.
			_, err := host.Get("child ready", time.Minute)
			require.NoError(t, err)
			g, err := NewProcessGroup(Gloo, host, 0, 2, 5*time.Second)
			require.NoError(t, err)
			defer g.Close()
			x := FromSlice([]float32{1})
			defer x.Close()
			require.NoError(t, g.AllReduce(x, AllReduceSum))
			v, _ := x.Float32s()
			require.Equal(t, []float32{2}, v)
			err = g.AllReduce(x, AllReduceSum)
			require.Error(t, err, "a collective with a %s peer must fail, not hang", mode)
			assert.Contains(t, err.Error(), "allreduce: rank 0 of 2: ")
		})
	}
}

func TestNCCLAbsentSaysWhy(t *testing.T) {
	if NCCL.Compiled() {
		t.Skip("this build has NCCL")
	}
	host := hostStore(t, 1)
	_, err := NewProcessGroup(NCCL, host, 0, 1, time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "this build has no NCCL")
}
