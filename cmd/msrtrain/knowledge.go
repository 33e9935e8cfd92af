package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/atomicfile"
	kb "github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/insight"
	"github.com/msrtrain/msrtrain/train/knowledge"
	"github.com/msrtrain/msrtrain/train/report"
)

// loadData resolves the configuration and loads its data (the same split training would use).
func loadData(c *cli.Context) (train.Config, *data.Splits, error) {
	cfg, err := resolveConfig(c)
	if err != nil {
		return cfg, nil, err
	}
	sp, err := loadSplits(cfg)
	return cfg, sp, err
}

// loadSplits loads cfg's data as training does: the run's seed drives the
// split, so a command that reads the data sees the rows training will.
func loadSplits(cfg train.Config) (*data.Splits, error) {
	return data.Load(cfg.DataConfig())
}

func knowledgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "knowledge",
		Usage: "LLM4MSR knowledge: render prompts, build or import vectors, inspect a store",
		Subcommands: []*cli.Command{
			knowledgePromptsCommand(), knowledgeBuildCommand(), knowledgeImportCommand(),
			knowledgeInspectCommand(), explainCommand(),
		},
	}
}

func knowledgePromptsCommand() *cli.Command {
	return &cli.Command{
		Name:  "prompts",
		Usage: "write the scenario- and user-level prompts as JSONL, to read before spending GPU hours",
		Description: `Example:
   msrtrain knowledge prompts --output prompts.jsonl`,
		Flags: withGlobals(&cli.StringFlag{Name: "output", Value: "-", Usage: "JSONL file, or - for standard output"}),
		Action: func(c *cli.Context) error {
			cfg, sp, err := loadData(c)
			if err != nil {
				return err
			}
			prompts, _, err := knowledge.RenderPrompts(cfg.Knowledge, sp)
			if err != nil {
				return err
			}
			err = writeOutput(c.String("output"), func(w io.Writer) error {
				return kb.WritePromptsJSONL(w, prompts)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%d prompts\n", len(prompts))
			return nil
		},
	}
}

func knowledgeBuildCommand() *cli.Command {
	return &cli.Command{
		Name:  "build",
		Usage: "encode every prompt the store lacks (resumes an interrupted build)",
		Description: `Examples:
   msrtrain knowledge build                                    # built-in hash encoder
   msrtrain knowledge build --set knowledge.encoder=openai \
       --set knowledge.openai.base_url=http://localhost:8000/v1 \
       --set knowledge.openai.chat_model=Qwen2-7B-Instruct \
       --set knowledge.openai.embedding_model=bge-m3 --set knowledge.openai.dim=1024 \
       --set knowledge.dir=knowledge/qwen`,
		Flags: withGlobals(),
		Action: func(c *cli.Context) error {
			cfg, sp, err := loadData(c)
			if err != nil {
				return err
			}
			return buildKnowledge(c, &cfg, sp)
		},
	}
}

func knowledgeImportCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "import vectors computed elsewhere (.safetensors or .npy [N, D] plus an id list)",
		Description: `Example (ids: a JSON array or a CSV of keys like "scenario:video", "user:42", row i ↔ id i):
   msrtrain knowledge import --vectors chatglm2.safetensors --ids ids.json --set knowledge.dir=knowledge/chatglm2`,
		Flags: withGlobals(
			&cli.StringFlag{Name: "vectors", Required: true, Usage: ".safetensors or .npy matrix [N, D]"},
			&cli.StringFlag{Name: "ids", Required: true, Usage: "JSON array or CSV of N keys"},
			&cli.StringFlag{Name: "tensor", Usage: "tensor name in a safetensors file holding several"}),
		Action: func(c *cli.Context) error {
			cfg, sp, err := loadData(c)
			if err != nil {
				return err
			}
			cfg.Knowledge.Encoder = knowledge.EncoderFile
			cfg.Knowledge.File = knowledge.FileConfig{Vectors: c.String("vectors"), IDs: c.String("ids"), Tensor: c.String("tensor")}
			return buildKnowledge(c, &cfg, sp)
		},
	}
}

func knowledgeInspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "coverage of the data's users and the scenario × scenario cosine similarity",
		Description: `Example:
   msrtrain knowledge inspect --set knowledge.dir=runs/default/knowledge`,
		Flags: withGlobals(),
		Action: func(c *cli.Context) error {
			cfg, sp, err := loadData(c)
			if err != nil {
				return err
			}
			store, err := kb.Load(cfg.Knowledge.StoreDir(cfg.Out))
			if err != nil {
				return usage(err)
			}
			defer store.Close()
			var keys []string
			for _, s := range sp.Vocabs.Scenarios {
				keys = append(keys, kb.ScenarioKey(s.Name))
			}
			users := sp.Vocabs.Fields[0]
			for i := 1; i < users.Size(); i++ {
				keys = append(keys, kb.UserKey(users.Token(int64(i))))
			}
			return store.WriteInspect(os.Stdout, keys)
		},
	}
}

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:  "explain",
		Usage: "a user's or scenario's prompt, the LLM's reasoning, its nearest keys and what its knowledge does to the model",
		Description: `With --checkpoint (a run directory or a checkpoint), the data, the store and the model are the
run's, and the effect is measured: how far the user-level (scenario-level) meta layers move the logits
of that user's (scenario's) rows, per scenario, against the learned fallback vector (the mean scenario vector).
Examples:
   msrtrain knowledge explain --checkpoint runs/default --user u12
   msrtrain knowledge explain --checkpoint runs/default --scenario search
   msrtrain knowledge explain --set knowledge.dir=knowledge/qwen --user u12     # no model: no effect`,
		Flags: withGlobals(
			&cli.StringFlag{Name: "user", Usage: "a raw user id of the data"},
			&cli.StringFlag{Name: "scenario", Usage: "a scenario name"},
			&cli.StringFlag{Name: "checkpoint", Aliases: []string{"ckpt"}, Usage: "a run directory (its best checkpoint) or a checkpoint directory"},
			&cli.BoolFlag{Name: "json", Usage: "print the explanation as JSON"}),
		Action: func(c *cli.Context) error {
			user, scenario := c.String("user"), c.String("scenario")
			if (user == "") == (scenario == "") {
				return usage(fmt.Errorf("give one of --user ID or --scenario NAME"))
			}
			e, done, err := newExplainer(c)
			if err != nil {
				return err
			}
			defer done()
			// A store without reasoning text (the hash encoder's, imported
			// vectors) is explained all the same: the output says what it lacks.
			var x report.Explanation
			if user != "" {
				x, err = e.ExplainUser(user, false)
			} else {
				x, err = e.ExplainScenario(scenario, false)
			}
			if err != nil {
				return usage(err)
			}
			if c.Bool("json") {
				return atomicfile.EncodeJSON(os.Stdout, x)
			}
			return x.WriteText(os.Stdout)
		},
	}
}

// newExplainer explains the --checkpoint's run with its model, or without
// a model the configuration's data and store; done closes what it opened.
func newExplainer(c *cli.Context) (e *insight.Explainer, done func(), err error) {
	var loaded *train.Loaded
	var cfg train.Config
	if path := c.String("checkpoint"); path != "" {
		device := flagString(c, "device", "auto")
		if err := checkDevice(device); err != nil {
			return nil, nil, err
		}
		if loaded, err = train.LoadModel(path, device, c.Int("threads")); err != nil {
			return nil, nil, usage(err)
		}
		cfg = loaded.Checkpoint.Config
	} else if cfg, err = resolveConfig(c); err != nil {
		return nil, nil, err
	}
	if e, err = insight.NewExplainer(cfg, loaded); err != nil {
		if loaded != nil {
			loaded.Close()
		}
		return nil, nil, usage(err)
	}
	return e, func() {
		e.Close()
		if loaded != nil {
			loaded.Close()
		}
	}, nil
}

func buildKnowledge(c *cli.Context, cfg *train.Config, sp *data.Splits) error {
	var progress io.Writer
	if train.IsTerminal(os.Stderr) {
		progress = os.Stderr
	}
	store, stats, err := knowledge.Build(c.Context, cfg.Knowledge, cfg.Out, sp, progress)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Printf("%s: %d prompts, %d stored before, %d encoded now, %d without a vector (%s, %s, dim %d)\n",
		store.Dir(), stats.Prompts, stats.Stored, stats.Encoded, stats.Missing, store.Meta().Encoder, store.Meta().Model, store.Meta().Dim)
	return nil
}

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:        "data",
		Usage:       "start a config for a CSV, generate, inspect and validate datasets",
		Subcommands: []*cli.Command{dataInitCommand(), dataSynthCommand(), dataInspectCommand(), dataValidateCommand()},
	}
}

func dataSynthCommand() *cli.Command {
	return &cli.Command{
		Name:  "synth",
		Usage: "write the synthetic dataset as CSV or Parquet, with a data config that reads it back",
		Description: `Examples:
   msrtrain data synth --output synth.csv --set data.synthetic.rows=1000000
   msrtrain data synth --output synth.parquet     # Parquet (also: --format parquet)`,
		Flags: withGlobals(&cli.StringFlag{Name: "output", Required: true, Usage: "file to write; <output>.yaml gets the data config"},
			&cli.StringFlag{Name: "format", Usage: "csv or parquet (default: parquet for a .parquet output, else csv)"}),
		Action: func(c *cli.Context) error {
			cfg, err := resolveConfig(c)
			if err != nil {
				return err
			}
			out := c.String("output")
			format, err := data.TableFormat(out, c.String("format"))
			if err != nil {
				return usage(fmt.Errorf("--format: %w", err))
			}
			sd, err := data.Generate(cfg.Data.Synthetic, cfg.Seed)
			if err != nil {
				return usage(err)
			}
			// Beside the file, the config names it by its base name: paths in a config are relative to it.
			write, dataCfg := data.WriteCSV, data.CSVConfig(sd.Raw, filepath.Base(out))
			if format == data.FormatParquet {
				write, dataCfg = data.WriteParquet, data.ParquetConfig(sd.Raw, filepath.Base(out))
			}
			if err := atomicfile.Write(out, func(w io.Writer) error { return write(w, sd.Raw) }); err != nil {
				return err
			}
			y, err := yaml.Marshal(map[string]any{"data": dataCfg})
			if err != nil {
				return err
			}
			if err := atomicfile.WriteBytes(out+".yaml", y); err != nil {
				return err
			}
			fmt.Printf("%d rows in %s; train on it with: msrtrain train -c %s.yaml\n", sd.Raw.Len(), out, out)
			return nil
		},
	}
}

func dataInspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "per-scenario statistics of the training split",
		Description: `Example:
   msrtrain data inspect -c douban.yaml`,
		Flags: withGlobals(),
		Action: func(c *cli.Context) error {
			_, sp, err := loadData(c)
			if err != nil {
				return err
			}
			fmt.Printf("rows: train %d, valid %d, test %d; vocabularies: %v\n", sp.Rows(data.Train), sp.Rows(data.Valid), sp.Rows(data.Test), sp.Vocabs.Sizes())
			fmt.Print(data.FormatStats(sp.Stats))
			return nil
		},
	}
}

func dataValidateCommand() *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "read every row and report the first bad one (or, with data.skip_bad_rows, how many)",
		Description: `Example:
   msrtrain data validate -c mydata.yaml`,
		Flags: withGlobals(),
		Action: func(c *cli.Context) error {
			_, sp, err := loadData(c)
			if err != nil {
				return err
			}
			if sp.Skipped.Count > 0 {
				fmt.Println(sp.Skipped)
				return cli.Exit("", 1) // the bad rows, just printed, are the whole message
			}
			fmt.Printf("ok: %d rows\n", splitRows(sp))
			return nil
		},
	}
}

// splitRows is the number of rows in all three splits.
func splitRows(sp *data.Splits) int {
	return sp.Rows(data.Train) + sp.Rows(data.Valid) + sp.Rows(data.Test)
}
