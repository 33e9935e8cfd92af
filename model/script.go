package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// The model as a TorchScript module, for serving outside msrtrain
// (torch.jit.load in Python, torch::jit::load in C++, Triton's libtorch
// backend). Its forward takes encoded rows,
//
//	forward(cat [B, F] int64, num [B, N] float32, scenario [B] int64, user_knowledge_row [B] int64) -> [B] float32
//
// and returns each row's click probability, in the rows' order, for any
// B >= 1 and any mix of scenarios. Inside, it does what the trainer does
// around Model.Forward: it groups the rows by scenario (a stable sort),
// runs each scenario's parameters on its rows only (the emitted control
// flow reads the batch's counts at run time), and puts the probabilities
// back in row order. It runs in evaluation mode: batch normalisation with
// running statistics, no dropout, AdaSparse's α and AdaptDHM's centres as
// trained.
//
// cat holds vocabulary indices (0 = out of vocabulary) and num the numeric
// features as read (a [B, 0] tensor without numeric features). With the
// meta networks, the knowledge travels inside as buffers: the scenario
// vectors ("meta.knowledge.scenario"), the vectors of the users that have
// one ("meta.knowledge.user", one row each, in user-vocabulary order) and
// the learned fallback ("meta.user.fallback"); learned knowledge
// (knowledge.encoder = learned, parameters of the model) travels the same
// way, as buffers of its trained values. user_knowledge_row is the row's
// user's row there, or -1 for a user without one (the fallback). The
// frozen tables Freeze computes ride along too ("meta.cache.*"), so
// scoring reads them as msrtrain's own scoring does; the module's
// rebuild_meta_cache() recomputes them from the knowledge buffers.

// MissingKnowledgeRow is user_knowledge_row's value for a user without a knowledge vector.
const MissingKnowledgeRow = -1

// Exported is a model written as a TorchScript module.
type Exported struct {
	Module *torch.ScriptModule
	// KnowledgeUsers are the user-vocabulary indices of the users with a
	// knowledge vector, in knowledge-row order: row r of the module's user
	// table is vocabulary index KnowledgeUsers[r]. Nil without the
	// user-level network.
	KnowledgeUsers []int64
	// Source is the TorchScript source of the module's methods.
	Source string
}

// Close frees the module.
func (e *Exported) Close() { e.Module.Close() }

// backboneScripter is a backbone whose evaluation-mode forward pass can be
// written as TorchScript (Script sits beside Forward in each backbone's
// file); it returns the variable holding the logits [B].
type backboneScripter interface {
	Script(s *nn.Script, in ScriptInput) string
}

// Scriptable reports why the model's configuration cannot be exported, naming the key; nil when it can.
func (c Config) Scriptable() error {
	if _, ok := backbones[c.Backbone]; !ok {
		return fmt.Errorf("model.backbone = %q: unknown backbone", c.Backbone)
	}
	if c.Meta.Levels.Enabled() {
		switch c.Meta.Fusion {
		case FusionConcat, FusionResidual:
		default:
			return fmt.Errorf("model.meta.fusion = %q: export does not support it", c.Meta.Fusion)
		}
		switch c.Meta.Head {
		case MetaHeadFull, MetaHeadFactorized:
		default:
			return fmt.Errorf("model.meta.head = %q: export does not support it", c.Meta.Head)
		}
	}
	if c.Backbone == "adasparse" {
		switch c.AdaSparse.Form {
		case PrunerBinarization, PrunerScaling, PrunerFusion:
		default:
			return fmt.Errorf("model.adasparse.form = %q: export does not support it", c.AdaSparse.Form)
		}
	}
	return nil
}

// Script builds the model's TorchScript module on the CPU (see the
// comment at the top of this file). It freezes the model while it reads
// the tables, and leaves its mode as it was.
func (m *Model) Script() (*Exported, error) {
	if err := m.Config.Scriptable(); err != nil {
		return nil, err
	}
	checked, ok := m.Backbone.(checkedBackbone)
	var bb backboneScripter
	if ok {
		bb, ok = checked.inner.(backboneScripter)
	}
	if !ok {
		return nil, fmt.Errorf("model.backbone = %q: export to TorchScript is not supported", m.Config.Backbone)
	}
	// The module carries every user's generator output, however many users
	// there are: no bound on the frozen table.
	thaw, err := m.FreezeWith(FreezeOptions{UserCacheBytes: math.MaxInt64})
	if err != nil {
		return nil, err
	}
	defer thaw()
	scope := torch.NewScope()
	defer scope.Close()

	s := nn.NewScript(m.Store)
	exp := &Exported{}
	if m.Meta != nil {
		if exp.KnowledgeUsers, err = m.Meta.scriptBuffers(s); err != nil {
			return nil, err
		}
	}
	methods := []string{m.scriptCheckInputs(s), m.scriptForward(s, bb)}
	if m.Meta != nil {
		methods = append(methods, scriptGeneratedLayer)
		m.Meta.scriptRebuild(s)
		s.Line("return 0")
		methods = append(methods, s.Method("def rebuild_meta_cache(self) -> int:"))
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	exp.Source = strings.Join(methods, "\n")

	mod, err := torch.NewScriptModule("MSRModel")
	if err != nil {
		return nil, err
	}
	exp.Module = mod
	if err := s.Register(mod); err != nil {
		exp.Close()
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := mod.Define(exp.Source); err != nil {
		exp.Close()
		return nil, fmt.Errorf("export: the emitted TorchScript does not compile (a bug in msrtrain; please report it): %w", err)
	}
	return exp, nil
}

// scriptForward writes the module's forward: group the rows by scenario,
// embed, the meta networks, the backbone, probabilities back in row order.
func (m *Model) scriptForward(s *nn.Script, bb backboneScripter) string {
	scenarios := m.Spec.Scenarios
	s.Line("self.check_inputs(cat, num, scenario, user_knowledge_row)")
	s.Line("order = torch.sort(scenario, stable=True)[1]")
	for _, v := range []string{"cat", "num", "scenario", "user_knowledge_row"} {
		s.Line("%s = %s.index_select(0, order)", v, v)
	}
	s.Line("rows = cat.size(0)")
	s.Line("counts: List[int] = torch.bincount(scenario, minlength=%d).tolist()", scenarios)
	s.Line("starts: List[int] = []")
	s.Line("start = 0")
	s.Block("for count in counts:", func() {
		s.Line("starts.append(start)")
		s.Line("start += count")
	})
	fields := m.Embedding.ScriptPerField(s, "cat")
	x := s.Let("%s.flatten(1, 2)", fields)
	if m.Spec.Numeric > 0 {
		x = s.Let("torch.cat([%s, num], 1)", x)
	}
	in := ScriptInput{X: x, Scenario: "scenario", Fields: fields, Rows: "rows", Counts: "counts", Starts: "starts", Scenarios: scenarios}
	branch := ""
	if m.Meta != nil {
		branch = m.Meta.ScriptLogit(s, in) // reads x before the fusion, as Forward
		in.X = m.Meta.Script(s, in, "user_knowledge_row")
	}
	logit := bb.Script(s, in)
	if branch != "" {
		logit = s.Let("%s + %s", logit, branch)
	}
	p := s.Let("torch.sigmoid(%s)", logit)
	s.Line("return torch.empty_like(%s).index_copy_(0, order, %s)", p, p)
	return s.Method("def forward(self, cat: Tensor, num: Tensor, scenario: Tensor, user_knowledge_row: Tensor) -> Tensor:")
}

// scriptCheckInputs writes check_inputs, which refuses inputs of the wrong
// dtype or shape and indices out of range, naming the input.
func (m *Model) scriptCheckInputs(s *nn.Script) string {
	fields, numeric, scenarios := len(m.Spec.VocabSizes), m.Spec.Numeric, m.Spec.Scenarios
	fail := func(cond, msg string) {
		s.Block("if "+cond+":", func() { s.Line("raise ValueError(%s)", msg) })
	}
	fail(fmt.Sprintf("cat.dim() != 2 or cat.size(1) != %d or cat.dtype != torch.int64", fields),
		fmt.Sprintf(`"input cat: want an int64 tensor [B, %d] of vocabulary indices, got " + str(cat.dtype) + " " + str(cat.shape)`, fields))
	s.Line("rows = cat.size(0)")
	fail("rows < 1", `"input cat: the batch has no rows"`)
	fail(fmt.Sprintf("num.dim() != 2 or num.size(0) != rows or num.size(1) != %d or num.dtype != torch.float32", numeric),
		fmt.Sprintf(`"input num: want a float32 tensor [B, %d] (B = " + str(rows) + "), got " + str(num.dtype) + " " + str(num.shape)`, numeric))
	for _, v := range []string{"scenario", "user_knowledge_row"} {
		fail(fmt.Sprintf("%s.dim() != 1 or %s.size(0) != rows or %s.dtype != torch.int64", v, v, v),
			fmt.Sprintf(`"input %s: want an int64 tensor [B] (B = " + str(rows) + "), got " + str(%s.dtype) + " " + str(%s.shape)`, v, v, v))
	}
	fail(fmt.Sprintf("bool((scenario < 0).any()) or bool((scenario >= %d).any())", scenarios),
		fmt.Sprintf(`"input scenario: indices must be in [0, %d), got " + str(int(scenario.min())) + " … " + str(int(scenario.max()))`, scenarios))
	sizes := s.Let("torch.tensor([%s], dtype=torch.long, device=cat.device)", strings.Trim(nn.Ints(m.Spec.VocabSizes), "[]"))
	bad := s.Let("((cat < 0) | (cat >= %s)).any(0).nonzero()", sizes)
	s.Block(fmt.Sprintf("if %s.size(0) > 0:", bad), func() {
		f := s.Let("int(%s[0, 0])", bad)
		s.Line(`raise ValueError("input cat: column " + str(%s) + " holds indices outside [0, " + str(int(%s[%s])) + ")")`, f, sizes, f)
	})
	if m.Meta != nil && m.Meta.user != nil {
		users := torch.ScriptRef("meta.cache.user_hidden") + ".size(0) - 1"
		fail(fmt.Sprintf("bool((user_knowledge_row < %d).any()) or bool((user_knowledge_row >= %s).any())", MissingKnowledgeRow, users),
			fmt.Sprintf(`"input user_knowledge_row: rows must be in [0, " + str(%s) + ") or %d for a user without knowledge"`, users, MissingKnowledgeRow))
	}
	s.Line("return rows")
	return s.Method("def check_inputs(self, cat: Tensor, num: Tensor, scenario: Tensor, user_knowledge_row: Tensor) -> int:")
}
