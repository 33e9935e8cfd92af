package knowledge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/msrtrain/msrtrain/data/atomicfile"
)

// Files of a store directory; see README.md.
const (
	IndexFile     = "index.json"
	VectorsFile   = "vectors.safetensors"
	ReasoningFile = "reasoning.jsonl"
	VectorsTensor = "vectors"
	chunkGlob     = "vectors-*.safetensors"
	chunkFormat   = "vectors-%06d.safetensors"
	// maxPendingChunks bounds how many chunk files accumulate before they
	// are merged into vectors.safetensors.
	maxPendingChunks = 32
)

// Meta says what produced a store's vectors. A store never mixes vectors
// of different Meta.
type Meta struct {
	Encoder      string `json:"encoder"`
	Model        string `json:"model"`
	Dim          int    `json:"dim"`
	TemplateHash string `json:"template_hash"`
}

type index struct {
	Meta
	Rows int            `json:"rows"`
	Keys map[string]int `json:"keys"`
}

// reasoningLine is one line of reasoning.jsonl, and one record of a chunk.
type reasoningLine struct {
	Key        string `json:"key"`
	PromptHash string `json:"prompt_hash"`
	Reasoning  string `json:"reasoning"`
}

type record struct {
	reasoningLine
	vector []float32
}

// Store holds the knowledge vectors of one dataset and encoder in a
// directory. New vectors are first written as self-describing chunk files
// (vectors-NNNNNN.safetensors, each written atomically), then merged into
// vectors.safetensors, reasoning.jsonl and index.json by compact. A kill at
// any point leaves either a chunk file or the merged files intact, and
// opening the store again recovers every row that reached either.
type Store struct {
	dir       string
	meta      Meta
	readOnly  bool
	keys      []string // row order
	rows      map[string]int
	vecs      []float32 // len(keys) × meta.Dim
	hashes    map[string]string
	compacted int             // rows covered by vectors.safetensors and index.json
	pending   []reasoningLine // reasoning of rows >= compacted
	chunks    []string        // chunk files not yet removed by compact
	nextChunk int
}

// Open opens the store in dir for writing, creating it if dir holds none.
// It fails if the store was built with a different encoder, model,
// dimension or template hash than expect.
func Open(dir string, expect Meta) (*Store, error) {
	if expect.Encoder == "" || expect.Dim <= 0 {
		return nil, fmt.Errorf("knowledge store %s: meta needs an encoder name and a positive dim, got %+v", dir, expect)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("knowledge store: %w", err)
	}
	_, err := os.Stat(filepath.Join(dir, IndexFile))
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(dir, expect); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("knowledge store: %w", err)
	}
	s, err := load(dir, false)
	if err != nil {
		return nil, err
	}
	if diff := metaDiff(s.meta, expect); diff != "" {
		return nil, fmt.Errorf("knowledge store %s was built with a different setup (%s); use another directory or --force to start over", dir, diff)
	}
	return s, nil
}

// Load opens an existing store read-only, whatever its Meta.
func Load(dir string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, IndexFile)); err != nil {
		return nil, fmt.Errorf("no knowledge store in %s: %w", dir, err)
	}
	return load(dir, true)
}

// Reset removes the store's files from dir (and nothing else), for --force.
func Reset(dir string) error {
	names := []string{IndexFile, VectorsFile, ReasoningFile}
	for _, g := range []string{chunkGlob, atomicfile.TempGlob} {
		m, err := filepath.Glob(filepath.Join(dir, g))
		if err != nil {
			return err
		}
		for _, p := range m {
			names = append(names, filepath.Base(p))
		}
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reset knowledge store: %w", err)
		}
	}
	return nil
}

func create(dir string, meta Meta) error {
	for _, n := range []string{VectorsFile, ReasoningFile, chunkGlob} {
		if m, _ := filepath.Glob(filepath.Join(dir, n)); len(m) > 0 {
			return fmt.Errorf("knowledge store %s has %s but no %s; use another directory or --force to start over", dir, filepath.Base(m[0]), IndexFile)
		}
	}
	return atomicfile.WriteJSON(filepath.Join(dir, IndexFile), index{Meta: meta, Keys: map[string]int{}})
}

func metaDiff(have, want Meta) string {
	var d []string
	add := func(name string, h, w any) {
		if h != w {
			d = append(d, fmt.Sprintf("%s: stored %v, now %v", name, h, w))
		}
	}
	add("encoder", have.Encoder, want.Encoder)
	add("model", have.Model, want.Model)
	add("dim", have.Dim, want.Dim)
	add("template hash", have.TemplateHash, want.TemplateHash)
	return strings.Join(d, "; ")
}

// Meta says what produced the store's vectors.
func (s *Store) Meta() Meta { return s.meta }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Len is the number of stored vectors.
func (s *Store) Len() int { return len(s.keys) }

// Keys lists the stored keys in row order.
func (s *Store) Keys() []string { return append([]string(nil), s.keys...) }

// Lookup returns a copy of key's vector.
func (s *Store) Lookup(key string) ([]float32, bool) {
	r, ok := s.rows[key]
	if !ok {
		return nil, false
	}
	d := s.meta.Dim
	return append([]float32(nil), s.vecs[r*d:(r+1)*d]...), true
}

// Matrix returns the vectors of keys as a row-major len(keys) × Dim matrix;
// rows of keys without a vector are zero and found[i] is false.
func (s *Store) Matrix(keys []string) (m []float32, found []bool) {
	d := s.meta.Dim
	m = make([]float32, len(keys)*d)
	found = make([]bool, len(keys))
	for i, k := range keys {
		if r, ok := s.rows[k]; ok {
			copy(m[i*d:], s.vecs[r*d:(r+1)*d])
			found[i] = true
		}
	}
	return m, found
}

// PromptHash is the hash of the prompt key's vector was computed from ("" if
// unknown, as for imported vectors).
func (s *Store) PromptHash(key string) string { return s.hashes[key] }

// Reasoning returns the reasoning text stored for key.
func (s *Store) Reasoning(key string) (string, bool, error) {
	if _, ok := s.rows[key]; !ok {
		return "", false, nil
	}
	for i := len(s.pending) - 1; i >= 0; i-- {
		if s.pending[i].Key == key {
			return s.pending[i].Reasoning, true, nil
		}
	}
	text, found := "", false
	err := scanReasoning(filepath.Join(s.dir, ReasoningFile), func(l reasoningLine) {
		if l.Key == key {
			text, found = l.Reasoning, true
		}
	})
	return text, found, err
}

// Close merges pending chunks into the main files.
func (s *Store) Close() error { return s.compact() }
