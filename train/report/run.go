package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/msrtrain/msrtrain/train/metrics"
)

// Files of a run directory this package reads or writes.
const (
	StepsFile   = "steps.jsonl"   // one Step per log interval
	MetricsFile = "metrics.jsonl" // one Epoch per epoch
	RunFile     = "report.html"
	SweepFile   = "results.html"
)

// Step is one line of steps.jsonl: the mean training loss over the log
// interval that ends at Step, and the learning rate of that step.
type Step struct {
	Step  int     `json:"step"`
	Epoch int     `json:"epoch"` // 1-based
	Loss  float64 `json:"loss"`
	LR    float64 `json:"lr"`
}

// Epoch is one line of metrics.jsonl.
type Epoch struct {
	Epoch     int             `json:"epoch"` // 1-based
	Step      int             `json:"step"`
	TrainLoss float64         `json:"train_loss"`
	LR        float64         `json:"lr"`
	Valid     *metrics.Report `json:"valid,omitempty"`
}

// Model is what one trained model of a run produced.
type Model struct {
	Name      string
	Bare      bool // the backbone without meta networks (LLM4MSR otherwise)
	Steps     []Step
	Epochs    []Epoch
	BestEpoch int             // 1-based; 0 when not known yet
	Valid     *metrics.Report // at the best epoch
	Test      *metrics.Report
}

// Run is everything the run report shows; fields left empty leave their
// section out with a sentence that says why.
type Run struct {
	Dir      string
	Status   string      // finished, interrupted, ...
	Facts    [][2]string // name, value: backbone, meta levels, samples/s, ...
	Main     Model       // LLM4MSR (or the backbone alone when meta levels are none)
	Baseline *Model      // the bare backbone (--baseline)
	// AUCDelta is DeLong's paired test of Main's test AUC against
	// Baseline's, overall then per scenario; nil when not recorded.
	AUCDelta     []metrics.AUCDelta
	Knowledge    *Knowledge
	Explanations []Explanation // for the users and scenarios the meta layers move most
	Config       string        // config.yaml
	Environment  string        // msrtrain info
	Notes        []string      // what could not be shown and why
}

// ReadSteps reads steps.jsonl; a missing file has no steps, a torn last
// line (a killed run) is skipped.
func ReadSteps(path string) ([]Step, error) { return readJSONL[Step](path) }

// ReadEpochs reads metrics.jsonl like ReadSteps.
func ReadEpochs(path string) ([]Epoch, error) { return readJSONL[Epoch](path) }

func readJSONL[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var pending error
	for line := 1; sc.Scan(); line++ {
		if pending != nil {
			return nil, pending // a bad line that was not the last one
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			pending = fmt.Errorf("%s:%d: %w", path, line, err)
			continue
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// ReadModel reads a run directory's step and epoch logs.
func ReadModel(dir, name string) (Model, error) {
	m := Model{Name: name}
	var err error
	if m.Steps, err = ReadSteps(filepath.Join(dir, StepsFile)); err != nil {
		return m, err
	}
	m.Epochs, err = ReadEpochs(filepath.Join(dir, MetricsFile))
	return m, err
}
