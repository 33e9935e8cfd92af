package sweep

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const gridSpec = `# a 2x2 grid
base: run.yaml
method: grid
seeds: 2
workers: 2
metric: test.overall.auc
grid:
  model.backbone: [star, mmoe]
  train.lr: [0.001, 0.01]
  model.hidden: [[64, 32]]
`

func TestParseSpecGrid(t *testing.T) {
	s, err := ParseSpec([]byte(gridSpec), "sweeps/a.yaml")
	require.NoError(t, err)
	want := Spec{
		File: "sweeps/a.yaml", Base: filepath.Join("sweeps", "run.yaml"), Method: MethodGrid, SampleSeed: 1,
		Seeds: []int64{1, 2}, Workers: 2, Metric: "test.overall.auc", Maximize: true,
		Grid: []Axis{
			{Key: "model.backbone", Values: []any{"star", "mmoe"}, Line: 8},
			{Key: "train.lr", Values: []any{0.001, 0.01}, Line: 9},
			{Key: "model.hidden", Values: []any{[]any{64, 32}}, Line: 10},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseSpecRandom(t *testing.T) {
	s, err := ParseSpec([]byte(`
trials: 5
sample_seed: 42
seeds: [3, 7]
metric: test.overall.logloss
maximize: false
space:
  train.lr: {loguniform: [1e-4, 1e-2]}
  model.hidden: {choice: [[64, 32], [128, 64]]}
  train.dropout: {uniform: [0, 0.3]}
  model.experts: {int: [2, 8]}
`), "r.yaml")
	require.NoError(t, err)
	want := Spec{
		File: "r.yaml", Method: MethodRandom, Trials: 5, SampleSeed: 42, Seeds: []int64{3, 7}, Workers: 1,
		Metric: "test.overall.logloss", Maximize: false,
		Space: []Dim{
			{Key: "train.lr", Dist: DistLogUniform, Lo: 1e-4, Hi: 1e-2, Line: 8},
			{Key: "model.hidden", Dist: DistChoice, Choices: []any{[]any{64, 32}, []any{128, 64}}, Line: 9},
			{Key: "train.dropout", Dist: DistUniform, Lo: 0, Hi: 0.3, Line: 10},
			{Key: "model.experts", Dist: DistInt, Lo: 2, Hi: 8, Line: 11},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name, spec, want string
	}{
		{"unknown field", "metric: m\nworkrs: 2\ngrid: {a: [1]}\n", `s.yaml:2: unknown field "workrs"`},
		{"unknown distribution", "metric: m\ntrials: 2\nspace:\n  a.b: {normal: [0, 1]}\n", `s.yaml:4: unknown distribution "normal"`},
		{"bad key", "metric: m\ngrid:\n  'train lr': [1]\n", `s.yaml:3: "train lr" is not a dotted config key`},
		{"duplicate key", "metric: m\ngrid:\n  a: [1]\n  a: [2]\n", `s.yaml:4: "a" is listed twice (first on line 3)`},
		{"wrong type", "metric: m\nworkers: many\ngrid: {a: [1]}\n", `s.yaml:2: cannot unmarshal`},
		{"zero workers", "metric: m\nworkers: 0\ngrid: {a: [1]}\n", `s.yaml:2: workers must be >= 1`},
		{"no metric", "grid: {a: [1]}\n", "metric is required"},
		{"bad method", "metric: m\nmethod: bayes\ngrid: {a: [1]}\n", `s.yaml:2: method "bayes"`},
		{"grid with random", "metric: m\nmethod: random\ntrials: 2\ngrid: {a: [1]}\n", "s.yaml:4: grid is for method grid"},
		{"random without trials", "metric: m\nspace: {a: {int: [1, 2]}}\n", "method random needs trials >= 1"},
		{"trials on a grid", "metric: m\ntrials: 3\ngrid: {a: [1]}\n", "s.yaml:2: trials is for method random"},
		{"empty grid values", "metric: m\ngrid:\n  a: []\n", `s.yaml:3: grid key "a": empty list`},
		{"nothing to sweep", "metric: m\n", "nothing to sweep"},
		{"reversed bounds", "metric: m\ntrials: 1\nspace:\n  a: {uniform: [1, 0]}\n", "s.yaml:4: uniform: lo 1 is above hi 0"},
		{"loguniform at 0", "metric: m\ntrials: 1\nspace:\n  a: {loguniform: [0, 1]}\n", "loguniform: lo must be > 0"},
		{"int bounds", "metric: m\ntrials: 1\nspace:\n  a: {int: [1.5, 3]}\n", "int: bounds must be integers"},
		{"seeds zero", "metric: m\nseeds: 0\ngrid: {a: [1]}\n", "s.yaml:2: seeds: want a count >= 1"},
		{"seeds repeated", "metric: m\nseeds: [1, 1]\ngrid: {a: [1]}\n", "seeds: 1 is listed twice"},
		{"not a mapping", "- a\n- b\n", "s.yaml:1: a sweep spec is a mapping"},
		{"empty", "", "s.yaml: empty sweep spec"},
		{"bad yaml", "metric: [\n", "s.yaml: yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.spec), "s.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadSpec(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sweep.yaml")
	require.NoError(t, os.WriteFile(path, []byte(gridSpec), 0o644))
	if _, err := LoadSpec(path); err == nil || !strings.Contains(err.Error(), path+": base:") {
		t.Fatalf("missing base: err = %v", err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run.yaml"), []byte("{}\n"), 0o644))
	s, err := LoadSpec(path)
	require.NoError(t, err)
	if s.Base != filepath.Join(dir, "run.yaml") {
		t.Errorf("Base = %q", s.Base)
	}
	if _, err := LoadSpec(filepath.Join(dir, "nope.yaml")); err == nil {
		t.Error("missing spec file: no error")
	}
}

// TestMaximizeFollowsTheMetric: without maximize, a sweep sorts by the
// metric's own direction (logloss: lower is better).
func TestMaximizeFollowsTheMetric(t *testing.T) {
	for metric, want := range map[string]bool{
		"test.overall.auc": true, "valid.scenario.search.logloss": false, "train.samples_per_sec": true,
	} {
		s, err := ParseSpec([]byte("metric: "+metric+"\ngrid: {train.lr: [0.1]}\n"), "s.yaml")
		require.NoError(t, err)
		if s.Maximize != want {
			t.Errorf("%s: maximize %v, want %v", metric, s.Maximize, want)
		}
	}
	s, err := ParseSpec([]byte("metric: test.overall.logloss\nmaximize: true\ngrid: {train.lr: [0.1]}\n"), "s.yaml")
	if err != nil || !s.Maximize {
		t.Errorf("an explicit maximize: %v, %v", s.Maximize, err)
	}
}
