package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/rundir"
	"github.com/msrtrain/msrtrain/train/sweep"
)

// sweepOptions say how trials run. Each trial is its own msrtrain process
// (libtorch state is per process and per thread, and a crashing trial must
// not take the sweep down), started as Command + ["train", "--config", <trial>/config.yaml].
type sweepOptions struct {
	Command []string  // the msrtrain executable and any global flags
	Workers int       // overrides the spec's workers when > 0
	Log     io.Writer // one line per finished trial
}

// trialCommand is sweepOptions.Command: this executable on device, with
// threads CPU threads per trial, or when threads is 0 an even share of the
// CPUs among the workers trials that run at once.
func trialCommand(device string, threads, workers int) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if threads <= 0 {
		threads = max(runtime.NumCPU()/max(workers, 1), 1)
	}
	return []string{exe, "--device", device, "--threads", strconv.Itoa(threads)}, nil
}

// trialConfig resolves a trial's configuration: the spec's base config (or
// the defaults), the trial's overrides, its seed, and its directory as out.
func trialConfig(spec sweep.Spec, t sweep.Trial, dir string) (train.Config, error) {
	cfg, err := train.LoadConfig(spec.Base, nil)
	if err != nil {
		return cfg, err
	}
	if err := train.Apply(&cfg, t.Overrides); err != nil {
		return cfg, fmt.Errorf("%s: trial %s: %w", spec.File, t.ID, err)
	}
	cfg.Seed = t.Seed
	cfg.Out = dir
	return cfg, cfg.Validate()
}

// runSweep runs every trial of the spec (skipping finished ones) and writes
// results.csv, summary.csv and results.md into dir.
func runSweep(ctx context.Context, spec sweep.Spec, dir string, o sweepOptions) (sweep.Table, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	workers := o.Workers
	if workers <= 0 {
		workers = spec.Workers
	}
	runTrial := func(ctx context.Context, t sweep.Trial, trialDir string) (sweep.Result, error) {
		return runTrialProcess(ctx, spec, t, trialDir, o.Command)
	}
	outcomes, err := sweep.Run(ctx, spec, dir, runTrial, sweep.Options{
		Workers:  workers,
		Validate: validator(spec),
		OnDone: func(out sweep.Outcome) {
			msg := fmt.Sprintf("%s %s (%.0fs)", out.Trial.ID, out.Result.Status, out.Result.Seconds)
			if v, ok := out.Result.Metrics[spec.Metric]; ok {
				msg += fmt.Sprintf(" %s=%.4f", spec.Metric, v)
			}
			if out.Result.Error != "" {
				msg += ": " + firstLine(out.Result.Error)
			}
			fmt.Fprintln(o.Log, msg)
		},
	})
	table := sweep.Summarize(spec, outcomes)
	if werr := table.WriteFiles(dir); werr != nil && err == nil {
		err = werr
	}
	return table, err
}

// validator checks a trial's overrides against the configuration tree.
func validator(spec sweep.Spec) sweep.ValidateFunc {
	return func(overrides map[string]any) error {
		cfg, err := train.LoadConfig(spec.Base, nil)
		if err != nil {
			return err
		}
		if err := train.Apply(&cfg, overrides); err != nil {
			return err
		}
		return cfg.Validate()
	}
}

// validateSweep expands the spec and checks every trial's configuration
// before anything runs, naming the spec file and key of the first problem.
func validateSweep(spec sweep.Spec) error {
	trials, err := sweep.Expand(spec)
	if err != nil {
		return err
	}
	return sweep.Validate(spec, trials, validator(spec))
}

func runTrialProcess(ctx context.Context, spec sweep.Spec, t sweep.Trial, dir string, command []string) (sweep.Result, error) {
	cfg, err := trialConfig(spec, t, dir)
	if err != nil {
		return sweep.Result{}, err
	}
	run := rundir.Dir(dir)
	yml, err := cfg.Marshal()
	if err != nil {
		return sweep.Result{}, err
	}
	if err := run.WriteConfig(yml); err != nil {
		return sweep.Result{}, err
	}
	cfgPath := run.Config()
	if len(command) == 0 {
		return sweep.Result{}, fmt.Errorf("sweep: no msrtrain command to run trials with")
	}
	logPath := run.TrialLog()
	logFile, err := os.Create(logPath)
	if err != nil {
		return sweep.Result{}, err
	}
	defer logFile.Close()
	args := append(append([]string(nil), command[1:]...), "train", "--config", cfgPath)
	if run.HasRun() {
		args = append(args, "--resume") // a trial cut short by an earlier cancel continues
	}
	cmd := exec.CommandContext(ctx, command[0], args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Ctrl-C reaches the trial as an interrupt, so it checkpoints before exiting.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return sweep.Result{}, fmt.Errorf("trial process: %v; last lines of %s:\n%s", err, logPath, tail(logPath, 8))
	}
	res, err := run.ReadSummary()
	if err != nil {
		return sweep.Result{}, err
	}
	if res == nil {
		return sweep.Result{}, fmt.Errorf("trial %s ended without %s", dir, rundir.SummaryFile)
	}
	if res.Interrupted {
		return sweep.Result{}, ctx.Err()
	}
	return sweep.Result{Metrics: flatten(res)}, nil
}

// flatten names a run's metrics as sweeps compare them: test.overall.auc, valid.scenario.search.auc, ...
func flatten(r *train.Result) map[string]float64 {
	out := map[string]float64{}
	for prefix, rep := range map[string]*metrics.Report{"valid": r.Valid, "test": r.Test} {
		if rep == nil {
			continue
		}
		for k, v := range rep.Flatten(prefix) {
			out[k] = v
		}
	}
	out["train.samples_per_sec"] = r.SamplesPerSec
	return out
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
