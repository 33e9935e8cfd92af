package model

import (
	"container/list"
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// Scoring with frozen weights: what Freeze keeps.
//
// A user's generated meta layer depends on the user alone once the weights
// stop changing, so scoring computes it once and keeps it across batches,
// in the form that costs least per row: the generator's output h_u (G
// numbers; the layer is the head applied to it, W(u) = s·reshape(H·h_u + c)).
// Applying it through the head's linearity (torch.GeneratedLayer) reads G
// numbers per row and does in·out·(G+1) multiply-adds in one matrix
// product; the built layer W(u) would do in·out per row but read in·out+out
// numbers per row from a table G+1 times larger, which measured slower
// (docs/benchmarks.md, "Scoring cost").
//
// Every user's h is computed up front when the table fits
// FreezeOptions.UserCacheBytes; otherwise the cache keeps the most recently
// scored users' and computes the others batch by batch, once per distinct
// user, evicting the least recently used.

// FreezeOptions bound the tables a frozen model keeps.
type FreezeOptions struct {
	// UserCacheBytes bounds the users' generator outputs (4·G bytes each):
	// every user's when they fit, else the most recently scored users'.
	// 0 means DefaultUserCacheBytes.
	UserCacheBytes int64
}

// DefaultUserCacheBytes holds every user of a 16-million-user vocabulary at the default generator width (G = 16).
const DefaultUserCacheBytes int64 = 1 << 30

// CacheStats describe a frozen model's user table.
type CacheStats struct {
	Users        int64 // users whose generator output is held (capacity of the recent-users cache)
	Bytes        int64
	AllUsers     bool  // every user's, computed up front
	Hits, Misses int64 // the recent-users cache's lookups since freezing (0 with AllUsers)
}

// freezeChunk bounds the rows of knowledge one step of Freeze runs through the generator.
const freezeChunk = 1 << 16

// Freeze computes the scenario level's head outputs for every scenario
// and the user level's generator outputs for every user (or sets up the
// recent-users cache, see FreezeOptions), so that Forward indexes them;
// the weights must not change until thaw, which frees the tables. Run it
// in evaluation mode (see Model.Freeze).
func (m *Meta) Freeze(o FreezeOptions) (thaw func(), err error) {
	budget := o.UserCacheBytes
	if budget <= 0 {
		budget = DefaultUserCacheBytes
	}
	f := &frozenMeta{}
	torch.NoGrad(func() {
		if m.scenario != nil {
			f.scenario = scoped(func() *torch.Tensor { return m.scenario.head.Forward(m.scenario.hidden(m.Knowledge.Scenario)) })
		}
		if m.user == nil {
			return
		}
		users, rowBytes := m.Knowledge.User.Shape()[0], 4*m.user.gen.Out
		if users*rowBytes > budget {
			f.recent = newUserCache(max(budget/rowBytes, 1), m.user.gen.Out, m.dev)
			return
		}
		var chunks []*torch.Tensor
		for start := int64(0); start < users; start += freezeChunk {
			idx := torch.Arange(float64(start), float64(min(start+freezeChunk, users)), 1, torch.Int64, m.dev)
			chunks = append(chunks, scoped(func() *torch.Tensor { return m.user.hidden(m.userKnowledge(idx)) }))
			idx.Close()
		}
		if len(chunks) == 1 {
			f.user = chunks[0]
		} else {
			f.user = scoped(func() *torch.Tensor { return torch.Cat(chunks, 0) })
			for _, c := range chunks {
				c.Close()
			}
		}
	})
	tables := []*torch.Tensor{f.scenario, f.user}
	if f.recent != nil {
		tables = append(tables, f.recent.slots)
	}
	thaw = func() {
		m.frozen = nil
		for _, t := range tables {
			t.Close()
		}
	}
	for _, t := range tables {
		if t != nil {
			if err := t.Err(); err != nil {
				thaw()
				return nil, fmt.Errorf("meta: precomputing the meta layers: %w", err)
			}
		}
	}
	m.frozen = f
	return thaw, nil
}

// CacheStats describes the frozen user table; zero when not frozen or without the user level.
func (m *Meta) CacheStats() CacheStats {
	switch {
	case m.frozen == nil || m.user == nil:
		return CacheStats{}
	case m.frozen.recent != nil:
		c := m.frozen.recent
		return CacheStats{Users: c.capacity, Bytes: c.capacity * 4 * m.user.gen.Out, Hits: c.hits, Misses: c.misses}
	}
	users := m.Knowledge.User.Shape()[0]
	return CacheStats{Users: users, Bytes: users * 4 * m.user.gen.Out, AllUsers: true}
}

// userCache holds the generator outputs of the most recently scored users:
// slots [capacity, G] on the model's device, and on the host which user
// each slot holds, in order of use (front: most recent).
type userCache struct {
	slots        *torch.Tensor
	capacity     int64
	dev          torch.Device
	order        *list.List // of *cacheSlot
	where        map[int64]*list.Element
	batch        int64 // batches looked up so far; a slot read by the current one is not evicted
	hits, misses int64
}

type cacheSlot struct {
	user, slot, batch int64 // user -1: empty
}

func newUserCache(capacity, width int64, dev torch.Device) *userCache {
	c := &userCache{
		slots: torch.Zeros([]int64{capacity, width}, torch.Float32, dev), capacity: capacity, dev: dev,
		order: list.New(), where: map[int64]*list.Element{},
	}
	for s := range capacity {
		c.order.PushBack(&cacheSlot{user: -1, slot: s})
	}
	return c
}

// hidden returns the generator outputs of users [B] (user-vocabulary
// indices): cached rows where the cache has them, the others computed once
// per distinct user and kept in the least recently used slots.
func (c *userCache) hidden(m *Meta, users *torch.Tensor) *torch.Tensor {
	distinct, inverse := users.Unique()
	ids, err := distinct.Int64s()
	if err != nil {
		return torch.Failed(fmt.Errorf("meta: user cache: %w", err))
	}
	c.batch++
	slots := make([]int64, len(ids))
	var missing []int64 // positions in ids
	for i, u := range ids {
		e, ok := c.where[u]
		if !ok {
			missing = append(missing, int64(i))
			continue
		}
		s := e.Value.(*cacheSlot)
		s.batch = c.batch
		c.order.MoveToFront(e)
		slots[i] = s.slot
	}
	c.hits += int64(len(ids) - len(missing))
	c.misses += int64(len(missing))
	h := c.slots.IndexSelect(0, c.index(slots)) // the missing users' rows are overwritten below
	if len(missing) == 0 {
		return h.IndexSelect(0, inverse)
	}
	at := c.index(missing)
	fresh := m.user.hidden(m.userKnowledge(distinct.IndexSelect(0, at)))
	if err := h.IndexCopyFrom(0, at, fresh); err != nil {
		return torch.Failed(fmt.Errorf("meta: user cache: %w", err))
	}
	// Keep what fits without evicting a user of this batch.
	var into, from []int64
	for j, pos := range missing {
		e := c.order.Back()
		s := e.Value.(*cacheSlot)
		if s.batch == c.batch {
			break
		}
		if s.user >= 0 {
			delete(c.where, s.user)
		}
		s.user, s.batch = ids[pos], c.batch
		c.where[s.user] = e
		c.order.MoveToFront(e)
		into, from = append(into, s.slot), append(from, int64(j))
	}
	if len(into) > 0 {
		if err := c.slots.IndexCopyFrom(0, c.index(into), fresh.IndexSelect(0, c.index(from))); err != nil {
			return torch.Failed(fmt.Errorf("meta: user cache: %w", err))
		}
	}
	return h.IndexSelect(0, inverse)
}

func (c *userCache) index(v []int64) *torch.Tensor {
	return torch.FromSlice(v, int64(len(v))).ToDevice(c.dev, false)
}
