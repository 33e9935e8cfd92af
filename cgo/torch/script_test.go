package torch

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScriptRef(t *testing.T) {
	for path, want := range map[string]string{
		"embedding.weight":         "self.embedding.weight",
		"backbone.layers.0.weight": `getattr(self.backbone.layers, "0").weight`,
		"towers.1.2.bias":          `getattr(getattr(self.towers, "1"), "2").bias`,
		"meta.in.weight":           `getattr(self.meta, "in").weight`,
	} {
		assert.Equal(t, want, ScriptRef(path), path)
	}
}

// TestScriptModuleRoundTrip: tensors registered by dotted path, source
// defined on them, saved, loaded back and run; the state dict keeps the paths.
func TestScriptModuleRoundTrip(t *testing.T) {
	sc := NewScope()
	defer sc.Close()
	m, err := NewScriptModule("Tiny")
	require.NoError(t, err)
	defer m.Close()
	w := FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b := FromSlice([]float32{0.5, -0.5}, 2)
	mean := FromSlice([]float32{1, 1}, 2)
	require.NoError(t, m.Register("backbone.layers.0.weight", w, ScriptParameter))
	require.NoError(t, m.Register("backbone.layers.0.bias", b, ScriptParameter))
	require.NoError(t, m.Register("backbone.norm.running_mean", mean, ScriptBuffer))
	require.ErrorContains(t, m.Register("backbone.layers.0.weight", w, ScriptParameter), "registered twice")
	require.ErrorContains(t, m.Register("backbone.layers.0.weight.x", w, ScriptParameter), "is a tensor, not a module")
	layer := ScriptRef("backbone.layers.0")
	require.NoError(t, m.Define(`
def forward(self, x: Tensor) -> Tensor:
    return torch.linear(x, `+layer+`.weight, `+layer+`.bias) - self.backbone.norm.running_mean
`))
	path := filepath.Join(t.TempDir(), "tiny.pt")
	require.NoError(t, m.Save(path, map[string][]byte{"features.json": []byte(`{"a": 1}`)}))

	loaded, err := LoadScriptModule(path)
	require.NoError(t, err)
	defer loaded.Close()
	x := FromSlice([]float32{1, 0, -1, 2, 2, 2}, 2, 3)
	got, err := loaded.Forward(x).Float32s()
	require.NoError(t, err)
	// x·Wᵀ + b − 1: rows [1−3, 4−6] + b and [12, 30] + b.
	assert.Equal(t, []float32{-2 + 0.5 - 1, -2 - 0.5 - 1, 12 + 0.5 - 1, 30 - 0.5 - 1}, got)

	state, err := loaded.StateDict()
	require.NoError(t, err)
	var keys []string
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"backbone.layers.0.bias", "backbone.layers.0.weight", "backbone.norm.running_mean"}, keys)
	v, err := state["backbone.layers.0.weight"].Float32s()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, v)

	extra, err := ScriptExtraFile(path, "features.json")
	require.NoError(t, err)
	assert.Equal(t, `{"a": 1}`, string(extra))
	none, err := ScriptExtraFile(path, "absent.json")
	require.NoError(t, err)
	assert.Empty(t, none)
}

// TestScriptModuleErrors: compile errors, bad calls and missing files come
// back as errors that say what failed, never a crash.
func TestScriptModuleErrors(t *testing.T) {
	sc := NewScope()
	defer sc.Close()
	m, err := NewScriptModule("Broken")
	require.NoError(t, err)
	defer m.Close()
	err = m.Define("def forward(self, x: Tensor) -> Tensor:\n    y = x + 1\n    return x.no_such_method()\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no_such_method")
	assert.Contains(t, err.Error(), "line 3", "the compile error names the line")
	t.Log(err)

	// A failed definition leaves its method declared on the class: a new module takes the next ones.
	m.Close()
	m, err = NewScriptModule("Broken")
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Define("def forward(self, x: Tensor) -> Tensor:\n    return x.mm(x)\n"))
	bad := m.Forward(FromSlice([]float32{1, 2, 3}, 1, 3))
	require.Error(t, bad.Err())
	assert.Contains(t, bad.Err().Error(), "script forward")
	assert.Error(t, m.Call("absent", FromSlice([]float32{1}, 1)).Err())
	require.NoError(t, m.Define("def raising(self, x: Tensor) -> Tensor:\n    if x.size(0) > 0:\n        raise ValueError(\"input x: too many rows\")\n    return x\n"))
	assert.ErrorContains(t, m.Call("raising", FromSlice([]float32{1}, 1)).Err(), "input x: too many rows")

	_, err = LoadScriptModule(filepath.Join(t.TempDir(), "missing.pt"))
	assert.ErrorContains(t, err, "missing.pt")
	m.Close()
	assert.ErrorContains(t, m.Define("def f(self) -> int:\n    return 1\n"), "closed")
}
