// Package train is msrtrain's trainer: the configuration tree, the training
// loop with evaluation, early stopping, checkpoints and exact resume,
// data-parallel training, and loading a trained model to evaluate or
// predict. Knowledge preparation (train/knowledge), the run directory's
// files (train/rundir), explanations and reports (train/insight) and sweeps
// (cmd) live beside it.
package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/choice"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/ddp"
	"github.com/msrtrain/msrtrain/train/knowledge"
)

// Config is the whole typed configuration of a run. Defaults come from
// DefaultConfig, a YAML file overrides them, and dotted overrides
// (train.lr=0.01) override the file. The resolved tree is written next to
// every run's outputs.
type Config struct {
	Seed      int64            `yaml:"seed"`
	Device    string           `yaml:"device"`  // auto, cpu, cuda, cuda:N
	Threads   int              `yaml:"threads"` // CPU threads for torch work (see torch.SetCPUThreads); 0 = number of CPUs
	Out       string           `yaml:"out"`     // run directory
	Data      data.Config      `yaml:"data"`
	Model     model.Config     `yaml:"model"`
	Train     Options          `yaml:"train"`
	Knowledge knowledge.Config `yaml:"knowledge"`
	Dist      DistConfig       `yaml:"dist"`
}

// DistConfig tunes data-parallel training, which runs when msrtrain is
// launched by torchrun (or with train --nproc); one process ignores it.
type DistConfig struct {
	// Backend: auto (NCCL on CUDA, Gloo on the CPU), gloo or nccl.
	Backend ddp.Backend `yaml:"backend"`
	// TimeoutSeconds bounds joining the job and every collective: a rank
	// that died or went silent makes the others fail after at most this long.
	TimeoutSeconds float64 `yaml:"timeout_seconds"`
	// BucketMB caps each flat bucket of the gradient all-reduce.
	BucketMB float64 `yaml:"bucket_mb"`
	// SyncBatchNorm takes batch statistics (BatchNorm, STAR's partitioned
	// norm, HAMUR's domain norm) over the rows of every rank, as PyTorch's
	// SyncBatchNorm, at the price of two small all-reduces per
	// normalisation and scenario in each pass; off, each rank normalises
	// with its own rows' statistics, as DistributedDataParallel does.
	SyncBatchNorm bool `yaml:"sync_batch_norm"`
	// Overlap starts each bucket's all-reduce during the backward pass, as
	// soon as its gradients are ready, as DistributedDataParallel does (not
	// with sync_batch_norm, whose own all-reduces run in the backward pass
	// too). Off by default: on CPUs the backward pass keeps the cores busy
	// and more buckets mean more collectives (docs/benchmarks.md).
	Overlap bool `yaml:"overlap"`
}

func (d DistConfig) options() ddp.Options {
	return ddp.Options{Backend: d.Backend, Timeout: time.Duration(d.TimeoutSeconds * float64(time.Second)),
		BucketBytes: int64(d.BucketMB * (1 << 20))}
}

// Options are the training loop's settings.
type Options struct {
	Optimizer   Optimizer `yaml:"optimizer"`
	LR          float64   `yaml:"lr"`
	WeightDecay float64   `yaml:"weight_decay"`
	Momentum    float64   `yaml:"momentum"` // sgd only
	// EmbeddingOptimizer trains the embedding table: dense (with Optimizer,
	// as before) or a row-wise optimizer that updates only the rows a batch
	// looked up (see EmbeddingOptimizerValues). WeightDecay applies to the rows it touches.
	EmbeddingOptimizer EmbeddingOptimizer `yaml:"embedding_optimizer"`
	// EmbeddingLR is the row-wise optimizer's learning rate, following the
	// schedule as LR does; 0 = LR for adam and sgd, 0.05 for adagrad and rowwise_adagrad.
	EmbeddingLR   float64  `yaml:"embedding_lr"`
	Epochs        int      `yaml:"epochs"`
	BatchSize     int      `yaml:"batch_size"`
	EvalBatchSize int      `yaml:"eval_batch_size"`
	DropLast      bool     `yaml:"drop_last"`
	Schedule      Schedule `yaml:"schedule"`
	ClipNorm      float64  `yaml:"clip_norm"` // 0 = no clipping
	// EarlyStopping watches a validation metric after every epoch.
	EarlyStopping EarlyStopping `yaml:"early_stopping"`
	// LogEvery is the number of steps between log lines when stderr is not a terminal.
	LogEvery int `yaml:"log_every"`
	// LoaderWorkers are the goroutines building batches.
	LoaderWorkers int `yaml:"loader_workers"`
	// Baseline also trains the same backbone without meta networks and prints both.
	Baseline bool `yaml:"baseline"`
}

// Schedule shapes the learning rate over steps: linear warm-up, then decay.
type Schedule struct {
	Warmup   int     `yaml:"warmup"` // steps of linear warm-up from 0
	Decay    Decay   `yaml:"decay"`
	MinRatio float64 `yaml:"min_ratio"` // floor of the decay as a fraction of lr
	StepSize int     `yaml:"step_size"` // step decay: steps between reductions
	Gamma    float64 `yaml:"gamma"`     // step decay: factor per reduction
}

// EarlyStopping stops when the watched metric has not improved for Patience epochs.
type EarlyStopping struct {
	Metric   string `yaml:"metric"`   // overall.auc, overall.logloss, scenario.<name>.auc, ...
	Patience int    `yaml:"patience"` // 0 = never stop early
}

// DefaultConfig trains LLM4MSR on STAR over the embedded synthetic dataset
// with the built-in hash encoder.
func DefaultConfig() Config {
	return Config{
		Seed:   42,
		Device: "auto",
		Out:    "runs/default",
		Data:   data.DefaultConfig(),
		Model:  model.DefaultConfig(),
		Train: Options{
			Optimizer: "adam", LR: 1e-3, EmbeddingOptimizer: DefaultEmbeddingOptimizer, Epochs: 3, BatchSize: 512, EvalBatchSize: 4096,
			Schedule:      Schedule{Decay: DecayNone, Gamma: 0.5},
			EarlyStopping: EarlyStopping{Metric: "overall.auc", Patience: 2},
			LogEvery:      100, LoaderWorkers: 2,
		},
		Knowledge: knowledge.DefaultConfig(),
		Dist:      DistConfig{Backend: ddp.BackendAuto, TimeoutSeconds: 300, BucketMB: 25},
	}
}

// Validate checks the values that the types do not, naming each bad key.
func (c *Config) Validate() error {
	t := c.Train
	checks := []struct {
		bad bool
		msg string
	}{
		{t.LR <= 0, fmt.Sprintf("train.lr = %g: must be positive", t.LR)},
		{t.WeightDecay < 0, fmt.Sprintf("train.weight_decay = %g: must be >= 0", t.WeightDecay)},
		{t.Momentum < 0, fmt.Sprintf("train.momentum = %g: must be >= 0", t.Momentum)},
		{t.EmbeddingLR < 0, fmt.Sprintf("train.embedding_lr = %g: must be >= 0", t.EmbeddingLR)},
		{t.Epochs <= 0, fmt.Sprintf("train.epochs = %d: must be positive", t.Epochs)},
		{t.BatchSize <= 0, fmt.Sprintf("train.batch_size = %d: must be positive", t.BatchSize)},
		{t.EvalBatchSize <= 0, fmt.Sprintf("train.eval_batch_size = %d: must be positive", t.EvalBatchSize)},
		{t.ClipNorm < 0, fmt.Sprintf("train.clip_norm = %g: must be >= 0", t.ClipNorm)},
		{t.EarlyStopping.Patience < 0, fmt.Sprintf("train.early_stopping.patience = %d: must be >= 0", t.EarlyStopping.Patience)},
		{t.Schedule.Warmup < 0, fmt.Sprintf("train.schedule.warmup = %d: must be >= 0", t.Schedule.Warmup)},
		{t.Schedule.MinRatio < 0 || t.Schedule.MinRatio > 1, fmt.Sprintf("train.schedule.min_ratio = %g: must be in [0, 1]", t.Schedule.MinRatio)},
		{t.Schedule.Decay == DecayStep && t.Schedule.StepSize <= 0, fmt.Sprintf("train.schedule.step_size = %d: step decay needs a positive step size", t.Schedule.StepSize)},
		{t.LogEvery <= 0, fmt.Sprintf("train.log_every = %d: must be positive", t.LogEvery)},
		{c.Threads < 0, fmt.Sprintf("threads = %d: must be >= 0", c.Threads)},
		{c.Out == "", "out: an output directory is required"},
		{c.Dist.TimeoutSeconds <= 0, fmt.Sprintf("dist.timeout_seconds = %g: must be positive", c.Dist.TimeoutSeconds)},
		{c.Dist.BucketMB <= 0, fmt.Sprintf("dist.bucket_mb = %g: must be positive", c.Dist.BucketMB)},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	for _, err := range []error{
		OptimizerValues.Check("train.optimizer", t.Optimizer),
		EmbeddingOptimizerValues.Check("train.embedding_optimizer", t.EmbeddingOptimizer),
		DecayValues.Check("train.schedule.decay", t.Schedule.Decay),
		knowledge.EncoderValues.Check("knowledge.encoder", c.Knowledge.Encoder),
	} {
		if err != nil {
			return err
		}
	}
	if _, err := parseMetric(t.EarlyStopping.Metric); err != nil {
		return fmt.Errorf("train.early_stopping.metric: %w", err)
	}
	if c.Knowledge.MaxPerScenario <= 0 {
		return fmt.Errorf("knowledge.max_per_scenario = %d: must be positive", c.Knowledge.MaxPerScenario)
	}
	for _, d := range []struct {
		enc knowledge.Encoder
		dim int
	}{{knowledge.EncoderHash, c.Knowledge.Hash.Dim}, {knowledge.EncoderLearned, c.Knowledge.Learned.Dim}, {knowledge.EncoderRandom, c.Knowledge.Random.Dim}} {
		if c.Knowledge.Encoder == d.enc && d.dim <= 0 {
			return fmt.Errorf("knowledge.%s.dim = %d: must be positive", d.enc, d.dim)
		}
	}
	if err := c.Data.Validate(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := c.checkPaths(); err != nil {
		return err
	}
	return c.Model.Validate()
}

// LoadConfig resolves defaults, then the YAML file at path (if any), then
// the dotted overrides in order. Unknown keys anywhere are errors that name them.
func LoadConfig(path string, overrides []string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := decodeFile(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		if err := cfg.resolvePaths(filepath.Dir(path)); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	sets := map[string]any{}
	var order []string
	for _, o := range overrides {
		key, val, ok := strings.Cut(o, "=")
		if !ok || key == "" {
			return cfg, fmt.Errorf("override %q: want key=value, e.g. train.lr=0.01", o)
		}
		var v any
		if err := yaml.Unmarshal([]byte(val), &v); err != nil {
			return cfg, fmt.Errorf("override %s: value %q is not valid YAML: %w", key, val, err)
		}
		if _, seen := sets[key]; !seen {
			order = append(order, key)
		}
		sets[key] = v
	}
	if err := Apply(&cfg, sets); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Apply sets dotted keys (model.star.hidden → [128, 64]) on cfg. A key the
// configuration does not have is an error naming it, the closest known key
// and its known siblings. Relative paths it sets are relative to the
// working directory, and made absolute.
func Apply(cfg *Config, sets map[string]any) error {
	if len(sets) == 0 {
		return nil
	}
	tree, err := toTree(cfg)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(sets))
	for k := range sets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// One key at a time, so that a value of the wrong type is reported
	// against its key rather than a line of the generated YAML.
	var fresh Config
	for _, key := range keys {
		if err := setPath(tree, key, sets[key]); err != nil {
			return err
		}
		b, err := yaml.Marshal(tree)
		if err != nil {
			return err
		}
		fresh = DefaultConfig()
		if err := decodeStrict(b, &fresh); err != nil {
			return fmt.Errorf("config key %s = %v: %s", key, sets[key], typeError(err))
		}
	}
	if err := fresh.resolvePaths(""); err != nil {
		return err
	}
	*cfg = fresh
	return nil
}

// resolvePaths makes the files and directories the configuration names
// absolute, joined to base (the directory of the config file that names
// them) or to the working directory when base is "". A run stores them
// so, and eval, predict, report and explain work from any directory. out
// is not among them: like --out, it is where the user stands.
func (c *Config) resolvePaths(base string) error {
	if err := c.Data.ResolvePaths(base); err != nil {
		return err
	}
	k := &c.Knowledge
	for _, p := range append(knowledgeInputs(k), configPath{"knowledge.dir", &k.Dir}) {
		abs, err := data.ResolvePath(base, *p.path)
		if err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		*p.path = abs
	}
	return nil
}

// configPath is a path of the configuration and its key.
type configPath struct {
	key  string
	path *string
}

// knowledgeInputs are the files the knowledge settings read.
func knowledgeInputs(k *knowledge.Config) []configPath {
	return []configPath{
		{"knowledge.scenario_template", &k.ScenarioPrompt}, {"knowledge.user_template", &k.UserPrompt},
		{"knowledge.file.vectors", &k.File.Vectors}, {"knowledge.file.ids", &k.File.IDs},
	}
}

// checkPaths names the key of an input file that is not there.
func (c *Config) checkPaths() error {
	if err := c.Data.CheckPaths(); err != nil {
		return err
	}
	for _, p := range knowledgeInputs(&c.Knowledge) {
		if *p.path == "" {
			continue
		}
		if _, err := os.Stat(*p.path); err != nil {
			return fmt.Errorf("%s: %s: %w", p.key, *p.path, errors.Unwrap(err))
		}
	}
	return nil
}

// typeError keeps what yaml says about a value and drops its line numbers,
// which point into generated YAML.
func typeError(err error) string {
	var bad *choice.Error
	if errors.As(err, &bad) {
		plain := *bad
		plain.Line = 0
		return plain.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "cannot unmarshal"); i >= 0 {
		return msg[i:]
	}
	return msg
}

func toTree(cfg *Config) (map[string]any, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return nil, err
	}
	return tree, nil
}

func setPath(tree map[string]any, key string, value any) error {
	parts := strings.Split(key, ".")
	node := tree
	for i, p := range parts {
		next, ok := node[p]
		if !ok {
			return unknownKeyError(parts[:i+1], node)
		}
		if i == len(parts)-1 {
			node[p] = value
			return nil
		}
		child, ok := next.(map[string]any)
		if !ok {
			if next == nil {
				// An unset optional section (a null pointer) takes a fresh map.
				child = map[string]any{}
				node[p] = child
			} else {
				return fmt.Errorf("config key %q: %s is a value, not a section", key, strings.Join(parts[:i+1], "."))
			}
		}
		node = child
	}
	return nil
}

// unknownKeyError names a key the configuration lacks by its dotted path,
// with the closest key of its section (a likely typo) and the section's keys.
func unknownKeyError(parts []string, section map[string]any) error {
	parent, siblings := parts[:len(parts)-1], sortedKeys(section)
	msg := fmt.Sprintf("unknown config key %q", strings.Join(parts, "."))
	if s := choice.Suggest(parts[len(parts)-1], siblings); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", strings.Join(append(parent[:len(parent):len(parent)], s), "."))
	}
	return fmt.Errorf("%s (%s has: %s)", msg, parentName(parent), strings.Join(siblings, ", "))
}

func parentName(parts []string) string {
	if len(parts) == 0 {
		return "the top level"
	}
	return strings.Join(parts, ".")
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeFile decodes a config file strictly. Its errors name keys by their
// dotted path, as --set does, not by the Go types behind them: an unknown
// key with the closest known one, a bad value with its key and line.
func decodeFile(b []byte, cfg *Config) error {
	defaults := DefaultConfig()
	err := decodeStrict(b, cfg)
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return err
	}
	tree, terr := toTree(&defaults)
	if terr != nil {
		return err
	}
	// Also when decoding succeeded: a type with its own UnmarshalYAML may
	// have let an unknown key through.
	lines := map[int]string{}
	if uerr := walkKeys(doc.Content[0], tree, nil, lines); uerr != nil {
		return uerr
	}
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	var ce *choice.Error
	switch {
	case errors.As(err, &te):
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = withKey(m, lines)
		}
		return errors.New(strings.Join(msgs, "; "))
	case errors.As(err, &ce) && lines[ce.Line] != "":
		plain := *ce
		plain.Line = 0
		return fmt.Errorf("line %d: %s: %w", ce.Line, lines[ce.Line], &plain)
	}
	return err
}

// walkKeys checks the keys of a YAML mapping against the configuration
// tree (the key list --set uses), returning the first unknown one, and
// records the dotted key on each line for messages about values. It does
// not descend where the tree has no section (lists, unset sections).
func walkKeys(n *yaml.Node, tree map[string]any, path []string, lines map[int]string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" { // a YAML merge key
			continue
		}
		key := append(path[:len(path):len(path)], k.Value)
		child, ok := tree[k.Value]
		if !ok {
			err := unknownKeyError(key, tree)
			return fmt.Errorf("line %d: %w", k.Line, err)
		}
		lines[k.Line] = strings.Join(key, ".")
		if v.Line != k.Line {
			lines[v.Line] = strings.Join(key, ".")
		}
		if sub, ok := child.(map[string]any); ok && len(sub) > 0 {
			if err := walkKeys(v, sub, key, lines); err != nil {
				return err
			}
		}
	}
	return nil
}

// withKey puts the key of a "line N: ..." message after the line.
func withKey(msg string, lines map[int]string) string {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil || lines[line] == "" {
		return msg
	}
	_, rest, _ := strings.Cut(msg, ": ")
	return fmt.Sprintf("line %d: %s: %s", line, lines[line], rest)
}

// decodeStrict decodes YAML into cfg, refusing unknown keys (with their line).
func decodeStrict(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	return nil
}

// Marshal renders the resolved configuration as YAML.
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// DataConfig is the data section as the run reads it: one seed (the run's)
// drives the data, the split, the shuffle and libtorch.
func (c *Config) DataConfig() data.Config {
	d := c.Data
	d.Seed = c.Seed
	return d
}
