package insight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	kb "github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/report"
	"github.com/msrtrain/msrtrain/train/report/reporttest"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// tinyConfig is a run that trains in about a second: small synthetic data, small layers.
func tinyConfig(t *testing.T, overrides ...string) train.Config {
	t.Helper()
	base := []string{
		"data.synthetic.rows=6000", "data.synthetic.users=400", "data.synthetic.items_per_scenario=80",
		"train.epochs=2", "train.batch_size=128", "train.eval_batch_size=1000", "train.log_every=1000",
		"model.star.hidden=[32,16]", "model.star.aux_hidden=[8]", "model.meta.layers=[8]",
		"model.meta.generator.hidden=[16]", "knowledge.hash.dim=16", "threads=1", "device=cpu",
	}
	cfg, err := train.LoadConfig("", append(base, overrides...))
	require.NoError(t, err)
	cfg.Out = t.TempDir()
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

func writeReport(t *testing.T, dir string) string {
	t.Helper()
	path, err := onTorchThread(func() (string, error) { return WriteReport(dir, ReportOptions{Device: "cpu", Threads: 1}) })
	require.NoError(t, err)
	return path
}

// A tiny run with its baseline writes steps.jsonl and a report page whose
// every chart decodes and is not blank, with the explanations of the users
// whose knowledge moves the model most.
func TestTrainWritesReport(t *testing.T) {
	cfg := tinyConfig(t, "train.baseline=true", "train.log_every=10")
	res, err := onTorchThread(func() (*train.Result, error) { return train.Train(context.Background(), cfg, train.RunOptions{}) })
	require.NoError(t, err)
	written := writeReport(t, cfg.Out)
	require.Equal(t, filepath.Join(cfg.Out, rundir.ReportFile), written)

	// 38 steps an epoch logged every 10 steps, each epoch's last interval
	// closed at its end: 10, 20, 30, 38 | 40, 50, 60, 70, 76.
	run := rundir.Dir(cfg.Out)
	steps, err := run.ReadSteps()
	require.NoError(t, err)
	var at []int
	for _, s := range steps {
		at = append(at, s.Step)
	}
	require.Equal(t, []int{10, 20, 30, 38, 40, 50, 60, 70, 76}, at)
	assert.Equal(t, 1, steps[3].Epoch)
	assert.Equal(t, 2, steps[4].Epoch)
	for _, s := range steps {
		assert.Equal(t, cfg.Train.LR, s.LR, "step %d: no schedule, so the configured rate", s.Step)
	}
	// The intervals' mean losses, weighted by their steps, are the epoch's
	// mean loss that metrics.jsonl records from its own running sum.
	epochs, err := run.ReadEpochs()
	require.NoError(t, err)
	require.Len(t, epochs, 2)
	intervals := (10*(steps[0].Loss+steps[1].Loss+steps[2].Loss) + 8*steps[3].Loss) / 38
	assert.InDelta(t, epochs[0].TrainLoss, intervals, 1e-9, "epoch 1: metrics.jsonl's train loss against steps.jsonl's intervals")
	intervals = (2*steps[4].Loss + 10*(steps[5].Loss+steps[6].Loss+steps[7].Loss) + 6*steps[8].Loss) / 38
	assert.InDelta(t, epochs[1].TrainLoss, intervals, 1e-9, "epoch 2")

	// DeLong's paired test of the two models on the same test rows, in
	// summary.json: overall first, then every scenario.
	require.Len(t, res.AUCDelta, 4)
	overall := res.AUCDelta[0]
	require.NotNil(t, overall.Delta)
	assert.Equal(t, "overall", overall.Scenario)
	assert.InDelta(t, *res.Test.Overall.AUC-*res.Baseline.Test.Overall.AUC, *overall.Delta, 1e-12)
	assert.Greater(t, overall.StdErr, 0.0)
	assert.Less(t, overall.Low, *overall.Delta)
	assert.Greater(t, overall.High, *overall.Delta)
	assert.Equal(t, res.Test.Overall.Count, overall.Count)
	summary, err := run.ReadSummary()
	require.NoError(t, err)
	assert.Equal(t, res.AUCDelta, summary.AUCDelta)
	require.NotNil(t, summary.Test.Overall.AUCStdErr)

	page, err := reporttest.CheckPage(written)
	require.NoError(t, err)
	// loss (the learning rate is constant: a sentence), valid AUC and
	// logloss, test AUC and gAUC, calibration, heatmap, PCA
	assert.Equal(t, 8, page.Images)
	for _, want := range []string{"bare star", "LLM4MSR", "scenario:video", "the hash encoder is not an LLM", "libtorch: compiled against", "backbone: star",
		"ΔAUC [paired 95% interval]", fmt.Sprintf("[%+.4f, %+.4f]", overall.Low, overall.High), "The learning rate was 0.001 throughout."} {
		assert.Contains(t, page.Text, want)
	}
	assert.NotContains(t, page.Text, "No explanations")

	// The same page again from the directory alone, as `msrtrain report` makes it.
	first, err := os.ReadFile(written)
	require.NoError(t, err)
	require.NoError(t, os.Remove(written))
	again, err := os.ReadFile(writeReport(t, cfg.Out))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(first, again), "the regenerated page differs from the first (%d and %d bytes)", len(first), len(again))
	explainTrainedRun(t, cfg)
}

// explainTrainedRun checks `knowledge explain` on a trained run: errors for
// an unknown user and a store without reasoning, then, once the store has
// reasoning, the prompt, the reasoning and the effects.
func explainTrainedRun(t *testing.T, cfg train.Config) {
	type explained struct {
		x   report.Explanation
		err error
	}
	// levels, when given, is what the explainer is told the model's meta
	// levels are.
	explain := func(user, scenario string, levels ...model.MetaLevels) explained {
		out, _ := onTorchThread(func() (explained, error) {
			l, err := train.LoadModel(cfg.Out, "cpu", 1)
			if err != nil {
				return explained{err: err}, nil
			}
			defer l.Close()
			c := l.Checkpoint.Config
			for _, lv := range levels {
				c.Model.Meta.Levels = lv
			}
			e, err := NewExplainer(c, l)
			if err != nil {
				return explained{err: err}, nil
			}
			defer e.Close()
			if user != "" {
				x, err := e.ExplainUser(user, true)
				return explained{x, err}, nil
			}
			x, err := e.ExplainScenario(scenario, true)
			return explained{x, err}, nil
		})
		return out
	}
	assert.ErrorContains(t, explain("nobody", "").err, `user "nobody" is not in the training data`)
	assert.ErrorContains(t, explain("", "radio").err, `scenario "radio" is not in the data; its scenarios are video, search, shop`)
	noReasoning := explain("u1", "")
	assert.ErrorIs(t, noReasoning.err, ErrNoReasoning)
	assert.ErrorContains(t, noReasoning.err, "the hash encoder is not an LLM")

	// Give user u1 and scenario search reasoning text, as an LLM's store has.
	path := filepath.Join(cfg.Out, "knowledge", kb.ReasoningFile)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && (l["key"] == "user:u1" || l["key"] == "scenario:search") {
			l["reasoning"] = "Reasoning about " + l["key"].(string) + ": likes cooking."
			b, _ := json.Marshal(l)
			line = string(b) + "\n"
		}
		out.WriteString(line)
	}
	require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))

	u := explain("u1", "")
	require.NoError(t, u.err)
	assert.Equal(t, "user:u1", u.x.Key)
	assert.Equal(t, "Reasoning about user:u1: likes cooking.", u.x.Reasoning)
	assert.Contains(t, u.x.Prompt, "Below are the recent interactions of one user")
	assert.Equal(t, "the learned fallback vector", u.x.EffectsAgainst)
	require.NotEmpty(t, u.x.Effects)
	assert.Greater(t, u.x.Size(), 0.0, "the user-level meta layers move u1's logits")
	assert.Len(t, u.x.NearestUsers, 5)
	assert.Len(t, u.x.NearestScenarios, 3)
	var text bytes.Buffer
	require.NoError(t, u.x.WriteText(&text))
	for _, want := range []string{"prompt:", "reasoning (the LLM's answer):\n  Reasoning about user:u1", "nearest users", "effect on the model's logits, against the learned fallback vector", "mean |shift|"} {
		assert.Contains(t, text.String(), want)
	}

	s := explain("", "search")
	require.NoError(t, s.err)
	require.Len(t, s.x.Effects, 1)
	assert.Equal(t, "search", s.x.Effects[0].Scenario)
	assert.Greater(t, s.x.Effects[0].Rows, 600, "every search row of the three splits")
	assert.Greater(t, s.x.Effects[0].MeanAbsShift, 0.0)

	// A level the model does not have has no effects, and the explanation says why.
	for _, c := range []struct {
		user, scenario string
		levels         model.MetaLevels
		want           string
	}{
		{"u1", "", model.LevelsScenario, "the model has no user-level meta networks (model.meta.levels = scenario)"},
		{"", "search", model.LevelsUser, "the model has no scenario-level meta networks (model.meta.levels = user)"},
	} {
		x := explain(c.user, c.scenario, c.levels)
		require.NoError(t, x.err)
		assert.Empty(t, x.x.Effects)
		assert.Equal(t, c.want, x.x.EffectsMissing)
	}
}

// An interrupted run (no summary.json) still gets a page, saying what it lacks.
func TestReportOfInterruptedRun(t *testing.T) {
	cfg := tinyConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	stopAt50 := func([]*torch.Tensor) error {
		if steps++; steps == 50 { // in the second epoch, after the first one's checkpoint
			cancel()
		}
		return nil
	}
	res, err := onTorchThread(func() (*train.Result, error) {
		return train.Train(ctx, cfg, train.RunOptions{GradientHook: stopAt50})
	})
	require.NoError(t, err)
	require.True(t, res.Interrupted)
	require.Equal(t, 50, res.Steps)
	page, err := reporttest.CheckPage(writeReport(t, cfg.Out))
	require.NoError(t, err)
	assert.Contains(t, page.Text, "not finished")
	assert.Contains(t, page.Text, "No test metrics yet")
	// loss, valid AUC and logloss of epoch 1, heatmap, PCA
	assert.Equal(t, 5, page.Images)
}

// A report costs the same for ten times the rows: it scores a sample of
// rows of the same size and renders the prompts of the keys it explains
// only; given the data training loaded, it reads none again.
func TestReportCostDoesNotGrowWithRows(t *testing.T) {
	work := func(rows int) (explainWork, explainWork) {
		cfg := tinyConfig(t, fmt.Sprintf("data.synthetic.rows=%d", rows), "train.epochs=1", "train.batch_size=512")
		opts := train.RunOptions{Data: &train.LoadedData{}}
		_, err := onTorchThread(func() (*train.Result, error) { return train.Train(context.Background(), cfg, opts) })
		require.NoError(t, err)
		report := func(o ReportOptions) explainWork {
			o.Device, o.Threads, o.explainRows = "cpu", 1, 2000
			w, err := onTorchThread(func() (explainWork, error) {
				_, w, err := writeReportWork(cfg.Out, o)
				return w, err
			})
			require.NoError(t, err)
			return w
		}
		return report(ReportOptions{}), report(ReportOptions{Splits: opts.Data.Splits})
	}
	small, smallAfterTraining := work(3000)
	large, largeAfterTraining := work(30000)
	assert.Equal(t, explainWork{loads: 1, rowsScored: 3 * 2000, usersPrompts: 5}, small)
	assert.Equal(t, small, large)
	assert.Equal(t, explainWork{rowsScored: 3 * 2000, usersPrompts: 5}, largeAfterTraining)
	assert.Equal(t, smallAfterTraining, largeAfterTraining)
}
