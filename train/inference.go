package train

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// loadForInference rebuilds a checkpoint's model (weights, vocabularies and
// knowledge) on the device cfg names. The caller closes the run.
func loadForInference(ck *Checkpoint, device string, threads int) (*run, error) {
	cfg := ck.Config
	cfg.Device, cfg.Threads = device, threads
	dev, err := Setup(&cfg)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, dev: dev, vocabs: ck.Vocabs, log: io.Discard, state: ck.State}
	var know *model.Knowledge
	if cfg.Model.Meta.Levels != "none" {
		dir := cfg.Knowledge.Dir
		if dir == "" {
			// <out>/knowledge beside <out>/checkpoints/step-N, wherever the run directory is now.
			dir = filepath.Join(filepath.Dir(filepath.Dir(ck.Dir)), "knowledge")
		}
		store, err := knowledge.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s uses meta networks: %w", ck.Dir, err)
		}
		know, r.missing, err = ModelKnowledge(store, ck.Vocabs, dev)
		if err != nil {
			return nil, err
		}
	}
	if r.model, err = buildModel(cfg.Model, ck.Vocabs, know, dev); err != nil {
		return nil, err
	}
	if err := restoreModel(ck.Dir, r); err != nil {
		r.close()
		return nil, err
	}
	r.group = newGrouper(ck.Vocabs.Schema(), dev)
	return r, nil
}

// Evaluate computes a checkpoint's metrics on a split of its own data
// configuration (mapped with the checkpoint's vocabularies).
func Evaluate(ck *Checkpoint, part data.Part, device string, threads int) (*metrics.Report, error) {
	r, err := loadForInference(ck, device, threads)
	if err != nil {
		return nil, err
	}
	defer r.close()
	dcfg := ck.Config.Data
	dcfg.Seed = ck.Config.Seed
	if r.splits, err = data.Load(dcfg, data.WithVocabs(ck.Vocabs)); err != nil {
		return nil, err
	}
	rep, err := r.evaluate(part)
	if err == nil && rep == nil {
		err = fmt.Errorf("the %s split has no rows", part)
	}
	return rep, err
}

// Predict scores every row of a data file (read with the checkpoint's data
// configuration; labels may be absent) and writes "row,scenario,score" CSV
// lines in input order.
func Predict(ck *Checkpoint, input string, out io.Writer, device string, threads int) (int, error) {
	r, err := loadForInference(ck, device, threads)
	if err != nil {
		return 0, err
	}
	defer r.close()
	raw, err := data.ReadFile(ck.Config.Data, input)
	if err != nil {
		return 0, err
	}
	table, err := data.Encode(raw, ck.Vocabs)
	if err != nil {
		return 0, err
	}
	src, err := data.NewBatcher(table, data.BatchOptions{Size: r.cfg.Train.EvalBatchSize, Workers: r.cfg.Train.LoaderWorkers})
	if err != nil {
		return 0, err
	}
	scores := make([]float32, table.Len())
	err = r.score(src, func(g *grouper, probs []float32) error {
		for i, row := range g.row {
			scores[row] = probs[i]
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	names := ck.Vocabs.Schema().ScenarioNames()
	w := csv.NewWriter(out)
	w.Write([]string{"row", "scenario", "score"})
	for i, s := range scores {
		w.Write([]string{strconv.Itoa(i), names[table.Scenario[i]], strconv.FormatFloat(float64(s), 'g', 7, 32)})
	}
	w.Flush()
	return len(scores), w.Error()
}
