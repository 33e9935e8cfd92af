package report

import (
	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// SweepFile is the page a sweep's directory gets (a run's is rundir.ReportFile).
const SweepFile = "results.html"

// Model is what one trained model of a run produced.
type Model struct {
	Name      string
	Bare      bool // the backbone without meta networks (LLM4MSR otherwise)
	Steps     []rundir.Step
	Epochs    []rundir.Epoch
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

// ReadModel reads a run directory's step and epoch logs.
func ReadModel(dir rundir.Dir, name string) (Model, error) {
	m := Model{Name: name}
	var err error
	if m.Steps, err = dir.ReadSteps(); err != nil {
		return m, err
	}
	m.Epochs, err = dir.ReadEpochs()
	return m, err
}
