// Package rundir owns the layout of a run directory (train's --out): the
// names of its files and the records they hold. A run directory holds
//
//	config.yaml      the resolved configuration
//	environment.txt  the machine that trained (msrtrain info)
//	metrics.jsonl    one Epoch per finished epoch
//	steps.jsonl      one Step per train.log_every steps
//	summary.json     the Summary, once training stops
//	report.html      the run's report
//	checkpoints/     the checkpoints and their "latest" and "best" pointers
//	knowledge/       the knowledge store (unless knowledge.dir names another)
//	baseline/        the bare backbone's run directory (train.baseline)
//	train.log        a sweep trial's output
//
// Everything else reads and writes them through a Dir.
package rundir

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/msrtrain/msrtrain/data/atomicfile"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// The names of a run directory's files.
const (
	ConfigFile      = "config.yaml"
	EnvironmentFile = "environment.txt"
	MetricsFile     = "metrics.jsonl"
	StepsFile       = "steps.jsonl"
	SummaryFile     = "summary.json"
	ReportFile      = "report.html"
	CheckpointsDir  = "checkpoints"
	KnowledgeDir    = "knowledge"
	BaselineDir     = "baseline"
	TrialLogFile    = "train.log"
)

// Dir is a run directory.
type Dir string

func (d Dir) path(name string) string { return filepath.Join(string(d), name) }

// Config is the path of the resolved configuration.
func (d Dir) Config() string { return d.path(ConfigFile) }

// Environment is the path of the recorded environment.
func (d Dir) Environment() string { return d.path(EnvironmentFile) }

// Metrics is the path of the per-epoch log.
func (d Dir) Metrics() string { return d.path(MetricsFile) }

// Steps is the path of the per-interval log.
func (d Dir) Steps() string { return d.path(StepsFile) }

// Summary is the path of the run's summary.
func (d Dir) Summary() string { return d.path(SummaryFile) }

// Report is the path of the run's report page.
func (d Dir) Report() string { return d.path(ReportFile) }

// Checkpoints is the directory of the run's checkpoints.
func (d Dir) Checkpoints() string { return d.path(CheckpointsDir) }

// Knowledge is where the run keeps its knowledge store unless knowledge.dir names another.
func (d Dir) Knowledge() string { return d.path(KnowledgeDir) }

// Baseline is the run directory of the bare backbone trained beside this run.
func (d Dir) Baseline() Dir { return Dir(d.path(BaselineDir)) }

// TrialLog is the path of a sweep trial's output.
func (d Dir) TrialLog() string { return d.path(TrialLogFile) }

// OfCheckpoint is the run directory that holds a checkpoint directory
// (<dir>/checkpoints/step-N), wherever the run directory is now.
func OfCheckpoint(checkpoint string) Dir { return Dir(filepath.Dir(filepath.Dir(checkpoint))) }

// HasRun reports whether the directory holds a checkpointed run (its latest pointer exists).
func (d Dir) HasRun() bool {
	_, err := os.Stat(filepath.Join(d.Checkpoints(), "latest"))
	return err == nil
}

// WriteConfig replaces config.yaml with the resolved configuration's YAML.
func (d Dir) WriteConfig(yaml []byte) error { return atomicfile.WriteBytes(d.Config(), yaml) }

// WriteEnvironment replaces environment.txt with what write writes.
func (d Dir) WriteEnvironment(write func(io.Writer) error) error {
	return atomicfile.Write(d.Environment(), write)
}

// ReadEnvironment reads environment.txt.
func (d Dir) ReadEnvironment() (string, error) {
	b, err := os.ReadFile(d.Environment())
	return string(b), err
}

// Summary is summary.json: what a run produced.
type Summary struct {
	Out                   string          `json:"out"`
	BestEpoch             int             `json:"best_epoch"` // from 1, as printed; 0 when no epoch finished
	Steps                 int             `json:"steps"`
	Epochs                int             `json:"epochs_run"`
	Valid                 *metrics.Report `json:"valid,omitempty"` // at the best epoch
	Test                  *metrics.Report `json:"test,omitempty"`
	SamplesPerSec         float64         `json:"train_samples_per_sec"`
	Seconds               float64         `json:"train_seconds"`
	Interrupted           bool            `json:"interrupted"`
	UsersWithoutKnowledge int             `json:"users_without_knowledge,omitempty"`
	Baseline              *Summary        `json:"baseline,omitempty"`
	Scenarios             []string        `json:"scenarios"`
	// WorldSize ranks each took train.batch_size rows per step: GlobalBatch in all.
	WorldSize   int `json:"world_size"`
	GlobalBatch int `json:"global_batch"`
	// AUCDelta is DeLong's paired test of this model's test AUC against
	// the baseline's on the same rows, overall then per scenario.
	AUCDelta []metrics.AUCDelta `json:"auc_delta,omitempty"`
}

// WriteSummary replaces summary.json.
func (d Dir) WriteSummary(s *Summary) error { return atomicfile.WriteJSON(d.Summary(), s) }

// ReadSummary reads summary.json; nil when the run has not finished.
func (d Dir) ReadSummary() (*Summary, error) {
	b, err := os.ReadFile(d.Summary())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Summary(), err)
	}
	return &s, nil
}

// Epoch is one line of metrics.jsonl.
type Epoch struct {
	Epoch     int             `json:"epoch"` // 1-based
	Step      int             `json:"step"`
	TrainLoss float64         `json:"train_loss"`
	LR        float64         `json:"lr"`
	Valid     *metrics.Report `json:"valid,omitempty"`
}

// Step is one line of steps.jsonl: the mean training loss over the log
// interval that ends at Step, and the learning rate of that step.
type Step struct {
	Step  int     `json:"step"`
	Epoch int     `json:"epoch"` // 1-based
	Loss  float64 `json:"loss"`
	LR    float64 `json:"lr"`
}

// Log appends records to a JSON-lines file of the run. A nil Log discards
// them (a data-parallel job's ranks other than 0 write no logs).
type Log[T any] struct {
	f   *os.File
	enc *json.Encoder
}

// AppendEpochs opens metrics.jsonl for appending (a resumed run continues it).
func (d Dir) AppendEpochs() (*Log[Epoch], error) { return openLog[Epoch](d.Metrics()) }

// AppendSteps opens steps.jsonl for appending.
func (d Dir) AppendSteps() (*Log[Step], error) { return openLog[Step](d.Steps()) }

func openLog[T any](path string) (*Log[T], error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		return nil, err
	}
	return &Log[T]{f: f, enc: json.NewEncoder(f)}, nil
}

// Append writes one record as a line.
func (l *Log[T]) Append(rec T) error {
	if l == nil {
		return nil
	}
	return l.enc.Encode(rec)
}

// Close closes the file.
func (l *Log[T]) Close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// ReadSteps reads steps.jsonl; a missing file has no steps, a torn last
// line (a killed run) is skipped.
func (d Dir) ReadSteps() ([]Step, error) { return readJSONL[Step](d.Steps()) }

// ReadEpochs reads metrics.jsonl like ReadSteps.
func (d Dir) ReadEpochs() ([]Epoch, error) { return readJSONL[Epoch](d.Metrics()) }

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
