package data

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func batcherTable(t testing.TB, rows int) *Table {
	t.Helper()
	sp, err := Load(Config{Synthetic: Synthetic{Users: 500, ItemsPerScenario: 100, Rows: rows}, Seed: 1,
		Split: SplitConfig{Ratios: []float64{1, 0, 0}}})
	require.NoError(t, err)
	return sp.Train
}

// collect runs one epoch and returns the rows in order and the batch sizes,
// checking that each batch matches the table row by row.
func collect(t *testing.T, tab *Table, src Source, epoch, start int) ([]int64, []int) {
	t.Helper()
	it := src.Epoch(epoch, start)
	defer it.Close()
	var rows []int64
	var sizes []int
	nc, nn, nl := len(tab.Schema.Categorical), len(tab.Schema.Numeric), len(tab.Schema.Labels)
	for k := start; ; k++ {
		b, ok := it.Next()
		if !ok {
			break
		}
		if b.Index != k || b.Epoch != epoch {
			t.Fatalf("batch index %d epoch %d, want %d %d", b.Index, b.Epoch, k, epoch)
		}
		if b.Shape != (RowShape{Cat: nc, Num: nn, Labels: nl}) {
			t.Fatalf("batch %d has row shape %+v, want %d categorical, %d numeric, %d labels", k, b.Shape, nc, nn, nl)
		}
		for j, r := range b.Row {
			if b.Scenario[j] != int64(tab.Scenario[r]) || !equal(b.Cat[j*nc:(j+1)*nc], widen(tab.Cat[r*int64(nc):(r+1)*int64(nc)])) ||
				!equal(b.Num[j*nn:(j+1)*nn], tab.Num[r*int64(nn):(r+1)*int64(nn)]) || b.Label[j*nl] != tab.Label[r*int64(nl)] {
				t.Fatalf("batch %d row %d does not match table row %d", k, j, r)
			}
		}
		rows = append(rows, b.Row...)
		sizes = append(sizes, b.Size)
		it.Release(b)
	}
	require.NoError(t, it.Err())
	return rows, sizes
}

// widen is a table's indices as a batch holds them.
func widen(s []int32) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

func TestBatcherCoversEveryRowOnce(t *testing.T) {
	tab := batcherTable(t, 1003)
	for _, o := range []BatchOptions{
		{Size: 100, Shuffle: true, Seed: 3},
		{Size: 100, Shuffle: true, Seed: 3, Workers: 3, Prefetch: 2},
		{Size: 100},
		{Size: 1003},
		{Size: 2000},
	} {
		b, err := NewBatcher(tab, o)
		require.NoError(t, err)
		rows, sizes := collect(t, tab, b, 0, 0)
		seen := make([]int, tab.Len())
		for _, r := range rows {
			seen[r]++
		}
		for r, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: row %d seen %d times", o, r, n)
			}
		}
		if len(sizes) != b.NumBatches() || sizes[len(sizes)-1] != 1003-o.Size*(b.NumBatches()-1) {
			t.Errorf("%+v: sizes %v, %d batches", o, sizes, b.NumBatches())
		}
		if !o.Shuffle && rows[0] != 0 {
			t.Errorf("unshuffled starts at %d", rows[0])
		}
	}
}

func TestBatcherDeterministicAndResumable(t *testing.T) {
	tab := batcherTable(t, 1000)
	one, _ := NewBatcher(tab, BatchOptions{Size: 64, Shuffle: true, Seed: 9, Workers: 1})
	three, _ := NewBatcher(tab, BatchOptions{Size: 64, Shuffle: true, Seed: 9, Workers: 3})
	a, _ := collect(t, tab, one, 2, 0)
	b, _ := collect(t, tab, three, 2, 0)
	c, _ := collect(t, tab, one, 3, 0)
	if !equal(a, b) {
		t.Error("worker count changed the order")
	}
	if equal(a, c) {
		t.Error("epochs 2 and 3 have the same order")
	}
	// Resuming at batch 5 gives exactly the rest of the epoch.
	r, _ := collect(t, tab, three, 2, 5)
	if !equal(r, a[5*64:]) {
		t.Error("resume at batch 5 differs from the uninterrupted epoch")
	}
	// DropLast drops the short batch.
	d, _ := NewBatcher(tab, BatchOptions{Size: 64, DropLast: true})
	rows, sizes := collect(t, tab, d, 0, 0)
	if d.NumBatches() != 15 || len(rows) != 960 || sizes[14] != 64 {
		t.Errorf("drop last: %d batches %d rows", d.NumBatches(), len(rows))
	}
	if _, err := NewBatcher(tab, BatchOptions{}); err == nil {
		t.Error("size 0 accepted")
	}
}

func TestBatcherCloseEarly(t *testing.T) {
	tab := batcherTable(t, 1000)
	b, _ := NewBatcher(tab, BatchOptions{Size: 10, Workers: 2, Prefetch: 2})
	it := b.Epoch(0, 0)
	if _, ok := it.Next(); !ok {
		t.Fatal("no batch")
	}
	it.Close() // must not hang with workers blocked on full channels
	it.Close()
}
