package metrics

import (
	"fmt"
	"math"
)

// Accumulator collects predictions batch by batch. Appending is a slice copy
// per column; all the work happens in Compute. The zero value is ready to
// use. An Accumulator is not safe for concurrent use.
type Accumulator struct {
	scenario []int64
	user     []int64
	label    []bool
	prob     []float32
}

// Add appends one batch. All four slices must have the same length; labels
// must be 0 or 1 and probabilities finite and within [0, 1]. A batch with any
// bad row is rejected whole, leaving the Accumulator unchanged.
func (a *Accumulator) Add(scenario, user []int64, label, prob []float32) error {
	n := len(label)
	if len(scenario) != n || len(user) != n || len(prob) != n {
		return fmt.Errorf("metrics: batch lengths differ: scenario %d, user %d, label %d, prob %d",
			len(scenario), len(user), n, len(prob))
	}
	for i := 0; i < n; i++ {
		if l := label[i]; l != 0 && l != 1 {
			return fmt.Errorf("metrics: batch row %d: label %v is not 0 or 1", i, l)
		}
		if p := prob[i]; !(p >= 0 && p <= 1) { // also rejects NaN
			return fmt.Errorf("metrics: batch row %d: probability %v is outside [0, 1]", i, p)
		}
		if s := scenario[i]; s < 0 || s > math.MaxInt32 {
			return fmt.Errorf("metrics: batch row %d: scenario id %d is out of range", i, s)
		}
	}
	a.scenario = append(a.scenario, scenario...)
	a.user = append(a.user, user...)
	a.prob = append(a.prob, prob...)
	for _, l := range label {
		a.label = append(a.label, l == 1)
	}
	return nil
}

// Len returns the number of predictions collected so far.
func (a *Accumulator) Len() int { return len(a.label) }

// samples returns the collected predictions as a fresh slice the caller may
// reorder.
func (a *Accumulator) samples() []sample {
	s := make([]sample, len(a.label))
	for i := range s {
		s[i] = sample{scenario: a.scenario[i], user: a.user[i], prob: a.prob[i], pos: a.label[i]}
	}
	return s
}
