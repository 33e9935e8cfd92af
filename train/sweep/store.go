package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files in a sweep directory.
const (
	TrialsDir  = "trials"      // dir/trials/<id>/ per trial
	ResultFile = "result.json" // an Outcome; written last, atomically
	TrialFile  = "trial.json"  // the Trial, written before it runs
	ErrorFile  = "error.txt"   // the full error of a failed trial
	ResultsCSV = "results.csv"
	SummaryCSV = "summary.csv"
	ResultsMD  = "results.md"
)

// TrialDir returns the directory of trial t in the sweep directory dir.
func TrialDir(dir string, t Trial) string { return filepath.Join(dir, TrialsDir, t.ID) }

// Load reads the recorded outcome of every trial from dir. A trial without a
// result.json is StatusPending.
func Load(dir string, trials []Trial) ([]Outcome, error) {
	out := make([]Outcome, len(trials))
	for i, t := range trials {
		o, ok, err := readOutcome(dir, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			o = Outcome{Trial: t, Result: Result{Status: StatusPending}}
		}
		out[i] = o
	}
	return out, nil
}

// readOutcome reads t's result.json; ok is false when there is none.
func readOutcome(dir string, t Trial) (o Outcome, ok bool, err error) {
	path := filepath.Join(TrialDir(dir, t), ResultFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, fmt.Errorf("sweep: %w", err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return Outcome{}, false, fmt.Errorf("sweep: %s: %w", path, err)
	}
	if o.Trial.ID != t.ID {
		return Outcome{}, false, fmt.Errorf("sweep: %s: records trial %q, want %q", path, o.Trial.ID, t.ID)
	}
	o.Trial = t // the spec's values, not a JSON round trip of them
	return o, true, nil
}
