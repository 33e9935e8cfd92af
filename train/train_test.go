package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/safetensors"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// tinyConfig is a run that trains in about a second: small synthetic data, small layers.
func tinyConfig(t *testing.T, overrides ...string) Config {
	t.Helper()
	base := []string{
		"data.synthetic.rows=6000", "data.synthetic.users=400", "data.synthetic.items_per_scenario=80",
		"train.epochs=2", "train.batch_size=128", "train.eval_batch_size=1000", "train.log_every=1000",
		"model.star.hidden=[32,16]", "model.star.aux_hidden=[8]", "model.meta.layers=[8]",
		"model.meta.generator.hidden=[16]", "knowledge.hash.dim=16", "threads=1", "device=cpu",
	}
	cfg, err := LoadConfig("", append(base, overrides...))
	require.NoError(t, err)
	cfg.Out = t.TempDir()
	require.NoError(t, cfg.Validate())
	return cfg
}

// onTorchThread runs f on a fresh goroutine locked to its own OS thread, as the CLI does.
func onTorchThread[T any](f func() (T, error)) (T, error) {
	type out struct {
		v   T
		err error
	}
	ch := make(chan out)
	go func() {
		runtime.LockOSThread()
		v, err := f()
		ch <- out{v, err}
	}()
	o := <-ch
	return o.v, o.err
}

func trainTiny(t *testing.T, ctx context.Context, cfg Config, resume bool) *Result {
	t.Helper()
	res, err := onTorchThread(func() (*Result, error) { return Train(ctx, cfg, RunOptions{Resume: resume}) })
	require.NoError(t, err)
	return res
}

func testAUC(t *testing.T, r *Result) float64 {
	t.Helper()
	require.NotNil(t, r.Test, "no test metrics in %+v", r)
	require.NotNil(t, r.Test.Overall.AUC, "no test AUC in %+v", r)
	return *r.Test.Overall.AUC
}

func TestTrainWritesOutputsAndLearns(t *testing.T) {
	cfg := tinyConfig(t)
	live := torch.LiveTensors()
	res := trainTiny(t, context.Background(), cfg, false)
	assert.Equal(t, live, torch.LiveTensors(), "tensor handles before and after training: the run leaked libtorch memory")
	assert.Greater(t, testAUC(t, res), 0.6, "test AUC after 2 epochs; the synthetic task is learnable well above 0.6")
	assert.Equal(t, 2*38, res.Steps, "6000 rows · 0.8 / 128, last batch kept")
	for _, f := range []string{"config.yaml", "metrics.jsonl", "summary.json", "checkpoints/latest", "checkpoints/best", "knowledge/index.json"} {
		assert.FileExists(t, filepath.Join(cfg.Out, f))
	}
	lines, err := os.ReadFile(filepath.Join(cfg.Out, "metrics.jsonl"))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(lines), "\n"), "metrics.jsonl: one line per epoch")
	var sum Result
	b, err := os.ReadFile(filepath.Join(cfg.Out, "summary.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	require.Len(t, sum.Test.PerScenario, 3)
	assert.Equal(t, "video", sum.Test.PerScenario[0].Scenario)
	checkCheckpointNames(t, cfg)
}

// checkCheckpointNames: the best checkpoint holds the vocabularies of the
// synthetic data's four categorical fields, and the model's whole state
// dict under PyTorch-style names (dotted module paths, buffers included),
// which safetensors.torch.load_file reads into a module's load_state_dict.
func checkCheckpointNames(t *testing.T, cfg Config) {
	ckDir, err := CheckpointDir(cfg.Out, "best")
	require.NoError(t, err)
	ck, err := ReadCheckpoint(ckDir)
	require.NoError(t, err)
	assert.Equal(t, "star", ck.Config.Model.Backbone)
	var fields []string
	var rows int64
	for _, f := range ck.Vocabs.Fields {
		fields = append(fields, f.Name)
		rows += int64(f.Size())
	}
	assert.Equal(t, []string{"user_id", "item_id", "item_category", "user_segment"}, fields)

	tensors, meta, err := safetensors.ReadFile(filepath.Join(ckDir, modelFile))
	require.NoError(t, err)
	assert.Equal(t, "star", meta["backbone"])
	assert.Equal(t, "pt", meta["format"])
	pytorchName := regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)
	var names []string
	for name := range tensors {
		assert.Regexp(t, pytorchName, name)
		names = append(names, name)
	}
	shapes := map[string][]int64{
		"embedding.weight":         {rows, cfg.Model.EmbeddingDim}, // every field's rows, out-of-vocabulary ones included
		"meta.user.fallback":       {1, int64(cfg.Knowledge.Hash.Dim)},
		"backbone.layers.0.weight": nil,
		"backbone.pn.running_mean": nil, // a buffer: the partitioned norm's per-scenario statistics
		"meta.scenario.head.bias":  nil,
	}
	for name, shape := range shapes {
		if assert.Contains(t, tensors, name) && shape != nil {
			assert.Equal(t, shape, tensors[name].Shape, name)
		}
	}
	l, err := onTorchThread(func() (*Loaded, error) { return LoadModel(ckDir, "cpu", 1) })
	require.NoError(t, err)
	defer l.Close()
	var want []string
	for name := range l.Model.Store.StateDict() {
		want = append(want, name)
	}
	assert.ElementsMatch(t, want, names, "the checkpoint holds the model's state dict, no more, no less")
}

// TestDeterminismAndExactResume: the same seed gives the same metrics to the
// last digit, and a run interrupted after its first epoch and resumed ends
// exactly where an uninterrupted run does.
func TestDeterminismAndExactResume(t *testing.T) {
	full := tinyConfig(t, "model.star.dropout=0.1")
	a := trainTiny(t, context.Background(), full, false)
	again := full
	again.Out = t.TempDir()
	b := trainTiny(t, context.Background(), again, false)
	assert.Equal(t, testAUC(t, a), testAUC(t, b), "same seed, different AUC")
	assert.Equal(t, *a.Test.Overall.LogLoss, *b.Test.Overall.LogLoss, "same seed, different logloss")
	requireExactResume(t, full, a)
}

// TestEveryEmbeddingOptimizerResumesExactly: the row-wise optimizers' state
// (and dense Adam's for the table, the old behaviour) survives a checkpoint.
func TestEveryEmbeddingOptimizerResumesExactly(t *testing.T) {
	for _, sets := range [][]string{
		{"train.embedding_optimizer=adam", "train.clip_norm=0.5"},
		{"train.embedding_optimizer=adagrad"},
		{"train.embedding_optimizer=dense"},
	} {
		t.Run(sets[0], func(t *testing.T) {
			full := tinyConfig(t, append(sets, "model.meta.levels=none")...)
			requireExactResume(t, full, trainTiny(t, context.Background(), full, false))
		})
	}
}

// requireExactResume trains full's first epoch, then resumes for the second,
// and requires the metrics of the uninterrupted run a.
func requireExactResume(t *testing.T, full Config, a *Result) {
	t.Helper()
	split := full
	split.Out = t.TempDir()
	first := split
	first.Train.Epochs = 1
	trainTiny(t, context.Background(), first, false)
	// The finished one-epoch run, resumed with more epochs, goes on to them.
	c := trainTiny(t, context.Background(), split, true)
	assert.Equal(t, full.Train.Epochs, c.Epochs)
	assert.Equal(t, testAUC(t, a), testAUC(t, c), "AUC: uninterrupted vs resumed")
	assert.Equal(t, *a.Test.Overall.LogLoss, *c.Test.Overall.LogLoss, "logloss: uninterrupted vs resumed")
}

// TestInterruptCheckpointsMidEpoch: a cancelled context ends the run after
// the step in flight with a checkpoint that resumes to the same result.
func TestInterruptCheckpointsMidEpoch(t *testing.T) {
	ref := tinyConfig(t)
	want := trainTiny(t, context.Background(), ref, false)

	cfg := ref
	cfg.Out = t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	// Ctrl-C arrives during step 10 of the first epoch.
	stop := func(step int) {
		if step == 10 {
			cancel(errors.New("test interrupt"))
		}
	}
	res, err := onTorchThread(func() (*Result, error) { return Train(ctx, cfg, RunOptions{afterStep: stop}) })
	require.NoError(t, err)
	require.True(t, res.Interrupted)
	require.Equal(t, 10, res.Steps, "steps before the interrupt")
	got := trainTiny(t, context.Background(), cfg, true)
	assert.Equal(t, testAUC(t, want), testAUC(t, got), "AUC: uninterrupted vs interrupted and resumed")
}

func TestResumeRefusesAnotherConfig(t *testing.T) {
	cfg := tinyConfig(t, "train.epochs=1")
	trainTiny(t, context.Background(), cfg, false)
	other := cfg
	other.Model.Backbone = "mmoe"
	other.Train.LR = 0.01
	_, err := onTorchThread(func() (*Result, error) { return Train(context.Background(), other, RunOptions{Resume: true}) })
	assert.ErrorContains(t, err, "differs from the checkpoint's (config.yaml): model.backbone: star → mmoe; train.lr: 0.001 → 0.01; resume with the same config")
	fewer := cfg
	fewer.Train.Epochs = 0
	_, err = onTorchThread(func() (*Result, error) { return Train(context.Background(), fewer, RunOptions{Resume: true}) })
	assert.ErrorContains(t, err, "train.epochs = 0")
}

// TestEarlyStoppingSaysWhatHappened: a model that cannot change (learning
// rates far below float32's resolution) never improves on its first epoch.
// A run that trains all its epochs says which was best rather than that it
// stopped early; one that stops early says so; resumed with more epochs it
// trains none, as a run of that length would have stopped at the same
// place, and with more patience it goes on.
func TestEarlyStoppingSaysWhatHappened(t *testing.T) {
	frozen := []string{"train.lr=1e-12", "train.embedding_lr=1e-12", "model.star.partitioned_norm=false", "model.meta.levels=none", "train.early_stopping.patience=2"}
	trainLog := func(cfg Config, resume bool) (*Result, string) {
		var log bytes.Buffer
		res, err := onTorchThread(func() (*Result, error) {
			return Train(context.Background(), cfg, RunOptions{Resume: resume, Log: &log})
		})
		require.NoError(t, err, log.String())
		return res, log.String()
	}
	all := tinyConfig(t, append(frozen, "train.epochs=3")...)
	res, log := trainLog(all, false)
	assert.Equal(t, 3, res.Epochs)
	assert.Equal(t, 1, res.BestEpoch)
	assert.NotContains(t, log, "early stopping")
	assert.Contains(t, log, "trained all 3 epochs; the best by overall.auc is epoch 1, and the test uses its weights")

	stops := tinyConfig(t, append(frozen, "train.epochs=4")...)
	res, log = trainLog(stops, false)
	assert.Equal(t, 3, res.Epochs)
	assert.Contains(t, log, "early stopping after epoch 3 of 4: overall.auc has not improved for 2 epochs (best: epoch 1)")

	longer := stops
	longer.Train.Epochs = 6
	res, log = trainLog(longer, true)
	assert.Equal(t, 3, res.Epochs, "no epoch after an early stop")
	assert.Contains(t, log, "no more epochs: after epoch 3 overall.auc had not improved for 2 epochs (best: epoch 1)")

	patient := longer
	patient.Train.EarlyStopping.Patience = 3
	res, log = trainLog(patient, true)
	assert.Equal(t, 4, res.Epochs, "one more epoch of patience")
	assert.Contains(t, log, "train.epochs 4 → 6: continuing from epoch 4")
	assert.Contains(t, log, "early stopping after epoch 4 of 6")
}

// TestRaisingEpochsWithADecayThatSpansTheRun: cosine decay is spread over
// every epoch, so the log says the continued run follows the new schedule.
func TestRaisingEpochsWithADecayThatSpansTheRun(t *testing.T) {
	cfg := tinyConfig(t, "train.epochs=1", "train.schedule.decay=cosine", "model.meta.levels=none")
	trainTiny(t, context.Background(), cfg, false)
	cfg.Train.Epochs = 2
	var log bytes.Buffer
	res, err := onTorchThread(func() (*Result, error) { return Train(context.Background(), cfg, RunOptions{Resume: true, Log: &log}) })
	require.NoError(t, err)
	assert.Equal(t, 2, res.Epochs)
	assert.Contains(t, log.String(), "train.schedule.decay = cosine spreads over every epoch: from step 38 on the learning rate follows the 2-epoch schedule")
}

func TestNonFiniteLossStops(t *testing.T) {
	cfg := tinyConfig(t, "train.lr=1e30", "train.optimizer=sgd", "model.meta.levels=none")
	_, err := onTorchThread(func() (*Result, error) { return Train(context.Background(), cfg, RunOptions{}) })
	require.ErrorIs(t, err, ErrNonFinite, "a diverging run")
	assert.ErrorContains(t, err, "step ", "the error names the step")
}

func TestEveryBackboneTrainsWithMeta(t *testing.T) {
	for _, bb := range model.BackboneNames() {
		t.Run(bb, func(t *testing.T) {
			cfg := tinyConfig(t, "model.backbone="+bb)
			auc := testAUC(t, trainTiny(t, context.Background(), cfg, false))
			assert.GreaterOrEqual(t, auc, 0.55, "test AUC after two epochs") // false for NaN too
		})
	}
}

func TestMetricParsing(t *testing.T) {
	rep := metrics.Report{}
	for _, tc := range []struct {
		in  string
		err bool
	}{{"overall.auc", false}, {"scenario.search.gauc", false}, {"overall.logloss", false}, {"overall.f1", true}, {"auc", true}, {"scenario..auc", true}} {
		m, err := parseMetric(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		_, ok := m.value(rep)
		assert.False(t, ok, "%q: a value from an empty report", tc.in)
	}
	logloss, _ := metrics.Lookup("logloss")
	auc, _ := metrics.Lookup("auc")
	assert.True(t, logloss.Better(0.3, 0.4), "lower logloss is better")
	assert.False(t, auc.Better(0.3, 0.4), "higher AUC is better")
}

// TestLLM4MSRImprovesEveryBackbone is LLM4MSR's claim on the embedded
// synthetic data, whose user descriptions carry real signal: with the hash
// encoder's knowledge, every backbone's test AUC beats the same backbone
// without meta networks by a margin below every gain measured (README,
// Benchmarks). It trains two models per registered backbone on the default
// data, one after the other: libtorch's random generator is process-wide, so
// runs in parallel would draw each other's initialisations and lose their seeds.
func TestLLM4MSRImprovesEveryBackbone(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models per backbone on the default synthetic data")
	}
	const margin = 0.003
	// PPNet already gates every layer by the user's own id embedding, so
	// user-level knowledge has less left to add: its gain is the smallest
	// measured (docs/benchmarks.md), and its margin sits below that gain.
	margins := map[string]float64{"ppnet": 0.0005}
	// One store for every backbone: the knowledge depends on the data and
	// the encoder alone, so it is encoded once; each run trains the bare
	// backbone beside LLM4MSR on the data it loaded (train.baseline).
	store := t.TempDir()
	for _, bb := range model.BackboneNames() {
		t.Run(bb, func(t *testing.T) {
			margin := margin
			if m, ok := margins[bb]; ok {
				margin = m
			}
			cfg, err := LoadConfig("", []string{"model.backbone=" + bb, "model.meta.levels=both", "train.baseline=true",
				"knowledge.dir=" + store, "threads=1", "device=cpu"})
			require.NoError(t, err)
			cfg.Out = t.TempDir()
			res := trainTiny(t, context.Background(), cfg, false)
			require.NotNil(t, res.Baseline, "train.baseline ran no bare backbone")
			bare, llm := testAUC(t, res.Baseline), testAUC(t, res)
			t.Logf("%s: test AUC %.4f bare, %.4f with LLM4MSR (%+.4f)", bb, bare, llm, llm-bare)
			assert.GreaterOrEqualf(t, llm, bare+margin, "LLM4MSR does not beat the bare backbone (%.4f) by %.3f", bare, margin)
		})
	}
}

// TestGradientHookSeesEveryStep: the hook runs once per step with every
// trainable parameter, and its error stops the run naming it.
func TestGradientHookSeesEveryStep(t *testing.T) {
	cfg := tinyConfig(t, "train.epochs=1", "model.meta.levels=none")
	calls := 0
	hook := func(params []*torch.Tensor) error {
		calls++
		assert.NotEmpty(t, params) // not require: this runs on the torch goroutine
		return nil
	}
	res, err := onTorchThread(func() (*Result, error) { return Train(context.Background(), cfg, RunOptions{GradientHook: hook}) })
	require.NoError(t, err)
	assert.Equal(t, res.Steps, calls)

	cfg.Out = t.TempDir()
	failing := func([]*torch.Tensor) error { return errors.New("rank 3 is gone") }
	_, err = onTorchThread(func() (*Result, error) { return Train(context.Background(), cfg, RunOptions{GradientHook: failing}) })
	require.ErrorContains(t, err, "gradient hook: rank 3 is gone")
}

// TestSparseGradientHookSeesEveryStep: with a row-wise embedding optimizer
// the table's gradient reaches the hook as (distinct row ids, gradient rows).
// The hook runs on the torch goroutine, so it reports what is wrong as its
// error, which ends the run and fails the test here.
func TestSparseGradientHookSeesEveryStep(t *testing.T) {
	cfg := tinyConfig(t, "train.epochs=1", "model.meta.levels=none")
	calls := 0
	hook := func(g *torch.SparseGrad) error {
		calls++
		ids, err := g.IDs.Int64s()
		if err != nil {
			return err
		}
		seen := map[int64]bool{}
		for _, id := range ids {
			if seen[id] {
				return fmt.Errorf("step %d: row %d appears twice among %d ids said to be distinct", calls, id, len(ids))
			}
			seen[id] = true
		}
		switch want := []int64{int64(len(ids)), cfg.Model.EmbeddingDim}; {
		case !g.Distinct:
			return fmt.Errorf("step %d: one lookup's ids not marked distinct", calls)
		case len(ids) == 0:
			return fmt.Errorf("step %d: no rows", calls)
		case g.Table != "embedding.weight":
			return fmt.Errorf("step %d: table %q, want embedding.weight", calls, g.Table)
		case fmt.Sprint(g.Rows.Shape()) != fmt.Sprint(want):
			return fmt.Errorf("step %d: gradient rows %v, want %v", calls, g.Rows.Shape(), want)
		}
		return nil
	}
	res, err := onTorchThread(func() (*Result, error) {
		return Train(context.Background(), cfg, RunOptions{SparseGradientHook: hook})
	})
	require.NoError(t, err)
	assert.Equal(t, res.Steps, calls)

	cfg.Out = t.TempDir()
	failing := func(*torch.SparseGrad) error { return errors.New("rank 2 is gone") }
	_, err = onTorchThread(func() (*Result, error) {
		return Train(context.Background(), cfg, RunOptions{SparseGradientHook: failing})
	})
	require.ErrorContains(t, err, "sparse gradient hook: rank 2 is gone")
}

// TestDefaultEmbeddingOptimizerKeepsDenseAdamsAUC: the default row-wise
// optimizer loses no test AUC (0.002 at most) against dense Adam for the
// table, the behaviour before it, on synthetic data.
func TestDefaultEmbeddingOptimizerKeepsDenseAdamsAUC(t *testing.T) {
	sets := []string{"data.synthetic.rows=40000", "data.synthetic.users=3000", "data.synthetic.items_per_scenario=600",
		"model.meta.levels=none", "train.epochs=2", "train.batch_size=256"}
	dense := trainTiny(t, context.Background(), tinyConfig(t, append(sets, "train.embedding_optimizer=dense")...), false)
	def := tinyConfig(t, sets...)
	require.Equal(t, DefaultEmbeddingOptimizer, def.Train.EmbeddingOptimizer)
	sparse := trainTiny(t, context.Background(), def, false)
	t.Logf("test AUC: dense Adam %.4f, %s %.4f", testAUC(t, dense), DefaultEmbeddingOptimizer, testAUC(t, sparse))
	assert.GreaterOrEqual(t, testAUC(t, sparse), testAUC(t, dense)-0.002)
}

// TestLoadModelEvaluatesLikeTheRun: a model loaded from the run directory
// scores the test split exactly as the run's final test did.
func TestLoadModelEvaluatesLikeTheRun(t *testing.T) {
	cfg := tinyConfig(t, "train.epochs=1")
	res := trainTiny(t, context.Background(), cfg, false)
	rep, err := onTorchThread(func() (*metrics.Report, error) {
		m, err := LoadModel(cfg.Out, "cpu", 1)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		return m.Evaluate(data.Test)
	})
	require.NoError(t, err)
	assert.Equal(t, testAUC(t, res), *rep.Overall.AUC)
}

// TestOneEpochNumbering: the log, summary.json and metrics.jsonl number
// epochs alike, from 1.
func TestOneEpochNumbering(t *testing.T) {
	cfg := tinyConfig(t)
	var log strings.Builder
	res, err := onTorchThread(func() (*Result, error) { return Train(context.Background(), cfg, RunOptions{Log: &log}) })
	require.NoError(t, err)
	var sum Result
	b, err := os.ReadFile(filepath.Join(cfg.Out, "summary.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	assert.Equal(t, res.BestEpoch, sum.BestEpoch)
	assert.Contains(t, log.String(), fmt.Sprintf("test (best epoch %d,", sum.BestEpoch))

	lines, err := os.ReadFile(filepath.Join(cfg.Out, "metrics.jsonl"))
	require.NoError(t, err)
	var epochs []int
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var line struct{ Epoch int }
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		epochs = append(epochs, line.Epoch)
		assert.Contains(t, log.String(), fmt.Sprintf("epoch %d/2 ", line.Epoch))
	}
	assert.Equal(t, []int{1, 2}, epochs)
	assert.Contains(t, epochs, sum.BestEpoch)
}

// TestStateReadsTheFormatBeforeEpochsFromOne: a checkpoint written before
// best_epoch was numbered from 1 still resumes at the same place.
func TestStateReadsTheFormatBeforeEpochsFromOne(t *testing.T) {
	var old State
	require.NoError(t, json.Unmarshal([]byte(`{"step": 76, "epoch": 2, "batch": 0, "best_epoch": 0, "epochs_since_best": 1}`), &old))
	assert.Equal(t, State{Format: stateFormat, Step: 76, EpochsDone: 2, BestEpoch: 1, SinceBest: 1}, old)
	var none State
	require.NoError(t, json.Unmarshal([]byte(`{"epoch": 0, "best_epoch": -1}`), &none))
	assert.Equal(t, 0, none.BestEpoch)
	var future State
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"format": 9}`), &future), "state format 9")
}
