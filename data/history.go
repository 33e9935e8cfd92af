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
	S := len(t.Schema.Scenarios)
	order := make([]int, t.Len())
	for i := range order {
		order[i] = i
	}
	if t.Time != nil {
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(t.Time[a], t.Time[b]) })
	}
	text := t.Text()
	byUser := map[string]int{}
	var out []UserHistory
	for i := range t.Len() { // first appearance in row order
		u := t.UserKey(i)
		if _, ok := byUser[u]; !ok {
			byUser[u] = len(out)
			h := UserHistory{User: u, Scenarios: make([][]Interaction, S)}
			if text != nil {
				h.Text = text.Users[u]
			}
			out = append(out, h)
		}
	}
	nl := len(t.Schema.Labels)
	for _, i := range order {
		h := &out[byUser[t.UserKey(i)]]
		s := t.Scenario[i]
		it := Interaction{Item: t.ItemKey(i), Label: t.Label[i*nl]}
		if t.Time != nil {
			it.Time = t.Time[i]
		}
		if text != nil {
			txt := text.Items[it.Item]
			it.Title, it.Category = txt.Title, txt.Category
		}
		h.Scenarios[s] = append(h.Scenarios[s], it)
		if maxPerScenario > 0 && len(h.Scenarios[s]) > 2*maxPerScenario {
			h.Scenarios[s] = append(h.Scenarios[s][:0], h.Scenarios[s][len(h.Scenarios[s])-maxPerScenario:]...)
		}
	}
	if maxPerScenario > 0 {
		for u := range out {
			for s, hs := range out[u].Scenarios {
				if len(hs) > maxPerScenario {
					out[u].Scenarios[s] = hs[len(hs)-maxPerScenario:]
				}
			}
		}
	}
	return out
}
