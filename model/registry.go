package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/msrtrain/msrtrain/model/nn"
)

// BackboneConfig holds every backbone's settings; the model's `backbone`
// key picks which one is built. Each section's defaults are documented on
// its Default function and every field can be overridden from YAML.
type BackboneConfig struct {
	SharedBottom SharedBottomConfig `yaml:"shared_bottom"`
	MMoE         MMoEConfig         `yaml:"mmoe"`
	PLE          PLEConfig          `yaml:"ple"`
	STAR         STARConfig         `yaml:"star"`
}

// DefaultBackboneConfig returns each backbone's documented defaults.
func DefaultBackboneConfig() BackboneConfig {
	return BackboneConfig{
		SharedBottom: DefaultSharedBottomConfig(),
		MMoE:         DefaultMMoEConfig(),
		PLE:          DefaultPLEConfig(),
		STAR:         DefaultSTARConfig(),
	}
}

// Validate checks every section; errors name the offending key
// (for example "model.mmoe.experts = 0: must be >= 1").
func (c BackboneConfig) Validate() error {
	for _, check := range []func() error{
		func() error { return c.SharedBottom.Validate("model.shared_bottom") },
		func() error { return c.MMoE.Validate("model.mmoe") },
		func() error { return c.PLE.Validate("model.ple") },
		func() error { return c.STAR.Validate("model.star") },
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// Backbones creates each backbone by its config name.
var Backbones = map[string]BackboneBuilder{
	"shared_bottom": NewSharedBottom,
	"mmoe":          NewMMoE,
	"ple":           NewPLE,
	"star":          NewSTAR,
}

// BackboneNames lists the registered backbones, sorted.
func BackboneNames() []string {
	names := make([]string, 0, len(Backbones))
	for n := range Backbones {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewBackbone builds the backbone called name under p, for inputs of width
// inDim and the given number of scenarios. Only the chosen backbone's
// section of cfg is validated and used.
func NewBackbone(name string, p nn.Path, inDim int64, scenarios int, cfg BackboneConfig) (Backbone, error) {
	build, ok := Backbones[name]
	if !ok {
		return nil, fmt.Errorf("model.backbone = %q: unknown backbone, want one of %s", name, strings.Join(BackboneNames(), ", "))
	}
	return build(p, inDim, scenarios, cfg)
}

// checkShape refuses input widths and scenario counts no backbone can use.
func checkShape(name string, inDim int64, scenarios int) error {
	if inDim < 1 {
		return fmt.Errorf("%s: input width %d: must be >= 1", name, inDim)
	}
	if scenarios < 1 {
		return fmt.Errorf("%s: %d scenarios: must be >= 1", name, scenarios)
	}
	return nil
}

// atLeast reports "key = v: must be >= min".
func atLeast(key string, v, min int64) error {
	if v < min {
		return fmt.Errorf("%s = %d: must be >= %d", key, v, min)
	}
	return nil
}

// validateMLP checks an MLP section; nonEmpty demands at least one layer.
func validateMLP(key string, c nn.MLPConfig, nonEmpty bool) error {
	if nonEmpty && len(c.Hidden) == 0 {
		return fmt.Errorf("%s.hidden is empty: needs at least one layer", key)
	}
	return c.Validate(key)
}
