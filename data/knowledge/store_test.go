package knowledge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func hashMeta(h *HashEncoder) Meta {
	return Meta{Encoder: h.Name(), Model: h.Model(), Dim: h.Dim(), TemplateHash: "t1"}
}

func userPrompts(n int) []Prompt {
	ps := make([]Prompt, n)
	for i := range ps {
		ps[i] = Prompt{Key: UserKey(fmt.Sprint(i)), Text: fmt.Sprintf("user %d likes topic%d and topic%d", i, i%5, i%7)}
	}
	return ps
}

// checkStore asserts that dir holds exactly the vectors h gives prompts.
func checkStore(t *testing.T, dir string, h *HashEncoder, prompts []Prompt) {
	t.Helper()
	s, err := Load(dir)
	require.NoError(t, err)
	if s.Len() != len(prompts) {
		t.Fatalf("store has %d vectors, want %d", s.Len(), len(prompts))
	}
	for _, p := range prompts {
		v, ok := s.Lookup(p.Key)
		if !ok || !reflect.DeepEqual(v, h.Vector(p.Text)) {
			t.Fatalf("%s: vector %v, %v", p.Key, ok, v)
		}
		if s.PromptHash(p.Key) != p.Hash() {
			t.Fatalf("%s: prompt hash %q", p.Key, s.PromptHash(p.Key))
		}
	}
}

func TestStoreBuildResumeAndReopen(t *testing.T) {
	dir := t.TempDir()
	h := NewHashEncoder(16, 3)
	prompts := userPrompts(50)
	s, err := Open(dir, hashMeta(h))
	require.NoError(t, err)
	st, err := Build(context.Background(), s, h, prompts[:20], nil)
	if err != nil || st != (BuildStats{Prompts: 20, Encoded: 20}) {
		t.Fatalf("first build: %+v, %v", st, err)
	}
	var progress bytes.Buffer
	st, err = Build(context.Background(), s, h, prompts, &progress)
	if err != nil || st != (BuildStats{Prompts: 50, Stored: 20, Encoded: 30}) {
		t.Fatalf("second build: %+v, %v", st, err)
	}
	if !strings.Contains(progress.String(), "30/30") {
		t.Errorf("progress output %q lacks the count", progress.String())
	}
	checkStore(t, dir, h, prompts)

	m, found := s.Matrix([]string{"user:3", "user:nobody"})
	if !reflect.DeepEqual(found, []bool{true, false}) || !reflect.DeepEqual(m[:16], h.Vector(prompts[3].Text)) || !reflect.DeepEqual(m[16:], make([]float32, 16)) {
		t.Errorf("Matrix = %v, %v", m, found)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{IndexFile, ReasoningFile, VectorsFile}) {
		t.Errorf("store files = %v", names)
	}
}

func TestStoreRefusesMixing(t *testing.T) {
	dir := t.TempDir()
	h := NewHashEncoder(16, 3)
	s, err := Open(dir, hashMeta(h))
	require.NoError(t, err)
	prompts := userPrompts(3)
	if _, err := Build(context.Background(), s, h, prompts, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		meta Meta
		want string
	}{
		{"template", Meta{"hash", h.Model(), 16, "t2"}, `template hash: stored t1, now t2`},
		{"model", Meta{"hash", "other", 16, "t1"}, `model: stored ` + h.Model() + `, now other`},
		{"dim", Meta{"hash", h.Model(), 8, "t1"}, "dim: stored 16, now 8"},
		{"encoder", Meta{"openai", h.Model(), 16, "t1"}, "encoder: stored hash, now openai"},
	}
	for _, tc := range tests {
		_, err := Open(dir, tc.meta)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s: error = %v, want %q and --force", tc.name, err, tc.want)
		}
	}
	// An encoder that does not match the store.
	if _, err := Build(context.Background(), s, NewHashEncoder(16, 4), prompts, nil); err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("mismatched encoder error = %v", err)
	}
	// A prompt that changed since its vector was stored.
	changed := append([]Prompt(nil), prompts...)
	changed[1].Text += " and more"
	if _, err := Build(context.Background(), s, h, changed, nil); err == nil || !strings.Contains(err.Error(), "user:1") {
		t.Errorf("changed prompt error = %v", err)
	}
	if _, err := Build(context.Background(), s, h, []Prompt{prompts[0], prompts[0]}, nil); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate key error = %v", err)
	}
	// --force: Reset then Open with the new meta.
	require.NoError(t, Reset(dir))
	s, err = Open(dir, tests[0].meta)
	if err != nil || s.Len() != 0 {
		t.Fatalf("after Reset: %v, %d vectors", err, s.Len())
	}
}

// TestStoreRecoversFromKill simulates a process killed at each stage of
// writing and checks that reopening keeps every row that reached disk.
func TestStoreRecoversFromKill(t *testing.T) {
	h := NewHashEncoder(8, 1)
	prompts := userPrompts(12)
	recs := func(ps []Prompt) []record {
		var out []record
		for _, p := range ps {
			out = append(out, record{reasoningLine{p.Key, p.Hash(), "why " + p.Key}, h.Vector(p.Text)})
		}
		return out
	}
	setup := func(t *testing.T) (string, *Store) {
		dir := t.TempDir()
		s, err := Open(dir, hashMeta(h))
		require.NoError(t, err)
		require.NoError(t, s.add(recs(prompts[:4])))
		require.NoError(t, s.compact())
		return dir, s
	}
	tests := []struct {
		name string
		kill func(t *testing.T, dir string, s *Store)
	}{
		{"after chunk, before merge", func(t *testing.T, dir string, s *Store) {
			s.add(recs(prompts[4:8]))
			s.add(recs(prompts[8:]))
		}},
		{"torn temp file", func(t *testing.T, dir string, s *Store) {
			s.add(recs(prompts[4:]))
			os.WriteFile(filepath.Join(dir, ".vectors-000009.safetensors.tmp-123"), []byte("garbage"), 0o644)
		}},
		{"merged vectors, old index, torn reasoning", func(t *testing.T, dir string, s *Store) {
			oldIndex, _ := os.ReadFile(filepath.Join(dir, IndexFile))
			oldReasoning, _ := os.ReadFile(filepath.Join(dir, ReasoningFile))
			s.add(recs(prompts[4:]))
			chunks := s.chunks
			saved := map[string][]byte{}
			for _, c := range chunks {
				saved[c], _ = os.ReadFile(c)
			}
			require.NoError(t, s.compact())
			// Undo the index write and the chunk removal, and tear the
			// reasoning append in the middle of a line.
			os.WriteFile(filepath.Join(dir, IndexFile), oldIndex, 0o644)
			full, _ := os.ReadFile(filepath.Join(dir, ReasoningFile))
			os.WriteFile(filepath.Join(dir, ReasoningFile), full[:len(oldReasoning)+10], 0o644)
			for c, b := range saved {
				os.WriteFile(c, b, 0o644)
			}
		}},
		{"merged and indexed, chunks not yet removed", func(t *testing.T, dir string, s *Store) {
			s.add(recs(prompts[4:]))
			c := s.chunks[0]
			b, _ := os.ReadFile(c)
			s.compact()
			os.WriteFile(c, b, 0o644)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, s := setup(t)
			tc.kill(t, dir, s)
			s2, err := Open(dir, hashMeta(h))
			require.NoError(t, err)
			st, err := Build(context.Background(), s2, h, prompts, nil)
			if err != nil || st.Encoded != 0 || st.Stored != 12 {
				t.Fatalf("rebuild after kill: %+v, %v (want nothing to encode)", st, err)
			}
			checkStore(t, dir, h, prompts)
			r, ok, err := s2.Reasoning("user:11")
			if err != nil || !ok || r != "why user:11" {
				t.Errorf("Reasoning = %q, %v, %v", r, ok, err)
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, "*-0*"))
			tmps, _ := filepath.Glob(filepath.Join(dir, ".*"))
			if len(leftovers)+len(tmps) != 0 {
				t.Errorf("left over: %v %v", leftovers, tmps)
			}
		})
	}
}

func TestStoreCorruptFiles(t *testing.T) {
	h := NewHashEncoder(8, 1)
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"vectors without index", func(dir string) {
			os.WriteFile(filepath.Join(dir, VectorsFile), []byte("x"), 0o644)
		}, "no index.json"},
		{"bad index", func(dir string) {
			os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"encoder":"hash","dim":8,"rows":2,"keys":{"user:1":0}}`), 0o644)
		}, "corrupt index"},
		{"corrupt chunk", func(dir string) {
			s, _ := Open(dir, hashMeta(h))
			s.add([]record{{reasoningLine{Key: "user:1"}, h.Vector("a")}})
			os.WriteFile(s.chunks[0], []byte("xxxxxxxxxxxxxxxx"), 0o644)
		}, "vectors-000000.safetensors"},
		{"bad reasoning line", func(dir string) {
			s, _ := Open(dir, hashMeta(h))
			s.add([]record{{reasoningLine{Key: "user:1"}, h.Vector("a")}})
			s.compact()
			os.WriteFile(filepath.Join(dir, ReasoningFile), []byte("{}\nnot json\n"), 0o644)
		}, "reasoning.jsonl:2:"},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		tc.setup(dir)
		if _, err := Open(dir, hashMeta(h)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no knowledge store") {
		t.Errorf("Load of an empty dir: %v", err)
	}
	s, _ := Open(t.TempDir(), hashMeta(h))
	if err := s.add([]record{{reasoningLine{Key: "user:1"}, []float32{1}}}); err == nil || !strings.Contains(err.Error(), "dimension 1, want 8") {
		t.Errorf("short vector error = %v", err)
	}
	if err := s.add([]record{{reasoningLine{Key: "bob"}, h.Vector("a")}}); err == nil || !strings.Contains(err.Error(), `invalid key "bob"`) {
		t.Errorf("bad key error = %v", err)
	}
}

func TestInspect(t *testing.T) {
	h := NewHashEncoder(32, 1)
	s, _ := Open(t.TempDir(), hashMeta(h))
	prompts := []Prompt{
		{Key: "scenario:b", Facts: "short videos about cooking and food"},
		{Key: "scenario:a", Facts: "short videos about cooking and food"},
		{Key: "scenario:c", Facts: "zz"},
		{Key: "user:1", Facts: "x"},
	}
	if _, err := Build(context.Background(), s, h, prompts, nil); err != nil {
		t.Fatal(err)
	}
	names, sim := s.ScenarioSimilarity()
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
		t.Fatalf("names = %v", names)
	}
	if sim[0][1] < 0.9999 || sim[2][2] < 0.9999 || sim[0][2] > 0.7 || sim[0][2] != sim[2][0] {
		t.Errorf("similarity = %v", sim)
	}
	want := []string{"scenario:a", "scenario:b", "scenario:c", "scenario:d", "user:1", "user:2", "user:3"}
	c := s.Coverage(want)
	if c.Scenarios != 4 || c.ScenariosWith != 3 || c.Users != 3 || c.UsersWith != 1 ||
		!reflect.DeepEqual(c.MissingScenarios, []string{"scenario:d"}) || !reflect.DeepEqual(c.MissingUsers, []string{"user:2", "user:3"}) {
		t.Errorf("coverage = %+v", c)
	}
	var out bytes.Buffer
	require.NoError(t, s.WriteInspect(&out, want))
	for _, w := range []string{"users      1 of 3 have vectors, 2 without", "scenarios  3 of 4", "1.000"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("inspect output lacks %q:\n%s", w, out.String())
		}
	}
}

func TestNearest(t *testing.T) {
	h := NewHashEncoder(32, 1)
	s, _ := Open(t.TempDir(), hashMeta(h))
	prompts := []Prompt{
		{Key: "user:a", Facts: "cooking food recipes kitchen"},
		{Key: "user:b", Facts: "football goals league match"},
		{Key: "user:c", Facts: "cooking food recipes kitchen knives"},
		{Key: "scenario:s", Facts: "cooking food recipes kitchen"},
	}
	if _, err := Build(context.Background(), s, h, prompts, nil); err != nil {
		t.Fatal(err)
	}
	near, ok := s.Nearest("user:a", UserPrefix, 5)
	if !ok || len(near) != 2 || near[0].Key != "user:c" || near[1].Key != "user:b" || near[0].Cosine <= near[1].Cosine {
		t.Fatalf("nearest users of user:a = %v, %v", near, ok)
	}
	near, _ = s.Nearest("user:a", ScenarioPrefix, 1)
	if len(near) != 1 || near[0].Key != "scenario:s" || near[0].Cosine < 0.9999 {
		t.Fatalf("nearest scenario of user:a = %v", near)
	}
	if _, ok := s.Nearest("user:zz", UserPrefix, 1); ok {
		t.Fatal("an unknown key has neighbours")
	}
}
