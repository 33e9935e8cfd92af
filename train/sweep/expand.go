package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
)

// Trial is one run: a point of the search space and a seed.
type Trial struct {
	// ID names the trial and its directory: "p003-s2-1a2b3c" is point 3,
	// seed 2, and a hash of the overrides, so a changed spec never mistakes
	// an old trial's results for a new one's.
	ID        string         `json:"id"`
	PointID   string         `json:"point_id"` // ID without the seed: "p003-1a2b3c"
	Point     int            `json:"point"`
	Seed      int64          `json:"seed"`
	Overrides map[string]any `json:"overrides"` // dotted config key → value; shared by a point's seeds: read only
}

// maxTrials bounds an expansion, so a typo in a grid cannot ask for
// billions of trials.
const maxTrials = 100_000

// Expand returns the spec's trials, point by point and, within a point, seed
// by seed. The result depends only on the spec: grid points enumerate the
// last key fastest; random points are drawn from a PCG generator seeded by
// SampleSeed.
func Expand(spec Spec) ([]Trial, error) {
	if len(spec.Seeds) == 0 {
		return nil, fmt.Errorf("%s: no seeds", spec.File)
	}
	limit := maxTrials / len(spec.Seeds) // points
	points, err := points(spec, limit)
	if err != nil {
		return nil, err
	}
	if spec.Baseline != nil {
		if _, err := baselinePoint(spec, points); err != nil {
			return nil, err
		}
	}
	width := max(3, len(fmt.Sprint(len(points)-1)))
	var trials []Trial
	for p, ov := range points {
		h, err := hashOverrides(ov)
		if err != nil {
			return nil, fmt.Errorf("%s: point %d: %w", spec.File, p, err)
		}
		pid := fmt.Sprintf("p%0*d", width, p)
		for _, seed := range spec.Seeds {
			trials = append(trials, Trial{
				ID:        fmt.Sprintf("%s-s%d-%s", pid, seed, h),
				PointID:   pid + "-" + h,
				Point:     p,
				Seed:      seed,
				Overrides: ov,
			})
		}
	}
	return trials, nil
}

// points returns the overrides of each point, refusing more than limit.
func points(spec Spec, limit int) ([]map[string]any, error) {
	tooMany := func(n string) error {
		return fmt.Errorf("%s: %s points × %d seeds is more than %d trials", spec.File, n, len(spec.Seeds), maxTrials)
	}
	switch spec.Method {
	case MethodGrid:
		n := 1
		for _, a := range spec.Grid {
			if len(a.Values) == 0 {
				return nil, fmt.Errorf("%s:%d: grid key %q has no values", spec.File, a.Line, a.Key)
			}
			if n *= len(a.Values); n > limit {
				return nil, tooMany("over " + fmt.Sprint(limit))
			}
		}
		return gridPoints(spec.Grid, n), nil
	case MethodRandom:
		if spec.Trials > limit {
			return nil, tooMany(fmt.Sprint(spec.Trials))
		}
		return randomPoints(spec)
	case MethodPoints:
		if len(spec.Points) > limit {
			return nil, tooMany(fmt.Sprint(len(spec.Points)))
		}
		out := make([]map[string]any, len(spec.Points))
		for i, p := range spec.Points {
			out[i] = p.Overrides
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: method %q: want %s, %s or %s", spec.File, spec.Method, MethodGrid, MethodRandom, MethodPoints)
}

// baselinePoint is the index of the one point the spec's baseline selects.
func baselinePoint(spec Spec, points []map[string]any) (int, error) {
	b := spec.Baseline
	found := -1
	for i, ov := range points {
		if !b.matches(ov) {
			continue
		}
		if found >= 0 {
			return 0, fmt.Errorf("%s:%d: baseline matches points %d and %d; give the keys that single one out", spec.File, b.Line, found, i)
		}
		found = i
	}
	if found < 0 {
		return 0, fmt.Errorf("%s:%d: baseline matches no point of the sweep", spec.File, b.Line)
	}
	return found, nil
}

// gridPoints enumerates the n points of the grid, the last key fastest.
func gridPoints(grid []Axis, n int) []map[string]any {
	out := make([]map[string]any, n)
	for p := range out {
		ov := make(map[string]any, len(grid))
		rest := p
		for i := len(grid) - 1; i >= 0; i-- {
			a := grid[i]
			ov[a.Key] = a.Values[rest%len(a.Values)]
			rest /= len(a.Values)
		}
		out[p] = ov
	}
	return out
}

func randomPoints(spec Spec) ([]map[string]any, error) {
	rng := rand.New(rand.NewPCG(spec.SampleSeed, 0x5eed))
	out := make([]map[string]any, spec.Trials)
	for p := range out {
		ov := make(map[string]any, len(spec.Space))
		for _, d := range spec.Space {
			v, err := d.sample(rng)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: space key %q: %w", spec.File, d.Line, d.Key, err)
			}
			ov[d.Key] = v
		}
		out[p] = ov
	}
	return out, nil
}

func (d Dim) sample(rng *rand.Rand) (any, error) {
	switch d.Dist {
	case DistChoice:
		if len(d.Choices) == 0 {
			return nil, fmt.Errorf("choice: no values")
		}
		return d.Choices[rng.IntN(len(d.Choices))], nil
	case DistUniform:
		return d.Lo + (d.Hi-d.Lo)*rng.Float64(), nil
	case DistLogUniform:
		if d.Lo <= 0 || d.Hi < d.Lo {
			return nil, fmt.Errorf("loguniform: bad bounds [%v, %v]", d.Lo, d.Hi)
		}
		lo, hi := math.Log(d.Lo), math.Log(d.Hi)
		return math.Exp(lo + (hi-lo)*rng.Float64()), nil
	case DistInt:
		if d.Hi < d.Lo {
			return nil, fmt.Errorf("int: bad bounds [%v, %v]", d.Lo, d.Hi)
		}
		return int(d.Lo) + rng.IntN(int(d.Hi-d.Lo)+1), nil
	}
	return nil, fmt.Errorf("unknown distribution %q", d.Dist)
}

// hashOverrides returns 6 hex digits of the SHA-256 of the overrides'
// canonical JSON (encoding/json sorts map keys).
func hashOverrides(ov map[string]any) (string, error) {
	b, err := json.Marshal(ov)
	if err != nil {
		return "", fmt.Errorf("overrides cannot be stored as JSON: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:3]), nil
}
