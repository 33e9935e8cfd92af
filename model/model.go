package model

import (
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// Config is the model section of a run's configuration.
type Config struct {
	// Backbone is one of BackboneNames().
	Backbone string `yaml:"backbone"`
	// EmbeddingDim is the width of every categorical field's embedding.
	EmbeddingDim int64 `yaml:"embedding_dim"`
	// The backbones' own settings, one section per backbone under its name (model.star, model.sarnet, …).
	BackboneConfig `yaml:",inline"`
	// Meta configures LLM4MSR's meta networks (model.meta.levels: none turns them off).
	Meta MetaConfig `yaml:"meta"`
}

// DefaultConfig is LLM4MSR on STAR with 16-dimensional embeddings.
func DefaultConfig() Config {
	return Config{Backbone: "star", EmbeddingDim: 16, BackboneConfig: DefaultBackboneConfig(), Meta: DefaultMetaConfig()}
}

// Validate checks every field and names the key of the first bad one.
func (c Config) Validate() error {
	if !IsBackbone(c.Backbone) {
		return fmt.Errorf("model.backbone = %q: want one of %v", c.Backbone, BackboneNames())
	}
	if c.EmbeddingDim <= 0 {
		return fmt.Errorf("model.embedding_dim = %d: must be positive", c.EmbeddingDim)
	}
	if err := c.BackboneConfig.Validate(); err != nil {
		return err
	}
	return c.Meta.Validate("model.meta")
}

// Spec is what the data tells the model about its inputs.
type Spec struct {
	VocabSizes []int64 // per categorical field, out-of-vocabulary row included; field 0 is the user
	Numeric    int     // numeric features
	Scenarios  int
	// Roles give each categorical field's role for the backbones that read
	// features by role (roles.go); nil means the schema's convention,
	// DefaultRoles: field 0 the user, field 1 the item, the rest context.
	Roles []Role
}

// fieldLayout is the layout of Input.Fields for this data.
func (s Spec) fieldLayout(dim int64) (FieldLayout, error) {
	roles := s.Roles
	if roles == nil {
		roles = DefaultRoles(len(s.VocabSizes))
	}
	if len(roles) != len(s.VocabSizes) {
		return FieldLayout{}, fmt.Errorf("model: %d roles for %d categorical fields", len(roles), len(s.VocabSizes))
	}
	return FieldLayout{Roles: roles, Dim: dim}, nil
}

// Model is the whole network: one embedding table for every categorical
// field, numeric features beside them, the optional meta networks, and a backbone.
type Model struct {
	Config    Config
	Spec      Spec
	Store     *nn.Store
	Embedding *nn.EmbeddingCollection
	Meta      *Meta // nil when model.meta.levels is none
	Backbone  Backbone
	frozen    bool // between Freeze and its thaw
}

// New builds a model on dev. know may be nil when the meta networks are off.
func New(cfg Config, spec Spec, know *Knowledge, dev torch.Device) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(spec.VocabSizes) == 0 || spec.Scenarios <= 0 {
		return nil, fmt.Errorf("model: the data has %d categorical fields and %d scenarios; need at least one of each", len(spec.VocabSizes), spec.Scenarios)
	}
	fields, err := spec.fieldLayout(cfg.EmbeddingDim)
	if err != nil {
		return nil, err
	}
	store := nn.NewStore(dev)
	root := store.Root()
	m := &Model{Config: cfg, Spec: spec, Store: store}
	m.Embedding = nn.NewEmbeddingCollection(root.Sub("embedding"), spec.VocabSizes, cfg.EmbeddingDim)
	width := m.Embedding.OutDim() + int64(spec.Numeric)
	if cfg.Meta.Levels.Enabled() {
		meta, err := NewMeta(root.Sub("meta"), width, know, cfg.Meta)
		if err != nil {
			store.Close()
			return nil, err
		}
		m.Meta = meta
		width = meta.OutDim
	}
	bb, err := NewBackbone(cfg.Backbone, root.Sub("backbone"), Shape{Width: width, Scenarios: spec.Scenarios, Fields: fields}, cfg.BackboneConfig)
	if err != nil {
		store.Close()
		return nil, err
	}
	m.Backbone = bb
	if err := store.Err(); err != nil {
		store.Close()
		return nil, err
	}
	return m, nil
}

// Batch is one batch on the model's device, rows grouped by scenario (see Input).
type Batch struct {
	Cat      *torch.Tensor // [B, fields] int64
	Num      *torch.Tensor // [B, numeric] float32; nil without numeric features
	Scenario *torch.Tensor // [B] int64
	Counts   []int64       // rows per scenario
}

// Forward returns one logit per row for the row's own scenario.
func (m *Model) Forward(b Batch) *torch.Tensor {
	fields := m.Embedding.PerField(b.Cat)
	x := fields.Flatten(1, 2)
	if b.Num != nil {
		x = torch.Cat([]*torch.Tensor{x, b.Num}, 1)
	}
	in := Input{X: x, Scenario: b.Scenario, Counts: b.Counts, Fields: fields}
	if m.Store.SyncsBatchStats() && m.Store.Training() {
		onAnyRank, err := m.Store.OnAnyRank(b.Counts)
		if err != nil {
			return torch.Failed(err)
		}
		in.OnAnyRank = onAnyRank
	}
	if m.Meta == nil {
		return m.Backbone.Forward(in)
	}
	branch := m.Meta.Logit(in) // reads x before the fusion
	in.X = m.Meta.Forward(in, b.Cat.Select(1, 0))
	logit := m.Backbone.Forward(in)
	if branch != nil {
		logit = logit.Add(branch)
	}
	return logit
}

// Freeze readies the model for scoring with weights that do not change:
// evaluation mode, and the meta networks' layers computed once for every
// scenario and every user (Meta.Freeze, with FreezeOptions' defaults).
// thaw restores the previous mode and frees the precomputed layers.
func (m *Model) Freeze() (thaw func(), err error) { return m.FreezeWith(FreezeOptions{}) }

// FreezeWith is Freeze with bounds on the tables it keeps. A server freezes
// its model once and scores every request on it; freezing a frozen model
// again changes nothing and its thaw does nothing, so code that freezes
// around one scoring pass (evaluation, prediction) runs on a server's
// frozen model as is.
func (m *Model) FreezeWith(o FreezeOptions) (thaw func(), err error) {
	if m.frozen {
		return func() {}, nil
	}
	training := m.Store.Training()
	m.Store.SetTraining(false)
	restore := func() { m.Store.SetTraining(training); m.frozen = false }
	m.frozen = true
	if m.Meta == nil {
		return restore, nil
	}
	thawMeta, err := m.Meta.Freeze(o)
	if err != nil {
		restore()
		return nil, err
	}
	return func() { thawMeta(); restore() }, nil
}

// CacheStats describes a frozen model's table of users' meta layers (zero when not frozen or without the user level).
func (m *Model) CacheStats() CacheStats {
	if m.Meta == nil {
		return CacheStats{}
	}
	return m.Meta.CacheStats()
}

// Close frees the model's parameters and knowledge.
func (m *Model) Close() {
	m.Store.Close()
	if m.Meta != nil && m.Meta.Knowledge != nil {
		m.Meta.Knowledge.Close()
	}
}

// Close frees the knowledge tensors the model's store does not own.
func (k *Knowledge) Close() {
	for _, t := range []struct {
		t       *torch.Tensor
		inStore bool
	}{{k.Scenario, k.scenarioInStore}, {k.User, k.userInStore}, {k.UserKnown, false}} {
		if t.t != nil && !t.inStore {
			t.t.Close()
		}
	}
}

// NewKnowledge moves knowledge vectors to dev: scenario [S*K] row-major, user
// [U*K] row-major with known[u] saying which users have a vector.
func NewKnowledge(scenario []float32, user []float32, known []bool, dim int64, dev torch.Device) (*Knowledge, error) {
	users := int64(len(known))
	if int64(len(scenario))%dim != 0 || int64(len(user)) != users*dim {
		return nil, fmt.Errorf("knowledge: %d scenario and %d user values do not fit dimension %d and %d users", len(scenario), len(user), dim, users)
	}
	mask := make([]float32, users)
	for i, k := range known {
		if k {
			mask[i] = 1
		}
	}
	load := func(v []float32, rows int64) *torch.Tensor {
		host := torch.FromSlice(v, rows, int64(len(v))/max(rows, 1))
		t := host.ToDevice(dev, false)
		host.Close()
		return t
	}
	k := &Knowledge{
		Scenario:  load(scenario, int64(len(scenario))/dim),
		User:      load(user, users),
		UserKnown: load(mask, users),
		Dim:       dim,
	}
	for _, t := range []*torch.Tensor{k.Scenario, k.User, k.UserKnown} {
		if err := t.Err(); err != nil {
			k.Close()
			return nil, fmt.Errorf("knowledge: %w", err)
		}
	}
	return k, nil
}
