package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/msrtrain/msrtrain/data/atomicfile"
)

// MetadataKey is the reserved header entry holding the string metadata.
const MetadataKey = "__metadata__"

type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Write encodes tensors and metadata (which may be nil) in safetensors
// format. Tensors are laid out in name order, so the output is deterministic.
func Write(w io.Writer, tensors map[string]Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)

	header := make(map[string]any, len(tensors)+1)
	var offset int64
	for _, name := range names {
		t := tensors[name]
		if name == "" || name == MetadataKey {
			return fmt.Errorf("safetensors: invalid tensor name %q", name)
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		end := offset + int64(len(t.Data))
		header[name] = headerEntry{DType: t.DType, Shape: cloneShape(t.Shape), DataOffsets: [2]int64{offset, end}}
		offset = end
	}
	if len(metadata) > 0 {
		header[MetadataKey] = metadata
	}

	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil { // map keys are sorted
		return fmt.Errorf("safetensors: encode header: %w", err)
	}
	hb.Truncate(hb.Len() - 1) // Encode's trailing newline
	for hb.Len()%8 != 0 {
		hb.WriteByte(' ')
	}

	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hb.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(hb.Bytes()); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := w.Write(tensors[name].Data); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes tensors to path atomically (see atomicfile.Write).
func WriteFile(path string, tensors map[string]Tensor, metadata map[string]string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return Write(w, tensors, metadata)
	})
}
