// Package insight reads a run back to explain it: what its LLM knowledge
// is and does to the trained model (Explainer), and the run's HTML report
// (WriteReport), for a run finished, interrupted or still training.
package insight

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/msrtrain/msrtrain/data"
	kb "github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/knowledge"
	"github.com/msrtrain/msrtrain/train/report"
)

// ErrNoReasoning marks an explanation asked of a store without reasoning
// text for the key (the hash encoder's, or imported vectors).
var ErrNoReasoning = fmt.Errorf("no reasoning")

// Explainer reads a run's knowledge next to what the model does with it:
// for any user or scenario, the prompt, the LLM's reasoning, the keys with
// the most similar vectors and, given a trained model, how far that key's
// knowledge moves the logits of its rows.
//
// The effect of a user's knowledge is measured against the learned fallback
// vector (what the model uses for a user without knowledge); the effect of a
// scenario's, against the mean of all scenario vectors (the model has no
// fallback for scenarios). Both are measured through the public model API:
// the rows are scored twice, the second time with the knowledge swapped.
type Explainer struct {
	cfg     train.Config
	loaded  *train.Loaded // nil: no effects
	splits  *data.Splits
	store   *kb.Store
	prompts map[string]string // rendered when first asked for
	main    []int             // user index → scenario with most training rows; -1: none

	measured  bool
	users     map[int64][]report.Effect // by user index
	scenarios map[int][]report.Effect   // by scenario id: only its own scenario

	// maxRows caps the rows scored to measure effects (explainRows).
	maxRows int
	// sampled is how many rows the effects were measured on, of total.
	sampled, total int
	work           explainWork
}

// explainRows is how many rows, sampled from all splits, the effects are
// measured on: enough for every scenario's mean and the users with the
// most rows, and the same for any size of data, so that a report costs
// about the same for a thousand rows as for a hundred million.
const explainRows = 1 << 17

// explainWork counts what an Explainer did, for tests of what a report
// costs as data grows.
type explainWork struct {
	loads        int // data.Load calls
	rowsScored   int // rows through the model
	usersPrompts int // user prompts rendered
}

// NewExplainer reads the data and the knowledge store of cfg; with loaded
// (a trained model of that configuration) it can also measure effects.
// The caller closes the Explainer, and the model separately.
func NewExplainer(cfg train.Config, loaded *train.Loaded) (*Explainer, error) {
	return newExplainer(cfg, loaded, nil, explainRows)
}

// newExplainer is NewExplainer on data already loaded (nil: load it),
// measuring effects on at most maxRows rows.
func newExplainer(cfg train.Config, loaded *train.Loaded, sp *data.Splits, maxRows int) (*Explainer, error) {
	if !cfg.Knowledge.Encoder.FromText() {
		return nil, fmt.Errorf("knowledge.encoder = %s: its vectors have no prompt, reasoning or store to explain", cfg.Knowledge.Encoder)
	}
	dcfg := cfg.DataConfig()
	var opts []data.Option
	storeDir := cfg.Knowledge.StoreDir(cfg.Out)
	if loaded != nil {
		opts = append(opts, data.WithVocabs(loaded.Checkpoint.Vocabs))
		storeDir = loaded.Checkpoint.KnowledgeDir()
	}
	e := &Explainer{cfg: cfg, loaded: loaded, prompts: map[string]string{}, maxRows: maxRows}
	if sp == nil {
		var err error
		if sp, err = data.Load(dcfg, opts...); err != nil {
			return nil, err
		}
		e.work.loads++
	}
	if sp.Train == nil {
		return nil, fmt.Errorf("knowledge: explanations need an in-memory training split (data.stream.enabled is on)")
	}
	store, err := kb.Load(storeDir)
	if err != nil {
		return nil, err
	}
	e.splits, e.store = sp, store
	e.main = mainScenarios(sp.Train, sp.Vocabs.Fields[0].Size())
	return e, nil
}

// Close releases the store.
func (e *Explainer) Close() error { return e.store.Close() }

// mainScenarios gives each user index the scenario with the most rows of
// the table (the lowest scenario id on a tie), -1 for users without rows.
func mainScenarios(t *data.Table, users int) []int {
	fields := len(t.Schema.Categorical)
	scenarios := len(t.Schema.Scenarios)
	counts := make([]int32, users*scenarios)
	for i := range t.Len() {
		counts[int(t.Cat[i*fields])*scenarios+int(t.Scenario[i])]++
	}
	out := make([]int, users)
	for u := range out {
		c := counts[u*scenarios : (u+1)*scenarios]
		out[u] = -1
		if m := slices.Max(c); m > 0 {
			out[u] = slices.Index(c, m)
		}
	}
	return out
}

// prompt is the prompt of key, rendered for that key alone ("" when the
// key is not in the training split).
func (e *Explainer) prompt(key string) (string, error) {
	if p, ok := e.prompts[key]; ok {
		return p, nil
	}
	users := []string{} // the scenarios' prompts only
	if id, ok := strings.CutPrefix(key, kb.UserPrefix); ok {
		users = []string{id}
		e.work.usersPrompts++
	}
	prompts, _, err := knowledge.RenderPromptsOf(e.cfg.Knowledge, e.splits, users)
	if err != nil {
		return "", err
	}
	for _, p := range prompts {
		e.prompts[p.Key] = p.Text
	}
	if _, ok := e.prompts[key]; !ok {
		e.prompts[key] = ""
	}
	return e.prompts[key], nil
}

// UserKey resolves a raw user id to its knowledge key and vocabulary index.
func (e *Explainer) userIndex(id string) (int64, error) {
	users := e.splits.Vocabs.Fields[0]
	idx := users.Index(id)
	if idx == 0 {
		var some []string
		for i := int64(1); i < int64(min(users.Size(), 6)); i++ {
			some = append(some, users.Token(i))
		}
		return 0, fmt.Errorf("user %q is not in the training data of %s (%d users, e.g. %s)", id, e.cfg.Data.Format, users.Size()-1, strings.Join(some, ", "))
	}
	return idx, nil
}

func (e *Explainer) scenarioID(name string) (int, error) {
	names := e.splits.Vocabs.Schema().ScenarioNames()
	i := slices.Index(names, name)
	if i < 0 {
		return 0, fmt.Errorf("scenario %q is not in the data; its scenarios are %s", name, strings.Join(names, ", "))
	}
	return i, nil
}

// ExplainUser explains a user's knowledge; with requireReasoning a store
// without reasoning text for the user is an error (ErrNoReasoning).
func (e *Explainer) ExplainUser(id string, requireReasoning bool) (report.Explanation, error) {
	idx, err := e.userIndex(id)
	if err != nil {
		return report.Explanation{}, err
	}
	return e.explainUserAt(idx, requireReasoning)
}

// explainUserAt is ExplainUser for the user of vocabulary index idx.
func (e *Explainer) explainUserAt(idx int64, requireReasoning bool) (report.Explanation, error) {
	id := e.splits.Vocabs.Fields[0].Token(idx)
	x, err := e.explain(kb.UserKey(id), requireReasoning)
	if err != nil {
		return x, err
	}
	names := e.splits.Vocabs.Schema().ScenarioNames()
	if s := e.main[idx]; s >= 0 {
		x.MainScenario = names[s]
	}
	err = e.addEffects(&x, "user", e.cfg.Model.Meta.Levels.User(), func() []report.Effect { return e.users[idx] }, "the learned fallback vector")
	return x, err
}

// ExplainScenario explains a scenario's knowledge like ExplainUser.
func (e *Explainer) ExplainScenario(name string, requireReasoning bool) (report.Explanation, error) {
	id, err := e.scenarioID(name)
	if err != nil {
		return report.Explanation{}, err
	}
	x, err := e.explain(kb.ScenarioKey(name), requireReasoning)
	if err != nil {
		return x, err
	}
	x.MainScenario = name
	err = e.addEffects(&x, "scenario", e.cfg.Model.Meta.Levels.Scenario(), func() []report.Effect { return e.scenarios[id] }, "the mean scenario vector")
	return x, err
}

// addEffects fills in how far one meta level's knowledge moves the logits
// (effects, read once measure has run), against what it is swapped for,
// or says why the model has no such level. An explanation that already
// says why its effects are missing is left as it is.
func (e *Explainer) addEffects(x *report.Explanation, level string, has bool, effects func() []report.Effect, against string) error {
	if x.EffectsMissing != "" {
		return nil
	}
	if !has {
		x.EffectsMissing = fmt.Sprintf("the model has no %s-level meta networks (model.meta.levels = %s)", level, e.cfg.Model.Meta.Levels)
		return nil
	}
	if err := e.measure(); err != nil {
		return err
	}
	x.Effects, x.EffectsAgainst = effects(), against
	return nil
}

// explain fills what the store and the prompts say about key.
func (e *Explainer) explain(key string, requireReasoning bool) (report.Explanation, error) {
	meta := e.store.Meta()
	prompt, err := e.prompt(key)
	if err != nil {
		return report.Explanation{}, err
	}
	x := report.Explanation{Key: key, Prompt: prompt, Encoder: fmt.Sprintf("%s (%s, dim %d)", meta.Encoder, meta.Model, meta.Dim)}
	if x.Prompt == "" {
		x.Prompt = "(no prompt: the key is not in the training split)"
	}
	var ok bool
	if x.NearestScenarios, ok = e.store.Nearest(key, kb.ScenarioPrefix, 3); !ok {
		return x, fmt.Errorf("knowledge store %s has no vector for %s (it uses the fallback); run `msrtrain knowledge build`", e.store.Dir(), key)
	}
	x.NearestUsers, _ = e.store.Nearest(key, kb.UserPrefix, 5)
	text, found, err := e.store.Reasoning(key)
	if err != nil {
		return x, err
	}
	x.Reasoning = text
	if strings.TrimSpace(text) == "" {
		switch {
		case meta.Encoder == "hash":
			x.ReasoningMissing = "the hash encoder is not an LLM and writes no reasoning; build the store with knowledge.encoder=openai and a chat_model"
		case !found:
			x.ReasoningMissing = fmt.Sprintf("the store holds no reasoning line for %s (imported vectors carry none)", key)
		default:
			x.ReasoningMissing = fmt.Sprintf("the %s encoder stored an empty reasoning (no chat model: the prompt alone was embedded)", meta.Encoder)
		}
		if requireReasoning {
			return x, fmt.Errorf("%w for %s in knowledge store %s: %s", ErrNoReasoning, key, e.store.Dir(), x.ReasoningMissing)
		}
	}
	if e.loaded == nil {
		x.EffectsMissing = "no trained model given (--checkpoint)"
	}
	return x, nil
}

// TopUsers explains the n users whose knowledge moves their logits most,
// largest first, among the users with at least the median number of rows
// (a mean over one or two rows says little).
func (e *Explainer) TopUsers(n int) ([]report.Explanation, error) {
	if e.loaded == nil || !e.cfg.Model.Meta.Levels.User() {
		return nil, nil
	}
	if err := e.measure(); err != nil {
		return nil, err
	}
	type ranked struct {
		user int64
		size float64
	}
	var rows []int
	for _, effects := range e.users {
		rows = append(rows, report.Explanation{Effects: effects}.Rows())
	}
	slices.Sort(rows)
	var all []ranked
	for u, effects := range e.users {
		x := report.Explanation{Effects: effects}
		if u != 0 && x.Rows() >= rows[len(rows)/2] {
			all = append(all, ranked{u, x.Size()})
		}
	}
	slices.SortFunc(all, func(a, b ranked) int { return cmp.Or(cmp.Compare(b.size, a.size), cmp.Compare(a.user, b.user)) })
	var out []report.Explanation
	for _, r := range all[:min(n, len(all))] {
		x, err := e.explainUserAt(r.user, false) // by index: no lookup by id
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// Scenarios explains every scenario, in the data's order.
func (e *Explainer) Scenarios() ([]report.Explanation, error) {
	var out []report.Explanation
	for _, name := range e.splits.Vocabs.Schema().ScenarioNames() {
		x, err := e.ExplainScenario(name, false)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// measure scores every row of the data three times (own knowledge; every
// user on the fallback; every scenario on the mean scenario vector) and
// aggregates the logit shifts per user and scenario. A row's scenario-level
// layers see only its own scenario's vector, and its user-level layers only
// its own user's, so swapping them all at once measures each key alone.
func (e *Explainer) measure() error {
	if e.measured {
		return nil
	}
	m := e.loaded.Model
	if m.Meta == nil {
		return fmt.Errorf("the model has no meta networks")
	}
	scen, user, known, err := knowledge.Matrices(e.store, e.splits.Vocabs)
	if err != nil {
		return err
	}
	own := m.Meta.Knowledge
	defer func() { m.Meta.Knowledge = own }()
	base, err := e.logits()
	if err != nil {
		return err
	}
	dim := own.Dim
	e.users = map[int64][]report.Effect{}
	e.scenarios = map[int][]report.Effect{}
	if m.Meta.UserFallback != nil {
		fallback, err := model.NewKnowledge(scen, user, make([]bool, len(known)), dim, e.loaded.Device)
		if err != nil {
			return err
		}
		m.Meta.Knowledge = fallback
		swapped, err := e.logits()
		fallback.Close()
		if err != nil {
			return err
		}
		e.users = aggregate(base, swapped, func(r scoredRow) int64 { return r.user }, e.names())
	}
	if e.cfg.Model.Meta.Levels.Scenario() {
		mean := meanRows(scen, int(dim))
		avg, err := model.NewKnowledge(mean, user, known, dim, e.loaded.Device)
		if err != nil {
			return err
		}
		m.Meta.Knowledge = avg
		swapped, err := e.logits()
		avg.Close()
		if err != nil {
			return err
		}
		for s, effects := range aggregate(base, swapped, func(r scoredRow) int64 { return r.scenario }, e.names()) {
			e.scenarios[int(s)] = effects
		}
	}
	e.measured = true
	return nil
}

func (e *Explainer) names() []string { return e.splits.Vocabs.Schema().ScenarioNames() }

// meanRows replaces every row of a row-major matrix by the mean row.
func meanRows(m []float32, dim int) []float32 {
	rows := len(m) / dim
	mean := make([]float32, dim)
	for r := range rows {
		for j := range dim {
			mean[j] += m[r*dim+j] / float32(rows)
		}
	}
	out := make([]float32, len(m))
	for r := range rows {
		copy(out[r*dim:], mean)
	}
	return out
}

type scoredRow struct {
	user, scenario int64
	logit          float64
}

// logits scores a sample of the train, valid and test rows (at most
// maxRows, the same rows every time) in a fixed order, so two calls line
// up row by row.
func (e *Explainer) logits() ([]scoredRow, error) {
	parts, err := e.splits.Sample(e.maxRows, e.cfg.Seed)
	if err != nil {
		return nil, err
	}
	rows, err := e.loaded.ScoreTables(parts[:]...)
	if err != nil {
		return nil, err
	}
	e.sampled, e.total = len(rows), e.splits.Train.Len()+e.splits.Valid.Len()+e.splits.Test.Len()
	e.work.rowsScored += len(rows)
	out := make([]scoredRow, len(rows))
	for i, r := range rows {
		out[i] = scoredRow{user: r.User, scenario: r.Scenario, logit: logit(r.Prob)}
	}
	return out, nil
}

// SampleNote says, when the effects were measured on a sample, on how
// many rows of how many ("" when on all of them or not measured).
func (e *Explainer) SampleNote() string {
	if !e.measured || e.sampled == e.total {
		return ""
	}
	return fmt.Sprintf("The effects of knowledge on the model are measured on %d rows sampled at random from the run's %d rows (train, valid and test), so that the report costs the same whatever the size of the data.", e.sampled, e.total)
}

// logit inverts the sigmoid the scorer applied (probabilities clipped like
// the metrics' so saturated rows stay finite).
func logit(p float32) float64 {
	q := min(max(float64(p), 1e-7), 1-1e-7)
	return math.Log(q) - math.Log1p(-q)
}

// aggregate groups the logit shifts base − swapped by key and scenario.
func aggregate(base, swapped []scoredRow, key func(scoredRow) int64, names []string) map[int64][]report.Effect {
	type acc struct{ abs, sum, n float64 }
	sums := map[int64][]acc{}
	for i, r := range base {
		k := key(r)
		a, ok := sums[k]
		if !ok {
			a = make([]acc, len(names))
			sums[k] = a
		}
		d := r.logit - swapped[i].logit
		a[r.scenario].abs += math.Abs(d)
		a[r.scenario].sum += d
		a[r.scenario].n++
	}
	out := make(map[int64][]report.Effect, len(sums))
	for k, a := range sums {
		for s, x := range a {
			if x.n > 0 {
				out[k] = append(out[k], report.Effect{Scenario: names[s], Rows: int(x.n), MeanAbsShift: x.abs / x.n, MeanShift: x.sum / x.n})
			}
		}
	}
	return out
}

// KnowledgeView is the store's scenario similarity and every user's
// vector with the scenario of most of the user's training rows.
func (e *Explainer) KnowledgeView() *report.Knowledge {
	meta := e.store.Meta()
	k := &report.Knowledge{Store: e.store.Dir(), Encoder: fmt.Sprintf("%s, %s, dim %d", meta.Encoder, meta.Model, meta.Dim)}
	k.Scenarios, k.Similarity = e.store.ScenarioSimilarity()
	users := e.splits.Vocabs.Fields[0]
	names := e.names()
	for i := int64(1); i < int64(users.Size()); i++ {
		key := kb.UserKey(users.Token(i))
		v, ok := e.store.Lookup(key)
		s := e.main[i]
		if ok && s >= 0 {
			k.Users = append(k.Users, report.UserVector{Key: key, MainScenario: names[s], Vector: v})
		}
	}
	return k
}
