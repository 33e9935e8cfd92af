package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/ddp"
	"github.com/msrtrain/msrtrain/train/knowledge"
)

func TestConfigLayering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "run.yaml")
	require.NoError(t, os.WriteFile(file, []byte("train:\n  lr: 0.01\n  epochs: 7\n  optimizer: AdamW\nmodel:\n  backbone: mmoe\n  meta: {levels: user}\n"), 0o644))
	cfg, err := LoadConfig(file, []string{"train.lr=0.05", "model.mmoe.experts=6", "model.star.hidden=[32, 16]", "data.synthetic.scenarios=4", "train.schedule.decay=cosine"})
	require.NoError(t, err)
	// defaults < file < overrides
	assert.Equal(t, 0.05, cfg.Train.LR)
	assert.Equal(t, 7, cfg.Train.Epochs)
	assert.Equal(t, "mmoe", cfg.Model.Backbone)
	assert.Equal(t, 6, cfg.Model.MMoE.Experts)
	assert.Equal(t, []int64{32, 16}, cfg.Model.STAR.Hidden)
	assert.Equal(t, DefaultConfig().Train.BatchSize, cfg.Train.BatchSize, "an untouched key lost its default")
	// Fixed-choice options are parsed into their types (any case).
	assert.Equal(t, Optimizer("adamw"), cfg.Train.Optimizer)
	assert.Equal(t, DecayCosine, cfg.Train.Schedule.Decay)
	assert.Equal(t, model.LevelsUser, cfg.Model.Meta.Levels)
	// The per-scenario synthetic lists follow the number of scenarios.
	assert.NoError(t, cfg.Validate(), "4 synthetic scenarios")
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		sets []string
		want string
	}{
		{[]string{"train.lrr=1"}, `unknown config key "train.lrr"; did you mean "train.lr"? (train has: `},
		{[]string{"nope=1"}, `unknown config key "nope" (the top level has: `},
		{[]string{"train.lr.x=1"}, `config key "train.lr.x": train.lr is a value, not a section`},
		{[]string{"train.epochs=[1]"}, "config key train.epochs = [1]: cannot unmarshal"},
		{[]string{"train.lr"}, `override "train.lr": want key=value`},
		{[]string{"train.lr=0"}, "train.lr = 0: must be positive"},
		{[]string{"train.optimizer=lion"}, `config key train.optimizer = lion: unknown optimizer "lion": want adam, adamw, adagrad or sgd`},
		{[]string{"train.embedding_optimizer=lion"}, `config key train.embedding_optimizer = lion: unknown embedding optimizer "lion": want dense, sgd, adam, adagrad or rowwise_adagrad`},
		{[]string{"train.embedding_lr=-1"}, "train.embedding_lr = -1: must be >= 0"},
		{[]string{"train.early_stopping.metric=overall.f1"}, "train.early_stopping.metric"},
		{[]string{"train.schedule.decay=step"}, "train.schedule.step_size = 0"},
		{[]string{"train.schedule.decay=exp"}, `config key train.schedule.decay = exp: unknown decay "exp": want none, cosine, linear or step`},
		{[]string{"knowledge.encoder=bert"}, `config key knowledge.encoder = bert: unknown knowledge encoder "bert": want hash, openai, file, learned or random`},
		{[]string{"model.meta.levels=all"}, `config key model.meta.levels = all: unknown meta levels "all": want none, scenario, user or both`},
		{[]string{"model.meta.fusion=sum"}, `unknown fusion "sum": want concat or residual`},
		{[]string{"model.meta.placement=top"}, `unknown meta placement "top": want bottom or branch`},
		{[]string{"knowledge.encoder=learned", "knowledge.learned.dim=0"}, "knowledge.learned.dim = 0: must be positive"},
		{[]string{"knowledge.encoder=random", "knowledge.random.dim=-1"}, "knowledge.random.dim = -1: must be positive"},
		{[]string{"data.format=orc"}, `format "orc"`},
		{[]string{"data.format=parquet"}, "format parquet needs path, files or train"},
	}
	for _, tc := range tests {
		cfg, err := LoadConfig("", tc.sets)
		if err == nil {
			err = cfg.Validate()
		}
		assert.ErrorContains(t, err, tc.want, "%v", tc.sets)
	}
}

// TestConfigFileErrorsNameTheLine: a bad fixed-choice value in a file names the file and line.
func TestConfigFileErrorsNameTheLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "run.yaml")
	require.NoError(t, os.WriteFile(file, []byte("seed: 1\nmodel:\n  meta:\n    levels: all\n"), 0o644))
	_, err := LoadConfig(file, nil)
	assert.EqualError(t, err, "config "+file+`: line 4: model.meta.levels: unknown meta levels "all": want none, scenario, user or both`)
}

// A config file's keys are named by their dotted path, as --set names them,
// and a typo gets the closest key of the same list.
func TestConfigFileKeysByPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "run.yaml")
	for _, tc := range []struct{ yaml, want string }{
		{"train:\n  lr: 0.01\n  epocs: 3\n", `line 3: unknown config key "train.epocs"; did you mean "train.epochs"? (train has: baseline, batch_size, `},
		{"model:\n  star: {hiden: [8]}\n", `line 2: unknown config key "model.star.hiden"; did you mean "model.star.hidden"? (model.star has: `},
		{"trian:\n  lr: 1\n", `line 1: unknown config key "trian"; did you mean "train"? (the top level has: `},
		{"data:\n  columns: {user: {nme: u}}\n", `line 2: unknown config key "data.columns.user.nme"; did you mean "data.columns.user.name"?`},
		{"train:\n  epochs: many\n", "line 2: train.epochs: cannot unmarshal !!str `many` into int"},
	} {
		require.NoError(t, os.WriteFile(file, []byte(tc.yaml), 0o644))
		_, err := LoadConfig(file, nil)
		require.Error(t, err, tc.yaml)
		assert.Contains(t, err.Error(), "config "+file+": "+tc.want)
		assert.NotContains(t, err.Error(), "not found in type", "a Go type name in %q", err)
	}
	_, err := LoadConfig("", []string{"train.epocs=3"})
	assert.ErrorContains(t, err, `unknown config key "train.epocs"; did you mean "train.epochs"? (train has: `)
}

// Paths in a config file are relative to the file; paths given by --set,
// to the working directory. Both are stored absolute.
func TestConfigPathsResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "run.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
	require.NoError(t, os.WriteFile(file, []byte("data: {format: csv, path: clicks.csv, files: [../more.csv, /abs/x.csv]}\nknowledge: {dir: kn, user_template: t/user.tmpl}\n"), 0o644))
	wd, err := os.Getwd()
	require.NoError(t, err)
	cfg, err := LoadConfig(file, []string{"data.train=given.csv", "knowledge.file.vectors=v.npy"})
	require.NoError(t, err)
	conf := filepath.Dir(file)
	assert.Equal(t, filepath.Join(conf, "clicks.csv"), cfg.Data.Path)
	assert.Equal(t, []string{filepath.Join(dir, "more.csv"), "/abs/x.csv"}, cfg.Data.Files)
	assert.Equal(t, filepath.Join(conf, "kn"), cfg.Knowledge.Dir)
	assert.Equal(t, filepath.Join(conf, "t", "user.tmpl"), cfg.Knowledge.UserPrompt)
	assert.Equal(t, filepath.Join(wd, "given.csv"), cfg.Data.Train)
	assert.Equal(t, filepath.Join(wd, "v.npy"), cfg.Knowledge.File.Vectors)
	assert.Equal(t, "runs/default", cfg.Out, "out stays where the user stands, like --out")
}

func TestScheduleShapesTheLearningRate(t *testing.T) {
	tests := []struct {
		s     Schedule
		step  int
		total int
		want  float64
	}{
		{Schedule{Decay: DecayNone}, 50, 100, 1},
		{Schedule{Decay: DecayNone, Warmup: 10}, 0, 100, 0.1},
		{Schedule{Decay: DecayNone, Warmup: 10}, 9, 100, 1},
		{Schedule{Decay: DecayLinear}, 50, 100, 0.5},
		{Schedule{Decay: DecayLinear, MinRatio: 0.2}, 100, 100, 0.2},
		{Schedule{Decay: DecayCosine}, 50, 100, 0.5},
		{Schedule{Decay: DecayCosine, Warmup: 20}, 20, 100, 1},
		{Schedule{Decay: DecayStep, StepSize: 10, Gamma: 0.5}, 25, 100, 0.25},
	}
	for _, tc := range tests {
		assert.InDelta(t, tc.want, tc.s.lrAt(1, tc.step, tc.total), 1e-12, "%+v at step %d/%d", tc.s, tc.step, tc.total)
	}
}

// TestDocsListEveryChoice: the README's and data/README.md's config
// comments list exactly the values each fixed-choice option's type accepts.
func TestDocsListEveryChoice(t *testing.T) {
	tests := []struct {
		file, key string
		values    []string
	}{
		{"../README.md", "  format: synthetic", data.FormatValues.Names()},
		{"../data/README.md", "  format: csv", data.FormatValues.Names()},
		{"../data/README.md", "    method: auto", data.SplitMethodValues.Names()},
		{"../README.md", "    levels: both", model.MetaLevelValues.Names()},
		{"../README.md", "    fusion: concat", model.FusionValues.Names()},
		{"../README.md", "    placement: bottom", model.MetaPlacementValues.Names()},
		{"../README.md", "    head: full", model.MetaHeadValues.Names()},
		{"../README.md", "  adasparse: {", model.PrunerFormValues.Names()},
		{"../README.md", "        shared_gate: all", model.PLESharedGateValues.Names()},
		{"../README.md", "             center_update: mean", model.CenterUpdateValues.Names()},
		{"../README.md", "  m3oe: {", model.StructureValues.Names()},
		{"../README.md", "          structure: paper", model.StructureValues.Names()},
		{"../README.md", "  optimizer: adam", OptimizerValues.Names()},
		{"../README.md", "  embedding_optimizer: ", EmbeddingOptimizerValues.Names()},
		{"../README.md", "  schedule: {", DecayValues.Names()},
		{"../README.md", "  encoder: hash", knowledge.EncoderValues.Names()},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(tc.file)
		require.NoError(t, err)
		var line string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, tc.key) {
				line = l
				break
			}
		}
		require.NotEmpty(t, line, "%s has no line starting %q", tc.file, tc.key)
		_, comment, _ := strings.Cut(line, "#")
		listed := strings.Split(comment, "|")
		require.Len(t, listed, len(tc.values), "%s: %q lists %d values, the type has %v", tc.file, line, len(listed), tc.values)
		for i, v := range tc.values {
			words := strings.Fields(listed[i])
			require.NotEmpty(t, words, "%s: %q", tc.file, line)
			if i == 0 && len(words) > 1 && strings.HasSuffix(words[0], ":") {
				words = words[1:] // "# decay: none | ..."
			}
			assert.Equal(t, v, words[0], "%s: %q, value %d", tc.file, line, i)
		}
	}
}

func TestDistConfig(t *testing.T) {
	cfg, err := LoadConfig("", []string{"dist.backend=gloo", "dist.timeout_seconds=30"})
	require.NoError(t, err)
	assert.Equal(t, ddp.BackendGloo, cfg.Dist.Backend)
	yml, err := cfg.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(yml), "backend: gloo")
	_, err = LoadConfig("", []string{"dist.backend=mpi"})
	assert.ErrorContains(t, err, `dist.backend`)
	assert.ErrorContains(t, err, `want auto, gloo, nccl`)
}

// The OpenAI encoder's missing settings are named by their config keys.
func TestOpenAIEncoderNamesMissingKeys(t *testing.T) {
	kc := DefaultConfig().Knowledge
	kc.Encoder = knowledge.EncoderOpenAI
	_, err := knowledge.NewEncoder(kc)
	assert.EqualError(t, err, "knowledge.encoder = openai needs knowledge.openai.embedding_model and knowledge.openai.dim (the embedding model's dimension)")
	kc.OpenAI.EmbeddingModel, kc.OpenAI.Dim = "bge-m3", 1024
	_, err = knowledge.NewEncoder(kc)
	assert.NoError(t, err)
}

// TestDocsConfigBlocksLoad: the configuration blocks the READMEs show load
// as written, as a user pasting them into run.yaml would load them.
func TestDocsConfigBlocksLoad(t *testing.T) {
	for _, tc := range []struct{ file, after string }{
		{"../README.md", "### Configuration"},
		{"../data/README.md", "## YAML data config"},
	} {
		b, err := os.ReadFile(tc.file)
		require.NoError(t, err)
		_, rest, ok := strings.Cut(string(b), tc.after)
		require.True(t, ok, "%s has no %q", tc.file, tc.after)
		_, rest, ok = strings.Cut(rest, "```yaml\n")
		require.True(t, ok, "%s: no yaml block after %q", tc.file, tc.after)
		block, _, _ := strings.Cut(rest, "```")
		dir := t.TempDir()
		path := filepath.Join(dir, "run.yaml")
		require.NoError(t, os.WriteFile(path, []byte(block), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "clicks.csv"), nil, 0o644)) // the file the data block names
		cfg, err := LoadConfig(path, nil)
		require.NoError(t, err, "%s, the block after %q", tc.file, tc.after)
		assert.NoError(t, cfg.Validate(), "%s, the block after %q", tc.file, tc.after)
	}
}

// A file the configuration names that is not there is an error naming its key.
func TestConfigMissingFilesNameTheirKeys(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ set, key string }{
		{"data.path", "data.path"},
		{"knowledge.user_template", "knowledge.user_template"},
		{"knowledge.file.vectors", "knowledge.file.vectors"},
	} {
		missing := filepath.Join(dir, "nope")
		sets := []string{tc.set + "=" + missing}
		if strings.HasPrefix(tc.set, "data.") {
			sets = append(sets, "data.format=csv")
		}
		cfg, err := LoadConfig("", sets)
		require.NoError(t, err)
		assert.EqualError(t, cfg.Validate(), tc.key+": "+missing+": no such file or directory")
	}
}
