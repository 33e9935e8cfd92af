package data

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeFile writes content to name in a fresh temporary directory.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// column returns the raw strings of categorical field f.
func column(r *Raw, f int) []string {
	c := r.Cat[f]
	out := make([]string, r.Len())
	for i, code := range c.Codes {
		out[i] = c.Dict.Strings[code]
	}
	return out
}

func scenarios(r *Raw) []string {
	out := make([]string, r.Len())
	for i, code := range r.Scenario.Codes {
		out[i] = r.Scenario.Dict.Strings[code]
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
