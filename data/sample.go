package data

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Sample picks at most n rows of the three splits, uniformly without
// replacement and seeded, and returns each split's picked rows as a table
// (in row order): work done on a sample stays the same however many rows
// the data has. With n at least the rows of all splits, the splits
// themselves come back. The sample touches O(n) rows (Floyd's algorithm).
func (s *Splits) Sample(n int, seed int64) ([3]*Table, error) {
	parts := [3]*Table{s.Train, s.Valid, s.Test}
	if s.stream != nil {
		return parts, fmt.Errorf("data: a sample needs the splits in memory (data.stream.enabled is on)")
	}
	total := 0
	for _, t := range parts {
		total += t.Len()
	}
	if n >= total {
		return parts, nil
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x5a3))
	picked := make(map[int]struct{}, n)
	for j := total - n; j < total; j++ {
		k := r.IntN(j + 1)
		if _, dup := picked[k]; dup {
			k = j
		}
		picked[k] = struct{}{}
	}
	rows := make([][]int32, 3)
	for k := range picked {
		p := 0
		for k >= parts[p].Len() {
			k -= parts[p].Len()
			p++
		}
		rows[p] = append(rows[p], int32(k))
	}
	var out [3]*Table
	for p, t := range parts {
		slices.Sort(rows[p])
		out[p] = t.subset(rows[p])
	}
	return out, nil
}

// subset is a table of the given rows of t.
func (t *Table) subset(rows []int32) *Table {
	s := t.Schema
	nc, nn, nl := len(s.Categorical), len(s.Numeric), len(s.Labels)
	n := len(rows)
	out := &Table{Schema: s, Source: t.Source, Scenario: make([]int32, n), Cat: make([]int32, n*nc),
		Num: make([]float32, n*nn), Label: make([]float32, n*nl)}
	if t.Time != nil {
		out.Time = make([]int64, n)
	}
	if t.SourceRow != nil {
		out.SourceRow = make([]int32, n)
	}
	for r, i := range rows {
		out.Scenario[r] = t.Scenario[i]
		copy(out.Cat[r*nc:(r+1)*nc], t.Cat[int(i)*nc:])
		copy(out.Num[r*nn:(r+1)*nn], t.Num[int(i)*nn:])
		copy(out.Label[r*nl:(r+1)*nl], t.Label[int(i)*nl:])
		if t.Time != nil {
			out.Time[r] = t.Time[i]
		}
		if t.SourceRow != nil {
			out.SourceRow[r] = t.SourceRow[i]
		}
	}
	return out
}
