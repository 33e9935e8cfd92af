package model

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/pybench"
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// The exported TorchScript module against the Go forward pass: every
// backbone, bare and with both meta levels (and on MMoE and STAR the other
// levels, residual fusion and the factorized head; the scenario branch on
// MMoE, STAR and EPNet; Scenario-Wise-Rec's EPNet and M3oE; PLE at three
// levels with either shared gate; learned and random
// knowledge), trained a few steps (batch statistics move, learned
// knowledge moves) and perturbed, scored in Python
// (torch.jit.load), in a C++ program built against libtorch
// (torch::jit::load) and through this binding, on batches of 1, 7 and 4096
// rows, one of one scenario, one missing a scenario; every batch holds
// out-of-vocabulary ids and users without knowledge.

// scriptTestSpec: fields laid out as testFields (user, item, scenario-side,
// context), two numeric features, three scenarios.
var scriptTestSpec = Spec{VocabSizes: []int64{30, 25, 5, 6}, Numeric: 2, Scenarios: testScenarios, Roles: testFields.Roles}

const scriptTestKnowledgeDim = 8

// scriptTestWidth is the width of x: 4 fields of 4 values and 2 numeric.
const scriptTestWidth = 4*4 + 2

type scriptCase struct {
	name      string
	backbone  string
	levels    MetaLevels
	edit      func(*Config)
	knowledge scriptKnowledge
	noNumeric bool // the data has no numeric features: num is [B, 0]
}

// scriptKnowledge is the kind of knowledge a case's model reads.
type scriptKnowledge int

const (
	// knowledgeStore: some users have no vector, as with a knowledge store.
	knowledgeStore scriptKnowledge = iota
	// knowledgeRandom: every user of the vocabulary has a fixed vector, as
	// knowledge.encoder = random gives (the out-of-vocabulary user on the fallback).
	knowledgeRandom
	// knowledgeLearned: knowledgeRandom's vectors, trained with the model
	// (knowledge.encoder = learned).
	knowledgeLearned
)

// spec is the case's data: scriptTestSpec, without numeric features when the case says so.
func (c scriptCase) spec() Spec {
	s := scriptTestSpec
	if c.noNumeric {
		s.Numeric = 0
	}
	return s
}

func scriptCases() []scriptCase {
	var cases []scriptCase
	for _, b := range BackboneNames() {
		for _, l := range []MetaLevels{LevelsNone, LevelsBoth} {
			cases = append(cases, scriptCase{name: b + "/" + string(l), backbone: b, levels: l})
		}
	}
	return append(cases,
		scriptCase{name: "mmoe/scenario", backbone: "mmoe", levels: LevelsScenario},
		scriptCase{name: "mmoe/user", backbone: "mmoe", levels: LevelsUser},
		scriptCase{name: "star/both/residual", backbone: "star", levels: LevelsBoth, edit: func(c *Config) {
			c.Meta.Fusion, c.Meta.Layers = FusionResidual, []int64{scriptTestWidth}
		}},
		scriptCase{name: "star/both/factorized", backbone: "star", levels: LevelsBoth, edit: func(c *Config) {
			c.Meta.Head, c.Meta.Rank, c.Meta.Layers = MetaHeadFactorized, 5, []int64{7, 6}
		}},
		scriptCase{name: "ppnet/both/no numeric features", backbone: "ppnet", levels: LevelsBoth, noNumeric: true},
		scriptCase{name: "mmoe/both/branch/random knowledge", backbone: "mmoe", levels: LevelsBoth, edit: scenarioBranch, knowledge: knowledgeRandom},
		scriptCase{name: "star/scenario/branch", backbone: "star", levels: LevelsScenario, edit: scenarioBranch},
		scriptCase{name: "epnet/both/scenario_wise_rec/branch", backbone: "epnet", levels: LevelsBoth, edit: func(c *Config) {
			scenarioBranch(c)
			c.EPNet.Structure = StructureScenarioWiseRec
		}},
		scriptCase{name: "m3oe/both/scenario_wise_rec", backbone: "m3oe", levels: LevelsBoth, edit: func(c *Config) {
			c.M3oE.Structure = StructureScenarioWiseRec
		}},
		scriptCase{name: "ple/none/3 levels", backbone: "ple", levels: LevelsNone, edit: func(c *Config) { c.PLE.Levels = 3 }},
		scriptCase{name: "ple/both/3 levels/shared gate own/learned knowledge", backbone: "ple", levels: LevelsBoth, knowledge: knowledgeLearned, edit: func(c *Config) {
			c.PLE.Levels, c.PLE.SharedGate = 3, SharedGateOwn
		}},
	)
}

// scenarioBranch puts the scenario-level meta layers beside the backbone.
func scenarioBranch(c *Config) { c.Meta.Placement = PlacementBranch }

// scriptTestKnowledge: random vectors; user 0 (out of vocabulary) has none,
// and with knowledgeStore neither has every third.
func scriptTestKnowledge(t *testing.T, r *rand.Rand, kind scriptKnowledge) *Knowledge {
	t.Helper()
	vec := func(n int64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	users := scriptTestSpec.VocabSizes[0]
	known := make([]bool, users)
	for u := range known {
		known[u] = u != 0 && (kind != knowledgeStore || u%3 != 0)
	}
	k, err := NewKnowledge(vec(int64(scriptTestSpec.Scenarios)*scriptTestKnowledgeDim), vec(users*scriptTestKnowledgeDim), known, scriptTestKnowledgeDim, torch.CPU)
	require.NoError(t, err)
	k.Learned = kind == knowledgeLearned
	return k
}

// buildScriptModel builds a case's model, trains it a few steps and perturbs every parameter.
func buildScriptModel(t *testing.T, c scriptCase) *Model {
	t.Helper()
	require.NoError(t, torch.ManualSeed(11))
	r := rand.New(rand.NewPCG(3, uint64(len(c.name))))
	cfg := DefaultConfig()
	cfg.Backbone, cfg.EmbeddingDim = c.backbone, 4
	cfg.BackboneConfig = withNormAndDropout(smallBackboneConfig(), 0.1)
	cfg.Meta.Levels, cfg.Meta.ProjectionDim, cfg.Meta.Layers = c.levels, 6, []int64{6}
	cfg.Meta.Generator = nn.MLPConfig{Hidden: []int64{5}, Activation: nn.ReLU, BatchNorm: true}
	if c.edit != nil {
		c.edit(&cfg)
	}
	var know *Knowledge
	if c.levels.Enabled() {
		know = scriptTestKnowledge(t, r, c.knowledge)
	}
	m, err := New(cfg, c.spec(), know, torch.CPU)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	opt := newAdam(t, m.Store, 1e-2)
	defer opt.Close()
	for range 4 {
		sc := torch.NewScope()
		b := scriptTestRows(r, 48, nil, c.spec().Numeric)
		batch, _ := b.grouped()
		y := torch.Rand([]int64{int64(b.n)}, torch.Float32, torch.CPU).GtScalar(0.5).ToDType(torch.Float32)
		adamStep(t, opt, torch.BCEWithLogits(m.Forward(batch), y, nil, nil, torch.ReduceMean))
		sc.Close()
	}
	perturb(t, m.Store)
	return m
}

// scriptRows are encoded rows in no particular order.
type scriptRows struct {
	n, numeric int
	cat        []int64 // [n, fields]
	num        []float32
	scenario   []int64
}

// scriptTestRows draws n rows of the given scenarios (all when nil), with
// out-of-vocabulary items (every fifth row), users (every seventh) and context values.
func scriptTestRows(r *rand.Rand, n int, scenarios []int64, numeric int) scriptRows {
	if scenarios == nil {
		scenarios = []int64{0, 1, 2}
	}
	sizes := scriptTestSpec.VocabSizes
	b := scriptRows{n: n, numeric: numeric}
	for i := range n {
		for f, size := range sizes {
			v := r.Int64N(size)
			if (f == 1 && i%5 == 0) || (f == 0 && i%7 == 3) {
				v = 0
			}
			b.cat = append(b.cat, v)
		}
		for range numeric {
			b.num = append(b.num, float32(r.NormFloat64()))
		}
		b.scenario = append(b.scenario, scenarios[r.IntN(len(scenarios))])
	}
	return b
}

// grouped is the rows as the trainer hands them to Model.Forward, grouped
// by scenario (stable), and for each grouped row its position in b.
func (b scriptRows) grouped() (Batch, []int) {
	order := make([]int, b.n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return int(b.scenario[i] - b.scenario[j]) })
	fields := len(scriptTestSpec.VocabSizes)
	numeric := b.numeric
	counts := make([]int64, scriptTestSpec.Scenarios)
	var cat, scen []int64
	var num []float32
	for _, i := range order {
		cat = append(cat, b.cat[i*fields:(i+1)*fields]...)
		num = append(num, b.num[i*numeric:(i+1)*numeric]...)
		scen = append(scen, b.scenario[i])
		counts[b.scenario[i]]++
	}
	n := int64(b.n)
	batch := Batch{Cat: torch.FromSlice(cat, n, int64(fields)), Scenario: torch.FromSlice(scen, n), Counts: counts}
	if numeric > 0 { // as the trainer's batches: no tensor without numeric features
		batch.Num = torch.FromSlice(num, n, int64(numeric))
	}
	return batch, order
}

// goScores scores the rows with the frozen model as msrtrain's scoring does.
func goScores(t *testing.T, m *Model, b scriptRows) []float32 {
	t.Helper()
	var out []float32
	torch.NoGrad(func() {
		sc := torch.NewScope()
		defer sc.Close()
		batch, order := b.grouped()
		p := values(t, m.Forward(batch).Sigmoid())
		out = make([]float32, b.n)
		for g, i := range order {
			out[i] = p[g]
		}
	})
	return out
}

// knowledgeRows maps the rows' users to the exported module's knowledge rows.
func knowledgeRows(b scriptRows, e *Exported) []int64 {
	rowOf := map[int64]int64{}
	for r, u := range e.KnowledgeUsers {
		rowOf[u] = int64(r)
	}
	fields := len(scriptTestSpec.VocabSizes)
	out := make([]int64, b.n)
	for i := range out {
		out[i] = MissingKnowledgeRow
		if r, ok := rowOf[b.cat[i*fields]]; ok {
			out[i] = r
		}
	}
	return out
}

func (b scriptRows) tensors(rows []int64) []*torch.Tensor {
	n := int64(b.n)
	return []*torch.Tensor{
		torch.FromSlice(b.cat, n, int64(len(scriptTestSpec.VocabSizes))),
		torch.FromSlice(b.num, n, int64(b.numeric)),
		torch.FromSlice(b.scenario, n), torch.FromSlice(rows, n),
	}
}

// writeRows writes the layout score_exported.py reads.
func (b scriptRows) write(t *testing.T, path string, rows []int64) {
	t.Helper()
	var buf bytes.Buffer
	for _, v := range []any{b.cat, b.num, b.scenario, rows} {
		require.NoError(t, binary.Write(&buf, binary.LittleEndian, v))
	}
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func readScores(t *testing.T, path string, n int) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, raw, 4*n, path)
	out := make([]float32, n)
	require.NoError(t, binary.Read(bytes.NewReader(raw), binary.LittleEndian, out))
	return out
}

// startScorerBuild compiles testdata/score_exported.cpp against the
// libtorch `make build` found (build/torch.mk), in the background.
func startScorerBuild(t *testing.T, dir string) (binary string, wait func() error) {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join("..", "build", "torch.mk"))
	require.NoError(t, err, "run `make build` first: the test compiles against the libtorch it found")
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(mk))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":="); ok {
			vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	binary = filepath.Join(dir, "score_exported")
	args := append(strings.Fields(vars["SHIM_CXXFLAGS"]), "-O0", filepath.Join("testdata", "score_exported.cpp"), "-o", binary)
	args = append(args, strings.Fields(vars["TORCH_LDFLAGS"])...)
	cmd := exec.Command("g++", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start(), "g++ (make setup installs build-essential)")
	return binary, func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("compiling score_exported.cpp: %v\n%s", err, out.String())
		}
		return nil
	}
}

func TestExportedModuleMatchesGo(t *testing.T) {
	lockThread(t)
	dir := t.TempDir()
	scorer, built := startScorerBuild(t, dir)
	var manifest strings.Builder
	type expectation struct {
		what   string
		want   []float32
		output string
	}
	var expect []expectation
	r := rand.New(rand.NewPCG(5, 6))
	batches := []struct {
		name      string
		rows      int
		scenarios []int64
	}{
		{"1 row", 1, nil}, {"7 rows", 7, nil}, {"4096 rows", 4096, nil},
		{"one scenario", 9, []int64{1}}, {"scenario 1 missing", 11, []int64{0, 2}},
	}
	for ci, c := range scriptCases() {
		m := buildScriptModel(t, c)
		exp, err := m.Script()
		require.NoError(t, err, c.name)
		path := filepath.Join(dir, fmt.Sprintf("model%d.pt", ci))
		require.NoError(t, exp.Module.Save(path, nil))
		exp.Close()
		loaded, err := torch.LoadScriptModule(path)
		require.NoError(t, err)
		fmt.Fprintf(&manifest, "model %s\n", path)
		if c.knowledge == knowledgeLearned {
			assertLearnedKnowledgeInside(t, m, exp, loaded)
		}

		thaw, err := m.Freeze()
		require.NoError(t, err)
		var big scriptRows
		var bigRows []int64
		var bigWant []float32
		for bi, b := range batches {
			rows := scriptTestRows(r, b.rows, b.scenarios, c.spec().Numeric)
			krows := knowledgeRows(rows, exp)
			want := goScores(t, m, rows)
			what := c.name + ", " + b.name
			// In this process, through the binding.
			sc := torch.NewScope()
			got := values(t, loaded.Forward(rows.tensors(krows)...))
			sc.Close()
			assertClose(t, what+" (Go binding)", want, got)

			input := filepath.Join(dir, fmt.Sprintf("in%d-%d", ci, bi))
			rows.write(t, input, krows)
			out := filepath.Join(dir, fmt.Sprintf("out%d-%d", ci, bi))
			fmt.Fprintf(&manifest, "case %s %d %d %d %s\n", input, rows.n, len(scriptTestSpec.VocabSizes), rows.numeric, out)
			expect = append(expect, expectation{what, want, out})
			if b.rows == 4096 {
				big, bigRows, bigWant = rows, krows, want
			}
		}
		if c.levels.Enabled() {
			// Zeroed and recomputed from the knowledge buffers, the tables score the same.
			input := filepath.Join(dir, fmt.Sprintf("in%d-rebuilt", ci))
			big.write(t, input, bigRows)
			out := filepath.Join(dir, fmt.Sprintf("out%d-rebuilt", ci))
			fmt.Fprintf(&manifest, "rebuild\ncase %s %d %d %d %s\n", input, big.n, len(scriptTestSpec.VocabSizes), big.numeric, out)
			expect = append(expect, expectation{c.name + ", 4096 rows after rebuild_meta_cache", bigWant, out})
			assert.Contains(t, bigRows, int64(MissingKnowledgeRow), "users without knowledge")
			if c.levels.User() {
				assert.Greater(t, slices.Max(bigRows), int64(0), "users with knowledge")
			}
		}
		thaw()
		loaded.Close()
	}
	manifestPath := filepath.Join(dir, "manifest")
	require.NoError(t, os.WriteFile(manifestPath, []byte(manifest.String()), 0o644))

	py := exec.Command(pybench.Python, filepath.Join("testdata", "score_exported.py"), manifestPath, ".py")
	out, err := py.CombinedOutput()
	require.NoError(t, err, "%s (python3-torch, which make setup installs):\n%s", pybench.Python, out)
	require.NoError(t, built())
	cpp := exec.Command(scorer, manifestPath, ".cpp")
	out, err = cpp.CombinedOutput()
	require.NoError(t, err, "score_exported (C++):\n%s", out)
	for _, e := range expect {
		assertClose(t, e.what+" (Python)", e.want, readScores(t, e.output+".py", len(e.want)))
		assertClose(t, e.what+" (C++)", e.want, readScores(t, e.output+".cpp", len(e.want)))
	}
}

// assertLearnedKnowledgeInside: the module holds the trained knowledge
// vectors, the users' in knowledge-row order.
func assertLearnedKnowledgeInside(t *testing.T, m *Model, exp *Exported, loaded *torch.ScriptModule) {
	t.Helper()
	sc := torch.NewScope()
	defer sc.Close()
	state, err := loaded.StateDict()
	require.NoError(t, err)
	k := m.Meta.Knowledge
	for name, want := range map[string]*torch.Tensor{"meta.knowledge.scenario": k.Scenario, "meta.knowledge.user": k.User} {
		got, ok := m.Store.Get(name)
		require.True(t, ok, "%s: learned knowledge is a parameter of the model", name)
		require.Same(t, want, got, name)
	}
	users := torch.FromSlice(exp.KnowledgeUsers, int64(len(exp.KnowledgeUsers)))
	assert.Len(t, exp.KnowledgeUsers, int(scriptTestSpec.VocabSizes[0])-1, "every user but the out-of-vocabulary one")
	assert.Equal(t, values(t, k.Scenario), values(t, state["meta.knowledge.scenario"]))
	assert.Equal(t, values(t, k.User.IndexSelect(0, users)), values(t, state["meta.knowledge.user"]))
}

// assertClose: every probability within 1e-5 of msrtrain's.
func assertClose(t *testing.T, what string, want, got []float32) {
	t.Helper()
	if d := maxAbsDiff(want, got); !(d <= 1e-5) {
		t.Errorf("%s: scores differ from msrtrain's by %g", what, d)
	}
	if len(want) > 0 && slices.Equal(want, make([]float32, len(want))) {
		t.Errorf("%s: every score is 0", what)
	}
	for _, v := range want {
		if math.IsNaN(float64(v)) {
			t.Fatalf("%s: msrtrain's scores hold NaN", what)
		}
	}
}

// TestScriptRefusesUnsupported: a configuration export does not know is refused by key.
func TestScriptRefusesUnsupported(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Meta.Fusion = "gated"
	assert.ErrorContains(t, cfg.Scriptable(), `model.meta.fusion = "gated"`)
	cfg = DefaultConfig()
	cfg.Backbone, cfg.AdaSparse.Form = "adasparse", "annealed"
	assert.ErrorContains(t, cfg.Scriptable(), `model.adasparse.form = "annealed"`)
	assert.NoError(t, DefaultConfig().Scriptable())
	cfg = DefaultConfig()
	cfg.Backbone, cfg.Meta.Placement, cfg.M3oE.Structure, cfg.EPNet.Structure = "m3oe", PlacementBranch, StructureScenarioWiseRec, StructureScenarioWiseRec
	assert.NoError(t, cfg.Scriptable())
}

// Export freezes every user's generator output into the module; a model a
// server froze with a bounded user cache lacks most of them and is refused
// by name, and the same model unfrozen exports.
func TestScriptRefusesBoundedUserCache(t *testing.T) {
	m := buildScriptModel(t, scriptCase{name: "star/both", backbone: "star", levels: LevelsBoth})
	thaw, err := m.FreezeWith(FreezeOptions{UserCacheBytes: 1})
	require.NoError(t, err)
	_, err = m.Script()
	assert.ErrorContains(t, err, "frozen with a user cache bounded by FreezeOptions.UserCacheBytes")
	thaw()
	exp, err := m.Script()
	require.NoError(t, err)
	exp.Close()
}
