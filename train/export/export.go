// Package export writes a trained model for serving outside msrtrain: a
// TorchScript module that torch.jit.load, libtorch's torch::jit::load and
// Triton's libtorch backend load with no msrtrain code present, the
// description of how to encode a raw request for it, and a Triton model
// repository. The directory it writes:
//
//	model.pt              the module (model.Model.Script); features.json rides inside as an extra file
//	features.json         inputs, output, fields, scenarios, preprocessing (Features)
//	vocabularies.json     each categorical field's values and the users' knowledge rows (Vocabularies)
//	triton/<name>/config.pbtxt, triton/<name>/1/model.pt
//
// It is written into a temporary directory beside its destination and
// renamed into place when complete, so a failed export leaves nothing.
package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/train"
)

// Options say what to export where.
type Options struct {
	// Checkpoint is a run directory (its best checkpoint) or a checkpoint directory.
	Checkpoint string
	// Out is the directory to create; it must not exist, or be empty.
	Out string
	// Name is the model's name in the Triton repository (default msrtrain_<backbone>).
	Name string
	// MaxBatchSize is Triton's max_batch_size (default DefaultMaxBatchSize).
	MaxBatchSize int
	// Threads for libtorch while exporting (0: all CPUs).
	Threads int
}

// DefaultMaxBatchSize is the Triton configuration's max_batch_size: the
// largest batch its dynamic batcher forms (the module takes any).
const DefaultMaxBatchSize = 4096

var tritonName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Export writes o.Out from o.Checkpoint and returns what features.json says.
func Export(o Options) (*Features, error) {
	if o.Out == "" {
		return nil, fmt.Errorf("export: no output directory")
	}
	if err := checkFree(o.Out); err != nil {
		return nil, err
	}
	if o.MaxBatchSize == 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	if o.MaxBatchSize < 1 {
		return nil, fmt.Errorf("export: max batch size %d: must be positive", o.MaxBatchSize)
	}
	l, err := train.LoadModel(o.Checkpoint, "cpu", o.Threads)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	cfg := l.Checkpoint.Config.Model
	if o.Name == "" {
		o.Name = "msrtrain_" + cfg.Backbone
	}
	if !tritonName.MatchString(o.Name) {
		return nil, fmt.Errorf("export: model name %q: use letters, digits, '_', '-' and '.'", o.Name)
	}
	exp, err := l.Model.Script()
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", l.Checkpoint.Dir, err)
	}
	defer exp.Close()
	info := ModelInfo{Backbone: cfg.Backbone, MetaLevels: string(cfg.Meta.Levels), Checkpoint: l.Checkpoint.Dir, Step: l.Checkpoint.State.Step, TritonName: o.Name}
	feats, vocab := newFeatures(l.Checkpoint.Vocabs, l.Model.Spec, exp, info)
	featuresJSON, err := indentJSON(feats)
	if err != nil {
		return nil, err
	}
	vocabJSON, err := json.Marshal(vocab)
	if err != nil {
		return nil, err
	}

	parent, base := filepath.Dir(o.Out), filepath.Base(o.Out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	repo := filepath.Join(tmp, TritonDir, o.Name)
	if err := os.MkdirAll(filepath.Join(repo, "1"), 0o755); err != nil {
		return nil, err
	}
	extra := map[string][]byte{FeaturesFile: featuresJSON}
	for _, path := range []string{filepath.Join(tmp, ModelFile), filepath.Join(repo, "1", ModelFile)} {
		if err := exp.Module.Save(path, extra); err != nil {
			return nil, err
		}
	}
	files := map[string][]byte{
		filepath.Join(tmp, FeaturesFile):     featuresJSON,
		filepath.Join(tmp, VocabulariesFile): vocabJSON,
		filepath.Join(repo, "config.pbtxt"):  []byte(tritonConfig(feats, o.MaxBatchSize)),
	}
	for path, b := range files {
		if err := atomicfile.WriteBytes(path, b); err != nil {
			return nil, err
		}
	}
	for _, dir := range []string{filepath.Join(repo, "1"), repo, filepath.Join(tmp, TritonDir), tmp} {
		if err := atomicfile.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	// MkdirTemp's 0700 would hide the directory from a server running as another user.
	if err := os.Chmod(tmp, atomicfile.Mode()|0o111); err != nil {
		return nil, err
	}
	if err := os.Remove(o.Out); err != nil && !os.IsNotExist(err) { // an empty directory (checkFree)
		return nil, err
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return nil, err
	}
	if err := feats.check(vocab); err != nil {
		return nil, fmt.Errorf("export: %w (a bug in msrtrain)", err)
	}
	return feats, nil
}

// checkFree refuses an output directory that exists and holds something.
func checkFree(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("export: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("export: %s already exists and is not empty; choose another --out or remove it", out)
	}
	return nil
}

func indentJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	err := atomicfile.EncodeJSON(&buf, v)
	return buf.Bytes(), err
}

// tritonConfig is config.pbtxt for the pytorch_libtorch backend: inputs
// and output named <name>__<position> (the backend's convention), the
// batch dimension implicit (max_batch_size > 0), the [B] tensors given as
// [B, 1] on the wire and reshaped, and dynamic batching on.
func tritonConfig(f *Features, maxBatch int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Triton model configuration written by msrtrain export; see features.json for the encoding.\n")
	fmt.Fprintf(&b, "name: %q\nplatform: \"pytorch_libtorch\"\nmax_batch_size: %d\n", f.Model.TritonName, maxBatch)
	tensor := func(t TensorSpec, last bool) {
		fmt.Fprintf(&b, "  {\n    name: %q\n    data_type: %s\n", t.Triton, tritonType(t.DType))
		if len(t.Shape) == 1 { // [B]: one value per row on the wire, a [B] tensor for the model
			b.WriteString("    dims: [ 1 ]\n    reshape: { shape: [ ] }\n")
		} else if t.Shape[1] == "0" {
			b.WriteString("    # no numeric features: send a [B, 0] tensor\n    dims: [ -1 ]\n")
		} else {
			fmt.Fprintf(&b, "    dims: [ %s ]\n", t.Shape[1])
		}
		b.WriteString("  }")
		if !last {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("input [\n")
	for i, t := range f.Inputs {
		tensor(t, i == len(f.Inputs)-1)
	}
	b.WriteString("]\noutput [\n")
	tensor(f.Output, true)
	b.WriteString("]\ndynamic_batching {\n  max_queue_delay_microseconds: 1000\n}\n")
	return b.String()
}

func tritonType(dtype string) string {
	switch dtype {
	case "int64":
		return "TYPE_INT64"
	case "float32":
		return "TYPE_FP32"
	}
	return "TYPE_INVALID"
}
