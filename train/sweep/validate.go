package sweep

import (
	"errors"
	"fmt"
	"slices"
)

// ValidateFunc checks a trial's overrides against the caller's config: an
// unknown key or a value of the wrong type is an error. It must not train.
type ValidateFunc func(overrides map[string]any) error

// Validate runs fn on every point's overrides. When a point fails, each of
// its keys is tried alone so the error can name the culprit key and its spec
// line ("sweep.yaml:7: model.backbon: unknown config key"); a failure no
// single key explains names the point instead. Every distinct problem is
// reported, joined.
func Validate(spec Spec, trials []Trial, fn ValidateFunc) error {
	var errs []error
	badKey := map[string]bool{}
	seenPoint := map[int]bool{}
	for _, t := range trials {
		if seenPoint[t.Point] { // seeds share a point's overrides
			continue
		}
		seenPoint[t.Point] = true
		err := fn(t.Overrides)
		if err == nil {
			continue
		}
		blamed := false
		for _, k := range sortedKeys(spec, t.Overrides) {
			kerr := fn(map[string]any{k: t.Overrides[k]})
			if kerr == nil {
				continue
			}
			blamed = true
			if !badKey[k] {
				badKey[k] = true
				errs = append(errs, fmt.Errorf("%s:%d: %s: %w", spec.File, spec.line(k), k, kerr))
			}
		}
		if !blamed {
			errs = append(errs, fmt.Errorf("%s: point %s: %w", spec.File, t.PointID, err))
		}
	}
	return errors.Join(errs...)
}

// sortedKeys returns ov's keys in spec order, then any others by name.
func sortedKeys(spec Spec, ov map[string]any) []string {
	var keys []string
	for _, k := range spec.Keys() {
		if _, ok := ov[k]; ok {
			keys = append(keys, k)
		}
	}
	var extra []string
	for k := range ov {
		if !slices.Contains(keys, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	return append(keys, extra...)
}
