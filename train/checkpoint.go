package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/data/safetensors"
	"github.com/msrtrain/msrtrain/model/nn"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// A checkpoint is a directory <out>/checkpoints/step-NNNNNNNN holding
//
//	model.safetensors      the state dict, PyTorch-style names (safetensors.torch.load_file reads it)
//	optimizer.safetensors  the optimizer's state tensors, "<param>.<slot>"
//	vocabs.json            the vocabularies the data was mapped with
//	config.yaml            the resolved configuration
//	state.json             progress, optimizer step counts, seeds, early-stopping state
//
// It is written under a temporary name, fsynced and renamed; then the
// pointer files "latest" and "best" (also replaced atomically) name it. A
// crash at any moment leaves both pointers on complete checkpoints.

const (
	modelFile     = "model.safetensors"
	optimizerFile = "optimizer.safetensors"
	vocabsFile    = "vocabs.json"
	configFile    = "config.yaml"
	stateFile     = "state.json"
)

// State is a checkpoint's progress record. Epochs are numbered from 1, as
// the logs, metrics.jsonl and summary.json print them.
type State struct {
	Format     int   `json:"format"`      // stateFormat; 0 in checkpoints from before it existed
	Step       int   `json:"step"`        // optimizer steps taken
	EpochsDone int   `json:"epochs_done"` // finished epochs; the one in progress is EpochsDone+1
	Batch      int   `json:"batch"`       // next batch of the epoch in progress (from 0)
	Seed       int64 `json:"seed"`
	// OptimizerSteps are each parameter's Adam-style step counts.
	OptimizerSteps map[string]int64 `json:"optimizer_steps"`
	LR             float64          `json:"lr"`
	BestMetric     *float64         `json:"best_metric"`
	BestEpoch      int              `json:"best_epoch"` // 0 before any evaluation
	SinceBest      int              `json:"epochs_since_best"`
	TorchVersion   string           `json:"torch_version"`
	Backbone       string           `json:"backbone"`
	Meta           string           `json:"meta_levels"`
}

// stateFormat 2 numbers best_epoch from 1 and counts epochs_done; format 0
// had "epoch" (the same count) and best_epoch from 0 (-1 for none).
const stateFormat = 2

// UnmarshalJSON reads every state format, so that older runs still resume.
func (s *State) UnmarshalJSON(b []byte) error {
	type plain State
	var v struct {
		plain
		LegacyEpoch int `json:"epoch"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = State(v.plain)
	switch s.Format {
	case 0:
		s.EpochsDone, s.BestEpoch, s.Format = v.LegacyEpoch, s.BestEpoch+1, stateFormat
	case stateFormat:
	default:
		return fmt.Errorf("state format %d: this msrtrain reads formats up to %d", s.Format, stateFormat)
	}
	return nil
}

func checkpointRoot(out string) string { return rundir.Dir(out).Checkpoints() }

// Contents are what a checkpoint holds, from whoever trains.
type Contents struct {
	Store *nn.Store // the model's parameters and buffers
	// Optimizer's state tensors and step counts, the embedding table's
	// row-wise optimizer's among them by name.
	Optimizer *torch.CombinedOptimizer
	Vocabs    *data.Vocabs // what the data was mapped with
	Config    Config
	State     State // OptimizerSteps is filled in from Optimizer
}

// saveCheckpoint writes a complete checkpoint and points "latest" (and "best" when best) at it.
func saveCheckpoint(out string, c Contents, best bool) error {
	root := checkpointRoot(out)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	name := fmt.Sprintf("step-%08d", c.State.Step)
	final := filepath.Join(root, name)
	tmp := filepath.Join(root, "."+name+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := writeCheckpointFiles(tmp, c); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(final); err != nil { // the same step saved twice (end of epoch and Ctrl-C)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(root); err != nil {
		return err
	}
	if err := writePointer(root, "latest", name); err != nil {
		return err
	}
	if best {
		if err := writePointer(root, "best", name); err != nil {
			return err
		}
	}
	return pruneCheckpoints(root)
}

func writeCheckpointFiles(dir string, c Contents) error {
	model, err := hostTensors(c.Store.StateDict())
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	meta := map[string]string{"format": "pt", "producer": "msrtrain", "backbone": c.Config.Model.Backbone}
	if err := safetensors.WriteFile(filepath.Join(dir, modelFile), model, meta); err != nil {
		return err
	}
	optState, steps, err := c.Optimizer.StateTensors()
	if err != nil {
		return err
	}
	opt, err := hostTensors(optState)
	closeAll(optState)
	if err != nil {
		return fmt.Errorf("checkpoint: optimizer: %w", err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, optimizerFile), opt, map[string]string{"optimizer": string(c.Config.Train.Optimizer)}); err != nil {
		return err
	}
	state := c.State
	state.OptimizerSteps = steps
	cfgYAML, err := c.Config.Marshal()
	if err != nil {
		return err
	}
	writes := map[string]func(io.Writer) error{
		vocabsFile: c.Vocabs.Save,
		configFile: func(w io.Writer) error { _, err := w.Write(cfgYAML); return err },
		stateFile:  func(w io.Writer) error { return atomicfile.EncodeJSON(w, state) },
	}
	for name, write := range writes {
		if err := atomicfile.Write(filepath.Join(dir, name), write); err != nil {
			return fmt.Errorf("checkpoint %s: %w", name, err)
		}
	}
	return nil
}

func writePointer(root, pointer, name string) error {
	return atomicfile.Write(filepath.Join(root, pointer), func(w io.Writer) error {
		_, err := io.WriteString(w, name+"\n")
		return err
	})
}

// pruneCheckpoints removes checkpoints that neither pointer names.
func pruneCheckpoints(root string) error {
	keep := map[string]bool{}
	for _, p := range []string{"latest", "best"} {
		if name, err := readPointer(root, p); err == nil {
			keep[name] = true
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") && !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func readPointer(root, pointer string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, pointer))
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if !strings.HasPrefix(name, "step-") || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%s: %q does not name a checkpoint", filepath.Join(root, pointer), name)
	}
	return name, nil
}

// CheckpointDir resolves a run directory or a checkpoint directory to a
// checkpoint: a run directory means its "best" checkpoint (which=best) or
// its "latest" one (which=latest).
func CheckpointDir(path, which string) (string, error) {
	if _, err := os.Stat(filepath.Join(path, stateFile)); err == nil {
		return path, nil
	}
	root := checkpointRoot(path)
	name, err := readPointer(root, which)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s holds no checkpoint (no %s and no %s)", path, stateFile, filepath.Join(root, which))
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// Checkpoint is a checkpoint read back from disk.
type Checkpoint struct {
	Dir    string
	Config Config
	Vocabs *data.Vocabs
	State  State
}

// ReadCheckpoint reads a checkpoint's configuration, vocabularies and state (not its tensors).
func ReadCheckpoint(dir string) (*Checkpoint, error) {
	ck := &Checkpoint{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	ck.Config = DefaultConfig()
	if err := decodeStrict(b, &ck.Config); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", filepath.Join(dir, configFile), err)
	}
	f, err := os.Open(filepath.Join(dir, vocabsFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	if ck.Vocabs, err = data.LoadVocabs(f); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", filepath.Join(dir, vocabsFile), err)
	}
	sb, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(sb, &ck.State); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", filepath.Join(dir, stateFile), err)
	}
	return ck, nil
}

// loadTensors reads a safetensors file into CPU tensors the caller closes.
func loadTensors(path string) (map[string]*torch.Tensor, error) {
	raw, _, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*torch.Tensor, len(raw))
	for name, t := range raw {
		v, err := t.Float32()
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		out[name] = torch.FromSlice(v, t.Shape...)
	}
	return out, nil
}

// restoreModel loads a checkpoint's weights into a model's store.
func restoreModel(dir string, store *nn.Store) error {
	ts, err := loadTensors(filepath.Join(dir, modelFile))
	if err != nil {
		return err
	}
	defer closeAll(ts)
	if err := store.LoadStateDict(ts); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	return nil
}

// restoreOptimizer loads the optimizer's state tensors and step counts.
func restoreOptimizer(dir string, opt *torch.CombinedOptimizer, steps map[string]int64) error {
	ts, err := loadTensors(filepath.Join(dir, optimizerFile))
	if err != nil {
		return err
	}
	defer closeAll(ts)
	if err := opt.LoadState(ts, steps); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	return nil
}

// hostTensors copies tensors to Go memory in the safetensors layout.
func hostTensors(ts map[string]*torch.Tensor) (map[string]safetensors.Tensor, error) {
	out := make(map[string]safetensors.Tensor, len(ts))
	for n, t := range ts {
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out[n] = safetensors.FromFloat32(t.Shape(), v)
	}
	return out, nil
}

func closeAll(ts map[string]*torch.Tensor) {
	for _, t := range ts {
		t.Close()
	}
}
