package data

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// Streaming (stream.enabled, csv and parquet) reads data larger than memory from
// disk in blocks of stream.block_rows rows, twice: a first pass at Load
// counts rows, builds the vocabularies and the statistics on the training
// rows; every epoch is then a second pass that encodes block by block and
// shuffles through a bounded buffer of stream.shuffle_buffer rows. The
// split is by files (train/valid/test) or, for "random", by a seeded hash
// of each row's position, so that no pass needs all rows in memory. Memory
// is bounded by the vocabularies, one block and the shuffle buffer.

type streamSet struct {
	cfg    Config
	files  [3][]string // per part; with hash all parts read files[Train]
	hash   bool
	vocabs *Vocabs
	rows   [3]int
}

func loadStream(cfg Config, lo loadOptions) (*Splits, error) {
	s := &streamSet{cfg: cfg}
	switch method := cfg.splitMethod(); method {
	case SplitFiles:
		for p, f := range []string{cfg.Train, cfg.Valid, cfg.Test} {
			if f != "" {
				s.files[p] = []string{f}
			}
		}
	case SplitRandom:
		s.hash = true
		s.files[Train] = cfg.paths()
	default:
		return nil, fmt.Errorf("data config: streaming supports split methods files and random, not %s", method)
	}
	for p := range s.files {
		var err error
		if s.files[p], err = cfg.dataFiles(s.files[p]); err != nil {
			return nil, err
		}
	}
	sp := &Splits{Config: cfg, stream: s}
	nc := len(cfg.Columns.catRefs())
	counters := make([]*Dict, nc)
	counts := make([][]int, nc)
	for f := range counters {
		counters[f] = newDict()
	}
	scen := newDict()
	st := &statsBuilder{}
	desc := map[string]string{}
	for p := range 3 {
		if s.hash && p > 0 {
			break
		}
		err := s.eachBlock(Part(p), func(raw *Raw, parts []Part) error {
			sp.Skipped.merge(raw.Skipped)
			gmap := make([][]int32, nc) // block code -> global code, -1 unseen
			for f, c := range raw.Cat {
				gmap[f] = make([]int32, len(c.Dict.Strings))
				for i := range gmap[f] {
					gmap[f][i] = -1
				}
			}
			for i, part := range parts {
				s.rows[part]++
				if part != Train {
					continue
				}
				for f, c := range raw.Cat {
					code := c.Codes[i]
					g := gmap[f][code]
					if g < 0 {
						g = counters[f].codeString(c.Dict.Strings[code])
						gmap[f][code] = g
						for int(g) >= len(counts[f]) {
							counts[f] = append(counts[f], 0)
						}
					}
					counts[f][g]++
				}
				sc := int(scen.codeString(raw.Scenario.Dict.Strings[raw.Scenario.Codes[i]])) - 1
				cat := raw.Text.Items[raw.Cat[1].Dict.Strings[raw.Cat[1].Codes[i]]].Category
				st.add(sc, int64(gmap[0][raw.Cat[0].Codes[i]]), int64(gmap[1][raw.Cat[1].Codes[i]]), raw.Labels[0].Values[i], cat)
			}
			for k, v := range raw.Descriptions {
				desc[k] = v
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if s.rows[Train] == 0 {
		return nil, fmt.Errorf("data: the training split is empty")
	}
	for _, sc := range cfg.Scenarios {
		desc[sc.Name] = sc.Description
	}
	s.vocabs = lo.vocabs
	if s.vocabs == nil {
		v := &Vocabs{Numeric: refFields(cfg.Columns.Numeric), Labels: refFields(cfg.Columns.Labels)}
		for f, name := range refFields(cfg.Columns.catRefs()) {
			for len(counts[f]) < len(counters[f].Strings) {
				counts[f] = append(counts[f], 0)
			}
			tokens, _ := keepFrequent(counters[f].Strings, counts[f], cfg.MinCount)
			v.Fields = append(v.Fields, NewVocab(name, cfg.MinCount, tokens))
		}
		v.Scenarios = scenarioList(scen.Strings[1:], cfg.Scenarios, desc)
		s.vocabs = v
	}
	sp.Vocabs = s.vocabs
	// Statistics in vocabulary order.
	st.names = scen.Strings[1:] // st grew one scenario per new code
	sp.Stats = reorderStats(st.result(), s.vocabs.Schema().ScenarioNames())
	return sp, nil
}

// hashPart assigns stream row n to a split from the seed and the ratios.
func hashPart(seed int64, n int, ratios []float64) Part {
	z := uint64(seed) + uint64(n)*0x9e3779b97f4a7c15 // splitmix64
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	u := float64(z>>11) / (1 << 53) * (ratios[0] + ratios[1] + ratios[2])
	switch {
	case u < ratios[0]:
		return Train
	case u < ratios[0]+ratios[1]:
		return Valid
	}
	return Test
}

// eachBlock reads the files of part p block by block; parts[i] is the split
// of row i of the block (all p for file splits).
func (s *streamSet) eachBlock(p Part, f func(raw *Raw, parts []Part) error) error {
	files := s.files[p]
	if s.hash {
		files = s.files[Train]
	}
	n := 0
	var parts []Part
	for _, file := range files {
		err := func() error {
			c, err := s.cfg.openRows(file)
			if err != nil {
				return err
			}
			defer c.close()
			total := 0
			for s.cfg.MaxRows <= 0 || total < s.cfg.MaxRows {
				limit := s.cfg.Stream.BlockRows
				if s.cfg.MaxRows > 0 {
					limit = min(limit, s.cfg.MaxRows-total)
				}
				raw := newRawFor(&s.cfg.Columns)
				if err := c.into(raw); err != nil {
					return err
				}
				k, err := c.read(limit)
				if err != nil {
					return err
				}
				if k == 0 {
					break
				}
				total += k
				parts = parts[:0]
				for range k {
					q := p
					if s.hash {
						q = hashPart(s.cfg.Seed, n, s.cfg.Split.Ratios)
					}
					parts = append(parts, q)
					n++
				}
				if err := f(raw, parts); err != nil {
					return err
				}
			}
			if total == 0 {
				return c.emptyErr()
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *streamSet) source(p Part, o BatchOptions) (Source, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	return &Stream{set: s, part: p, o: o, free: make(chan *Batch, o.Prefetch+2)}, nil
}

// Stream is a Source that reads one split from disk every epoch.
type Stream struct {
	set  *streamSet
	part Part
	o    BatchOptions
	free chan *Batch
}

// NumBatches is the number of batches per epoch (rows were counted at Load).
func (s *Stream) NumBatches() int { return numBatches(s.set.rows[s.part], s.o) }

// Schema is the schema of the batches.
func (s *Stream) Schema() *Schema { return s.set.vocabs.Schema() }

// Epoch streams one epoch from batch start; the shuffle is seeded by
// (Seed, epoch), so a resumed epoch repeats the same batches.
func (s *Stream) Epoch(epoch, start int) Iterator {
	out := make(chan *Batch, s.o.Prefetch)
	it := &streamIter{out: out, free: s.free, done: make(chan struct{}), shard: s.o.Shard}
	e := newStreamEpoch(s, it, epoch, start)
	it.wg.Add(1)
	go func() {
		defer it.wg.Done()
		defer close(out)
		it.setErr(e.run())
	}()
	return it
}

// streamEpoch builds the batches of one epoch on the stream's goroutine:
// rows are read block by block (readBlocks), pass through the shuffle
// buffer (addRow), the buffer is emptied at the end (drain) and the last
// short batch is padded and sent (finish).
type streamEpoch struct {
	s     *Stream
	it    *streamIter
	epoch int
	start int
	shape RowShape
	// Sharded by rows, every rank reads the whole stream, builds the
	// batches of one process with Size*Count rows and keeps its rows of
	// each (see Shard), padding the last from the epoch's first rows.
	byRows   bool
	size     int
	rng      *rand.Rand
	capacity int    // of the shuffle buffer; 0 without shuffle
	buf      *Batch // the shuffle buffer, as rows
	cur      *Batch // the batch being filled
	head     *Batch // with byRows, the epoch's first Count-1 rows: the padding
	index    int    // batches sent or skipped so far
	ordinal  int    // rows read so far
}

func newStreamEpoch(s *Stream, it *streamIter, epoch, start int) *streamEpoch {
	e := &streamEpoch{s: s, it: it, epoch: epoch, start: start, shape: s.Schema().RowShape(),
		byRows: s.o.Shard.sharded() && !s.o.Shard.WholeBatches, size: s.o.Size}
	if e.byRows {
		e.size *= s.o.Shard.Count
	}
	if s.o.Shuffle {
		e.rng = rand.New(rand.NewPCG(uint64(s.o.Seed), uint64(epoch)))
		e.capacity = s.set.cfg.Stream.ShuffleBuffer
	}
	e.buf = newBatch(e.capacity, e.shape)
	return e
}

// run builds and sends the epoch's batches; errStopped (Close) is not an error.
func (e *streamEpoch) run() error {
	err := e.readBlocks()
	if err == nil && e.capacity > 0 && !e.drain() {
		return nil
	}
	if err == errStopped {
		return nil
	}
	if err == nil {
		e.finish()
	}
	return err
}

// readBlocks encodes the part's rows block by block and adds each one.
func (e *streamEpoch) readBlocks() error {
	set, part := e.s.set, e.s.part
	var rows []int32
	return set.eachBlock(part, func(raw *Raw, parts []Part) error {
		rows = rows[:0]
		for i, q := range parts {
			if q == part {
				rows = append(rows, int32(i))
			}
		}
		t, err := encodeRows(raw, rows, set.vocabs)
		if err != nil {
			return err
		}
		for r := range t.Len() {
			if !e.addRow(t, r) {
				return errStopped
			}
		}
		return nil
	})
}

// addRow copies row r of t once: into the batch, into the shuffle buffer
// while it fills, or into the buffer in place of the random row it sends
// on. It returns false when the iterator was closed.
func (e *streamEpoch) addRow(t *Table, r int) bool {
	id := int64(e.ordinal)
	e.ordinal++
	switch {
	case e.capacity == 0:
		n := e.next()
		e.cur.setTableRow(n, t, r, id)
		return e.flush()
	case e.buf.Size < e.capacity:
		n := e.buf.Size
		e.buf.resize(n + 1)
		e.buf.setTableRow(n, t, r, id)
		return true
	}
	j := e.rng.IntN(e.capacity)
	if !e.emit(e.buf, j) {
		return false
	}
	e.buf.setTableRow(j, t, r, id)
	return true
}

// drain sends the rows left in the shuffle buffer, shuffled.
func (e *streamEpoch) drain() bool {
	e.rng.Shuffle(e.buf.Size, e.buf.swap)
	for j := range e.buf.Size {
		if !e.emit(e.buf, j) {
			return false
		}
	}
	return true
}

// finish sends the last short batch (unless DropLast), sharded by rows
// padded to a multiple of the ranks with the epoch's first rows.
func (e *streamEpoch) finish() {
	cur := e.cur
	if cur == nil || cur.Size == 0 || e.s.o.DropLast {
		return
	}
	if w := e.s.o.Shard.Count; e.byRows && cur.Size%w != 0 {
		src := e.head
		if e.index == 0 { // the epoch's first rows are still in cur
			src = cur
		}
		for j := range w - cur.Size%w {
			cur.setRow(e.next(), src, j%e.ordinal)
		}
	}
	e.send()
}

// next grows the batch by one row and returns its position.
func (e *streamEpoch) next() int {
	if e.cur == nil {
		e.cur = getBatch(e.s.free, e.size, e.shape)
	}
	n := e.cur.Size
	e.cur.resize(n + 1)
	return n
}

// send hands the batch over, first keeping the epoch's first rows as
// padding when sharding by rows.
func (e *streamEpoch) send() bool {
	if e.byRows && e.index == 0 {
		count := e.s.o.Shard.Count
		e.head = newBatch(count-1, e.shape)
		e.head.resize(min(e.cur.Size, count-1))
		for j := range e.head.Size {
			e.head.setRow(j, e.cur, j)
		}
	}
	return e.it.send(&e.cur, &e.index, e.start, e.epoch)
}

// flush sends the batch once full; false when the iterator was closed.
func (e *streamEpoch) flush() bool { return e.cur.Size < e.size || e.send() }

// emit appends row j of src to the batch.
func (e *streamEpoch) emit(src *Batch, j int) bool {
	n := e.next()
	e.cur.setRow(n, src, j)
	return e.flush()
}

var errStopped = fmt.Errorf("stopped")

// setRow overwrites row i with row j of src.
func (bt *Batch) setRow(i int, src *Batch, j int) {
	s := bt.Shape
	bt.Scenario[i] = src.Scenario[j]
	copy(bt.Cat[i*s.Cat:(i+1)*s.Cat], src.Cat[j*s.Cat:(j+1)*s.Cat])
	copy(bt.Num[i*s.Num:(i+1)*s.Num], src.Num[j*s.Num:(j+1)*s.Num])
	copy(bt.Label[i*s.Labels:(i+1)*s.Labels], src.Label[j*s.Labels:(j+1)*s.Labels])
	bt.Row[i] = src.Row[j]
}

// keepRows keeps rows Rank, Rank+Count, ... of bt, moved to the front.
func (bt *Batch) keepRows(sh Shard) {
	n := 0
	for j := sh.Rank; j < bt.Size; j += sh.Count {
		bt.setRow(n, bt, j)
		n++
	}
	bt.resize(n)
}

// swap exchanges rows a and b.
func (bt *Batch) swap(a, b int) {
	s := bt.Shape
	bt.Scenario[a], bt.Scenario[b] = bt.Scenario[b], bt.Scenario[a]
	for k := range s.Cat {
		bt.Cat[a*s.Cat+k], bt.Cat[b*s.Cat+k] = bt.Cat[b*s.Cat+k], bt.Cat[a*s.Cat+k]
	}
	for k := range s.Num {
		bt.Num[a*s.Num+k], bt.Num[b*s.Num+k] = bt.Num[b*s.Num+k], bt.Num[a*s.Num+k]
	}
	for k := range s.Labels {
		bt.Label[a*s.Labels+k], bt.Label[b*s.Labels+k] = bt.Label[b*s.Labels+k], bt.Label[a*s.Labels+k]
	}
	bt.Row[a], bt.Row[b] = bt.Row[b], bt.Row[a]
}

type streamIter struct {
	shard Shard
	out   chan *Batch
	free  chan *Batch
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

// send hands *cur (batch *index of the unsharded epoch) over and clears
// it, or empties it for reuse when it precedes batch start or is another
// rank's; it returns false when the iterator was closed.
func (it *streamIter) send(cur **Batch, index *int, start, epoch int) bool {
	bt := *cur
	k := *index
	*index++
	sh := it.shard
	if sh.sharded() && sh.WholeBatches {
		if k%sh.Count != sh.Rank {
			bt.resize(0)
			return true
		}
		k /= sh.Count
	}
	if k < start {
		bt.resize(0)
		return true
	}
	if sh.sharded() && !sh.WholeBatches {
		bt.keepRows(sh)
	}
	*cur = nil
	bt.Epoch, bt.Index = epoch, k
	select {
	case it.out <- bt:
		return true
	case <-it.done:
		return false
	}
}

func (it *streamIter) setErr(err error) {
	it.mu.Lock()
	it.err = err
	it.mu.Unlock()
}

func (it *streamIter) Next() (*Batch, bool) {
	bt, ok := <-it.out
	return bt, ok
}

func (it *streamIter) Release(bt *Batch) {
	select {
	case it.free <- bt:
	default:
	}
}

func (it *streamIter) Err() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.err
}

func (it *streamIter) Close() {
	it.once.Do(func() { close(it.done) })
	it.wg.Wait()
}
