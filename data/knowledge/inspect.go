package knowledge

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Coverage counts which of the wanted keys have vectors.
type Coverage struct {
	Scenarios, ScenariosWith int
	Users, UsersWith         int
	MissingScenarios         []string
	MissingUsers             []string // at most the first 10
}

// Coverage checks the given keys (typically every scenario and user of the
// dataset) against the store.
func (s *Store) Coverage(keys []string) Coverage {
	var c Coverage
	for _, k := range keys {
		_, ok := s.rows[k]
		switch {
		case strings.HasPrefix(k, ScenarioPrefix):
			c.Scenarios++
			if ok {
				c.ScenariosWith++
			} else {
				c.MissingScenarios = append(c.MissingScenarios, k)
			}
		case strings.HasPrefix(k, UserPrefix):
			c.Users++
			if ok {
				c.UsersWith++
			} else if len(c.MissingUsers) < 10 {
				c.MissingUsers = append(c.MissingUsers, k)
			}
		}
	}
	return c
}

// ScenarioSimilarity returns the stored scenario names in order and the
// cosine similarity of every pair of their vectors.
func (s *Store) ScenarioSimilarity() ([]string, [][]float64) {
	var names []string
	for _, k := range s.keys {
		if strings.HasPrefix(k, ScenarioPrefix) {
			names = append(names, strings.TrimPrefix(k, ScenarioPrefix))
		}
	}
	sort.Strings(names)
	vecs := make([][]float32, len(names))
	for i, n := range names {
		vecs[i], _ = s.Lookup(ScenarioKey(n))
	}
	sim := make([][]float64, len(names))
	for i := range names {
		sim[i] = make([]float64, len(names))
		for j := range names {
			sim[i][j] = cosine(vecs[i], vecs[j])
		}
	}
	return names, sim
}

// WriteInspect prints the store's meta, the coverage of keys and the
// scenario × scenario cosine similarity matrix, for `knowledge inspect`.
func (s *Store) WriteInspect(w io.Writer, keys []string) error {
	m := s.Meta()
	c := s.Coverage(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "store      %s\nencoder    %s (model %s, dim %d, template %s)\nvectors    %d\n", s.Dir(), m.Encoder, m.Model, m.Dim, m.TemplateHash, s.Len())
	fmt.Fprintf(&b, "scenarios  %d of %d have vectors\n", c.ScenariosWith, c.Scenarios)
	fmt.Fprintf(&b, "users      %d of %d have vectors, %d without\n", c.UsersWith, c.Users, c.Users-c.UsersWith)
	if len(c.MissingScenarios) > 0 {
		fmt.Fprintf(&b, "missing    %s\n", strings.Join(c.MissingScenarios, ", "))
	}
	if len(c.MissingUsers) > 0 {
		fmt.Fprintf(&b, "e.g.       %s\n", strings.Join(c.MissingUsers, ", "))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	names, sim := s.ScenarioSimilarity()
	if len(names) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nscenario cosine similarity")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t%s\t\n", strings.Join(names, "\t"))
	for i, n := range names {
		fmt.Fprintf(tw, "%s", n)
		for _, v := range sim[i] {
			fmt.Fprintf(tw, "\t%.3f", v)
		}
		fmt.Fprintln(tw, "\t")
	}
	return tw.Flush()
}

// Neighbor is a stored key and its cosine similarity to another key.
type Neighbor struct {
	Key    string  `json:"key"`
	Cosine float64 `json:"cosine"`
}

// Nearest returns the n stored keys with the given prefix (ScenarioPrefix or
// UserPrefix) most similar to key's vector by cosine, most similar first,
// key itself left out; false when key has no vector. Ties keep row order.
func (s *Store) Nearest(key, prefix string, n int) ([]Neighbor, bool) {
	v, ok := s.Lookup(key)
	if !ok {
		return nil, false
	}
	d := s.meta.Dim
	var out []Neighbor
	for r, k := range s.keys {
		if k != key && strings.HasPrefix(k, prefix) {
			out = append(out, Neighbor{k, cosine(v, s.vecs[r*d:(r+1)*d])})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Cosine > out[j].Cosine })
	return out[:min(n, len(out))], true
}
