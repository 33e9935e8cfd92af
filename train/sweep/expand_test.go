package sweep

import (
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func mustParse(t *testing.T, spec string) Spec {
	t.Helper()
	s, err := ParseSpec([]byte(spec), "s.yaml")
	require.NoError(t, err)
	return s
}

func TestExpandGrid(t *testing.T) {
	tests := []struct {
		name       string
		spec       string
		wantTrials int
		wantPoints []string // overrides of each point, in order, as %v
	}{
		{
			name:       "2x2, 2 seeds",
			spec:       "metric: m\nseeds: 2\ngrid:\n  a: [1, 2]\n  b: [x, y]\n",
			wantTrials: 8,
			wantPoints: []string{"map[a:1 b:x]", "map[a:1 b:y]", "map[a:2 b:x]", "map[a:2 b:y]"},
		},
		{
			name:       "3x1x2, 1 seed, scalar fixes a key",
			spec:       "metric: m\ngrid:\n  a: [1, 2, 3]\n  c: fixed\n  b: [[64, 32], [8]]\n",
			wantTrials: 6,
			wantPoints: []string{
				"map[a:1 b:[64 32] c:fixed]", "map[a:1 b:[8] c:fixed]",
				"map[a:2 b:[64 32] c:fixed]", "map[a:2 b:[8] c:fixed]",
				"map[a:3 b:[64 32] c:fixed]", "map[a:3 b:[8] c:fixed]",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := mustParse(t, tt.spec)
			trials, err := Expand(spec)
			require.NoError(t, err)
			if len(trials) != tt.wantTrials {
				t.Fatalf("%d trials, want %d", len(trials), tt.wantTrials)
			}
			var points []string
			for i, tr := range trials {
				if i%len(spec.Seeds) == 0 {
					points = append(points, fmt.Sprint(tr.Overrides))
				}
				if want := spec.Seeds[i%len(spec.Seeds)]; tr.Seed != want || tr.Point != i/len(spec.Seeds) {
					t.Errorf("trial %d: point %d seed %d, want point %d seed %d", i, tr.Point, tr.Seed, i/len(spec.Seeds), want)
				}
			}
			if !reflect.DeepEqual(points, tt.wantPoints) {
				t.Errorf("points %v\nwant %v", points, tt.wantPoints)
			}
			again, _ := Expand(spec)
			if !reflect.DeepEqual(trials, again) {
				t.Error("expansion is not deterministic")
			}
		})
	}
}

func TestTrialIDs(t *testing.T) {
	trials, err := Expand(mustParse(t, "metric: m\nseeds: [1, 2]\ngrid:\n  a: [1, 2]\n  b: [x, y]\n"))
	require.NoError(t, err)
	idPattern := regexp.MustCompile(`^p\d{3}-s\d+-[0-9a-f]{6}$`)
	seen := map[string]bool{}
	for _, tr := range trials {
		if !idPattern.MatchString(tr.ID) {
			t.Errorf("ID %q does not match %v", tr.ID, idPattern)
		}
		if want := fmt.Sprintf("p%03d-s%d-%s", tr.Point, tr.Seed, tr.PointID[5:]); tr.ID != want {
			t.Errorf("ID %q, want %q", tr.ID, want)
		}
		if seen[tr.ID] {
			t.Errorf("duplicate ID %q", tr.ID)
		}
		seen[tr.ID] = true
	}
	// The hash follows the overrides: the same point in another grid keeps it.
	other, err := Expand(mustParse(t, "metric: m\nseeds: [1, 2]\ngrid:\n  a: [1, 5]\n  b: [x, y]\n"))
	require.NoError(t, err)
	if trials[0].ID != other[0].ID || trials[6].ID == other[6].ID {
		t.Errorf("IDs: %s vs %s (same overrides), %s vs %s (different)", trials[0].ID, other[0].ID, trials[6].ID, other[6].ID)
	}
}

const randomSpec = `metric: m
trials: 50
sample_seed: %d
space:
  lr: {loguniform: [1e-4, 1e-2]}
  hidden: {choice: [[64, 32], [128, 64]]}
  dropout: {uniform: [0, 0.3]}
  experts: {int: [2, 8]}
`

func TestExpandRandom(t *testing.T) {
	spec := mustParse(t, fmt.Sprintf(randomSpec, 7))
	a, err := Expand(spec)
	require.NoError(t, err)
	b, _ := Expand(spec)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same sample_seed, different trials")
	}
	if len(a) != 50 {
		t.Fatalf("%d trials, want 50", len(a))
	}
	experts := map[int]bool{}
	hidden := map[string]bool{}
	for _, tr := range a {
		lr, dropout := tr.Overrides["lr"].(float64), tr.Overrides["dropout"].(float64)
		ex := tr.Overrides["experts"].(int)
		if lr < 1e-4 || lr > 1e-2 || dropout < 0 || dropout > 0.3 || ex < 2 || ex > 8 {
			t.Errorf("%s: out of range: %v", tr.ID, tr.Overrides)
		}
		experts[ex] = true
		hidden[fmt.Sprint(tr.Overrides["hidden"])] = true
	}
	if len(experts) < 5 || len(hidden) != 2 {
		t.Errorf("poor coverage over 50 draws: experts %v, hidden %v", experts, hidden)
	}
	c, _ := Expand(mustParse(t, fmt.Sprintf(randomSpec, 8)))
	if reflect.DeepEqual(a[0].Overrides, c[0].Overrides) {
		t.Error("a different sample_seed gave the same first point")
	}
}

func TestExpandRejectsHugeGrids(t *testing.T) {
	spec := mustParse(t, "metric: m\ngrid:\n  a: [1,2,3,4,5,6,7,8,9,10]\n  b: [1,2,3,4,5,6,7,8,9,10]\n  c: [1,2,3,4,5,6,7,8,9,10]\n  d: [1,2,3,4,5,6,7,8,9,10]\n  e: [1,2,3,4,5,6,7,8,9,10]\n")
	spec.Seeds = []int64{1, 2}
	if _, err := Expand(spec); err == nil {
		t.Error("10^5 points: no error")
	}
}
