package serve

import (
	"fmt"
	"path/filepath"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/export"
)

// ExportedLoader loads directories that msrtrain export wrote: rows are
// encoded with their features.json and vocabularies.json exactly as predict
// encodes a file, and scored by the TorchScript module (model.pt) through
// libtorch on the CPU with threads CPU threads, as a serving stack outside
// msrtrain runs it.
func ExportedLoader(threads int) Loader {
	return func(dir string) (Model, error) {
		if err := torch.SetUpProcess(threads); err != nil {
			return nil, err
		}
		feats, err := export.ReadFeatures(dir)
		if err != nil {
			return nil, err
		}
		module, err := torch.LoadScriptModule(filepath.Join(dir, export.ModelFile))
		if err != nil {
			return nil, err
		}
		return &exportedModel{dir: dir, feats: feats, vocabs: feats.DataVocabs(), module: module}, nil
	}
}

// AnyLoader loads an exported directory with ExportedLoader and anything
// else (a run or checkpoint directory) with CheckpointLoader, so that one
// server reloads either.
func AnyLoader(device string, threads int) Loader {
	exported, checkpoint := ExportedLoader(threads), CheckpointLoader(device, threads)
	return func(path string) (Model, error) {
		if export.IsExported(path) {
			return exported(path)
		}
		return checkpoint(path)
	}
}

// IsModelPath reports whether path is something AnyLoader loads: an
// exported directory, or a run or checkpoint directory (the error says why not).
func IsModelPath(path string) error {
	if export.IsExported(path) {
		return nil
	}
	_, err := train.CheckpointDir(path, "best")
	return err
}

// exportedModel scores with an exported directory's TorchScript module.
type exportedModel struct {
	dir    string
	feats  *export.Features
	vocabs *data.Vocabs
	module *torch.ScriptModule
}

func (m *exportedModel) Name() string         { return m.dir }
func (m *exportedModel) Schema() *data.Schema { return m.vocabs.Schema() }

func (m *exportedModel) Encode(raw *data.Raw) (*data.Table, error) { return data.Encode(raw, m.vocabs) }

func (m *exportedModel) Score(t *data.Table) ([]float32, error) {
	n := int64(t.Len())
	sc := torch.NewScope()
	defer sc.Close()
	// Tables hold indices as int32; the module's contract is int64.
	p := m.module.Forward(
		torch.FromSlice(t.Cat, n, int64(len(m.feats.Categorical))).ToDType(torch.Int64),
		torch.FromSlice(t.Num, n, int64(len(m.feats.Numeric))),
		torch.FromSlice(t.Scenario, n).ToDType(torch.Int64),
		torch.FromSlice(m.feats.KnowledgeRows(t), n),
	)
	probs, err := p.Float32s()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.dir, err)
	}
	return probs, nil
}

func (m *exportedModel) Close() { m.module.Close() }
