package knowledge

import (
	"context"
	"fmt"
	"math"
)

// Result is an encoder's answer for one prompt.
type Result struct {
	Key       string
	Reasoning string // the LLM's answer; empty for encoders that do not reason
	Vector    []float32
}

// Encoder turns prompts into knowledge vectors of a fixed dimension.
//
// Encode returns the results it finished even when it also returns an error
// (a failed request, a cancelled context), in any order, so that nothing
// finished is lost. An encoder may omit prompts it has no vector for (the
// file encoder does for keys absent from its file); Build counts them.
type Encoder interface {
	Name() string  // "hash", "openai", "file"
	Model() string // what produced the vectors, recorded in the store
	Dim() int
	Encode(ctx context.Context, prompts []Prompt) ([]Result, error)
}

// BatchSizer is implemented by encoders that want Build to hand them a
// particular number of prompts per Encode call (and so per store flush).
type BatchSizer interface {
	BatchSize() int
}

const defaultBatchSize = 64

func batchSize(e Encoder) int {
	if b, ok := e.(BatchSizer); ok && b.BatchSize() > 0 {
		return b.BatchSize()
	}
	return defaultBatchSize
}

// checkVector reports a vector of the wrong dimension or with a non-finite value.
func checkVector(key string, v []float32, dim int) error {
	if len(v) != dim {
		return fmt.Errorf("%s: vector has dimension %d, want %d", key, len(v), dim)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%s: vector component %d is %v", key, i, x)
		}
	}
	return nil
}

// PromptsFailed is the error of an Encode call in which some prompts got no
// result: Failed had an error, NotTried were never sent because an error
// that every request would hit stopped the call. Build adds up these counts
// over the whole build.
type PromptsFailed struct {
	Prompts  int // in the call
	Failed   int
	NotTried int
	First    error // the first prompt's error
}

func (e *PromptsFailed) Error() string {
	msg := fmt.Sprintf("%d of %d prompts failed", e.Failed, e.Prompts)
	if e.NotTried > 0 {
		msg += fmt.Sprintf(" and %d were not tried", e.NotTried)
	}
	return msg + "; first: " + e.First.Error()
}

func (e *PromptsFailed) Unwrap() error { return e.First }

// plural is "1 attempt", "2 attempts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
