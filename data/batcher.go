package data

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// Batch is a batch of rows as plain Go slices, row-major like Table. The
// trainer copies it into tensors once and then Releases it for reuse.
type Batch struct {
	Size     int
	Shape    RowShape  // values per row in Cat, Num and Label
	Scenario []int64   // Size
	Cat      []int64   // Size*len(Categorical)
	Num      []float32 // Size*len(Numeric)
	Label    []float32 // Size*len(Labels)
	Row      []int64   // source row of each sample (table row, or stream ordinal)
	Epoch    int
	Index    int // batch number within the epoch, from 0
}

// RowShape is how many values one row holds in each of a Batch's
// row-major slices: categorical fields, numeric features and labels.
type RowShape struct{ Cat, Num, Labels int }

// RowShape is the shape of the schema's rows.
func (s *Schema) RowShape() RowShape {
	return RowShape{Cat: len(s.Categorical), Num: len(s.Numeric), Labels: len(s.Labels)}
}

// BatchOptions configure a Batcher or a Stream.
type BatchOptions struct {
	Size     int   // rows per batch (required)
	Shuffle  bool  // shuffle rows each epoch, seeded by (Seed, epoch)
	Seed     int64 // shuffle seed
	DropLast bool  // drop the last batch when it is short (else it is kept, smaller)
	Workers  int   // goroutines building batches (default 1)
	Prefetch int   // batches built ahead of the consumer (default 4)
	Shard    Shard // this process's part of each epoch in data-parallel runs (zero: all of it)
}

// Shard is one rank's part of the data when Count processes train or
// evaluate together.
//
// By rows (training), it follows PyTorch's DistributedSampler: each epoch's
// order is padded with its own first rows to a multiple of Count (or, with
// DropLast, cut to one) and rank r takes the rows at positions r, r+Count,
// r+2*Count, ...; Size is then per rank. So batch k of every rank together
// holds exactly the rows of batch k of one process with Size*Count rows
// (the padding adds at most Count-1 repeated rows per epoch).
//
// By whole batches (evaluation), rank r takes batches r, r+Count, ... of
// the unsharded epoch, so that every batch is the one a single process
// would see, and nothing is repeated.
type Shard struct {
	Rank, Count  int
	WholeBatches bool
}

// sharded reports whether the shard is a strict part of the data.
func (s Shard) sharded() bool { return s.Count > 1 }

func (s Shard) check() error {
	if s.Count < 0 || (s.Count > 0 && (s.Rank < 0 || s.Rank >= s.Count)) {
		return fmt.Errorf("shard: rank %d of %d is outside the group", s.Rank, s.Count)
	}
	return nil
}

// shardRows is how many rows of n one rank takes by rows (every rank the same).
func (s Shard) shardRows(n int, dropLast bool) int {
	if !s.sharded() || s.WholeBatches {
		return n
	}
	if dropLast {
		return n / s.Count
	}
	return (n + s.Count - 1) / s.Count
}

// localBatches is how many of an epoch's total batches are this rank's when
// sharding by whole batches: the k with k mod Count == Rank.
func (s Shard) localBatches(total int) int {
	if !s.sharded() || !s.WholeBatches {
		return total
	}
	return max(0, (total-s.Rank+s.Count-1)/s.Count)
}

// globalBatch is the unsharded index of this rank's batch k.
func (s Shard) globalBatch(k int) int {
	if !s.sharded() || !s.WholeBatches {
		return k
	}
	return s.Rank + k*s.Count
}

func (o *BatchOptions) check() error {
	if o.Size <= 0 {
		return fmt.Errorf("batch size %d: must be positive", o.Size)
	}
	if err := o.Shard.check(); err != nil {
		return err
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 4
	}
	return nil
}

// Source yields epochs of batches: a Batcher over a Table, or a Stream.
type Source interface {
	// Epoch starts epoch number epoch at batch start (0 for a fresh epoch,
	// k to resume after k batches exactly as an uninterrupted run would).
	Epoch(epoch, start int) Iterator
	// NumBatches is the number of batches in one epoch.
	NumBatches() int
	Schema() *Schema
}

// Iterator hands out the batches of one epoch in order. Next returns false
// at the end of the epoch or on error (see Err). Release gives a batch's
// buffers back for reuse; a batch must not be used after it. Close stops
// the background goroutines early; it is safe to call more than once.
type Iterator interface {
	Next() (*Batch, bool)
	Release(*Batch)
	Err() error
	Close()
}

// Batcher cuts a Table into batches in background goroutines that fill
// reused buffers.
type Batcher struct {
	t        *Table
	o        BatchOptions
	shape    RowShape
	free     chan *Batch
	nBatches int
}

// NewBatcher makes a batcher over t.
func NewBatcher(t *Table, o BatchOptions) (*Batcher, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	b := &Batcher{t: t, o: o, shape: t.Schema.RowShape()}
	b.free = make(chan *Batch, o.Workers*(o.Prefetch+2)+2)
	b.nBatches = numBatches(t.Len(), o)
	return b, nil
}

// numBatches is the number of batches of one rank in an epoch of rows rows.
func numBatches(rows int, o BatchOptions) int {
	rows = o.Shard.shardRows(rows, o.DropLast)
	n := (rows + o.Size - 1) / o.Size
	if o.DropLast {
		n = rows / o.Size
	}
	return o.Shard.localBatches(n)
}

// NumBatches is the number of batches per epoch.
func (b *Batcher) NumBatches() int { return b.nBatches }

// Schema is the schema of the batches.
func (b *Batcher) Schema() *Schema { return b.t.Schema }

// Order is the row order of an epoch: a permutation seeded by (Seed,
// epoch), or the identity without Shuffle; sharded by rows, this rank's
// part of it (see Shard).
func (b *Batcher) Order(epoch int) []int32 {
	order := allRows(b.t.Len())
	if b.o.Shuffle {
		r := rand.New(rand.NewPCG(uint64(b.o.Seed), uint64(epoch)))
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	sh := b.o.Shard
	if !sh.sharded() || sh.WholeBatches {
		return order
	}
	per := sh.shardRows(len(order), b.o.DropLast)
	mine := make([]int32, per)
	for i := range mine {
		mine[i] = order[(sh.Rank+i*sh.Count)%len(order)] // past the end: the padding from the start
	}
	return mine
}

// newBatch makes an empty batch with room for size rows of shape.
func newBatch(size int, shape RowShape) *Batch {
	return &Batch{
		Shape: shape, Scenario: make([]int64, 0, size), Cat: make([]int64, 0, size*shape.Cat),
		Num: make([]float32, 0, size*shape.Num), Label: make([]float32, 0, size*shape.Labels), Row: make([]int64, 0, size),
	}
}

// getBatch takes a free buffer, emptied, or makes one of size rows.
func getBatch(free chan *Batch, size int, shape RowShape) *Batch {
	select {
	case bt := <-free:
		bt.resize(0)
		return bt
	default:
		return newBatch(size, shape)
	}
}

// resize sets bt's length to n rows.
func (bt *Batch) resize(n int) {
	s := bt.Shape
	bt.Size = n
	bt.Scenario = bt.Scenario[:n]
	bt.Cat = bt.Cat[:n*s.Cat]
	bt.Num = bt.Num[:n*s.Num]
	bt.Label = bt.Label[:n*s.Labels]
	bt.Row = bt.Row[:n]
}

// setTableRow overwrites row i with row r of t, recording id as its source.
func (bt *Batch) setTableRow(i int, t *Table, r int, id int64) {
	s := bt.Shape
	bt.Scenario[i] = int64(t.Scenario[r])
	for k, c := range t.Cat[r*s.Cat : (r+1)*s.Cat] {
		bt.Cat[i*s.Cat+k] = int64(c)
	}
	copy(bt.Num[i*s.Num:(i+1)*s.Num], t.Num[r*s.Num:])
	copy(bt.Label[i*s.Labels:(i+1)*s.Labels], t.Label[r*s.Labels:])
	bt.Row[i] = id
}

func (b *Batcher) fill(bt *Batch, rows []int32) {
	bt.resize(len(rows))
	for j, r := range rows {
		bt.setTableRow(j, b.t, int(r), int64(r))
	}
}

// Epoch starts the workers for one epoch from batch start. Worker w builds
// batches start+w, start+w+W, ...; Next takes them round-robin, so the
// order is the same for any number of workers.
func (b *Batcher) Epoch(epoch, start int) Iterator {
	order := b.Order(epoch)
	W := b.o.Workers
	it := &orderedIter{free: b.free, done: make(chan struct{}), next: start, end: b.nBatches, start: start}
	depth := max(1, b.o.Prefetch/W)
	for w := range W {
		ch := make(chan *Batch, depth)
		it.outs = append(it.outs, ch)
		it.wg.Add(1)
		go func() {
			defer it.wg.Done()
			defer close(ch)
			for k := start + w; k < b.nBatches; k += W {
				lo := b.o.Shard.globalBatch(k) * b.o.Size
				hi := min(lo+b.o.Size, len(order))
				bt := getBatch(b.free, b.o.Size, b.shape)
				b.fill(bt, order[lo:hi])
				bt.Epoch, bt.Index = epoch, k
				select {
				case ch <- bt:
				case <-it.done:
					return
				}
			}
		}()
	}
	return it
}

// orderedIter reads per-worker channels round-robin.
type orderedIter struct {
	outs             []chan *Batch
	free             chan *Batch
	done             chan struct{}
	once             sync.Once
	wg               sync.WaitGroup
	start, next, end int
}

func (it *orderedIter) Next() (*Batch, bool) {
	if it.next >= it.end {
		return nil, false
	}
	bt, ok := <-it.outs[(it.next-it.start)%len(it.outs)]
	if !ok {
		return nil, false
	}
	it.next++
	return bt, true
}

func (it *orderedIter) Release(bt *Batch) {
	select {
	case it.free <- bt:
	default:
	}
}

func (it *orderedIter) Err() error { return nil }

func (it *orderedIter) Close() {
	it.once.Do(func() { close(it.done) })
	it.wg.Wait()
}
