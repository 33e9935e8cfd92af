package data

import (
	"cmp"
	"slices"
)

// Interaction is one row of a user's history, in words where the data has
// them.
type Interaction struct {
	Item     string  `json:"item"`
	Title    string  `json:"title,omitempty"`
	Category string  `json:"category,omitempty"`
	Label    float32 `json:"label"`
	Time     int64   `json:"time,omitempty"`
}

// UserHistory is one user's recent interactions per scenario, for prompts.
type UserHistory struct {
	User      string          `json:"user"`
	Text      string          `json:"text,omitempty"` // what the data says about the user
	Scenarios [][]Interaction `json:"scenarios"`      // by scenario id, oldest first
}

// UserHistories returns every user's last maxPerScenario interactions in
// each scenario (by time when the table has it, else by row order), users
// in order of first appearance. maxPerScenario <= 0 keeps all.
func (t *Table) UserHistories(maxPerScenario int) []UserHistory {
	return t.userHistories(maxPerScenario, nil)
}

// UserHistoriesOf is UserHistories for the given raw user ids only (those
// without rows are left out): what a prompt for a few users needs, without
// building every user's history.
func (t *Table) UserHistoriesOf(maxPerScenario int, users []string) []UserHistory {
	wanted := map[int64]bool{}
	seen := map[string]bool{}
	for _, u := range users {
		seen[u] = true
	}
	if t.Source != nil {
		for code, s := range t.Source.Cat[0].Dict.Strings {
			if seen[s] {
				wanted[int64(code)] = true
			}
		}
	} else {
		for u := range seen {
			if i, err := parseInt(u); err == nil {
				wanted[i] = true
			}
		}
	}
	return t.userHistories(maxPerScenario, wanted)
}

// userHistories builds the histories of the users whose raw codes are in
// wanted (all when nil). Rows are grouped by raw code (no string per row)
// and visited from the latest back, so that each user and scenario takes
// its last maxPerScenario rows and every other row costs a counter check;
// item strings and text are looked up for the interactions kept.
func (t *Table) userHistories(maxPerScenario int, wanted map[int64]bool) []UserHistory {
	S := len(t.Schema.Scenarios)
	var slot []int32 // raw user code -> index in out + 1; 0: none
	var out []UserHistory
	for i := range t.Len() { // first appearance in row order
		u := t.rawCode(i, 0)
		if int(u) >= len(slot) {
			slot = append(slot, make([]int32, int(u)+1-len(slot))...)
		}
		if slot[u] != 0 || (wanted != nil && !wanted[u]) {
			continue
		}
		out = append(out, UserHistory{User: t.UserKey(i), Scenarios: make([][]Interaction, S)})
		slot[u] = int32(len(out))
	}
	// latest[k] lists the rows kept for user slot k/S and scenario k%S,
	// latest first.
	latest := make([][]int32, len(out)*S)
	visit := func(i int) {
		k := slot[t.rawCode(i, 0)]
		if k == 0 {
			return
		}
		at := int(k-1)*S + int(t.Scenario[i])
		if maxPerScenario <= 0 || len(latest[at]) < maxPerScenario {
			latest[at] = append(latest[at], int32(i))
		}
	}
	if t.Time != nil && !slices.IsSorted(t.Time) {
		order := make([]int32, t.Len())
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(t.Time[a], t.Time[b]) })
		for _, i := range slices.Backward(order) {
			visit(int(i))
		}
	} else {
		for i := t.Len() - 1; i >= 0; i-- {
			visit(i)
		}
	}
	text := t.Text()
	nl := len(t.Schema.Labels)
	for u := range out {
		h := &out[u]
		if text != nil {
			h.Text = text.Users[h.User]
		}
		for s := range S {
			rows := latest[u*S+s]
			if len(rows) == 0 {
				continue
			}
			its := make([]Interaction, len(rows))
			for k, i := range rows {
				it := &its[len(rows)-1-k] // oldest first
				it.Item, it.Label = t.ItemKey(int(i)), t.Label[int(i)*nl]
				if t.Time != nil {
					it.Time = t.Time[i]
				}
				if text != nil && len(text.Items) > 0 {
					txt := text.Items[it.Item]
					it.Title, it.Category = txt.Title, txt.Category
				}
			}
			h.Scenarios[s] = its
		}
	}
	return out
}
