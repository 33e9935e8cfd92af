package serve

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/msrtrain/msrtrain/data"
)

// job is one request's encoded rows, waiting to be scored by the model
// that encoded them.
type job struct {
	ctx   context.Context
	model *served // holds a reference, released once the job is answered
	table *data.Table
	done  chan jobResult // buffered: the scorer never waits on a reader
}

type jobResult struct {
	scores []float32
	err    error
}

var errStopped = errors.New("the server is shutting down")

// batcher owns torch: one goroutine, locked to its OS thread, loads,
// scores and closes every model (DESIGN.md: grad mode, device and stream
// are thread-local in libtorch). It gathers the rows of concurrent
// requests into micro-batches of up to maxRows rows, waiting at most
// maxWait for more once it has some, and scores each batch at once.
type batcher struct {
	jobs    chan *job
	control chan func() // run on the torch goroutine between batches
	maxRows int
	maxWait time.Duration
	metrics *metrics

	stop    chan struct{}
	stopped chan struct{}
	onStop  func() // runs on the torch goroutine as it stops
}

func newBatcher(maxRows int, maxWait time.Duration, m *metrics) *batcher {
	return &batcher{
		jobs:    make(chan *job, 4096),
		control: make(chan func()),
		maxRows: maxRows,
		maxWait: maxWait,
		metrics: m,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// start runs the torch goroutine until close.
func (b *batcher) start() { go b.run() }

// close stops the torch goroutine once the batch in hand is scored; jobs
// still queued get errStopped.
func (b *batcher) close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.stopped
}

// do runs f on the torch goroutine between batches and waits for it.
func (b *batcher) do(f func()) error {
	done := make(chan struct{})
	select {
	case b.control <- func() { defer close(done); f() }:
	case <-b.stopped:
		return errStopped
	}
	<-done
	return nil
}

// submit queues t for scoring with m and waits for its scores.
func (b *batcher) submit(ctx context.Context, m *served, t *data.Table) ([]float32, error) {
	j := &job{ctx: ctx, model: m, table: t, done: make(chan jobResult, 1)}
	m.refs.Add(1) // the model outlives the job even if the request gives up
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		m.release()
		return nil, ctx.Err()
	case <-b.stopped:
		m.release()
		return nil, errStopped
	}
	select {
	case r := <-j.done:
		return r.scores, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		return nil, errStopped
	}
}

func (b *batcher) run() {
	runtime.LockOSThread()
	defer close(b.stopped)
	defer func() {
		b.drain()
		if b.onStop != nil {
			b.onStop()
		}
	}()
	var next *job
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-b.jobs:
			case f := <-b.control:
				f()
				continue
			case <-b.stop:
				return
			}
		}
		var batch []*job
		batch, next = b.gather(first)
		b.score(batch)
		select {
		case <-b.stop:
			if next != nil {
				b.answer(next, jobResult{err: errStopped})
			}
			return
		default:
		}
	}
}

// gather takes queued jobs after first while they fit in maxRows rows and
// share first's model, waiting up to maxWait for more. It returns the
// batch and the job that did not fit, if any.
func (b *batcher) gather(first *job) (batch []*job, next *job) {
	batch = []*job{first}
	rows := first.table.Len()
	var timeout <-chan time.Time
	for rows < b.maxRows {
		var j *job
		select {
		case j = <-b.jobs:
		default:
			if b.maxWait <= 0 {
				return batch, nil
			}
			if timeout == nil {
				t := time.NewTimer(b.maxWait)
				defer t.Stop()
				timeout = t.C
			}
			select {
			case j = <-b.jobs:
			case <-timeout:
				return batch, nil
			}
		}
		if j.model != first.model || rows+j.table.Len() > b.maxRows {
			return batch, j
		}
		batch = append(batch, j)
		rows += j.table.Len()
	}
	return batch, nil
}

// score scores the rows of a batch's jobs in one call and answers each job
// with its own rows' scores, in order. Jobs whose request has given up are
// answered without scoring.
func (b *batcher) score(batch []*job) {
	live := make([]*job, 0, len(batch))
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			b.answer(j, jobResult{err: err})
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	t := concatTables(live)
	start := time.Now()
	scores, err := scoreSafely(live[0].model, t)
	b.metrics.batchRows.Observe(float64(t.Len()))
	b.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	if err == nil && len(scores) != t.Len() {
		err = fmt.Errorf("model %s returned %d scores for %d rows", live[0].model.Name(), len(scores), t.Len())
	}
	off := 0
	for _, j := range live {
		n := j.table.Len()
		if err != nil {
			b.answer(j, jobResult{err: err})
			continue
		}
		b.answer(j, jobResult{scores: scores[off : off+n : off+n]})
		off += n
	}
}

// scoreSafely turns a panic in a model into an error, so that one bad
// batch fails its requests and not the server.
func scoreSafely(m Model, t *data.Table) (scores []float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("model %s: scoring panicked: %v", m.Name(), p)
		}
	}()
	return m.Score(t)
}

func (b *batcher) answer(j *job, r jobResult) {
	j.done <- r
	j.model.release()
}

// drain answers every queued job and runs queued control functions, as
// the torch goroutine stops.
func (b *batcher) drain() {
	for {
		select {
		case j := <-b.jobs:
			b.answer(j, jobResult{err: errStopped})
		case f := <-b.control:
			f()
		default:
			return
		}
	}
}

// concatTables puts the rows of the jobs' tables (encoded by one model, so
// with one schema) one after another.
func concatTables(jobs []*job) *data.Table {
	if len(jobs) == 1 {
		return jobs[0].table
	}
	first := jobs[0].table
	n := 0
	for _, j := range jobs {
		n += j.table.Len()
	}
	s := first.Schema
	out := &data.Table{
		Schema:   s,
		Scenario: make([]int32, 0, n),
		Cat:      make([]int32, 0, n*len(s.Categorical)),
		Num:      make([]float32, 0, n*len(s.Numeric)),
		Label:    make([]float32, 0, n*len(s.Labels)),
	}
	for _, j := range jobs {
		t := j.table
		out.Scenario = append(out.Scenario, t.Scenario...)
		out.Cat = append(out.Cat, t.Cat...)
		out.Num = append(out.Num, t.Num...)
		out.Label = append(out.Label, t.Label...)
	}
	return out
}
