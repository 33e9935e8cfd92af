package knowledge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/data/safetensors"
)

// load reads index.json, the rows of vectors.safetensors it covers,
// reasoning.jsonl and any chunk files not yet merged.
func load(dir string, readOnly bool) (*Store, error) {
	ipath := filepath.Join(dir, IndexFile)
	raw, err := os.ReadFile(ipath)
	if err != nil {
		return nil, fmt.Errorf("knowledge store: %w", err)
	}
	var idx index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", ipath, err)
	}
	if idx.Dim <= 0 || idx.Rows != len(idx.Keys) {
		return nil, fmt.Errorf("%s: corrupt index (dim %d, rows %d, %d keys)", ipath, idx.Dim, idx.Rows, len(idx.Keys))
	}
	s := &Store{dir: dir, meta: idx.Meta, readOnly: readOnly, keys: make([]string, idx.Rows),
		rows: make(map[string]int, idx.Rows), hashes: map[string]string{}}
	for k, r := range idx.Keys {
		if r < 0 || r >= idx.Rows || s.keys[r] != "" {
			return nil, fmt.Errorf("%s: corrupt index: key %q has row %d", ipath, k, r)
		}
		s.keys[r] = k
		s.rows[k] = r
	}
	if idx.Rows > 0 {
		// vectors.safetensors may hold more rows than the index when a
		// merge was cut short; those rows come back from their chunk files.
		vecs, _, err := readVectors(filepath.Join(dir, VectorsFile), s.meta.Dim, nil)
		if err != nil {
			return nil, err
		}
		if len(vecs) < idx.Rows*s.meta.Dim {
			return nil, fmt.Errorf("%s: holds %d rows, index %s needs %d", filepath.Join(dir, VectorsFile), len(vecs)/s.meta.Dim, ipath, idx.Rows)
		}
		s.vecs = vecs[:idx.Rows*s.meta.Dim]
	}
	s.compacted = idx.Rows
	if err := s.loadReasoning(); err != nil {
		return nil, err
	}
	if err := s.loadChunks(); err != nil {
		return nil, err
	}
	if !readOnly {
		tmps, _ := filepath.Glob(filepath.Join(dir, atomicfile.TempGlob))
		for _, t := range tmps { // left by a write that was killed
			os.Remove(t)
		}
	}
	return s, nil
}

// readVectors reads the F32 [rows, dim] tensor "vectors" of a store file and
// its "records" metadata into recs when recs is not nil.
func readVectors(path string, dim int, recs *[]reasoningLine) ([]float32, int, error) {
	tensors, meta, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	t, ok := tensors[VectorsTensor]
	if !ok || t.DType != safetensors.F32 || len(t.Shape) != 2 || t.Shape[1] != int64(dim) {
		return nil, 0, fmt.Errorf("%s: want an F32 tensor %q of shape [rows, %d]", path, VectorsTensor, dim)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	if recs != nil {
		if err := json.Unmarshal([]byte(meta["records"]), recs); err != nil || len(*recs) != int(t.Shape[0]) {
			return nil, 0, fmt.Errorf("%s: records metadata does not describe its %d rows (%v)", path, t.Shape[0], err)
		}
	}
	return v, int(t.Shape[0]), nil
}

// loadReasoning reads the prompt hashes from reasoning.jsonl, first cutting
// off a torn last line left by a killed append.
func (s *Store) loadReasoning() error {
	path := filepath.Join(s.dir, ReasoningFile)
	if !s.readOnly {
		if err := truncateTornTail(path); err != nil {
			return err
		}
	}
	return scanReasoning(path, func(l reasoningLine) { s.hashes[l.Key] = l.PromptHash })
}

func truncateTornTail(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && (len(data) == 0 || data[len(data)-1] == '\n')) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("knowledge store: %w", err)
	}
	if err := os.Truncate(path, int64(bytes.LastIndexByte(data, '\n')+1)); err != nil {
		return fmt.Errorf("knowledge store: repair %s: %w", path, err)
	}
	return nil
}

// scanReasoning calls fn for every complete line of a reasoning file; a
// missing file has no lines.
func scanReasoning(path string, fn func(reasoningLine)) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("knowledge store: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			return nil // an unterminated last line is a torn write: skip it
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		var l reasoningLine
		if err := json.Unmarshal(b, &l); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		fn(l)
	}
}

// loadChunks appends the rows of chunk files whose keys are not yet merged.
func (s *Store) loadChunks() error {
	paths, err := filepath.Glob(filepath.Join(s.dir, chunkGlob))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "vectors-"), ".safetensors"))
		if err != nil {
			continue // not one of ours
		}
		var recs []reasoningLine
		vecs, _, err := readVectors(p, s.meta.Dim, &recs)
		if err != nil {
			return err
		}
		for i, l := range recs {
			if _, ok := s.rows[l.Key]; !ok {
				s.appendRow(l, vecs[i*s.meta.Dim:(i+1)*s.meta.Dim])
			}
		}
		s.chunks = append(s.chunks, p)
		s.nextChunk = max(s.nextChunk, n+1)
	}
	return nil
}

func (s *Store) appendRow(l reasoningLine, v []float32) {
	s.rows[l.Key] = len(s.keys)
	s.keys = append(s.keys, l.Key)
	s.vecs = append(s.vecs, v...)
	s.hashes[l.Key] = l.PromptHash
	s.pending = append(s.pending, l)
}

// add validates records and writes them as one chunk file before they
// count as stored. Keys already stored are skipped.
func (s *Store) add(recs []record) error {
	if s.readOnly {
		return fmt.Errorf("knowledge store %s is open read-only", s.dir)
	}
	var keep []record
	seen := map[string]bool{}
	for _, r := range recs {
		if !validKey(r.Key) {
			return fmt.Errorf("knowledge store: invalid key %q (want %s<name> or %s<id>)", r.Key, ScenarioPrefix, UserPrefix)
		}
		if err := checkVector(r.Key, r.vector, s.meta.Dim); err != nil {
			return err
		}
		if _, ok := s.rows[r.Key]; ok || seen[r.Key] {
			continue
		}
		seen[r.Key] = true
		keep = append(keep, r)
	}
	if len(keep) == 0 {
		return nil
	}
	lines := make([]reasoningLine, len(keep))
	flat := make([]float32, 0, len(keep)*s.meta.Dim)
	for i, r := range keep {
		lines[i] = r.reasoningLine
		flat = append(flat, r.vector...)
	}
	js, err := json.Marshal(lines)
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, fmt.Sprintf(chunkFormat, s.nextChunk))
	t := safetensors.FromFloat32([]int64{int64(len(keep)), int64(s.meta.Dim)}, flat)
	if err := safetensors.WriteFile(path, map[string]safetensors.Tensor{VectorsTensor: t}, map[string]string{"records": string(js)}); err != nil {
		return fmt.Errorf("knowledge store: %w", err)
	}
	s.nextChunk++
	s.chunks = append(s.chunks, path)
	for i, l := range lines {
		s.appendRow(l, flat[i*s.meta.Dim:(i+1)*s.meta.Dim])
	}
	if len(s.chunks) >= maxPendingChunks {
		return s.compact()
	}
	return nil
}

// compact merges pending rows into vectors.safetensors, reasoning.jsonl and
// index.json, in that order, then removes the chunk files. Each step is
// atomic or repaired on load, and the chunks stay until the index is
// written, so a kill at any point loses nothing.
func (s *Store) compact() error {
	if s.readOnly || (len(s.chunks) == 0 && s.compacted == len(s.keys)) {
		return nil
	}
	if len(s.keys) > s.compacted {
		t := safetensors.FromFloat32([]int64{int64(len(s.keys)), int64(s.meta.Dim)}, s.vecs)
		meta := map[string]string{"encoder": s.meta.Encoder, "model": s.meta.Model, "template_hash": s.meta.TemplateHash}
		if err := safetensors.WriteFile(filepath.Join(s.dir, VectorsFile), map[string]safetensors.Tensor{VectorsTensor: t}, meta); err != nil {
			return fmt.Errorf("knowledge store: %w", err)
		}
		if err := s.appendReasoning(); err != nil {
			return err
		}
		if err := atomicfile.WriteJSON(filepath.Join(s.dir, IndexFile), index{Meta: s.meta, Rows: len(s.keys), Keys: s.rows}); err != nil {
			return fmt.Errorf("knowledge store: %w", err)
		}
		s.compacted, s.pending = len(s.keys), nil
	}
	for _, c := range s.chunks {
		if err := os.Remove(c); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("knowledge store: %w", err)
		}
	}
	s.chunks = nil
	return atomicfile.SyncDir(s.dir)
}

func (s *Store) appendReasoning() error {
	path := filepath.Join(s.dir, ReasoningFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("knowledge store: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, l := range s.pending {
		if err := enc.Encode(l); err != nil {
			f.Close()
			return fmt.Errorf("knowledge store: %s: %w", path, err)
		}
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("knowledge store: %s: %w", path, err)
	}
	return nil
}
