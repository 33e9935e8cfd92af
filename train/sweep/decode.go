package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/msrtrain/msrtrain/train/metrics"
	"go.yaml.in/yaml/v3"
)

var specFields = []string{"base", "method", "trials", "sample_seed", "seeds", "workers", "metric", "maximize", "grid", "space", "points", "baseline"}

// keyPattern is a dotted config key: "train.lr", "model.tower_sizes".
var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// decoder turns yaml nodes into spec values, naming file and line on error.
type decoder struct{ file string }

func (d decoder) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", d.file, n.Line, fmt.Sprintf(format, args...))
}

func decodeSpec(data []byte, file string) (Spec, error) {
	d := decoder{file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return Spec{}, fmt.Errorf("%s: empty sweep spec", file)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Spec{}, d.errf(root, "a sweep spec is a mapping of fields (%s)", strings.Join(specFields, ", "))
	}
	s := Spec{File: file, Seeds: []int64{1}, Workers: 1, Maximize: true, SampleSeed: 1}
	var grid, space, points, baseline *yaml.Node
	at := map[string]*yaml.Node{} // field name -> its key node, for error lines
	where := func(field string) *yaml.Node {
		if n, ok := at[field]; ok {
			return n
		}
		return root
	}
	err := d.eachPair(root, func(k, v *yaml.Node) error {
		at[k.Value] = k
		var err error
		switch k.Value {
		case "base":
			err = d.scalar(v, &s.Base)
		case "method":
			err = d.scalar(v, &s.Method)
		case "trials":
			err = d.scalar(v, &s.Trials)
		case "sample_seed":
			err = d.scalar(v, &s.SampleSeed)
		case "seeds":
			s.Seeds, err = d.seeds(v)
		case "workers":
			err = d.scalar(v, &s.Workers)
		case "metric":
			err = d.scalar(v, &s.Metric)
		case "maximize":
			err = d.scalar(v, &s.Maximize)
		case "grid":
			grid = v
		case "space":
			space = v
		case "points":
			points = v
		case "baseline":
			baseline = v
		default:
			return d.errf(k, "unknown field %q (known: %s)", k.Value, strings.Join(specFields, ", "))
		}
		if err != nil {
			return fmt.Errorf("%w (field %s)", err, k.Value)
		}
		return nil
	})
	if err != nil {
		return Spec{}, err
	}
	if _, given := at["maximize"]; !given {
		s.Maximize = metrics.HigherIsBetter(s.Metric)
	}
	if s.Method == "" { // infer it from the section given
		s.Method = MethodGrid
		if space != nil {
			s.Method = MethodRandom
		}
		if points != nil {
			s.Method = MethodPoints
		}
	}
	sections := []struct {
		method, name, lists string
		node                *yaml.Node
	}{
		{MethodGrid, "grid", "grid", grid},
		{MethodRandom, "space", "space (choice: [...] for discrete values)", space},
		{MethodPoints, "points", "points", points},
	}
	for _, sec := range sections {
		if sec.node == nil || s.Method == sec.method {
			continue
		}
		for _, own := range sections {
			if own.method == s.Method {
				return Spec{}, d.errf(where(sec.name), "%s is for method %s; method %s lists its values under %s", sec.name, sec.method, s.Method, own.lists)
			}
		}
	}
	switch {
	case s.Method != MethodGrid && s.Method != MethodRandom && s.Method != MethodPoints:
		return Spec{}, d.errf(where("method"), "method %q: want %s, %s or %s", s.Method, MethodGrid, MethodRandom, MethodPoints)
	case s.Method != MethodRandom && s.Trials != 0:
		return Spec{}, d.errf(where("trials"), "trials is for method random; method %s runs every point", s.Method)
	case s.Method == MethodRandom && s.Trials < 1:
		return Spec{}, d.errf(where("trials"), "method random needs trials >= 1, got %d", s.Trials)
	case s.Workers < 1:
		return Spec{}, d.errf(where("workers"), "workers must be >= 1, got %d", s.Workers)
	case s.Metric == "":
		return Spec{}, d.errf(root, "metric is required (the dotted metric name to sort by, e.g. test.overall.auc)")
	}
	if grid != nil {
		if s.Grid, err = d.grid(grid); err != nil {
			return Spec{}, err
		}
	}
	if space != nil {
		if s.Space, err = d.space(space); err != nil {
			return Spec{}, err
		}
	}
	if points != nil {
		if s.Points, err = d.points(points); err != nil {
			return Spec{}, err
		}
	}
	if baseline != nil {
		b, err := d.point(baseline)
		if err != nil {
			return Spec{}, fmt.Errorf("%w (field baseline)", err)
		}
		s.Baseline = &b
	}
	if len(s.Grid)+len(s.Space)+len(s.Points) == 0 {
		return Spec{}, d.errf(root, "nothing to sweep: add keys under %s", map[string]string{MethodGrid: "grid", MethodRandom: "space", MethodPoints: "points"}[s.Method])
	}
	return s, nil
}

// points decodes a list of points, each a mapping of keys to values ({}
// is the base config itself).
func (d decoder) points(n *yaml.Node) ([]Point, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.errf(n, "points: want a list of mappings of config keys to values")
	}
	var out []Point
	for i, it := range n.Content {
		p, err := d.point(it)
		if err != nil {
			return nil, fmt.Errorf("%w (point %d)", err, i)
		}
		out = append(out, p)
	}
	return out, nil
}

// point decodes one mapping of config keys to values.
func (d decoder) point(n *yaml.Node) (Point, error) {
	p := Point{Overrides: map[string]any{}, Line: n.Line}
	err := d.eachPair(n, func(k, v *yaml.Node) error {
		if err := d.key(k); err != nil {
			return err
		}
		val, err := d.value(v)
		if err != nil {
			return err
		}
		p.Keys = append(p.Keys, k.Value)
		p.Overrides[k.Value] = val
		return nil
	})
	return p, err
}

// eachPair calls fn for every key/value of a mapping, rejecting duplicate
// and non-scalar keys.
func (d decoder) eachPair(m *yaml.Node, fn func(k, v *yaml.Node) error) error {
	if m.Kind != yaml.MappingNode {
		return d.errf(m, "want a mapping")
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return d.errf(k, "keys must be plain strings")
		}
		if first, ok := seen[k.Value]; ok {
			return d.errf(k, "%q is listed twice (first on line %d)", k.Value, first)
		}
		seen[k.Value] = k.Line
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (d decoder) scalar(n *yaml.Node, out any) error {
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, "want a single value")
	}
	if err := n.Decode(out); err != nil {
		return d.errf(n, "%v", unwrapYAML(err))
	}
	return nil
}

// seeds decodes "seeds: 3" (seeds 1, 2, 3) or "seeds: [1, 7]".
func (d decoder) seeds(n *yaml.Node) ([]int64, error) {
	if n.Kind == yaml.ScalarNode {
		var k int
		if err := d.scalar(n, &k); err != nil {
			return nil, err
		}
		if k < 1 {
			return nil, d.errf(n, "seeds: want a count >= 1 or a list, got %d", k)
		}
		out := make([]int64, k)
		for i := range out {
			out[i] = int64(i + 1)
		}
		return out, nil
	}
	var out []int64
	if err := n.Decode(&out); err != nil {
		return nil, d.errf(n, "seeds: want a count or a list of integers: %v", unwrapYAML(err))
	}
	if len(out) == 0 {
		return nil, d.errf(n, "seeds: empty list")
	}
	for i, s := range out {
		if slices.Contains(out[:i], s) {
			return nil, d.errf(n, "seeds: %d is listed twice", s)
		}
	}
	return out, nil
}

func (d decoder) key(k *yaml.Node) error {
	if !keyPattern.MatchString(k.Value) {
		return d.errf(k, "%q is not a dotted config key (like train.lr)", k.Value)
	}
	return nil
}

// value decodes any yaml value a trial may override a key with; it must
// survive a JSON round trip, since trials and results are stored as JSON.
func (d decoder) value(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, d.errf(n, "%v", unwrapYAML(err))
	}
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil, d.errf(n, "value %v is not finite", f)
	}
	if _, err := json.Marshal(v); err != nil {
		return nil, d.errf(n, "value cannot be stored as JSON (maps need string keys): %v", err)
	}
	return v, nil
}

func (d decoder) grid(m *yaml.Node) ([]Axis, error) {
	var axes []Axis
	err := d.eachPair(m, func(k, v *yaml.Node) error {
		if err := d.key(k); err != nil {
			return err
		}
		a := Axis{Key: k.Value, Line: k.Line}
		items := []*yaml.Node{v} // a single value fixes the key
		if v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		if len(items) == 0 {
			return d.errf(v, "grid key %q: empty list of values", k.Value)
		}
		for _, it := range items {
			val, err := d.value(it)
			if err != nil {
				return fmt.Errorf("%w (grid key %s)", err, k.Value)
			}
			a.Values = append(a.Values, val)
		}
		axes = append(axes, a)
		return nil
	})
	return axes, err
}

func (d decoder) space(m *yaml.Node) ([]Dim, error) {
	var dims []Dim
	err := d.eachPair(m, func(k, v *yaml.Node) error {
		if err := d.key(k); err != nil {
			return err
		}
		dim, err := d.dim(k, v)
		if err != nil {
			return fmt.Errorf("%w (space key %s)", err, k.Value)
		}
		dims = append(dims, dim)
		return nil
	})
	return dims, err
}

func (d decoder) dim(k, v *yaml.Node) (Dim, error) {
	const want = "want one of {choice: [...]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]}, {int: [lo, hi]}"
	if v.Kind != yaml.MappingNode || len(v.Content) != 2 {
		return Dim{}, d.errf(v, "%s", want)
	}
	dist, arg := v.Content[0], v.Content[1]
	dim := Dim{Key: k.Value, Dist: dist.Value, Line: k.Line}
	if dist.Value == DistChoice {
		if arg.Kind != yaml.SequenceNode || len(arg.Content) == 0 {
			return Dim{}, d.errf(arg, "choice: want a non-empty list")
		}
		for _, it := range arg.Content {
			val, err := d.value(it)
			if err != nil {
				return Dim{}, err
			}
			dim.Choices = append(dim.Choices, val)
		}
		return dim, nil
	}
	if !slices.Contains([]string{DistUniform, DistLogUniform, DistInt}, dist.Value) {
		return Dim{}, d.errf(dist, "unknown distribution %q: %s", dist.Value, want)
	}
	var bounds []float64
	if err := arg.Decode(&bounds); err != nil || len(bounds) != 2 {
		return Dim{}, d.errf(arg, "%s: want [lo, hi]", dist.Value)
	}
	dim.Lo, dim.Hi = bounds[0], bounds[1]
	switch {
	case math.IsNaN(dim.Lo) || math.IsNaN(dim.Hi) || math.IsInf(dim.Lo, 0) || math.IsInf(dim.Hi, 0):
		return Dim{}, d.errf(arg, "%s: bounds must be finite", dist.Value)
	case dim.Lo > dim.Hi:
		return Dim{}, d.errf(arg, "%s: lo %v is above hi %v", dist.Value, dim.Lo, dim.Hi)
	case dist.Value == DistLogUniform && dim.Lo <= 0:
		return Dim{}, d.errf(arg, "loguniform: lo must be > 0, got %v", dim.Lo)
	case dist.Value == DistInt && (dim.Lo != math.Trunc(dim.Lo) || dim.Hi != math.Trunc(dim.Hi)):
		return Dim{}, d.errf(arg, "int: bounds must be integers, got [%v, %v]", dim.Lo, dim.Hi)
	case dist.Value == DistInt && (math.Abs(dim.Lo) > 1<<53 || math.Abs(dim.Hi) > 1<<53):
		return Dim{}, d.errf(arg, "int: bounds must be within ±2^53")
	}
	return dim, nil
}

// unwrapYAML drops yaml.v3's "yaml: unmarshal errors:\n  line N:" prefix,
// since our errors name the line themselves.
func unwrapYAML(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
			msg = msg[i+2:]
		}
		return msg
	}
	return err.Error()
}
