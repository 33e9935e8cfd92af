package insight

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/msrtrain/msrtrain/data"
	kb "github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/train"

	"github.com/msrtrain/msrtrain/train/report"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// ReportOptions say where WriteReport runs the model that it explains.
type ReportOptions struct {
	Device  string // auto, cpu, cuda:N
	Threads int
	// TopUsers is how many users the report explains (those whose knowledge
	// moves their logits most); 0 means 5.
	TopUsers int
	// Splits is the run's data when the caller has it loaded (train.Train
	// gives it back through RunOptions.Data), so that the report does not
	// read it again; nil loads it.
	Splits *data.Splits

	// explainRows caps the rows the effects are measured on (0: explainRows).
	explainRows int
}

// WriteReport writes <dir>/report.html for a run directory at any stage:
// finished, interrupted (no summary.json yet) or with only some epochs
// logged. It returns the page's path.
func WriteReport(dir string, o ReportOptions) (string, error) {
	path, _, err := writeReportWork(dir, o)
	return path, err
}

// writeReportWork is WriteReport, also saying what explaining the run cost.
func writeReportWork(dir string, o ReportOptions) (string, explainWork, error) {
	var work explainWork
	if o.TopUsers == 0 {
		o.TopUsers = 5
	}
	if o.explainRows == 0 {
		o.explainRows = explainRows
	}
	cfg, err := ReadRunConfig(dir)
	if err != nil {
		return "", work, err
	}
	run := rundir.Dir(dir)
	r := report.Run{Dir: dir}
	if b, err := os.ReadFile(run.Config()); err == nil {
		r.Config = string(b)
	}
	r.Environment = runEnvironment(run)
	res, err := run.ReadSummary()
	if err != nil {
		return "", work, err
	}
	mainName := "LLM4MSR"
	if !cfg.Model.Meta.Levels.Enabled() {
		mainName = cfg.Model.Backbone
	}
	if r.Main, err = readReportModel(run, mainName, res); err != nil {
		return "", work, err
	}
	r.Main.Bare = !cfg.Model.Meta.Levels.Enabled()
	if base := run.Baseline(); fileExists(base.Metrics()) {
		var baseRes *rundir.Summary
		if res != nil {
			baseRes = res.Baseline
		}
		m, err := readReportModel(base, "bare "+cfg.Model.Backbone, baseRes)
		if err != nil {
			return "", work, err
		}
		m.Bare = true
		r.Baseline = &m
		if res != nil {
			r.AUCDelta = res.AUCDelta
		}
	}
	r.Status, r.Facts = runStatus(cfg, res)
	if cfg.Model.Meta.Levels.Enabled() && !cfg.Knowledge.Encoder.FromText() {
		r.Notes = append(r.Notes, fmt.Sprintf("knowledge.encoder = %s: the vectors have no text and no store, so the report has no knowledge view.", cfg.Knowledge.Encoder))
	} else if cfg.Model.Meta.Levels.Enabled() {
		if work, err = explainForReport(dir, cfg, o, &r); err != nil {
			return "", work, fmt.Errorf("report: knowledge: %w", err)
		}
	}
	path, err := report.WriteRun(dir, r)
	return path, work, err
}

// ReadRunConfig reads the resolved configuration a run directory was trained with.
func ReadRunConfig(dir string) (train.Config, error) {
	path := rundir.Dir(dir).Config()
	if _, err := os.Stat(path); err != nil {
		return train.Config{}, fmt.Errorf("%s is not a run directory: %w", dir, err)
	}
	cfg, err := train.LoadConfig(path, nil)
	if err != nil {
		return cfg, err
	}
	cfg.Out = dir // wherever the run directory is now
	return cfg, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readReportModel(dir rundir.Dir, name string, res *rundir.Summary) (report.Model, error) {
	m, err := report.ReadModel(dir, name)
	if err != nil {
		return m, err
	}
	if res != nil {
		m.BestEpoch, m.Valid, m.Test = res.BestEpoch, res.Valid, res.Test
		return m, nil
	}
	if best, err := readBestState(string(dir)); err == nil {
		m.BestEpoch = best
	}
	return m, nil
}

// readBestState reads the best epoch (from 1; 0 before any) of an
// unfinished run from its best checkpoint.
func readBestState(dir string) (int, error) {
	ckDir, err := train.CheckpointDir(dir, "best")
	if err != nil {
		return 0, err
	}
	ck, err := train.ReadCheckpoint(ckDir)
	if err != nil {
		return 0, err
	}
	return ck.State.BestEpoch, nil
}

func runStatus(cfg train.Config, res *rundir.Summary) (string, [][2]string) {
	facts := [][2]string{
		{"data", string(cfg.Data.Format)},
		{"backbone", cfg.Model.Backbone},
		{"meta networks", string(cfg.Model.Meta.Levels)},
		{"knowledge", string(cfg.Knowledge.Encoder)},
		{"seed", fmt.Sprint(cfg.Seed)},
	}
	status := "not finished: no summary.json (interrupted, or still training)"
	if res != nil {
		status = "finished"
		if res.Interrupted {
			status = "interrupted"
		}
		facts = append(facts,
			[2]string{"epochs", fmt.Sprintf("%d (best %d)", res.Epochs, res.BestEpoch)},
			[2]string{"steps", fmt.Sprint(res.Steps)},
			[2]string{"training", fmt.Sprintf("%.0f samples/s, %.1f s", res.SamplesPerSec, res.Seconds)})
		if res.UsersWithoutKnowledge > 0 {
			facts = append(facts, [2]string{"users on the fallback", fmt.Sprint(res.UsersWithoutKnowledge)})
		}
	}
	return status, facts
}

// runEnvironment is the environment the run recorded, or this process's
// when it recorded none.
func runEnvironment(dir rundir.Dir) string {
	if env, err := dir.ReadEnvironment(); err == nil {
		return env
	}
	var b strings.Builder
	b.WriteString("(the run recorded no environment; this is the machine that wrote the report)\n")
	train.WriteEnvironment(&b)
	return b.String()
}

// explainForReport fills the knowledge view and, when the run has a best
// checkpoint, the explanations of the users and scenarios whose knowledge
// moves the model most.
func explainForReport(dir string, cfg train.Config, o ReportOptions, r *report.Run) (explainWork, error) {
	var loaded *train.Loaded
	if _, err := train.CheckpointDir(dir, "best"); err == nil {
		if loaded, err = train.LoadModel(dir, o.Device, o.Threads); err != nil {
			return explainWork{}, err
		}
		defer loaded.Close()
		cfg = loaded.Checkpoint.Config
	} else {
		r.Notes = append(r.Notes, "No best checkpoint yet, so the report does not measure what the knowledge does to the model.")
	}
	if storeDir := cfg.Knowledge.StoreDir(cfg.Out); !fileExists(filepath.Join(storeDir, kb.IndexFile)) && loaded == nil {
		r.Notes = append(r.Notes, "No knowledge store yet in "+storeDir+".")
		return explainWork{}, nil
	}
	e, err := newExplainer(cfg, loaded, o.Splits, o.explainRows)
	if err != nil {
		return explainWork{}, err
	}
	defer e.Close()
	r.Knowledge = e.KnowledgeView()
	users, err := e.TopUsers(o.TopUsers)
	if err != nil {
		return e.work, err
	}
	scenarios, err := e.Scenarios()
	if err != nil {
		return e.work, err
	}
	if loaded != nil {
		r.Explanations = append(users, scenarios...)
	}
	if note := e.SampleNote(); note != "" {
		r.Notes = append(r.Notes, note)
	}
	return e.work, nil
}
