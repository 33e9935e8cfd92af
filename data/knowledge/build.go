package knowledge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// BuildStats counts what Build did.
type BuildStats struct {
	Prompts int // prompts given
	Stored  int // already in the store before this run, skipped
	Encoded int // encoded and stored by this run
	Missing int // the encoder had no vector for them (file encoder)
}

// Build encodes the prompts whose keys the store lacks and stores the
// results chunk by chunk as they arrive, so an interrupted run (an error,
// a cancelled context, a kill) keeps everything finished and a later run
// resumes where it stopped. A prompt whose text changed since its stored
// vector was computed is an error. progress, when not nil, receives a
// progress bar with rate and ETA.
func Build(ctx context.Context, s *Store, enc Encoder, prompts []Prompt, progress io.Writer) (stats BuildStats, err error) {
	stats.Prompts = len(prompts)
	m := s.Meta()
	if diff := metaDiff(Meta{m.Encoder, m.Model, m.Dim, ""}, Meta{enc.Name(), enc.Model(), enc.Dim(), ""}); diff != "" {
		return stats, fmt.Errorf("knowledge store %s does not match the encoder (%s); use another directory or --force to start over", s.Dir(), diff)
	}
	todo, err := pendingPrompts(s, prompts)
	if err != nil {
		return stats, err
	}
	stats.Stored = len(prompts) - len(todo)
	bar := newBar(len(todo), progress)
	defer func() {
		if cerr := s.compact(); err == nil {
			err = cerr
		}
		if bar != nil {
			bar.Exit()
			fmt.Fprintln(progress)
		}
	}()

	n := batchSize(enc)
	// Prompts that failed are counted over the whole build, so that the
	// error says how many of all the prompts got no vector.
	var failed *PromptsFailed
	failure := func() error {
		return fmt.Errorf("knowledge: %s encoder: %w (%d encoded and stored; rerun to retry the rest)", enc.Name(), failed, stats.Encoded)
	}
	for start := 0; start < len(todo); start += n {
		if err := ctx.Err(); err != nil {
			return stats, context.Cause(ctx)
		}
		chunk := todo[start:min(start+n, len(todo))]
		results, encErr := enc.Encode(ctx, chunk)
		recs, badErr := chunkRecords(chunk, results, m.Dim)
		if err := s.add(recs); err != nil {
			return stats, err
		}
		stats.Encoded += len(recs)
		if encErr == nil && badErr == nil {
			stats.Missing += len(chunk) - len(recs)
		}
		if bar != nil {
			bar.Add(len(chunk))
		}
		var pf *PromptsFailed
		if badErr == nil && errors.As(encErr, &pf) {
			if failed == nil {
				failed = &PromptsFailed{Prompts: len(todo), First: pf.First}
			}
			failed.Failed += pf.Failed
			failed.NotTried += pf.NotTried
			if pf.NotTried > 0 { // an error every request would hit: stop here
				failed.NotTried += len(todo) - start - len(chunk)
				return stats, failure()
			}
			continue
		}
		if err := errors.Join(encErr, badErr); err != nil {
			return stats, fmt.Errorf("knowledge: %s encoder: %w", enc.Name(), err)
		}
	}
	if failed != nil {
		return stats, failure()
	}
	return stats, nil
}

// pendingPrompts returns the prompts whose keys the store lacks, after
// checking keys are unique and stored prompts did not change.
func pendingPrompts(s *Store, prompts []Prompt) ([]Prompt, error) {
	seen := make(map[string]bool, len(prompts))
	var todo []Prompt
	var changed []string
	for _, p := range prompts {
		if seen[p.Key] {
			return nil, fmt.Errorf("knowledge: duplicate prompt key %q", p.Key)
		}
		seen[p.Key] = true
		if _, ok := s.rows[p.Key]; !ok {
			todo = append(todo, p)
		} else if h := s.PromptHash(p.Key); h != "" && h != p.Hash() {
			changed = append(changed, p.Key)
		}
	}
	if len(changed) > 0 {
		return nil, fmt.Errorf("knowledge store %s: %d prompts changed since their vectors were stored (first: %s); the data or the interaction threshold differ: use another directory or --force to start over",
			s.Dir(), len(changed), strings.Join(changed[:min(3, len(changed))], ", "))
	}
	return todo, nil
}

// chunkRecords pairs results with their prompts, keeping every valid result
// and reporting the invalid ones.
func chunkRecords(chunk []Prompt, results []Result, dim int) ([]record, error) {
	hashes := make(map[string]string, len(chunk))
	for _, p := range chunk {
		hashes[p.Key] = p.Hash()
	}
	var recs []record
	var errs []error
	done := map[string]bool{}
	for _, r := range results {
		h, ok := hashes[r.Key]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: result for a key that was not asked for", r.Key))
		case done[r.Key]:
			errs = append(errs, fmt.Errorf("%s: two results for one key", r.Key))
		default:
			if err := checkVector(r.Key, r.Vector, dim); err != nil {
				errs = append(errs, err)
				continue
			}
			done[r.Key] = true
			recs = append(recs, record{reasoningLine{r.Key, h, r.Reasoning}, r.Vector})
		}
	}
	return recs, errors.Join(errs...)
}

func newBar(n int, w io.Writer) *progressbar.ProgressBar {
	if w == nil || n == 0 {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("knowledge"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("prompts"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(500*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)
}
