package sweep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The 2x2 grid of the tests: point 3 (b=y, a=2) always fails.
const runSpec = "metric: test.overall.auc\nseeds: 2\nworkers: %d\ngrid:\n  a: [1, 2]\n  b: [x, y]\n"

// fakeTrial returns metrics derived from the overrides and seed, and fails
// for a=2, b=y. It counts its calls.
type fakeTrial struct {
	calls atomic.Int32
}

func (f *fakeTrial) run(ctx context.Context, t Trial, dir string) (Result, error) {
	f.calls.Add(1)
	if _, err := os.Stat(dir); err != nil {
		return Result{}, fmt.Errorf("trial dir: %w", err)
	}
	if t.Overrides["a"] == 2 && t.Overrides["b"] == "y" {
		return Result{}, errors.New("out of memory on purpose")
	}
	a := float64(t.Overrides["a"].(int))
	auc := 0.6 + 0.1*a + 0.01*float64(t.Seed) // seeds 1, 2: mean +0.015, std 0.01/√2
	if t.Overrides["b"] == "y" {
		auc += 0.05
	}
	return Result{Metrics: map[string]float64{
		"test.overall.auc":         auc,
		"test.scenario.search.auc": auc - 0.1,
	}}, nil
}

func runSweep(t *testing.T, spec Spec, dir string, fn TrialFunc, opts Options) []Outcome {
	t.Helper()
	out, err := Run(context.Background(), spec, dir, fn, opts)
	require.NoError(t, err)
	return out
}

func countStatus(outs []Outcome) map[Status]int {
	m := map[Status]int{}
	for _, o := range outs {
		m[o.Result.Status]++
	}
	return m
}

func TestRunRecordsFailuresAndResumes(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			spec := mustParse(t, fmt.Sprintf(runSpec, workers))
			dir := t.TempDir()
			var f fakeTrial
			outs := runSweep(t, spec, dir, f.run, Options{})
			if got := f.calls.Load(); got != 8 {
				t.Errorf("first run: %d calls, want 8", got)
			}
			if c := countStatus(outs); c[StatusOK] != 6 || c[StatusFailed] != 2 {
				t.Fatalf("statuses %v, want 6 ok and 2 failed", c)
			}
			for _, o := range outs {
				tdir := TrialDir(dir, o.Trial)
				if _, err := os.Stat(filepath.Join(tdir, ResultFile)); err != nil {
					t.Errorf("%s: no result.json: %v", o.Trial.ID, err)
				}
				if _, err := os.Stat(filepath.Join(tdir, TrialFile)); err != nil {
					t.Errorf("%s: no trial.json: %v", o.Trial.ID, err)
				}
				errTxt, err := os.ReadFile(filepath.Join(tdir, ErrorFile))
				if failed := o.Result.Status == StatusFailed; failed != (err == nil) {
					t.Errorf("%s: status %s but error.txt present=%v", o.Trial.ID, o.Result.Status, err == nil)
				} else if failed && !strings.Contains(string(errTxt), "out of memory on purpose") {
					t.Errorf("%s: error.txt = %q", o.Trial.ID, errTxt)
				}
			}

			// Rerun: the six finished trials are skipped, the two failed run again.
			f.calls.Store(0)
			outs = runSweep(t, spec, dir, f.run, Options{})
			if got := f.calls.Load(); got != 2 {
				t.Errorf("resume: %d calls, want 2 (the failed trials)", got)
			}
			resumed := 0
			for _, o := range outs {
				if o.Resumed {
					resumed++
					if o.Result.Metrics["test.overall.auc"] == 0 {
						t.Errorf("%s: resumed without its metrics", o.Trial.ID)
					}
				}
			}
			if resumed != 6 {
				t.Errorf("%d resumed, want 6", resumed)
			}
		})
	}
}

func TestRunRecoversPanicsAndRejectsNaN(t *testing.T) {
	spec := mustParse(t, "metric: m\nseeds: 1\ngrid:\n  a: [panic, nan, ok]\n")
	outs := runSweep(t, spec, t.TempDir(), func(ctx context.Context, tr Trial, dir string) (Result, error) {
		switch tr.Overrides["a"] {
		case "panic":
			var m map[string]int
			m["boom"] = 1 // a nil-map write
		case "nan":
			return Result{Metrics: map[string]float64{"m": math.NaN(), "x": 1}}, nil
		}
		return Result{Metrics: map[string]float64{"m": 1}}, nil
	}, Options{})
	want := []struct {
		status Status
		err    string
	}{
		{StatusFailed, "panic: assignment to entry in nil map"},
		{StatusFailed, "non-finite metrics: m=NaN"},
		{StatusOK, ""},
	}
	for i, w := range want {
		o := outs[i]
		if o.Result.Status != w.status || !strings.Contains(o.Result.Error, w.err) {
			t.Errorf("%s: %s %q, want %s %q", o.Trial.ID, o.Result.Status, o.Result.Error, w.status, w.err)
		}
	}
}

func TestRunWorkersRunConcurrently(t *testing.T) {
	spec := mustParse(t, "metric: m\nseeds: 1\nworkers: 4\ngrid:\n  a: [1, 2, 3, 4, 5, 6, 7, 8]\n")
	var mu sync.Mutex
	running, peak := 0, 0
	var done atomic.Int32
	outs := runSweep(t, spec, t.TempDir(), func(ctx context.Context, tr Trial, dir string) (Result, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return Result{Metrics: map[string]float64{"m": float64(tr.Overrides["a"].(int))}}, nil
	}, Options{OnDone: func(Outcome) { done.Add(1) }})
	if done.Load() != 8 {
		t.Errorf("OnDone called %d times, want 8", done.Load())
	}
	if peak < 2 || peak > 4 {
		t.Errorf("peak concurrency %d, want 2..4", peak)
	}
	for i, o := range outs { // outcomes stay in trial order whatever the scheduling
		if o.Trial.Point != i || o.Result.Metrics["m"] != float64(i+1) {
			t.Errorf("outcome %d: point %d, m=%v", i, o.Trial.Point, o.Result.Metrics["m"])
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	spec := mustParse(t, "metric: m\nseeds: 1\ngrid:\n  a: [1, 2, 3, 4, 5]\n")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	outs, err := Run(ctx, spec, dir, func(ctx context.Context, tr Trial, _ string) (Result, error) {
		if calls.Add(1) == 2 {
			cancel()
			<-ctx.Done()
			return Result{}, ctx.Err() // cut short: stays pending
		}
		return Result{Metrics: map[string]float64{"m": 1}}, nil
	}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls after cancel, want 2", calls.Load())
	}
	if c := countStatus(outs); c[StatusOK] != 1 || c[StatusPending] != 4 {
		t.Errorf("statuses %v, want 1 ok, 4 pending", c)
	}
	if _, err := os.Stat(filepath.Join(TrialDir(dir, outs[1].Trial), ResultFile)); !os.IsNotExist(err) {
		t.Errorf("the interrupted trial has a result.json (err %v)", err)
	}
}

func TestRunValidatesBeforeTraining(t *testing.T) {
	spec := mustParse(t, "metric: m\ngrid:\n  train.lr: [0.1, 0.01]\n  model.backbon: [star]\n  train.epochs: [1, -1]\n")
	known := map[string]bool{"train.lr": true, "model.backbone": true, "train.epochs": true}
	validate := func(ov map[string]any) error {
		for k, v := range ov {
			if !known[k] {
				return fmt.Errorf("unknown config key %q", k)
			}
			if k == "train.epochs" && v.(int) < 1 {
				return fmt.Errorf("must be >= 1, got %v", v)
			}
		}
		return nil
	}
	var f fakeTrial
	_, err := Run(context.Background(), spec, t.TempDir(), f.run, Options{Validate: validate})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`s.yaml:4: model.backbon: unknown config key "model.backbon"`, "s.yaml:5: train.epochs: must be >= 1, got -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n := strings.Count(err.Error(), "model.backbon:"); n != 1 {
		t.Errorf("the unknown key is reported %d times, want once:\n%v", n, err)
	}
	if f.calls.Load() != 0 {
		t.Errorf("%d trials ran despite the validation error", f.calls.Load())
	}

	// A failure no single key explains names the point.
	trials, _ := Expand(mustParse(t, "metric: m\ngrid:\n  a: [1]\n  b: [2]\n"))
	err = Validate(spec, trials, func(ov map[string]any) error {
		if len(ov) > 1 {
			return errors.New("a and b conflict")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "point p000-") || !strings.Contains(err.Error(), "a and b conflict") {
		t.Errorf("combination error = %v", err)
	}
}
