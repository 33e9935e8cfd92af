package knowledge

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/msrtrain/msrtrain/data/safetensors"
)

// VectorFile is a matrix of vectors computed elsewhere with one key per row.
type VectorFile struct {
	Keys []string
	Dim  int
	Data []float32 // len(Keys) × Dim, row-major
}

// ReadVectorFile reads a [N, D] float matrix (.npy, or a .safetensors
// tensor named tensorName, or its only tensor when tensorName is empty)
// and an ids file (.json array, or one key per line with an optional
// header line "key"); row i belongs to id i. See README.md.
func ReadVectorFile(vectorsPath, idsPath, tensorName string) (*VectorFile, error) {
	t, err := readMatrix(vectorsPath, tensorName)
	if err != nil {
		return nil, err
	}
	data, err := t.AsFloat32()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", vectorsPath, err)
	}
	rows, dim := int(t.Shape[0]), int(t.Shape[1])
	for i, x := range data {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%s: row %d column %d is %v", vectorsPath, i/dim, i%dim, x)
		}
	}
	keys, err := readIDs(idsPath)
	if err != nil {
		return nil, err
	}
	if len(keys) != rows {
		return nil, fmt.Errorf("vectors file %s has %d rows but ids file %s has %d ids", vectorsPath, rows, idsPath, len(keys))
	}
	return &VectorFile{Keys: keys, Dim: dim, Data: data}, nil
}

func readMatrix(path, tensorName string) (safetensors.Tensor, error) {
	var t safetensors.Tensor
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		var err error
		if t, err = safetensors.ReadNpyFile(path); err != nil {
			return t, err
		}
	case ".safetensors":
		tensors, _, err := safetensors.ReadFile(path)
		if err != nil {
			return t, err
		}
		names := sortedKeys(tensors)
		switch {
		case tensorName != "":
			var ok bool
			if t, ok = tensors[tensorName]; !ok {
				return t, fmt.Errorf("%s: no tensor %q (it has %s)", path, tensorName, strings.Join(names, ", "))
			}
		case len(names) == 1:
			t = tensors[names[0]]
		default:
			return t, fmt.Errorf("%s: holds %d tensors (%s); name the one to import", path, len(names), strings.Join(names, ", "))
		}
	default:
		return t, fmt.Errorf("%s: vectors must be a .npy or .safetensors file", path)
	}
	if len(t.Shape) != 2 || t.Shape[1] == 0 {
		return t, fmt.Errorf("%s: want a [N, D] matrix, got shape %v", path, t.Shape)
	}
	return t, nil
}

// readIDs reads knowledge keys from a JSON array of strings or
// from lines (CSV, one column, optional header "key").
func readIDs(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, fmt.Errorf("%s: want a JSON array of key strings: %w", path, err)
		}
	} else {
		r := csv.NewReader(bytes.NewReader(raw))
		r.FieldsPerRecord = 1
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			keys = append(keys, strings.TrimSpace(rec[0]))
		}
		if len(keys) > 0 && keys[0] == "key" {
			keys = keys[1:]
		}
	}
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		if !validKey(k) {
			return nil, fmt.Errorf("%s: id %d %q is not a key (want %s<name> or %s<raw id>)", path, i, k, ScenarioPrefix, UserPrefix)
		}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s: key %q appears at ids %d and %d", path, k, j, i)
		}
		seen[k] = i
	}
	return keys, nil
}

// Import adds every row of a vector file (see ReadVectorFile) to the store,
// skipping keys it already has, and returns how many it added.
func Import(s *Store, vectorsPath, idsPath, tensorName string) (int, error) {
	vf, err := ReadVectorFile(vectorsPath, idsPath, tensorName)
	if err != nil {
		return 0, err
	}
	if vf.Dim != s.Meta().Dim {
		return 0, fmt.Errorf("vectors file %s has dimension %d, store %s has %d", vectorsPath, vf.Dim, s.Dir(), s.Meta().Dim)
	}
	before := s.Len()
	for start := 0; start < len(vf.Keys); start += 4096 {
		var recs []record
		for i := start; i < min(start+4096, len(vf.Keys)); i++ {
			recs = append(recs, record{reasoningLine{Key: vf.Keys[i]}, vf.Data[i*vf.Dim : (i+1)*vf.Dim]})
		}
		if err := s.add(recs); err != nil {
			return s.Len() - before, err
		}
	}
	return s.Len() - before, s.compact()
}

// FileEncoder serves vectors from a VectorFile: the "file" encoder. Prompts
// whose keys the file lacks are omitted from Encode's results.
type FileEncoder struct {
	vf    *VectorFile
	model string
	rows  map[string]int
}

// NewFileEncoder reads a vector file (see ReadVectorFile). model names what
// computed the vectors (e.g. "chatglm2-6b"); empty means the file's name.
func NewFileEncoder(vectorsPath, idsPath, tensorName, model string) (*FileEncoder, error) {
	vf, err := ReadVectorFile(vectorsPath, idsPath, tensorName)
	if err != nil {
		return nil, err
	}
	if model == "" {
		model = filepath.Base(vectorsPath)
	}
	rows := make(map[string]int, len(vf.Keys))
	for i, k := range vf.Keys {
		rows[k] = i
	}
	return &FileEncoder{vf: vf, model: model, rows: rows}, nil
}

func (f *FileEncoder) Name() string   { return "file" }
func (f *FileEncoder) Model() string  { return f.model }
func (f *FileEncoder) Dim() int       { return f.vf.Dim }
func (f *FileEncoder) BatchSize() int { return 4096 }

// Encode returns the file's vectors for the prompts' keys it has.
func (f *FileEncoder) Encode(ctx context.Context, prompts []Prompt) ([]Result, error) {
	var out []Result
	for _, p := range prompts {
		if r, ok := f.rows[p.Key]; ok {
			out = append(out, Result{Key: p.Key, Vector: f.vf.Data[r*f.vf.Dim : (r+1)*f.vf.Dim]})
		}
	}
	return out, ctx.Err()
}
