package data

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkShards runs one epoch of every rank of a sharded source and checks
// the shards against one process's epoch: by rows, batch k of every rank
// together is batch k of one process with Count times the rows (padded as
// DistributedSampler pads); by whole batches, rank r gets that process's
// batches r, r+Count, ...
func checkShards(t *testing.T, tab *Table, source func(BatchOptions) Source, o BatchOptions, world int) {
	t.Helper()
	const epoch = 2
	for _, whole := range []bool{false, true} {
		name := fmt.Sprintf("world %d, drop last %v, whole batches %v", world, o.DropLast, whole)
		one := o
		if !whole {
			one.Size *= world
		}
		rows, sizes := collect(t, tab, source(one), epoch, 0)
		var global [][]int64 // one process's batches
		if !whole && !o.DropLast && len(rows)%world != 0 {
			for j := range world - len(rows)%world {
				rows = append(rows, rows[j%len(rows)])
			}
		}
		for off, k := 0, 0; k < len(sizes); k++ {
			n := sizes[k]
			if !whole && k == len(sizes)-1 {
				n = len(rows) - off
			}
			global = append(global, rows[off:off+n])
			off += n
		}
		for r := range world {
			so := o
			so.Shard = Shard{Rank: r, Count: world, WholeBatches: whole}
			src := source(so)
			mine, mySizes := collect(t, tab, src, epoch, 0)
			require.Equal(t, len(mySizes), src.NumBatches(), "%s: rank %d NumBatches", name, r)
			var want [][]int64
			for k, g := range global {
				if whole {
					if k%world == r {
						want = append(want, g)
					}
					continue
				}
				var part []int64
				for j := r; j < len(g); j += world {
					part = append(part, g[j])
				}
				want = append(want, part)
			}
			var got [][]int64
			for off, k := 0, 0; k < len(mySizes); k++ {
				got = append(got, mine[off:off+mySizes[k]])
				off += mySizes[k]
			}
			require.Equal(t, want, got, "%s: rank %d", name, r)
		}
	}
}

func TestBatcherShards(t *testing.T) {
	tab := batcherTable(t, 1003)
	source := func(o BatchOptions) Source {
		b, err := NewBatcher(tab, o)
		require.NoError(t, err)
		return b
	}
	for _, world := range []int{2, 3} {
		for _, drop := range []bool{false, true} {
			checkShards(t, tab, source, BatchOptions{Size: 40, Shuffle: true, Seed: 5, DropLast: drop, Workers: 2}, world)
		}
	}
	// Fewer rows than ranks: the padding repeats what there is.
	small := batcherTable(t, 2)
	require.Equal(t, 2, small.Len())
	source = func(o BatchOptions) Source {
		b, err := NewBatcher(small, o)
		require.NoError(t, err)
		return b
	}
	checkShards(t, small, source, BatchOptions{Size: 4, Shuffle: true, Seed: 5}, 5)
}

func TestStreamShards(t *testing.T) {
	cfg, mem := trainValidCSV(t, 1001, 10)
	cfg.Stream = StreamConfig{Enabled: true, BlockRows: 128, ShuffleBuffer: 300}
	st, err := Load(cfg)
	require.NoError(t, err)
	source := func(o BatchOptions) Source {
		s, err := st.Source(Train, o)
		require.NoError(t, err)
		return s
	}
	for _, world := range []int{2, 3} {
		for _, drop := range []bool{false, true} {
			checkShards(t, mem.Train, source, BatchOptions{Size: 32, Shuffle: true, Seed: 5, DropLast: drop}, world)
		}
	}
}

func TestShardOutsideGroup(t *testing.T) {
	tab := batcherTable(t, 10)
	_, err := NewBatcher(tab, BatchOptions{Size: 4, Shard: Shard{Rank: 2, Count: 2}})
	assert.ErrorContains(t, err, "rank 2 of 2 is outside the group")
}
