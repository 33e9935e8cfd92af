package model

import (
	"fmt"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
	"github.com/msrtrain/msrtrain/model/nn"
)

// LLM4MSR's hierarchical meta networks (Wang et al., CIKM 2024, §3.3).
//
// A frozen knowledge vector k (one per scenario, one per user, from an LLM's
// answer to the scenario- and user-level prompts) is turned into the weights
// of small "meta layers" that transform the bottom representation x:
//
//	h = Generator(Proj(k))                 Proj: K → P, Generator: an MLP
//	z_0 = x,  z_l = act(z_{l-1}·W_l(k) + b_l(k))
//
// and a linear head maps h to every layer's weights, W_l, b_l = split(Head(h))
// with W_l scaled by 1/√in_l. The head is one of:
//
//	full:       the meta layers read x itself (the paper's)
//	factorized: they read x·P, P [in, R] learned and shared by every key, so
//	            W_1(k) = P·M_1(k) is factorized with the head emitting M_1 [R, out]
//
// Through the head's linearity (see userLayers) a row costs in·out·(G+1)
// multiply-adds for the full head's first layer (G the generator's width)
// and in·R + R·out·(G+1) for the factorized one.
//
// Where the meta layers sit (model.meta.placement). The paper's Figure 2
// caption has the two networks generate "scenario- and user-level meta
// layers in parallel and at bottom"; its full text is not at hand, and the
// caption reads two ways:
//
//	bottom: both levels at the bottom (default). Their outputs are fused
//	        with x before the backbone: concat [x, z_scenario, z_user] or
//	        the residual x + z_scenario + z_user.
//	branch: the user-level layers at the bottom, fused with x as above
//	        ([x, z_user] or x + z_user); the scenario-level layers a branch
//	        beside the backbone that reads the same x and joins it at the
//	        logit: ŷ = σ(f([x, z_user]) + v·z_scenario + c), with v, c
//	        learned and shared ("meta.scenario.logit"). Every backbone ends
//	        in one logit per row, so the branch joins every backbone the
//	        same way, through a scenario-conditioned term in its logit.
//
// In both, every meta layer reads the bottom representation x.
// The generator and the head run once per scenario and once per distinct
// user in a batch, never once per row; with frozen weights (evaluation,
// prediction) they run once per scenario and user for the whole pass.

// MetaHead is how a level's head turns the generator's output into meta layers.
type MetaHead string

// The heads.
const (
	MetaHeadFull       MetaHead = "full"
	MetaHeadFactorized MetaHead = "factorized"
)

// MetaHeadValues are model.meta.head's values.
var MetaHeadValues = choice.New("meta head", MetaHeadFull, MetaHeadFactorized)

// UnmarshalYAML accepts one of MetaHeadValues.
func (h *MetaHead) UnmarshalYAML(n *yaml.Node) error { return MetaHeadValues.Decode(n, h) }

// MetaConfig configures the meta networks.
type MetaConfig struct {
	// Levels selects the networks (the ablation switch).
	Levels MetaLevels `yaml:"levels"`
	// ProjectionDim is P, the width the knowledge vector is projected down to.
	ProjectionDim int64 `yaml:"projection_dim"`
	// Generator is the MLP from the projection to the weight head.
	Generator nn.MLPConfig `yaml:"generator"`
	// Head is factorized or full (see MetaHead).
	Head MetaHead `yaml:"head"`
	// Rank is R, the width of the factorized head's shared input projection.
	Rank int64 `yaml:"rank"`
	// Layers are the meta layers' output widths; the last is the width of z.
	Layers []int64 `yaml:"layers"`
	// Activation follows every meta layer.
	Activation nn.Activation `yaml:"activation"`
	// Fusion joins x with the meta outputs at the bottom.
	Fusion Fusion `yaml:"fusion"`
	// Placement puts the scenario-level layers at the bottom or beside the backbone.
	Placement MetaPlacement `yaml:"placement"`
}

// MetaPlacement says where the scenario-level meta layers join the model
// (the user-level ones are always at the bottom).
type MetaPlacement string

// The placements.
const (
	PlacementBottom MetaPlacement = "bottom" // fused with x before the backbone
	PlacementBranch MetaPlacement = "branch" // a term of the backbone's logit
)

// MetaPlacementValues are model.meta.placement's values.
var MetaPlacementValues = choice.New("meta placement", PlacementBottom, PlacementBranch)

// UnmarshalYAML accepts one of MetaPlacementValues.
func (p *MetaPlacement) UnmarshalYAML(n *yaml.Node) error { return MetaPlacementValues.Decode(n, p) }

// MetaLevels selects which meta networks run: none, scenario, user or both.
type MetaLevels string

// The meta levels.
const (
	LevelsNone     MetaLevels = "none"
	LevelsScenario MetaLevels = "scenario"
	LevelsUser     MetaLevels = "user"
	LevelsBoth     MetaLevels = "both"
)

// MetaLevelValues are model.meta.levels' values.
var MetaLevelValues = choice.New("meta levels", LevelsNone, LevelsScenario, LevelsUser, LevelsBoth)

// UnmarshalYAML accepts one of MetaLevelValues.
func (l *MetaLevels) UnmarshalYAML(n *yaml.Node) error { return MetaLevelValues.Decode(n, l) }

// Enabled reports whether any meta network runs (and so knowledge is needed).
func (l MetaLevels) Enabled() bool { return l != LevelsNone }

// Scenario and User report whether that level's network runs.
func (l MetaLevels) Scenario() bool { return l == LevelsScenario || l == LevelsBoth }
func (l MetaLevels) User() bool     { return l == LevelsUser || l == LevelsBoth }

// Fusion joins the bottom representation x with the meta networks' outputs z.
type Fusion string

// The fusions.
const (
	FusionConcat   Fusion = "concat"   // [x, z_scenario, z_user]
	FusionResidual Fusion = "residual" // x + z_scenario + z_user; the last meta layer must be x's width
)

// FusionValues are model.meta.fusion's values.
var FusionValues = choice.New("fusion", FusionConcat, FusionResidual)

// UnmarshalYAML accepts one of FusionValues.
func (f *Fusion) UnmarshalYAML(n *yaml.Node) error { return FusionValues.Decode(n, f) }

// width is the fused width of x (in wide) and nets outputs (out wide each).
func (f Fusion) width(in, out int64, nets int) int64 {
	if f == FusionResidual {
		return in
	}
	return in + int64(nets)*out
}

// apply fuses parts = [x, z...].
func (f Fusion) apply(parts []*torch.Tensor) *torch.Tensor {
	if len(parts) == 1 {
		return parts[0]
	}
	if f == FusionResidual {
		out := parts[0]
		for _, z := range parts[1:] {
			out = out.Add(z)
		}
		return out
	}
	return torch.Cat(parts, 1)
}

// script emits apply on the variables parts = [x, z...].
func (f Fusion) script(s *nn.Script, parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	if f == FusionResidual {
		return s.Let("%s", strings.Join(parts, " + "))
	}
	return s.Let("torch.cat([%s], 1)", strings.Join(parts, ", "))
}

// DefaultMetaConfig: both levels, one meta layer of width 16 generated by
// the full head from a 16-wide hidden layer, concatenated. The factorized
// head (rank 16 when chosen) needs fewer multiply-adds per row but was
// neither measurably faster nor as accurate (docs/benchmarks.md).
func DefaultMetaConfig() MetaConfig {
	return MetaConfig{
		Levels:        LevelsBoth,
		ProjectionDim: 32,
		Generator:     nn.MLPConfig{Hidden: []int64{16}, Activation: nn.ReLU},
		Head:          MetaHeadFull,
		Rank:          16,
		Layers:        []int64{16},
		Activation:    nn.ReLU,
		Fusion:        FusionConcat,
		Placement:     PlacementBottom,
	}
}

// Validate names the key of the first bad value.
func (c MetaConfig) Validate(field string) error {
	if err := MetaLevelValues.Check(field+".levels", c.Levels); err != nil {
		return err
	}
	if !c.Levels.Enabled() {
		return nil
	}
	if c.ProjectionDim <= 0 {
		return fmt.Errorf("%s.projection_dim = %d: must be positive", field, c.ProjectionDim)
	}
	if err := MetaHeadValues.Check(field+".head", c.Head); err != nil {
		return err
	}
	if c.Head == MetaHeadFactorized && c.Rank <= 0 {
		return fmt.Errorf("%s.rank = %d: must be positive", field, c.Rank)
	}
	if len(c.Layers) == 0 {
		return fmt.Errorf("%s.layers: at least one meta layer is needed", field)
	}
	for i, w := range c.Layers {
		if w <= 0 {
			return fmt.Errorf("%s.layers[%d] = %d: must be positive", field, i, w)
		}
	}
	if _, err := nn.ParseActivation(string(c.Activation)); err != nil {
		return fmt.Errorf("%s.activation: %w", field, err)
	}
	if err := FusionValues.Check(field+".fusion", c.Fusion); err != nil {
		return err
	}
	if err := MetaPlacementValues.Check(field+".placement", c.Placement); err != nil {
		return err
	}
	return c.Generator.Validate(field + ".generator")
}

// Knowledge holds the knowledge vectors on the model's device: frozen, or
// with Learned trained with the model.
type Knowledge struct {
	Scenario  *torch.Tensor // [scenarios, K]
	User      *torch.Tensor // [user vocabulary size, K]; rows of unknown users are zero
	UserKnown *torch.Tensor // [user vocabulary size, 1] float32: 1 where the user has a vector
	Dim       int64
	// Learned makes NewMeta turn Scenario and User (of the levels that run)
	// into parameters of the model, "meta.knowledge.scenario" and
	// "meta.knowledge.user", that start from these values and train with
	// it: a vector per scenario and per user with no text behind it, the
	// ablation that tells what the meta networks learn from ids alone.
	Learned bool
	// inStore marks the tensors the model's store owns (and frees).
	scenarioInStore, userInStore bool
}

// metaNet is one level: projection, generator, a head emitting every meta
// layer's weights and, for the factorized head, the shared input projection P.
type metaNet struct {
	proj   *nn.Linear
	gen    *nn.MLP
	head   *nn.Linear
	inProj *torch.Tensor // factorized: P [in, R]; nil for the full head
	layers []metaLayer
	act    nn.Activation
	perKey int64 // head outputs per knowledge vector
}

// metaLayer is one meta layer: W at [off, off+in·out) of the head's output, then b.
type metaLayer struct {
	in, out, off int64
	scale        float64 // 1/√in
}

// bias is the offset of the layer's bias in the head's output.
func (l metaLayer) bias() int64 { return l.off + l.in*l.out }

func newMetaNet(p nn.Path, knowledgeDim, inDim int64, cfg MetaConfig) *metaNet {
	m := &metaNet{act: cfg.Activation}
	m.proj = nn.NewLinear(p.Sub("proj"), knowledgeDim, cfg.ProjectionDim, true)
	gcfg := cfg.Generator
	gcfg.OutputActivation = true
	m.gen = nn.NewMLP(p.Sub("generator"), cfg.ProjectionDim, gcfg)
	width := inDim
	if cfg.Head == MetaHeadFactorized {
		// Unit-scale x gives unit-scale x·P.
		m.inProj = p.Param("input_projection", []int64{inDim, cfg.Rank}, nn.Normal(1/math.Sqrt(float64(inDim))))
		width = cfg.Rank
	}
	for _, w := range cfg.Layers {
		m.layers = append(m.layers, metaLayer{in: width, out: w, off: m.perKey, scale: 1 / math.Sqrt(float64(width))})
		m.perKey += width*w + w
		width = w
	}
	m.head = nn.NewLinear(p.Sub("head"), m.gen.Out, m.perKey, true)
	return m
}

// hidden is the generator's output h for knowledge vectors k [n, K]: [n, G].
func (m *metaNet) hidden(k *torch.Tensor) *torch.Tensor { return m.gen.Forward(m.proj.Forward(k)) }

// input is what the first meta layer reads: x, or x·P for the factorized head.
func (m *metaNet) input(x *torch.Tensor) *torch.Tensor {
	if m.inProj == nil {
		return x
	}
	return x.Matmul(m.inProj)
}

// generated are the meta layers' weights for n knowledge vectors.
type generated struct {
	w []*torch.Tensor // [n, in, out]
	b []*torch.Tensor // [n, out]
}

// generate builds the meta layers from the head's outputs [n, perKey].
func (m *metaNet) generate(flat *torch.Tensor) generated {
	var g generated
	for _, l := range m.layers {
		g.w = append(g.w, flat.Narrow(1, l.off, l.in*l.out).MulScalar(l.scale).Reshape(-1, l.in, l.out))
		g.b = append(g.b, flat.Narrow(1, l.bias(), l.out))
	}
	return g
}

// Meta holds the two levels and the fallback vector of users without knowledge.
type Meta struct {
	cfg      MetaConfig
	scenario *metaNet
	user     *metaNet
	// scenarioLogit reads the scenario-level layers' output out to a term of
	// the logit (placement branch); nil when they sit at the bottom.
	scenarioLogit *nn.Linear
	UserFallback  *torch.Tensor // [1, K], learned
	Knowledge     *Knowledge
	OutDim        int64 // width of the fused representation
	frozen        *frozenMeta
	dev           torch.Device
}

// frozenMeta holds the head's outputs for every scenario [S, perKey] and
// the generator's outputs h for every user [U, G], or, when those would
// take more memory than FreezeOptions allows, for the most recently used
// users (recent): G numbers a user where the built layers would take
// perKey, and applying the head through its linearity costs no more per
// row than reading them (see meta_cache.go).
type frozenMeta struct {
	scenario, user *torch.Tensor
	recent         *userCache // nil when user holds every user's
}

// NewMeta builds the networks under p ("meta.scenario.*", "meta.user.*").
func NewMeta(p nn.Path, inDim int64, know *Knowledge, cfg MetaConfig) (*Meta, error) {
	if know == nil {
		return nil, fmt.Errorf("model.meta.levels = %q needs knowledge vectors (see `msrtrain knowledge build`)", cfg.Levels)
	}
	m := &Meta{cfg: cfg, Knowledge: know, dev: p.Store().Device}
	last := cfg.Layers[len(cfg.Layers)-1]
	if cfg.Fusion == FusionResidual && last != inDim {
		return nil, fmt.Errorf("model.meta.fusion = residual needs the last meta layer (%d) to equal the input width (%d)", last, inDim)
	}
	nets := 0 // fused at the bottom
	if cfg.Levels.Scenario() {
		m.scenario = newMetaNet(p.Sub("scenario"), know.Dim, inDim, cfg)
		if cfg.Placement == PlacementBranch {
			m.scenarioLogit = nn.NewLinear(p.Sub("scenario").Sub("logit"), last, 1, true)
		} else {
			nets++
		}
	}
	if cfg.Levels.User() {
		m.user = newMetaNet(p.Sub("user"), know.Dim, inDim, cfg)
		m.UserFallback = p.Sub("user").Param("fallback", []int64{1, know.Dim}, nn.Normal(0.01))
		nets++
	}
	m.OutDim = cfg.Fusion.width(inDim, last, nets)
	if know.Learned {
		if err := know.adopt(p.Sub("knowledge"), cfg.Levels); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// adopt turns the vectors of the levels that run into parameters of p's
// store, initialised with their values; the store then owns them.
func (k *Knowledge) adopt(p nn.Path, levels MetaLevels) error {
	param := func(name string, t *torch.Tensor) (*torch.Tensor, error) {
		v := p.Param(name, t.Shape(), nn.Zeros)
		var err error
		torch.NoGrad(func() { err = v.CopyFrom(t) })
		if err != nil {
			return nil, fmt.Errorf("meta: learned knowledge %s: %w", name, err)
		}
		t.Close()
		return v, nil
	}
	var err error
	if levels.Scenario() && !k.scenarioInStore {
		if k.Scenario, err = param("scenario", k.Scenario); err != nil {
			return err
		}
		k.scenarioInStore = true
	}
	if levels.User() && !k.userInStore {
		if k.User, err = param("user", k.User); err != nil {
			return err
		}
		k.userInStore = true
	}
	return nil
}

// Forward fuses x with the outputs of the meta layers at the bottom: the
// user level's, and the scenario level's unless it is a branch (see Logit).
// users are the rows' user indices [B] (the user vocabulary's, 0 = unknown).
func (m *Meta) Forward(in Input, users *torch.Tensor) *torch.Tensor {
	parts := []*torch.Tensor{in.X}
	if m.scenario != nil && m.scenarioLogit == nil {
		parts = append(parts, m.scenarioLayers(in))
	}
	if m.user != nil {
		parts = append(parts, m.userLayers(in.X, users))
	}
	return m.cfg.Fusion.apply(parts)
}

// Logit is the scenario branch's term of each row's logit, v·z_scenario + c
// [B], which the model adds to the backbone's; nil when the scenario-level
// layers sit at the bottom (or do not run).
func (m *Meta) Logit(in Input) *torch.Tensor {
	if m.scenarioLogit == nil {
		return nil
	}
	return m.scenarioLogit.Forward(m.scenarioLayers(in)).View(-1)
}

// scenarioHead is the head's output for every scenario [S, perKey].
func (m *Meta) scenarioHead() *torch.Tensor {
	if m.frozen != nil {
		return m.frozen.scenario
	}
	return m.scenario.head.Forward(m.scenario.hidden(m.Knowledge.Scenario))
}

// userKnowledge is the knowledge vector of users idx, the learned fallback for those without one.
func (m *Meta) userKnowledge(idx *torch.Tensor) *torch.Tensor {
	known := m.Knowledge.UserKnown.IndexSelect(0, idx)
	return m.Knowledge.User.IndexSelect(0, idx).Mul(known).Add(m.UserFallback.Mul(known.RSubScalar(1)))
}

// scenarioLayers builds each present scenario's layers once and applies them to its rows.
func (m *Meta) scenarioLayers(in Input) *torch.Tensor {
	g := m.scenario.generate(m.scenarioHead())
	x := m.scenario.input(in.X)
	segs := in.Segments()
	outs := make([]*torch.Tensor, len(segs))
	for i, s := range segs {
		z := s.Rows(x)
		sc := int64(s.Scenario)
		for l := range g.w {
			z = m.act(torch.Addmm(g.b[l].Select(0, sc), z, g.w[l].Select(0, sc), 1, 1))
		}
		outs[i] = z
	}
	if len(outs) == 1 {
		return outs[0]
	}
	return torch.Cat(outs, 0)
}

// userLayers applies each row's user's meta layers. They are never built:
// the head is linear, so with h_u the generator's
// output for user u (G wide), a layer's weight is W(u) = s·(Σ_g h_u[g]·H_g + C),
// where H_g and C are the head's weight column g and bias reshaped to [in, out]. Hence
//
//	z·W(u) = s·Σ_g h̃_u[g]·(z·H̃_g),   h̃_u = [h_u, 1],  H̃ = [H_1 … H_G, C]
//
// one matmul of the rows with every H̃_g at once and a weighted sum over
// G+1, rather than a [B, in, out] weight tensor per step multiplied into the
// rows elementwise; the bias b(u) is a Linear of h_u. torch.GeneratedLayer
// does all of it, forward and backward, in one autograd node. The generator
// runs once per distinct user of the batch, or not at all when frozen.
func (m *Meta) userLayers(x, users *torch.Tensor) *torch.Tensor {
	if x.Err() != nil {
		return x // its failure flows on, as through any op; it has no shape to ask
	}
	z := m.user.input(x)
	var h *torch.Tensor // [B, G]
	switch {
	case m.frozen != nil && m.frozen.user != nil:
		h = m.frozen.user.IndexSelect(0, users)
	case m.frozen != nil:
		h = m.frozen.recent.hidden(m, users)
	default:
		distinct, row := users.Unique()
		h = m.user.hidden(m.userKnowledge(distinct)).IndexSelect(0, row)
	}
	head := m.user.head
	for _, l := range m.user.layers {
		z = m.act(torch.GeneratedLayer(z, head.Weight, head.Bias, h, l.in, l.out, l.off, l.scale))
	}
	return z
}

func (m *Meta) act(x *torch.Tensor) *torch.Tensor { return m.cfg.Activation.Apply(x) }

// scriptBuffers adds what the exported module's meta networks read as
// buffers: the frozen tables (Freeze, "meta.cache.{scenario_head,user_hidden}")
// and the knowledge they were computed from ("meta.knowledge.{scenario,user}");
// m must be frozen. It returns the layout of the user table,
// knowledgeUsers: the user-vocabulary indices of the users with
// knowledge, in knowledge-row order (row r of the knowledge table is
// vocabulary index knowledgeUsers[r]); the cache's row len(knowledgeUsers)
// is the learned fallback's, which every row whose knowledge row is -1 reads.
func (m *Meta) scriptBuffers(s *nn.Script) (knowledgeUsers []int64, err error) {
	if m.frozen == nil {
		return nil, fmt.Errorf("meta: export needs the frozen tables (Model.Freeze)")
	}
	if m.user != nil && m.frozen.user == nil {
		return nil, fmt.Errorf("meta: export needs every user's generator output, but the model was frozen with a user cache bounded by FreezeOptions.UserCacheBytes; export a model that is not frozen")
	}
	// Learned knowledge is a parameter of the store; the module keeps it
	// as a buffer like the others (and the users' in the same layout).
	knowledge := func(name string, t *torch.Tensor, inStore bool) {
		if inStore {
			s.Replace(name, t)
		} else {
			s.Buffer(name, t)
		}
	}
	if m.scenario != nil {
		knowledge("meta.knowledge.scenario", m.Knowledge.Scenario, m.Knowledge.scenarioInStore)
		s.Buffer("meta.cache.scenario_head", m.frozen.scenario)
	}
	if m.user != nil {
		known, err := m.Knowledge.UserKnown.Float32s()
		if err != nil {
			return nil, fmt.Errorf("meta: reading which users have knowledge: %w", err)
		}
		for u, k := range known {
			if k > 0 {
				knowledgeUsers = append(knowledgeUsers, int64(u))
			}
		}
		rows := torch.FromSlice(append([]int64{}, knowledgeUsers...), int64(len(knowledgeUsers))).ToDevice(m.dev, false)
		knowledge("meta.knowledge.user", m.Knowledge.User.IndexSelect(0, rows), m.Knowledge.userInStore)
		// The vocabulary's row 0 (out of vocabulary) is always the fallback's.
		s.Buffer("meta.cache.user_hidden", torch.Cat([]*torch.Tensor{m.frozen.user.IndexSelect(0, rows), m.frozen.user.Narrow(0, 0, 1)}, 0))
	}
	return knowledgeUsers, nil
}

// Script emits Forward in evaluation mode over the frozen tables (see
// scriptBuffers); knowledgeRows is the rows' knowledge-table rows [B], -1
// for users without knowledge.
func (m *Meta) Script(s *nn.Script, in ScriptInput, knowledgeRows string) string {
	parts := []string{in.X}
	if m.scenario != nil && m.scenarioLogit == nil {
		parts = append(parts, m.scriptScenarioLayers(s, in))
	}
	if m.user != nil {
		parts = append(parts, m.scriptUserLayers(s, in.X, knowledgeRows))
	}
	return m.cfg.Fusion.script(s, parts)
}

// ScriptLogit emits Logit: the scenario branch's term of the logit [B],
// or "" when the scenario-level layers sit at the bottom (or do not run).
func (m *Meta) ScriptLogit(s *nn.Script, in ScriptInput) string {
	if m.scenarioLogit == nil {
		return ""
	}
	return s.Let("%s.view(-1)", m.scenarioLogit.Script(s, m.scriptScenarioLayers(s, in)))
}

// scriptInput emits input.
func (n *metaNet) scriptInput(s *nn.Script, x string) string {
	if n.inProj == nil {
		return x
	}
	return s.Let("%s.matmul(%s)", x, s.Ref(n.inProj))
}

// scriptScenarioLayers emits scenarioLayers over the frozen head outputs.
func (m *Meta) scriptScenarioLayers(s *nn.Script, in ScriptInput) string {
	head := torch.ScriptRef("meta.cache.scenario_head")
	var w, b []string
	for _, l := range m.scenario.layers {
		w = append(w, s.Let("(%s.narrow(1, %d, %d) * %s).reshape(-1, %d, %d)", head, l.off, l.in*l.out, nn.Float(l.scale), l.in, l.out))
		b = append(b, s.Let("%s.narrow(1, %d, %d)", head, l.bias(), l.out))
	}
	x := m.scenario.scriptInput(s, in.X)
	return scriptEachSegment(s, in, 0, func(seg scriptSegment) string {
		z := seg.Rows(x)
		for l := range w {
			z = m.cfg.Activation.Script(s, s.Let("torch.addmm(%s.select(0, %d), %s, %s.select(0, %d))", b[l], seg.Scenario, z, w[l], seg.Scenario))
		}
		return z
	})
}

// scriptUserLayers emits userLayers over the frozen generator outputs.
func (m *Meta) scriptUserLayers(s *nn.Script, x, knowledgeRows string) string {
	table := torch.ScriptRef("meta.cache.user_hidden")
	rows := s.Let("torch.where(%s >= 0, %s, torch.full_like(%s, %s.size(0) - 1))", knowledgeRows, knowledgeRows, knowledgeRows, table)
	h := s.Let("%s.index_select(0, %s)", table, rows)
	z := m.user.scriptInput(s, x)
	head := m.user.head
	for _, l := range m.user.layers {
		z = m.cfg.Activation.Script(s, s.Let("self.generated_layer(%s, %s, %s, %s, %d, %d, %d, %s)",
			z, s.Ref(head.Weight), s.Ref(head.Bias), h, l.in, l.out, l.off, nn.Float(l.scale)))
	}
	return z
}

// scriptGeneratedLayer is torch.GeneratedLayer's forward (cgo/shim/meta_layer.cpp) as a TorchScript method.
const scriptGeneratedLayer = `def generated_layer(self, z: Tensor, weight: Tensor, bias: Tensor, h: Tensor, n_in: int, n_out: int, offset: int, scale: float) -> Tensor:
    gens = weight.size(1)
    basis = torch.cat([weight.narrow(0, offset, n_in * n_out), bias.narrow(0, offset, n_in * n_out).unsqueeze(1)], 1).view(n_in, n_out, gens + 1).permute(0, 2, 1).reshape(n_in, (gens + 1) * n_out)
    p = z.mm(basis).view(-1, gens + 1, n_out)
    ones = torch.ones(h.size(0), 1, dtype=h.dtype, device=h.device)
    y = (p * torch.cat([h, ones], 1).unsqueeze(2)).sum(1) * scale
    return torch.addmm(y, h, weight.narrow(0, offset + n_in * n_out, n_out).t()) + bias.narrow(0, offset + n_in * n_out, n_out)
`

// scriptRebuild emits the body of the module's rebuild_meta_cache: the
// frozen tables computed again from the knowledge buffers (after a serving
// team replaces knowledge vectors), as Freeze computes them.
func (m *Meta) scriptRebuild(s *nn.Script) {
	if m.scenario != nil {
		h := m.scenario.scriptHidden(s, torch.ScriptRef("meta.knowledge.scenario"))
		s.Line("%s = %s", torch.ScriptRef("meta.cache.scenario_head"), m.scenario.head.Script(s, h))
	}
	if m.user != nil {
		k := s.Let("torch.cat([%s, %s], 0)", torch.ScriptRef("meta.knowledge.user"), s.Ref(m.UserFallback))
		s.Line("%s = %s", torch.ScriptRef("meta.cache.user_hidden"), m.user.scriptHidden(s, k))
	}
}

// scriptHidden emits hidden.
func (n *metaNet) scriptHidden(s *nn.Script, k string) string {
	return n.gen.Script(s, n.proj.Script(s, k))
}
