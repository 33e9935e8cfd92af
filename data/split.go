package data

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Part names one of the three splits.
type Part int

const (
	Train Part = iota
	Valid
	Test
)

func (p Part) String() string { return [...]string{"train", "valid", "test"}[p] }

// allRows is the row indices 0..n-1 in order.
func allRows(n int) []int32 {
	rows := make([]int32, n)
	for i := range rows {
		rows[i] = int32(i)
	}
	return rows
}

// SplitRows splits the rows of raw into train, valid and test row indices
// (each in ascending order) by ratios: "random" shuffles with seed, "time"
// puts the earliest rows in train and the latest in test (ties broken by
// row order). The result depends only on (raw, method, ratios, seed).
func SplitRows(raw *Raw, method SplitMethod, ratios []float64, seed int64) ([3][]int32, error) {
	var parts [3][]int32
	n := raw.Len()
	order := allRows(n)
	switch method {
	case SplitRandom:
		r := rand.New(rand.NewPCG(uint64(seed), 0x5b117))
		r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	case SplitTime:
		if raw.Time == nil {
			return parts, fmt.Errorf("%s: split by time needs a time column", rawName(raw))
		}
		slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(raw.Time[a], raw.Time[b]) })
	default:
		return parts, fmt.Errorf("split method %q: want random or time", method)
	}
	sum := ratios[0] + ratios[1] + ratios[2]
	c1 := int(math.Round(float64(n) * ratios[0] / sum))
	c2 := int(math.Round(float64(n) * (ratios[0] + ratios[1]) / sum))
	// Each part's rows in ascending order: marked, then collected in one
	// pass into order's storage (no sort of millions of rows).
	part := make([]uint8, n)
	for _, i := range order[c1:c2] {
		part[i] = uint8(Valid)
	}
	for _, i := range order[c2:] {
		part[i] = uint8(Test)
	}
	parts[Train], parts[Valid], parts[Test] = order[:0:c1], order[c1:c1:c2], order[c2:c2]
	for i, p := range part {
		parts[p] = append(parts[p], int32(i))
	}
	return parts, nil
}
