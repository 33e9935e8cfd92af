package model

import (
	"sort"
	"strings"
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
	"go.yaml.in/yaml/v3"
)

func TestBackboneNames(t *testing.T) {
	names := BackboneNames()
	if !sort.StringsAreSorted(names) || strings.Join(names, ",") != "mmoe,ple,shared_bottom,star" {
		t.Fatalf("BackboneNames() = %v", names)
	}
}

func TestNewBackboneUnknownName(t *testing.T) {
	store := nn.NewStore(torch.CPU)
	defer store.Close()
	_, err := NewBackbone("moe", store.Root(), 8, 2, DefaultBackboneConfig())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"moe"`, "mmoe", "ple", "shared_bottom", "star"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestDefaultBackboneConfig(t *testing.T) {
	cfg := DefaultBackboneConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.MMoE.Experts != 4 || cfg.PLE.Levels != 2 || cfg.PLE.SpecificExperts != 2 || cfg.PLE.SharedExperts != 2 ||
		!cfg.STAR.PartitionedNorm || len(cfg.STAR.Hidden) != 2 || len(cfg.SharedBottom.Tower.Hidden) != 2 {
		t.Errorf("defaults changed without updating their documentation: %+v", cfg)
	}
	// Defaults are fresh values: changing one config does not change the next.
	cfg.MMoE.Expert.Hidden[0] = 1
	if DefaultBackboneConfig().MMoE.Expert.Hidden[0] != 128 {
		t.Error("DefaultBackboneConfig shares slices between calls")
	}
}

// TestBackboneConfigValidate: every bad value is refused, by Validate and by
// the builder, with an error that names its key; nothing panics.
func TestBackboneConfigValidate(t *testing.T) {
	cases := []struct {
		backbone string
		edit     func(*BackboneConfig)
		want     string
	}{
		{"mmoe", func(c *BackboneConfig) { c.MMoE.Experts = 0 }, "model.mmoe.experts = 0: must be >= 1"},
		{"mmoe", func(c *BackboneConfig) { c.MMoE.Expert.Hidden = nil }, "model.mmoe.expert.hidden is empty"},
		{"mmoe", func(c *BackboneConfig) { c.MMoE.Tower.Dropout = 1 }, "model.mmoe.tower.dropout"},
		{"ple", func(c *BackboneConfig) { c.PLE.Levels = 0 }, "model.ple.levels = 0"},
		{"ple", func(c *BackboneConfig) { c.PLE.SpecificExperts = -1 }, "model.ple.specific_experts = -1"},
		{"ple", func(c *BackboneConfig) { c.PLE.SharedExperts = 0 }, "model.ple.shared_experts = 0"},
		{"ple", func(c *BackboneConfig) { c.PLE.Expert.Hidden = []int64{8, 0} }, "model.ple.expert.hidden[1] = 0"},
		{"shared_bottom", func(c *BackboneConfig) { c.SharedBottom.Bottom.Activation = "swish" }, "model.shared_bottom.bottom.activation"},
		{"shared_bottom", func(c *BackboneConfig) { c.SharedBottom.Tower.Hidden = []int64{-3} }, "model.shared_bottom.tower.hidden[0] = -3"},
		{"star", func(c *BackboneConfig) { c.STAR.Hidden = []int64{0} }, "model.star.hidden[0] = 0"},
		{"star", func(c *BackboneConfig) { c.STAR.AuxHidden = []int64{4, -1} }, "model.star.aux_hidden[1] = -1"},
		{"star", func(c *BackboneConfig) { c.STAR.ScenarioEmbeddingDim = 0 }, "model.star.scenario_embedding_dim = 0"},
		{"star", func(c *BackboneConfig) { c.STAR.Dropout = -0.1 }, "model.star.dropout"},
		{"star", func(c *BackboneConfig) { c.STAR.Activation = "bogus" }, "model.star.activation"},
	}
	for _, c := range cases {
		cfg := DefaultBackboneConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate: got %v, want an error containing %q", err, c.want)
		}
		store := nn.NewStore(torch.CPU)
		if _, err := NewBackbone(c.backbone, store.Root(), 8, 2, cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewBackbone(%s): got %v, want an error containing %q", c.backbone, err, c.want)
		}
		store.Close()
	}
	for _, name := range BackboneNames() {
		store := nn.NewStore(torch.CPU)
		if _, err := NewBackbone(name, store.Root(), 0, 2, DefaultBackboneConfig()); err == nil {
			t.Errorf("%s: input width 0 accepted", name)
		}
		if _, err := NewBackbone(name, store.Root(), 8, 0, DefaultBackboneConfig()); err == nil {
			t.Errorf("%s: 0 scenarios accepted", name)
		}
		store.Close()
	}
}

// TestBackboneConfigYAML: snake_case keys override the defaults and leave the rest alone.
func TestBackboneConfigYAML(t *testing.T) {
	cfg := DefaultBackboneConfig()
	doc := `
mmoe:
  experts: 6
  expert: {hidden: [32], activation: gelu, batch_norm: true, dropout: 0.1}
ple:
  levels: 3
  specific_experts: 1
  shared_experts: 4
star:
  hidden: [256, 128, 64]
  partitioned_norm: false
  aux_hidden: []
  scenario_embedding_dim: 4
shared_bottom:
  tower: {hidden: [16]}
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.MMoE.Experts != 6 || cfg.MMoE.Expert.Activation != nn.GELU || !cfg.MMoE.Expert.BatchNorm || cfg.MMoE.Expert.Dropout != 0.1 ||
		cfg.PLE.Levels != 3 || cfg.PLE.SpecificExperts != 1 || cfg.PLE.SharedExperts != 4 ||
		len(cfg.STAR.Hidden) != 3 || cfg.STAR.PartitionedNorm || len(cfg.STAR.AuxHidden) != 0 || cfg.STAR.ScenarioEmbeddingDim != 4 ||
		len(cfg.SharedBottom.Tower.Hidden) != 1 {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if len(cfg.SharedBottom.Bottom.Hidden) != 2 || len(cfg.MMoE.Tower.Hidden) != 2 || cfg.STAR.Activation != nn.ReLU {
		t.Errorf("keys absent from the YAML lost their defaults: %+v", cfg)
	}
}
