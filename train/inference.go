package train

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/parquet"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/ddp"
	"github.com/msrtrain/msrtrain/train/knowledge"
	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// Loaded is a trained model rebuilt from a checkpoint, ready to score data:
// its weights, vocabularies and (with meta networks) knowledge, on a device.
// Evaluation, prediction and any server load models through LoadModel.
type Loaded struct {
	Checkpoint *Checkpoint
	Model      *model.Model
	Device     torch.Device
	// UsersWithoutKnowledge are vocabulary users with no knowledge vector (they use the learned fallback).
	UsersWithoutKnowledge int
	// Ranks, when set, makes Evaluate score this rank's shard and gather the
	// others' (every rank of the job must call it).
	Ranks *ddp.Group

	group *grouper
}

// LoadModel rebuilds the model of a checkpoint directory, or of a run
// directory's best checkpoint, on device ("auto", "cpu", "cuda:N") with
// threads CPU threads (0 = all). It sets up the calling goroutine for torch
// work (see Setup). The caller closes the model.
func LoadModel(path, device string, threads int) (*Loaded, error) {
	dir, err := CheckpointDir(path, "best")
	if err != nil {
		return nil, err
	}
	ck, err := ReadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	cfg := ck.Config
	cfg.Device, cfg.Threads = device, threads
	dev, err := Setup(&cfg)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Checkpoint: ck, Device: dev, group: newGrouper(ck.Vocabs.Schema(), dev)}
	var know *model.Knowledge
	if cfg.Model.Meta.Levels.Enabled() && !cfg.Knowledge.Encoder.FromText() {
		if know, err = knowledge.IDKnowledge(cfg.Knowledge, cfg.Seed, ck.Vocabs, dev); err != nil {
			return nil, err
		}
	} else if cfg.Model.Meta.Levels.Enabled() {
		know, l.UsersWithoutKnowledge, err = knowledge.Load(ck.KnowledgeDir(), ck.Vocabs, dev)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s uses meta networks: %w", ck.Dir, err)
		}
	}
	if l.Model, err = buildModel(cfg.Model, ck.Vocabs, know, dev); err != nil {
		return nil, err
	}
	if err := restoreModel(ck.Dir, l.Model.Store); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// KnowledgeDir is the knowledge store a checkpoint's model was trained
// with: knowledge.dir, or else <out>/knowledge beside
// <out>/checkpoints/step-N, wherever the run directory is now.
func (ck *Checkpoint) KnowledgeDir() string {
	return ck.Config.Knowledge.StoreDir(string(rundir.OfCheckpoint(ck.Dir)))
}

// Close frees the model.
func (l *Loaded) Close() { l.Model.Close() }

func (l *Loaded) scorer() scorer {
	return scorer{model: l.Model, group: l.group, vocabs: l.Checkpoint.Vocabs, batches: evalBatches(l.Checkpoint.Config.Train), ranks: l.Ranks}
}

// Evaluate computes the model's metrics on a split of its own data
// configuration (mapped with the checkpoint's vocabularies).
func (l *Loaded) Evaluate(part data.Part) (*metrics.Report, error) {
	cfg := l.Checkpoint.Config
	splits, err := data.Load(cfg.DataConfig(), data.WithVocabs(l.Checkpoint.Vocabs))
	if err != nil {
		return nil, err
	}
	rep, err := l.scorer().evaluate(splits, part)
	if err == nil && rep == nil {
		err = fmt.Errorf("the %s split has no rows", part)
	}
	return rep, err
}

// Predict scores every row of a data file (read with the checkpoint's data
// configuration; labels may be absent) and writes "row,scenario,score"
// rows in input order, as CSV or as Parquet (format, one of
// data.TableFormatValues).
func (l *Loaded) Predict(input string, out io.Writer, format data.Format) (int, error) {
	vocabs := l.Checkpoint.Vocabs
	raw, err := data.ReadFile(l.Checkpoint.Config.Data, input)
	if err != nil {
		return 0, err
	}
	table, err := data.Encode(raw, vocabs)
	if err != nil {
		return 0, err
	}
	frozen, err := l.Freeze()
	if err != nil {
		return 0, err
	}
	scores, err := frozen.Score(table)
	frozen.Close()
	if err != nil {
		return 0, err
	}
	names := vocabs.Schema().ScenarioNames()
	scenario := func(i int) string { return names[table.Scenario[i]] }
	if format == data.FormatParquet {
		rows := make([]int64, len(scores))
		for i := range rows {
			rows[i] = int64(i)
		}
		return len(scores), parquet.Write(out, len(scores), []parquet.WriteColumn{
			{Name: "row", Int: rows}, {Name: "scenario", Text: scenario}, {Name: "score", Float: scores}})
	}
	w := csv.NewWriter(out)
	w.Write([]string{"row", "scenario", "score"})
	for i, s := range scores {
		w.Write([]string{strconv.Itoa(i), scenario(i), strconv.FormatFloat(float64(s), 'g', 7, 32)})
	}
	w.Flush()
	return len(scores), w.Error()
}

// Frozen is a loaded model readied to score many tables with weights that
// do not change (model.Model.Freeze): what predict and a server score with.
// Like every torch call, Score and Close run on the goroutine that loaded
// the model.
type Frozen struct {
	s    scorer
	thaw func()
}

// Freeze readies l for scoring until the Frozen is closed; l stays open
// (close it after).
func (l *Loaded) Freeze() (*Frozen, error) {
	s := l.scorer()
	thaw, err := s.model.Freeze()
	if err != nil {
		return nil, err
	}
	return &Frozen{s: s, thaw: thaw}, nil
}

// Score returns the click probability of every row of t (encoded with the
// checkpoint's vocabularies, data.Encode), in row order.
func (f *Frozen) Score(t *data.Table) ([]float32, error) { return f.s.scoreTable(t) }

// Close frees what Freeze computed.
func (f *Frozen) Close() { f.thaw() }
