// Package model holds msrtrain's multi-scenario models: the backbones (one
// file each, registered by name in registry.go; the README's table lists
// them), LLM4MSR's hierarchical meta networks, and the full model that joins
// embeddings, meta layers and a backbone.
package model

import "github.com/msrtrain/msrtrain/cgo/torch"

// Input is what a backbone sees of one batch. The trainer groups each
// batch's rows by scenario (the order of rows within a batch does not matter
// to the loss), so scenario s owns the contiguous rows
// [sum(Counts[:s]), sum(Counts[:s+1])). Per-scenario parts then run on a
// Narrow of their rows and nothing is computed for samples that do not need
// it, instead of running every tower on every sample and masking.
type Input struct {
	X        *torch.Tensor // [B, D] float32: the bottom representation
	Scenario *torch.Tensor // [B] int64 scenario index of each row
	Counts   []int64       // rows per scenario, len = number of scenarios
	// Fields are the categorical fields' embeddings [B, fields, dim] as
	// looked up, before the meta networks transform X, laid out as
	// Shape.Fields says (see roles.go). Backbones that read features by role
	// take them from here; the others ignore it. Nil when the caller has no
	// fields to give, which only a backbone that needs roles refuses.
	Fields *torch.Tensor
	// OnAnyRank, with synchronised batch statistics, marks the scenarios
	// that have rows on some rank of the data-parallel job: Segments lists
	// them even where this rank has none, so that every rank runs the same
	// per-scenario layers (and their collectives) in the same order. A
	// scenario no rank has stays out, its parameters without gradients as
	// in one process. Nil: the scenarios with rows here.
	OnAnyRank []bool
}

// Shape is what a backbone is built for.
type Shape struct {
	Width     int64       // of Input.X
	Scenarios int         // len(Input.Counts)
	Fields    FieldLayout // of Input.Fields; empty when the caller gives no fields
}

// Segments yields (scenario, first row, rows) for every scenario present
// in the batch, and with OnAnyRank for those present on another rank (no rows).
func (in Input) Segments() []Segment {
	var segs []Segment
	var start int64
	for s, n := range in.Counts {
		if n > 0 || (in.OnAnyRank != nil && in.OnAnyRank[s]) {
			segs = append(segs, Segment{Scenario: s, Start: start, Len: n})
		}
		start += n
	}
	return segs
}

// Segment is one scenario's contiguous rows in a batch.
type Segment struct {
	Scenario   int
	Start, Len int64
}

// Rows returns the segment's rows of x (an alias, no copy).
func (s Segment) Rows(x *torch.Tensor) *torch.Tensor { return x.Narrow(0, s.Start, s.Len) }

// Backbone maps a batch's bottom representation to one logit per row, for
// the row's own scenario.
type Backbone interface {
	Forward(in Input) *torch.Tensor // [B]
}
