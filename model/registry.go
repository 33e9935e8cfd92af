package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// BackboneConfig holds every backbone's settings; the model's `backbone`
// key picks which one is built. Each section's defaults are documented on
// its Default function and every field can be overridden from YAML. A
// section's YAML key is its backbone's registry name.
type BackboneConfig struct {
	SharedBottom SharedBottomConfig `yaml:"shared_bottom"`
	MMoE         MMoEConfig         `yaml:"mmoe"`
	PLE          PLEConfig          `yaml:"ple"`
	STAR         STARConfig         `yaml:"star"`

	// Sections of SAR-Net, M2M, AdaptDHM and M3oE.
	SARNet   SARNetConfig   `yaml:"sarnet"`
	M2M      M2MConfig      `yaml:"m2m"`
	AdaptDHM AdaptDHMConfig `yaml:"adaptdhm"`
	M3oE     M3oEConfig     `yaml:"m3oe"`

	// PEPNet's two networks, AdaSparse and HAMUR.
	EPNet     EPNetConfig     `yaml:"epnet"`
	PPNet     PPNetConfig     `yaml:"ppnet"`
	AdaSparse AdaSparseConfig `yaml:"adasparse"`
	HAMUR     HAMURConfig     `yaml:"hamur"`
}

// DefaultBackboneConfig returns each backbone's documented defaults.
func DefaultBackboneConfig() BackboneConfig {
	return BackboneConfig{
		SharedBottom: DefaultSharedBottomConfig(),
		MMoE:         DefaultMMoEConfig(),
		PLE:          DefaultPLEConfig(),
		STAR:         DefaultSTARConfig(),

		SARNet:   DefaultSARNetConfig(),
		M2M:      DefaultM2MConfig(),
		AdaptDHM: DefaultAdaptDHMConfig(),
		M3oE:     DefaultM3oEConfig(),

		EPNet:     DefaultEPNetConfig(),
		PPNet:     DefaultPPNetConfig(),
		AdaSparse: DefaultAdaSparseConfig(),
		HAMUR:     DefaultHAMURConfig(),
	}
}

// section is a backbone's configuration section.
type section interface {
	// Validate names the offending key under key ("model.mmoe.experts = 0: must be >= 1").
	Validate(key string) error
}

// backboneSpec registers one backbone. The registry validates the section,
// the input shape (and, for a section that is a roleReader, that the data
// has the fields it needs) before build runs, checks every batch before
// Forward runs and scopes Forward's intermediates, so a backbone's file
// holds only its parameters and its math.
type backboneSpec struct {
	section func(BackboneConfig) section
	build   func(p nn.Path, in Shape, cfg BackboneConfig) Backbone
}

// backbones is the registry, by config name.
var backbones = map[string]backboneSpec{
	"shared_bottom": {func(c BackboneConfig) section { return c.SharedBottom }, newSharedBottom},
	"mmoe":          {func(c BackboneConfig) section { return c.MMoE }, newMMoE},
	"ple":           {func(c BackboneConfig) section { return c.PLE }, newPLE},
	"star":          {func(c BackboneConfig) section { return c.STAR }, newSTAR},

	"sarnet":   {func(c BackboneConfig) section { return c.SARNet }, newSARNet},
	"m2m":      {func(c BackboneConfig) section { return c.M2M }, newM2M},
	"adaptdhm": {func(c BackboneConfig) section { return c.AdaptDHM }, newAdaptDHM},
	"m3oe":     {func(c BackboneConfig) section { return c.M3oE }, newM3oE},

	"epnet":     {func(c BackboneConfig) section { return c.EPNet }, newEPNet},
	"ppnet":     {func(c BackboneConfig) section { return c.PPNet }, newPPNet},
	"adasparse": {func(c BackboneConfig) section { return c.AdaSparse }, newAdaSparse},
	"hamur":     {func(c BackboneConfig) section { return c.HAMUR }, newHAMUR},
}

// Validate checks every section; errors name the offending key
// (for example "model.mmoe.experts = 0: must be >= 1").
func (c BackboneConfig) Validate() error {
	for _, name := range BackboneNames() {
		if err := backbones[name].section(c).Validate("model." + name); err != nil {
			return err
		}
	}
	return nil
}

// BackboneNames lists the registered backbones, sorted.
func BackboneNames() []string {
	names := make([]string, 0, len(backbones))
	for n := range backbones {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsBackbone reports whether name is a registered backbone.
func IsBackbone(name string) bool {
	_, ok := backbones[name]
	return ok
}

// NewBackbone builds the backbone called name under p for inputs of the
// given shape. Only the chosen backbone's section of cfg is validated and used.
func NewBackbone(name string, p nn.Path, in Shape, cfg BackboneConfig) (Backbone, error) {
	spec, ok := backbones[name]
	if !ok {
		return nil, fmt.Errorf("model.backbone = %q: unknown backbone, want one of %s", name, strings.Join(BackboneNames(), ", "))
	}
	if in.Width < 1 {
		return nil, fmt.Errorf("%s: input width %d: must be >= 1", name, in.Width)
	}
	if in.Scenarios < 1 {
		return nil, fmt.Errorf("%s: %d scenarios: must be >= 1", name, in.Scenarios)
	}
	if err := in.Fields.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	key := "model." + name
	sec := spec.section(cfg)
	if err := sec.Validate(key); err != nil {
		return nil, err
	}
	reader, readsFields := sec.(roleReader)
	if readsFields {
		if err := in.Fields.requireRoles(reader.NeededRoles(key)); err != nil {
			return nil, err
		}
	}
	bb := spec.build(p, in, cfg)
	if err := p.Store().Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return checkedBackbone{inner: bb, shape: in, readsFields: readsFields && len(in.Fields.Roles) > 0}, nil
}

// checkedBackbone refuses batches that do not fit the backbone, and frees
// the inner Forward's intermediates but its output.
type checkedBackbone struct {
	inner       Backbone
	shape       Shape
	readsFields bool // the backbone reads Input.Fields
}

func (c checkedBackbone) Forward(in Input) *torch.Tensor {
	if err := checkInput(in, c.shape.Scenarios); err != nil {
		return torch.Failed(err)
	}
	if err := checkFields(in, c.shape.Fields, c.readsFields); err != nil {
		return torch.Failed(err)
	}
	return scoped(func() *torch.Tensor { return c.inner.Forward(in) })
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
