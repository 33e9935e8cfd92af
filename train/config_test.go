package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigLayering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "run.yaml")
	os.WriteFile(file, []byte("train:\n  lr: 0.01\n  epochs: 7\nmodel:\n  backbone: mmoe\n"), 0o644)
	cfg, err := LoadConfig(file, []string{"train.lr=0.05", "model.mmoe.experts=6", "model.star.hidden=[32, 16]", "data.synthetic.scenarios=4"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.LR != 0.05 || cfg.Train.Epochs != 7 || cfg.Model.Backbone != "mmoe" || cfg.Model.MMoE.Experts != 6 {
		t.Errorf("defaults < file < overrides not respected: lr %g epochs %d backbone %s experts %d", cfg.Train.LR, cfg.Train.Epochs, cfg.Model.Backbone, cfg.Model.MMoE.Experts)
	}
	if got := cfg.Model.STAR.Hidden; len(got) != 2 || got[0] != 32 || got[1] != 16 {
		t.Errorf("model.star.hidden = %v", got)
	}
	if cfg.Train.BatchSize != DefaultConfig().Train.BatchSize {
		t.Errorf("an untouched key lost its default: batch_size %d", cfg.Train.BatchSize)
	}
	// The per-scenario synthetic lists follow the number of scenarios.
	if err := cfg.Validate(); err != nil {
		t.Errorf("4 synthetic scenarios: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		sets []string
		want string
	}{
		{[]string{"train.lrr=1"}, `unknown config key "train.lrr" (train has: `},
		{[]string{"nope=1"}, `unknown config key "nope" (the top level has: `},
		{[]string{"train.lr.x=1"}, `config key "train.lr.x": train.lr is a value, not a section`},
		{[]string{"train.epochs=[1]"}, "config key train.epochs = [1]: cannot unmarshal"},
		{[]string{"train.lr"}, `override "train.lr": want key=value`},
		{[]string{"train.lr=0"}, "train.lr = 0: must be positive"},
		{[]string{"train.optimizer=lion"}, `train.optimizer = "lion"`},
		{[]string{"train.early_stopping.metric=overall.f1"}, "train.early_stopping.metric"},
		{[]string{"train.schedule.decay=step"}, "train.schedule.step_size = 0"},
		{[]string{"knowledge.encoder=bert"}, `knowledge.encoder = "bert"`},
		{[]string{"model.meta.levels=all"}, `model.meta.levels = "all"`},
		{[]string{"data.format=parquet"}, `format "parquet"`},
	}
	for _, tc := range tests {
		cfg, err := LoadConfig("", tc.sets)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.sets, err, tc.want)
		}
	}
}

func TestScheduleShapesTheLearningRate(t *testing.T) {
	tests := []struct {
		s     Schedule
		step  int
		total int
		want  float64
	}{
		{Schedule{Decay: "none"}, 50, 100, 1},
		{Schedule{Decay: "none", Warmup: 10}, 0, 100, 0.1},
		{Schedule{Decay: "none", Warmup: 10}, 9, 100, 1},
		{Schedule{Decay: "linear"}, 50, 100, 0.5},
		{Schedule{Decay: "linear", MinRatio: 0.2}, 100, 100, 0.2},
		{Schedule{Decay: "cosine"}, 50, 100, 0.5},
		{Schedule{Decay: "cosine", Warmup: 20}, 20, 100, 1},
		{Schedule{Decay: "step", StepSize: 10, Gamma: 0.5}, 25, 100, 0.25},
	}
	for _, tc := range tests {
		if got := tc.s.lrAt(1, tc.step, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%+v at step %d/%d: lr %g, want %g", tc.s, tc.step, tc.total, got, tc.want)
		}
	}
}
