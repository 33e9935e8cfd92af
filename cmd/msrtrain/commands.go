package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/export"
	"github.com/msrtrain/msrtrain/train/insight"
	"github.com/msrtrain/msrtrain/train/sweep"
)

// withGlobals appends the global flags so they may follow the command too.
func withGlobals(flags ...cli.Flag) []cli.Flag { return append(flags, globalFlags()...) }

// checkDevice fails fast, with exit status 2, when the requested device cannot be used.
func checkDevice(name string) error {
	_, err := torch.ResolveDevice(name)
	return usage(err)
}

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:  "train",
		Usage: "train a model; writes checkpoints, metrics.jsonl and summary.json into --out",
		Description: `Examples:
   msrtrain train                                  # LLM4MSR on STAR, embedded synthetic data
   msrtrain train --set train.baseline=true        # ... and the bare backbone beside it
   msrtrain --device cuda train -c run.yaml --set model.backbone=mmoe --out runs/mmoe
   msrtrain train --out runs/mmoe --resume         # continue an interrupted run exactly
   msrtrain train --nproc 2                        # data parallel: 2 processes on this machine
   torchrun --nproc_per_node 2 --redirects 2 --tee 2 --no_python msrtrain train   # the same, launched by torchrun
                                                   # (--redirects 2 --tee 2: Debian's torchrun 1.13 crashes without them)`,
		Flags: withGlobals(
			&cli.BoolFlag{Name: "resume", Usage: "continue from <out>/checkpoints/latest"},
			&cli.BoolFlag{Name: "baseline", Usage: "also train the backbone without meta networks and compare"},
			&cli.IntFlag{Name: "nproc", Usage: "train data-parallel in N processes on this machine (as torchrun --nproc_per_node N would)"},
		),
		Action: func(c *cli.Context) error {
			if n := c.Int("nproc"); n > 0 {
				return launchLocal(c.Context, n)
			}
			cfg, err := resolveConfig(c)
			if err != nil {
				return err
			}
			if c.Bool("baseline") {
				cfg.Train.Baseline = true
			}
			if err := checkDevice(cfg.Device); err != nil {
				return err
			}
			ranks, err := train.JoinFromEnv(cfg)
			if err != nil {
				return err
			}
			// Data keeps what training loaded for the report: read once.
			opts := train.RunOptions{Resume: c.Bool("resume"), Log: os.Stderr, Progress: train.IsTerminal(os.Stderr), Ranks: ranks, Data: &train.LoadedData{}}
			rank0 := ranks == nil || ranks.Rank() == 0
			if !rank0 { // rank 0 speaks for the job and writes its report
				opts.Log, opts.Progress = io.Discard, false
			}
			res, err := train.Train(c.Context, cfg, opts)
			if err != nil {
				// Tell the other ranks why, and leave without waiting on
				// them: their collectives fail on their own.
				ranks.Fail(err)
				return err
			}
			ranks.Close()
			if !rank0 {
				return nil
			}
			if !res.Interrupted {
				fmt.Printf("outputs in %s (summary.json, metrics.jsonl, config.yaml, checkpoints/)\n", res.Out)
			}
			// The model is trained and saved whatever happens here: a
			// report that fails is said, not made the run's failure.
			path, err := insight.WriteReport(res.Out, insight.ReportOptions{Device: cfg.Device, Threads: cfg.Threads, Splits: opts.Data.Splits})
			if err != nil {
				fmt.Fprintf(os.Stderr, "report: %v (retry with: msrtrain report %s)\n", err, res.Out)
				return nil
			}
			fmt.Printf("report: %s\n", path)
			return nil
		},
	}
}

func checkpointFlag() cli.Flag {
	return &cli.StringFlag{Name: "checkpoint", Aliases: []string{"ckpt"}, Required: true,
		Usage: "a run directory (its best checkpoint) or a checkpoint directory"}
}

// loadModel loads the --checkpoint's model on the --device, joining the
// data-parallel job that launched this process when inJob (eval); a path
// that holds no checkpoint is a usage error (exit status 2).
func loadModel(c *cli.Context, inJob bool) (*train.Loaded, error) {
	dir, err := train.CheckpointDir(c.String("checkpoint"), "best")
	if err != nil {
		return nil, usage(err)
	}
	device := flagString(c, "device", "auto")
	if err := checkDevice(device); err != nil {
		return nil, err
	}
	if inJob {
		return train.LoadModelInJob(dir, device, c.Int("threads"))
	}
	return train.LoadModel(dir, device, c.Int("threads"))
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:  "eval",
		Usage: "compute a checkpoint's AUC, gAUC and logloss on a split of its data",
		Description: `Examples:
   msrtrain eval --checkpoint runs/default --split test
   torchrun --nproc_per_node 2 --redirects 2 --tee 2 --no_python msrtrain eval --checkpoint runs/default   # each rank scores a shard`,
		Flags: withGlobals(checkpointFlag(),
			&cli.StringFlag{Name: "split", Value: "test", Usage: "train, valid or test"}),
		Action: func(c *cli.Context) error {
			parts := map[string]data.Part{"train": data.Train, "valid": data.Valid, "test": data.Test}
			part, ok := parts[c.String("split")]
			if !ok {
				return usage(fmt.Errorf("--split %q: want train, valid or test", c.String("split")))
			}
			m, err := loadModel(c, true)
			if err != nil {
				return err
			}
			defer m.Close()
			rep, err := m.Evaluate(part)
			if err != nil {
				m.Ranks.Fail(err)
				return err
			}
			defer m.Ranks.Close()
			if m.Ranks != nil && m.Ranks.Rank() != 0 {
				return nil // rank 0 holds the gathered predictions and speaks for the job
			}
			rep.Table(os.Stdout)
			out := filepath.Join(m.Checkpoint.Dir, "eval-"+c.String("split")+".json")
			return atomicfile.WriteJSON(out, rep)
		},
	}
}

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:  "predict",
		Usage: "score every row of a data file with a checkpoint; writes row,scenario,score as CSV or Parquet in input order",
		Description: `The input is in the checkpoint's data format (labels optional); with csv or parquet data, a
.parquet input is read as Parquet and a .csv one as CSV. A run trained on the built-in synthetic data
reads the file that data synth writes; with the run's config it writes the run's own rows.
Examples:
   msrtrain predict --checkpoint runs/douban --input new_rows.csv --output scores.csv
   msrtrain predict --checkpoint runs/clicks --input day=2024-06-01/ --output scores.parquet
   msrtrain data synth -c runs/default/config.yaml --output rows.csv     # a synthetic run's rows
   msrtrain predict --checkpoint runs/default --input rows.csv | head`,
		Flags: withGlobals(checkpointFlag(),
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Required: true, Usage: "rows in the checkpoint's data format (labels optional)"},
			&cli.StringFlag{Name: "output", Value: stdoutName, Usage: "file (written whole or not at all), or - for standard output"},
			&cli.StringFlag{Name: "format", Usage: "csv or parquet (default: parquet for a .parquet output, else csv)"}),
		Action: func(c *cli.Context) error {
			input := c.String("input")
			if _, err := os.Stat(input); err != nil {
				return usage(fmt.Errorf("--input: %w", err))
			}
			format, err := data.TableFormat(c.String("output"), c.String("format"))
			if err != nil {
				return usage(fmt.Errorf("--format: %w", err))
			}
			m, err := loadModel(c, false)
			if err != nil {
				return err
			}
			defer m.Close()
			var n int
			err = writeOutput(c.String("output"), func(w io.Writer) error {
				var err error
				n, err = m.Predict(input, w, format)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "scored %d rows\n", n)
			return nil
		},
	}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a checkpoint as a TorchScript module with its feature encoding and a Triton model repository",
		Description: `Writes DIR/model.pt (torch.jit.load, torch::jit::load), DIR/features.json and
DIR/vocabularies.json (how to encode a raw request as training did) and
DIR/triton/<name>/ (config.pbtxt and 1/model.pt for Triton's pytorch_libtorch backend).

Example:
   msrtrain export --checkpoint runs/default --out exported/star`,
		Flags: withGlobals(checkpointFlag(),
			&cli.StringFlag{Name: "name", Usage: "the model's name in the Triton repository", DefaultText: "msrtrain_<backbone>"},
			&cli.IntFlag{Name: "max-batch-size", Value: export.DefaultMaxBatchSize, Usage: "Triton's max_batch_size (the module takes any batch)"}),
		Action: func(c *cli.Context) error {
			dir, err := train.CheckpointDir(c.String("checkpoint"), "best")
			if err != nil {
				return usage(err)
			}
			out := flagString(c, "out", "")
			if out == "" {
				return usage(fmt.Errorf("export needs --out DIR"))
			}
			feats, err := export.Export(export.Options{Checkpoint: dir, Out: out, Name: c.String("name"),
				MaxBatchSize: c.Int("max-batch-size"), Threads: c.Int("threads")})
			if err != nil {
				return err
			}
			fmt.Printf("exported %s (%s, meta levels %s) to %s; Triton model %q in %s\n", feats.Model.Checkpoint,
				feats.Model.Backbone, feats.Model.MetaLevels, out, feats.Model.TritonName, filepath.Join(out, export.TritonDir))
			return nil
		},
	}
}

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "write report.html for a run directory (finished, interrupted or still training)",
		ArgsUsage: "RUN_DIR",
		Description: `Example:
   msrtrain report runs/default      # then open runs/default/report.html in a browser`,
		Flags: withGlobals(),
		Action: func(c *cli.Context) error {
			dir, err := oneArg(c, "report", "one run directory")
			if err != nil {
				return err
			}
			device := flagString(c, "device", "auto")
			if err := checkDevice(device); err != nil {
				return err
			}
			path, err := insight.WriteReport(dir, insight.ReportOptions{Device: device, Threads: c.Int("threads")})
			if err != nil {
				return err
			}
			fmt.Printf("report: %s\n", path)
			return nil
		},
	}
}

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:      "sweep",
		Usage:     "run a grid or random search; each trial is its own msrtrain process",
		ArgsUsage: "spec.yaml",
		Description: `Example spec (keys are config keys; results land in --out):
   base: run.yaml
   seeds: 2
   workers: 2
   metric: test.overall.auc
   grid:
     model.backbone: [star, mmoe]
     model.meta.levels: [none, both]
Run it with:  msrtrain sweep --out runs/sweep1 spec.yaml   (rerun to resume)`,
		Flags: withGlobals(&cli.IntFlag{Name: "workers", Usage: "trials at once (overrides the spec)"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usage(fmt.Errorf("sweep takes one spec file"))
			}
			spec, err := sweep.LoadSpec(c.Args().First())
			if err != nil {
				return usage(err)
			}
			if err := validateSweep(spec); err != nil {
				return usage(err)
			}
			out := flagString(c, "out", "runs/sweep")
			workers := c.Int("workers")
			if workers <= 0 {
				workers = max(spec.Workers, 1)
			}
			threads := 0
			if ctx, ok := lookup(c, "threads"); ok {
				threads = ctx.Int("threads")
			}
			command, err := trialCommand(flagString(c, "device", "auto"), threads, workers)
			if err != nil {
				return err
			}
			table, err := runSweep(c.Context, spec, out, sweepOptions{Command: command, Workers: workers, Log: os.Stderr})
			if err != nil {
				return err
			}
			fmt.Printf("results: %s, %s, %s\n", filepath.Join(out, "results.md"), filepath.Join(out, "results.csv"), filepath.Join(out, "summary.csv"))
			if err := table.WriteMarkdown(os.Stdout); err != nil {
				return err
			}
			if n := table.Failed(); n > 0 {
				return fmt.Errorf("%d trial(s) failed; their errors are in %s (rerun the sweep to retry them)", n, filepath.Join(out, "results.md"))
			}
			return nil
		},
	}
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "print versions, BLAS, threads and CUDA devices",
		Description: `Example:
   msrtrain info`,
		Flags: withGlobals(),
		Action: func(c *cli.Context) error {
			if err := torch.SetCPUThreads(c.Int("threads")); err != nil {
				return err
			}
			fmt.Printf("msrtrain %s\n", version)
			return train.WriteEnvironment(os.Stdout)
		},
	}
}
