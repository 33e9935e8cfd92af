package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/knowledge"
	"github.com/msrtrain/msrtrain/train/sweep"
)

func ablateCommand() *cli.Command {
	return &cli.Command{
		Name:  "ablate",
		Usage: "LLM4MSR's ablation table: meta levels, knowledge encoders and placements against the bare backbone, over seeds",
		Description: `Runs, one factor at a time around the full model of the configuration (-c, --set),
each point once per seed as a sweep trial: the bare backbone, both levels, each level
alone, the other knowledge encoders (hash, learned, random; file when knowledge.file.vectors
is set) and the scenario level as a branch (model.meta.placement=branch). Prints each
point's test AUC (mean ± std) and its paired difference from the bare backbone with a
95% t interval, and writes the sweep's results (results.md, results.csv, results.html).
Examples:
   msrtrain ablate --out runs/ablate --seeds 5
   msrtrain ablate --out runs/ablate-douban --seeds 5 --set data.format=douban \
       --set data.path=data/testdata/douban_sample/douban_sample.csv   (rerun to resume)`,
		Flags: withGlobals(
			&cli.IntFlag{Name: "seeds", Value: 5, Usage: "seeds 1 … N per point"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "trials at once"},
		),
		Action: func(c *cli.Context) error {
			cfg, err := resolveConfig(c)
			if err != nil {
				return err
			}
			if c.Int("seeds") < 1 || c.Int("workers") < 1 {
				return usage(fmt.Errorf("--seeds and --workers must be at least 1"))
			}
			seeds := make([]int64, c.Int("seeds"))
			for i := range seeds {
				seeds[i] = int64(i + 1)
			}
			out := flagString(c, "out", "runs/ablate")
			workers := c.Int("workers")
			spec, err := ablationSpec(cfg, out, seeds, workers)
			if err != nil {
				return err
			}
			if err := validateSweep(spec); err != nil {
				return usage(err)
			}
			command, err := trialCommand(cfg.Device, cfg.Threads, workers)
			if err != nil {
				return err
			}
			table, err := runSweep(c.Context, spec, out, sweepOptions{Command: command, Workers: workers, Log: os.Stderr})
			if err != nil {
				return err
			}
			fmt.Printf("results: %s, %s\n", filepath.Join(out, "results.md"), filepath.Join(out, "results.html"))
			if err := table.WriteDeltas(os.Stdout); err != nil {
				return err
			}
			if n := table.Failed(); n > 0 {
				return fmt.Errorf("%d trial(s) failed; their errors are in %s (rerun to retry them)", n, filepath.Join(out, "results.md"))
			}
			return nil
		},
	}
}

// The keys LLM4MSR's ablation varies.
const (
	keyLevels    = "model.meta.levels"
	keyEncoder   = "knowledge.encoder"
	keyPlacement = "model.meta.placement"
)

// AblationPoints are LLM4MSR's ablation table, one factor at a time around
// the full model (both levels, the base config's encoder, meta layers at
// the bottom), not a full factorial: the bare backbone (the baseline), the
// full model, each level alone, every other encoder (hash, learned, random,
// and file when base names a vectors file), and the scenario level as a
// branch beside the backbone.
func ablationPoints(base train.Config) []sweep.Point {
	point := func(kv ...any) sweep.Point {
		p := sweep.Point{Overrides: map[string]any{}}
		for i := 0; i < len(kv); i += 2 {
			k := kv[i].(string)
			p.Keys = append(p.Keys, k)
			p.Overrides[k] = fmt.Sprint(kv[i+1])
		}
		return p
	}
	center := base.Knowledge.Encoder
	full := func(levels model.MetaLevels, enc knowledge.Encoder, placement model.MetaPlacement) sweep.Point {
		return point(keyLevels, levels, keyEncoder, enc, keyPlacement, placement)
	}
	points := []sweep.Point{
		point(keyLevels, model.LevelsNone),
		full(model.LevelsBoth, center, model.PlacementBottom),
		full(model.LevelsScenario, center, model.PlacementBottom),
		full(model.LevelsUser, center, model.PlacementBottom),
	}
	for _, enc := range []knowledge.Encoder{knowledge.EncoderHash, knowledge.EncoderLearned, knowledge.EncoderRandom, knowledge.EncoderFile} {
		if enc == center || (enc == knowledge.EncoderFile && base.Knowledge.File.Vectors == "") {
			continue
		}
		points = append(points, full(model.LevelsBoth, enc, model.PlacementBottom))
	}
	return append(points, full(model.LevelsBoth, center, model.PlacementBranch))
}

// ablationSpec is the sweep of ablationPoints over seeds, each trial from
// base (written to dir/base.yaml) with its point's overrides; ΔAUC is
// paired against the bare backbone.
func ablationSpec(base train.Config, dir string, seeds []int64, workers int) (sweep.Spec, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sweep.Spec{}, fmt.Errorf("ablation: %w", err)
	}
	path := filepath.Join(dir, "base.yaml")
	b, err := base.Marshal()
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return sweep.Spec{}, fmt.Errorf("ablation: %w", err)
	}
	points := ablationPoints(base)
	return sweep.Spec{
		File: path, Base: path, Method: sweep.MethodPoints, Seeds: seeds, Workers: workers,
		Metric: "test.overall.auc", Maximize: true, Points: points, Baseline: &points[0],
	}, nil
}
