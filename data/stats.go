package data

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// ScenarioStats describes one scenario of a table, for `msrtrain data
// inspect` and for LLM prompts.
type ScenarioStats struct {
	Name         string  `json:"name"`
	Rows         int     `json:"rows"`
	Users        int     `json:"users"`
	Items        int     `json:"items"`
	PositiveRate float64 `json:"positive_rate"` // of the first label
	// SharedUsers[j] is the fraction of this scenario's users also seen in
	// scenario j (1 for j itself when the scenario has users).
	SharedUsers []float64 `json:"shared_users"`
	// TopCategories are the most frequent item categories by rows (empty
	// when the data has no item categories).
	TopCategories []string `json:"top_categories,omitempty"`
}

// statsBuilder accumulates statistics row by row, so that tables and
// streams share one implementation.
type statsBuilder struct {
	names []string
	rows  []int
	pos   []float64
	users []idSet
	items []idSet
	cats  []map[string]int
}

// idSet is a set of raw codes (dense, from 0) as bits: an eighth of a byte
// per possible id, against tens of bytes per id in a map.
type idSet struct {
	bits []uint64
	n    int
}

func (s *idSet) add(id int64) {
	w := int(id >> 6)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, max(w+1, 2*len(s.bits))-len(s.bits))...)
	}
	if m := uint64(1) << (id & 63); s.bits[w]&m == 0 {
		s.bits[w] |= m
		s.n++
	}
}

// shared counts the ids in both sets.
func (s *idSet) shared(o *idSet) int {
	n := 0
	for w := range min(len(s.bits), len(o.bits)) {
		n += bits.OnesCount64(s.bits[w] & o.bits[w])
	}
	return n
}

func newStatsBuilder(names []string) *statsBuilder {
	b := &statsBuilder{}
	for _, n := range names {
		b.grow(n)
	}
	return b
}

func (b *statsBuilder) grow(name string) {
	b.names = append(b.names, name)
	b.rows = append(b.rows, 0)
	b.pos = append(b.pos, 0)
	b.users = append(b.users, idSet{})
	b.items = append(b.items, idSet{})
	b.cats = append(b.cats, map[string]int{})
}

func (b *statsBuilder) add(scen int, user, item int64, label float32, category string) {
	for scen >= len(b.rows) { // streams meet scenarios as they go
		b.grow("")
	}
	b.rows[scen]++
	b.pos[scen] += float64(label)
	b.users[scen].add(user)
	b.items[scen].add(item)
	if category != "" {
		b.cats[scen][category]++
	}
}

func (b *statsBuilder) result() []ScenarioStats {
	out := make([]ScenarioStats, len(b.names))
	for s, name := range b.names {
		st := ScenarioStats{Name: name, Rows: b.rows[s], Users: b.users[s].n, Items: b.items[s].n,
			SharedUsers: make([]float64, len(b.names))}
		if st.Rows > 0 {
			st.PositiveRate = b.pos[s] / float64(st.Rows)
		}
		for t := range b.names {
			shared := b.users[s].shared(&b.users[t])
			if st.Users > 0 {
				st.SharedUsers[t] = float64(shared) / float64(st.Users)
			}
		}
		type kv struct {
			k string
			n int
		}
		var cs []kv
		for k, n := range b.cats[s] {
			cs = append(cs, kv{k, n})
		}
		slices.SortFunc(cs, func(a, b kv) int {
			if c := cmp.Compare(b.n, a.n); c != 0 {
				return c
			}
			return cmp.Compare(a.k, b.k)
		})
		for _, c := range cs[:min(5, len(cs))] {
			st.TopCategories = append(st.TopCategories, c.k)
		}
		out[s] = st
	}
	return out
}

// Stats computes per-scenario statistics. Users and items are counted by
// raw id, so ids outside the vocabulary are still told apart.
func (t *Table) Stats() []ScenarioStats {
	b := newStatsBuilder(t.Schema.ScenarioNames())
	nl := len(t.Schema.Labels)
	text := t.Text()
	for i := range t.Len() {
		cat := ""
		if text != nil && len(text.Items) > 0 {
			cat = text.Items[t.ItemKey(i)].Category
		}
		b.add(int(t.Scenario[i]), t.rawCode(i, 0), t.rawCode(i, 1), t.Label[i*nl], cat)
	}
	return b.result()
}

// reorderStats puts statistics (and their SharedUsers columns) in the order
// of names; scenarios without rows get empty statistics.
func reorderStats(st []ScenarioStats, names []string) []ScenarioStats {
	at := map[string]int{}
	for i, x := range st {
		at[x.Name] = i
	}
	out := make([]ScenarioStats, len(names))
	for i, n := range names {
		j, ok := at[n]
		if !ok {
			out[i] = ScenarioStats{Name: n, SharedUsers: make([]float64, len(names))}
			continue
		}
		out[i] = st[j]
		out[i].SharedUsers = make([]float64, len(names))
		for k, m := range names {
			if l, ok := at[m]; ok {
				out[i].SharedUsers[k] = st[j].SharedUsers[l]
			}
		}
	}
	return out
}

// FormatStats renders statistics as a fixed-width table.
func FormatStats(st []ScenarioStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %10s %9s %9s %7s  %s\n", "scenario", "rows", "users", "items", "pos", "shared users with")
	for _, s := range st {
		var sh []string
		for j, f := range s.SharedUsers {
			if st[j].Name != s.Name {
				sh = append(sh, fmt.Sprintf("%s %.2f", st[j].Name, f))
			}
		}
		fmt.Fprintf(&b, "%-12s %10d %9d %9d %7.3f  %s\n", s.Name, s.Rows, s.Users, s.Items, s.PositiveRate, strings.Join(sh, ", "))
	}
	return b.String()
}
