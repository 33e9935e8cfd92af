package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// MaxHeaderSize bounds the JSON header, as the reference implementation does.
const MaxHeaderSize = 100_000_000

// Read decodes a whole safetensors stream.
func Read(r io.Reader) (map[string]Tensor, map[string]string, error) {
	return read(r, -1)
}

// ReadFile reads and validates a safetensors file; errors name the file.
func ReadFile(path string) (map[string]Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	tensors, meta, err := read(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tensors, meta, nil
}

// read decodes a stream of known total size, or of unknown size when size < 0.
func read(r io.Reader, size int64) (map[string]Tensor, map[string]string, error) {
	var nb [8]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: reading header length: %v", ErrFormat, err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n < 2 || n > MaxHeaderSize || (size >= 0 && n > uint64(size-8)) {
		return nil, nil, fmt.Errorf("%w: header length %d out of bounds", ErrFormat, n)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, nil, fmt.Errorf("%w: reading %d-byte header: %v", ErrFormat, n, err)
	}
	entries, meta, err := parseHeader(header)
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	if size >= 0 {
		data = make([]byte, size-8-int64(n))
		_, err = io.ReadFull(r, data)
	} else {
		data, err = io.ReadAll(r)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading data: %v", ErrFormat, err)
	}
	tensors, err := sliceTensors(entries, data)
	if err != nil {
		return nil, nil, err
	}
	return tensors, meta, nil
}

type namedEntry struct {
	name string
	headerEntry
}

// parseHeader decodes the JSON header, rejecting duplicate names, missing
// fields and anything that is not a single JSON object.
func parseHeader(header []byte) ([]namedEntry, map[string]string, error) {
	trimmed := bytes.TrimRight(header, " ")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	var (
		entries []namedEntry
		meta    map[string]string
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: duplicate header entry %q", ErrFormat, name)
		}
		seen[name] = true
		if name == MetadataKey {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("%w: %s must map strings to strings: %v", ErrFormat, MetadataKey, err)
			}
			continue
		}
		var e struct {
			DType       *string `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := dec.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		if e.DType == nil || e.Shape == nil || len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("%w: tensor %q: needs dtype, shape and two data_offsets", ErrFormat, name)
		}
		entries = append(entries, namedEntry{name, headerEntry{*e.DType, e.Shape, [2]int64{e.DataOffsets[0], e.DataOffsets[1]}}})
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: trailing content after header object", ErrFormat)
	}
	return entries, meta, nil
}

// sliceTensors checks every entry against the data buffer, which the tensors
// must cover exactly, without gaps or overlaps, and slices it.
func sliceTensors(entries []namedEntry, data []byte) (map[string]Tensor, error) {
	tensors := make(map[string]Tensor, len(entries))
	for _, e := range entries {
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > int64(len(data)) {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] outside the %d data bytes", ErrFormat, e.name, b, end, len(data))
		}
		t := Tensor{DType: e.DType, Shape: e.Shape, Data: data[b:end:end]}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", e.name, err)
		}
		tensors[e.name] = t
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].DataOffsets[0] != entries[j].DataOffsets[0] {
			return entries[i].DataOffsets[0] < entries[j].DataOffsets[0]
		}
		return entries[i].DataOffsets[1] < entries[j].DataOffsets[1]
	})
	var pos int64
	for _, e := range entries {
		if e.DataOffsets[0] != pos {
			what := "overlaps the previous tensor"
			if e.DataOffsets[0] > pos {
				what = "leaves a gap before it"
			}
			return nil, fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] %s (expected begin %d)", ErrFormat, e.name, e.DataOffsets[0], e.DataOffsets[1], what, pos)
		}
		pos = e.DataOffsets[1]
	}
	if pos != int64(len(data)) {
		return nil, fmt.Errorf("%w: tensors cover %d of %d data bytes", ErrFormat, pos, len(data))
	}
	return tensors, nil
}
