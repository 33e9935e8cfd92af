package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msrtrain/msrtrain/data/atomicfile"
)

// Status of a trial.
type Status string

const (
	StatusOK      Status = "ok"
	StatusFailed  Status = "failed"
	StatusPending Status = "pending" // not run yet, or interrupted by cancellation
)

// Result is what a trial produced. A TrialFunc fills Metrics; Run sets the
// rest.
type Result struct {
	Status  Status             `json:"status"`
	Metrics map[string]float64 `json:"metrics,omitempty"` // flattened: "test.overall.auc", "test.scenario.search.auc"
	Error   string             `json:"error,omitempty"`
	Seconds float64            `json:"seconds"`
}

// Outcome pairs a trial with its result; it is what result.json holds.
type Outcome struct {
	Trial  Trial  `json:"trial"`
	Result Result `json:"result"`
	// Resumed is true when the result was recorded by an earlier Run.
	Resumed bool `json:"-"`
}

// TrialFunc runs one trial in trialDir (which exists): it applies the
// overrides and seed to the base config, writes the resolved config there,
// trains, and returns the flattened metrics. It should return promptly once
// ctx is cancelled.
type TrialFunc func(ctx context.Context, t Trial, trialDir string) (Result, error)

// Options tune Run.
type Options struct {
	// Workers overrides spec.Workers when > 0.
	Workers int
	// Validate, when set, checks every trial before any runs.
	Validate ValidateFunc
	// OnDone, when set, is called after each trial that ran finishes, from
	// the worker that ran it (calls may be concurrent).
	OnDone func(Outcome)
}

// Run expands spec and runs every trial not already finished in dir: a
// trial whose result.json records status ok is skipped, so a rerun resumes
// (failed trials run again). Trials run on up to Workers goroutines, each in
// dir/trials/<id>/. A failed trial, including one whose runTrial panics or
// reports a non-finite metric, is recorded in its result.json and error.txt
// and the sweep goes on. Cancelling ctx stops handing out trials; Run waits
// for the running ones, leaves those cut short pending, and returns the
// outcomes so far with ctx's error. Other errors (a bad spec, a failed
// Validate, an unwritable dir) come before any trial runs.
func Run(ctx context.Context, spec Spec, dir string, runTrial TrialFunc, opts Options) ([]Outcome, error) {
	trials, err := Expand(spec)
	if err != nil {
		return nil, err
	}
	if opts.Validate != nil {
		if err := Validate(spec, trials, opts.Validate); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, TrialsDir), 0o755); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	outcomes, err := Load(dir, trials)
	if err != nil {
		return nil, err
	}
	var todo []int
	for i := range outcomes {
		if outcomes[i].Result.Status == StatusOK {
			outcomes[i].Resumed = true
		} else {
			outcomes[i] = Outcome{Trial: trials[i], Result: Result{Status: StatusPending}}
			todo = append(todo, i)
		}
	}

	workers := cmp.Or(max(opts.Workers, 0), spec.Workers, 1)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, len(todo)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				o := runOne(ctx, dir, trials[i], runTrial)
				outcomes[i] = o // each index is written by one worker only
				if opts.OnDone != nil && o.Result.Status != StatusPending {
					opts.OnDone(o)
				}
			}
		}()
	}
feed:
	for _, i := range todo {
		if ctx.Err() != nil { // select picks at random when both are ready
			break
		}
		select {
		case <-ctx.Done():
			break feed
		case jobs <- i:
		}
	}
	close(jobs)
	wg.Wait()
	return outcomes, ctx.Err()
}

// runOne runs a trial and records its outcome, unless ctx cut it short.
func runOne(ctx context.Context, dir string, t Trial, runTrial TrialFunc) Outcome {
	tdir := TrialDir(dir, t)
	fail := func(err error) Outcome {
		return Outcome{Trial: t, Result: Result{Status: StatusFailed, Error: err.Error()}}
	}
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return fail(fmt.Errorf("sweep: %w", err))
	}
	if err := os.Remove(filepath.Join(tdir, ErrorFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("sweep: %w", err))
	}
	if err := atomicfile.WriteJSON(filepath.Join(tdir, TrialFile), t); err != nil {
		return fail(err)
	}

	start := time.Now()
	res, stack, err := call(ctx, t, tdir, runTrial)
	if err != nil && ctx.Err() != nil {
		return Outcome{Trial: t, Result: Result{Status: StatusPending}} // rerun on resume
	}
	if err == nil {
		err = checkMetrics(res.Metrics)
	}
	o := Outcome{Trial: t, Result: Result{Status: StatusOK, Metrics: res.Metrics, Seconds: time.Since(start).Seconds()}}
	if err != nil {
		o.Result = Result{Status: StatusFailed, Error: err.Error(), Seconds: o.Result.Seconds}
		detail := err.Error() + "\n"
		if stack != "" {
			detail += "\n" + stack
		}
		if werr := atomicfile.WriteBytes(filepath.Join(tdir, ErrorFile), []byte(detail)); werr != nil {
			o.Result.Error += "; also: " + werr.Error()
		}
	}
	if werr := atomicfile.WriteJSON(filepath.Join(tdir, ResultFile), o); werr != nil {
		return fail(fmt.Errorf("recording the result: %w", werr))
	}
	return o
}

// call runs runTrial, turning a panic into an error (and its stack).
func call(ctx context.Context, t Trial, tdir string, runTrial TrialFunc) (res Result, stack string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err, stack = fmt.Errorf("panic: %v", r), string(debug.Stack())
		}
	}()
	res, err = runTrial(ctx, t, tdir)
	return res, "", err
}

// checkMetrics rejects NaN and infinite metrics: a diverged run is a
// failure, and JSON cannot hold them.
func checkMetrics(m map[string]float64) error {
	var bad []string
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad = append(bad, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("non-finite metrics: %s", strings.Join(bad, ", "))
}
