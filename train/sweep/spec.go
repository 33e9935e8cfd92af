// Package sweep runs hyperparameter sweeps: it expands a grid, a random
// search or a list of points over dotted config keys into trials (N seeds
// per point), runs them with K workers, each in its own directory, resumes
// by skipping finished trials, and summarizes the results as mean ± std per
// point and, against a baseline point, as paired differences over seeds.
//
// The package knows nothing about the config itself: a trial is a map of
// dotted keys to values ("train.lr" → 0.01) that the caller applies to its
// base config, and a result is a flat map of metric names to values.
package sweep

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Search methods.
const (
	MethodGrid   = "grid"
	MethodRandom = "random"
	MethodPoints = "points" // an explicit list of points, e.g. one factor at a time
)

// Distributions of a random-search dimension.
const (
	DistChoice     = "choice"
	DistUniform    = "uniform"
	DistLogUniform = "loguniform"
	DistInt        = "int"
)

// Spec is a parsed sweep spec. Grid axes and random dimensions keep the order
// in which the file lists them: grid points enumerate the last key fastest,
// like nested loops, and random points sample the keys in that order.
type Spec struct {
	File       string  // the spec file, named in errors
	Base       string  // base config, resolved against the spec's directory; "" if none
	Method     string  // MethodGrid or MethodRandom
	Trials     int     // number of random points (random only)
	SampleSeed uint64  // seeds the random search; same seed, same points
	Seeds      []int64 // every point runs once per seed
	Workers    int     // trials run at once
	Metric     string  // dotted metric name the results are sorted by
	Maximize   bool    // whether a larger Metric is better (default: the metric's own direction, see metrics.Metrics)
	Grid       []Axis  // grid only
	Space      []Dim   // random only
	Points     []Point // points only
	// Baseline, when set, selects the one point every other point is
	// compared with, seed by seed (Delta).
	Baseline *Point
}

// Point is a set of overrides listed in the spec (under points, or as the
// baseline), keys in the order the spec gives them.
type Point struct {
	Keys      []string
	Overrides map[string]any
	Line      int
}

// matches reports whether overrides ov set every key of p to p's value.
func (p Point) matches(ov map[string]any) bool {
	for _, k := range p.Keys {
		v, ok := ov[k]
		if !ok || formatValue(v) != formatValue(p.Overrides[k]) {
			return false
		}
	}
	return true
}

// Axis is one grid key and the values it takes.
type Axis struct {
	Key    string
	Values []any
	Line   int // of the key in the spec file
}

// Dim is one random-search key and its distribution: Choices for
// DistChoice, [Lo, Hi] (inclusive for DistInt) otherwise.
type Dim struct {
	Key     string
	Dist    string
	Lo, Hi  float64
	Choices []any
	Line    int
}

// LoadSpec reads and parses a spec file and checks that its base config
// exists.
func LoadSpec(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("sweep spec: %w", err)
	}
	s, err := ParseSpec(data, path)
	if err != nil {
		return Spec{}, err
	}
	if s.Base != "" {
		if _, err := os.Stat(s.Base); err != nil {
			return Spec{}, fmt.Errorf("%s: base: %w", path, err)
		}
	}
	return s, nil
}

// ParseSpec parses a spec strictly: an unknown field, a malformed value or a
// key listed twice is an error naming the file and line. file names the spec
// in errors and anchors a relative base path.
func ParseSpec(data []byte, file string) (Spec, error) {
	s, err := decodeSpec(data, file)
	if err != nil {
		return Spec{}, err
	}
	if s.Base != "" && !filepath.IsAbs(s.Base) {
		s.Base = filepath.Join(filepath.Dir(file), s.Base)
	}
	return s, nil
}

// Keys returns the overridden config keys in spec order.
func (s Spec) Keys() []string {
	var keys []string
	for _, a := range s.Grid {
		keys = append(keys, a.Key)
	}
	for _, d := range s.Space {
		keys = append(keys, d.Key)
	}
	for _, p := range s.Points {
		for _, k := range p.Keys {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// line returns the spec line of key, or 0.
func (s Spec) line(key string) int {
	for _, a := range s.Grid {
		if a.Key == key {
			return a.Line
		}
	}
	for _, d := range s.Space {
		if d.Key == key {
			return d.Line
		}
	}
	for _, p := range s.Points {
		if _, ok := p.Overrides[key]; ok {
			return p.Line
		}
	}
	return 0
}
