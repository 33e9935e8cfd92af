package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train/ddp"
	"github.com/msrtrain/msrtrain/train/knowledge"
	"github.com/msrtrain/msrtrain/train/metrics"
	"github.com/msrtrain/msrtrain/train/rundir"
)

// RunOptions are how a caller drives Train (not part of the saved configuration).
type RunOptions struct {
	Resume   bool      // continue from <out>/checkpoints/latest
	Log      io.Writer // progress and tables; nil discards
	Progress bool      // a progress bar (stderr is a terminal) instead of periodic log lines

	// GradientHook runs in every step between backward and the update (see
	// GradientHook); nil in one process.
	GradientHook GradientHook
	// SparseGradientHook runs after it with a sparse embedding table's
	// gradient (see SparseGradientHook); nil in one process.
	SparseGradientHook SparseGradientHook

	// Ranks makes this process one rank of a data-parallel job (see
	// distributed.go); nil trains alone.
	Ranks *ddp.Group

	// Data, when set, keeps the data the first model loaded: the baseline
	// trains on it, and the caller hands it to the report (insight), so a
	// command reads its data once.
	Data *LoadedData

	afterStep func(step int) // tests: called after every optimizer step
}

// LoadedData is the data a run loaded (see RunOptions.Data).
type LoadedData struct{ Splits *data.Splits }

// Result is what a run produced: the record its summary.json holds.
type Result = rundir.Summary

// ErrNonFinite marks a run stopped by a NaN or infinite loss.
var ErrNonFinite = errors.New("non-finite loss")

// run is one training run's live state, all of it owned by the torch goroutine.
type run struct {
	cfg     Config
	opts    RunOptions
	dev     torch.Device
	splits  *data.Splits
	vocabs  *data.Vocabs
	model   *model.Model
	opt     *torch.CombinedOptimizer // dense, and the embedding table's unless it trains densely
	params  []*torch.Tensor          // the dense parameters
	state   State
	group   *grouper
	log     io.Writer
	missing int
	// ranks is the data-parallel job this run is part of (nil: alone);
	// stopAll says some rank was asked to stop (Ctrl-C), agreed in the last step.
	ranks   *ddp.Group
	stopAll bool
	// reducer overlaps the gradient all-reduce with backward (dist.overlap); nil otherwise.
	reducer *ddp.Reducer
	// lastValid is the validation of epoch state.EpochsDone when this
	// process ran it (nil before its first epoch ends, or without a
	// validation split).
	lastValid *metrics.Report
	// testPredictions are the best epoch's on the test split, kept for the
	// comparison with the baseline.
	testPredictions *metrics.Accumulator
}

// Setup prepares the torch runtime for the calling goroutine: it locks it
// to its OS thread (libtorch's grad mode and device are thread-local), sets
// thread counts and checks the libtorch version and device.
func Setup(cfg *Config) (torch.Device, error) {
	runtime.LockOSThread()
	if err := torch.CheckVersion(); err != nil {
		return torch.Device{}, err
	}
	if err := torch.SetUpProcess(cfg.Threads); err != nil {
		return torch.Device{}, err
	}
	return torch.ResolveDevice(cfg.Device)
}

// Train runs the configured training: data, knowledge, model, the loop with
// per-epoch validation, early stopping and checkpoints, then the test
// metrics of the best epoch. With train.baseline it then trains the same
// backbone without meta networks into <out>/baseline for comparison.
func Train(ctx context.Context, cfg Config, opts RunOptions) (*Result, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Data == nil {
		opts.Data = &LoadedData{} // the baseline's data is the main model's
	}
	res, test, err := trainOne(ctx, cfg, opts)
	if err != nil || res.Interrupted || !cfg.Train.Baseline || !cfg.Model.Meta.Levels.Enabled() {
		return res, err
	}
	base := cfg
	base.Model.Meta.Levels = model.LevelsNone
	base.Train.Baseline = false
	base.Out = string(rundir.Dir(cfg.Out).Baseline())
	fmt.Fprintf(opts.Log, "\nbaseline: the same %s backbone without meta networks\n", cfg.Model.Backbone)
	baseOpts := opts
	baseOpts.Resume = opts.Resume && rundir.Dir(base.Out).HasRun() // else the interruption came before the baseline started
	baseRes, baseTest, err := trainOne(ctx, base, baseOpts)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	res.Baseline = baseRes
	if res.Test != nil && baseRes.Test != nil {
		// Both models scored the same test rows in the same order.
		if res.AUCDelta, err = metrics.CompareAUC(baseTest, test, res.Scenarios); err != nil {
			return res, fmt.Errorf("baseline: %w", err)
		}
		fmt.Fprintf(opts.Log, "\ntest AUC, %s without vs with LLM4MSR meta networks (%s):\n", cfg.Model.Backbone, cfg.Model.Meta.Levels)
		metrics.CompareTable(opts.Log, []string{"bare " + cfg.Model.Backbone, "LLM4MSR"}, []metrics.Report{*baseRes.Test, *res.Test}, res.AUCDelta)
		if d := res.AUCDelta[0]; d.Delta != nil {
			fmt.Fprintf(opts.Log, "overall ΔAUC %+.4f, 95%% interval [%+.4f, %+.4f] (DeLong's paired test, p = %.2g)\n", *d.Delta, d.Low, d.High, d.P)
		}
	}
	if opts.Ranks != nil && opts.Ranks.Rank() != 0 {
		return res, nil
	}
	return res, rundir.Dir(cfg.Out).WriteSummary(res)
}

// trainOne trains one model into cfg.Out and returns its result with its
// test predictions (nil without a test split), which the comparison with
// the baseline pairs.
func trainOne(ctx context.Context, cfg Config, opts RunOptions) (*Result, *metrics.Accumulator, error) {
	dev, err := Setup(&cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, nil, err
	}
	if opts.Ranks == nil || opts.Ranks.Rank() == 0 {
		if err := rundir.Dir(cfg.Out).WriteEnvironment(WriteEnvironment); err != nil {
			return nil, nil, err
		}
	}
	r := &run{cfg: cfg, opts: opts, dev: rankDevice(dev, cfg.Device, opts.Ranks.LaunchInfo()), log: opts.Log, ranks: opts.Ranks}
	if r.ranks != nil {
		r.opts.GradientHook = r.averageGradients(ctx, opts.GradientHook)
		r.opts.SparseGradientHook = r.gatherSparseGradients(opts.SparseGradientHook)
		if r.ranks.RestartCount > 0 && !opts.Resume && rundir.Dir(cfg.Out).HasRun() {
			fmt.Fprintf(r.log, "torchrun restart %d: resuming from the latest checkpoint\n", r.ranks.RestartCount)
			opts.Resume = true
		}
	}
	var resumeFrom *Checkpoint
	if !opts.Resume {
		if rundir.Dir(cfg.Out).HasRun() {
			return nil, nil, fmt.Errorf("%s already holds a run (%s); continue it with --resume, or train into another --out", cfg.Out, rundir.Dir(cfg.Out).Checkpoints())
		}
	} else {
		dir, err := CheckpointDir(cfg.Out, "latest")
		if err != nil {
			return nil, nil, fmt.Errorf("resume: %w", err)
		}
		if resumeFrom, err = ReadCheckpoint(dir); err != nil {
			return nil, nil, fmt.Errorf("resume: %w", err)
		}
		if err := sameRun(resumeFrom.Config, cfg, resumeFrom.State); err != nil {
			return nil, nil, fmt.Errorf("resume %s: %w", dir, err)
		}
	}
	if err := r.prepare(ctx, resumeFrom); err != nil {
		return nil, nil, err
	}
	defer r.close()
	// A caller's gradient hook must see the gradients before they travel.
	if r.ranks != nil && cfg.Dist.Overlap && !cfg.Dist.SyncBatchNorm && opts.GradientHook == nil {
		var err error
		if r.reducer, err = r.ranks.NewReducer(r.params); err != nil {
			return nil, nil, err
		}
	}
	if r.rank0() {
		yml, err := r.cfg.Marshal()
		if err != nil {
			return nil, nil, err
		}
		if err := rundir.Dir(cfg.Out).WriteConfig(yml); err != nil {
			return nil, nil, err
		}
	}
	res, err := r.loop(ctx)
	return res, r.testPredictions, err
}

// sameRun refuses to resume into a different configuration, which would
// silently mix two runs, naming the keys that differ. How the ranks talk
// (dist) may change, and so may train.epochs, down to the epochs already
// done, and train.early_stopping.patience, upwards: a finished, stopped or
// interrupted run continues to the new count (see continuing).
func sameRun(saved, now Config, state State) error {
	if now.Train.Epochs < state.EpochsDone {
		return fmt.Errorf("train.epochs = %d: the run has already trained %d epochs", now.Train.Epochs, state.EpochsDone)
	}
	was, is := saved.Train.EarlyStopping.Patience, now.Train.EarlyStopping.Patience
	if is != was && was != 0 && (is == 0 || is > was) {
		saved.Train.EarlyStopping.Patience = is // more patience: a run that stopped early can go on
	}
	saved.Dist, now.Dist = DistConfig{}, DistConfig{}
	saved.Train.Epochs = now.Train.Epochs
	diff, err := configDiff(saved, now)
	if err != nil {
		return err
	}
	if len(diff) > 0 {
		const shown = 5
		more := ""
		if len(diff) > shown {
			more = fmt.Sprintf(" and %d more", len(diff)-shown)
			diff = diff[:shown]
		}
		return fmt.Errorf("the configuration differs from the checkpoint's (%s): %s%s; resume with the same config (train.epochs may change, train.early_stopping.patience grow), or start a new --out",
			configFile, strings.Join(diff, "; "), more)
	}
	return nil
}

// configDiff lists the keys whose values differ between two configurations,
// as "key: saved → now", sorted by key.
func configDiff(saved, now Config) ([]string, error) {
	a, err := toTree(&saved)
	if err != nil {
		return nil, err
	}
	b, err := toTree(&now)
	if err != nil {
		return nil, err
	}
	flatA, flatB := map[string]any{}, map[string]any{}
	flattenTree(a, "", flatA)
	flattenTree(b, "", flatB)
	keys := map[string]bool{}
	for k := range flatA {
		keys[k] = true
	}
	for k := range flatB {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		va, vb := flatA[k], flatB[k]
		if !reflect.DeepEqual(va, vb) {
			out = append(out, fmt.Sprintf("%s: %s → %s", k, flowYAML(va), flowYAML(vb)))
		}
	}
	return out, nil
}

// flattenTree maps every leaf of a configuration tree to its dotted key.
func flattenTree(tree map[string]any, prefix string, out map[string]any) {
	for k, v := range tree {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flattenTree(sub, prefix+k+".", out)
			continue
		}
		out[prefix+k] = v
	}
}

// flowYAML writes a value on one line, as --set would take it.
func flowYAML(v any) string {
	if v == nil {
		return "(unset)"
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	setFlow(n)
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}

// continuing says, when a resumed run goes on past the epoch count it was
// started with, what that changes: nothing with a constant or step-decayed
// learning rate (the run is the one that had trained that long from the
// start), but cosine and linear decay spread over the whole run, so from the
// resume on they follow the schedule of the new count.
func (r *run) continuing(ck *Checkpoint) {
	was, now := ck.Config.Train.Epochs, r.cfg.Train.Epochs
	if was == now {
		return
	}
	fmt.Fprintf(r.log, "train.epochs %d → %d: continuing from epoch %d\n", was, now, r.state.EpochsDone+1)
	if d := r.cfg.Train.Schedule.Decay; d == DecayCosine || d == DecayLinear {
		fmt.Fprintf(r.log, "train.schedule.decay = %s spreads over every epoch: from step %d on the learning rate follows the %d-epoch schedule, so this run differs from one trained %d epochs from the start\n",
			d, r.state.Step, now, now)
	}
}

func (r *run) prepare(ctx context.Context, ck *Checkpoint) error {
	cfg := &r.cfg
	if err := torch.ManualSeed(uint64(cfg.Seed)); err != nil {
		return err
	}
	dcfg := cfg.DataConfig()
	var lopts []data.Option
	if ck != nil {
		lopts = append(lopts, data.WithVocabs(ck.Vocabs))
	}
	sp, err := r.loadData(dcfg, lopts)
	if err != nil {
		return err
	}
	r.splits, r.vocabs = sp, sp.Vocabs
	if sp.Skipped.Count > 0 {
		fmt.Fprintf(r.log, "skipped %d bad rows (data.skip_bad_rows); first: %v\n", sp.Skipped.Count, sp.Skipped.First)
	}
	var know *model.Knowledge
	if cfg.Model.Meta.Levels.Enabled() && !cfg.Knowledge.Encoder.FromText() {
		if know, err = knowledge.IDKnowledge(cfg.Knowledge, cfg.Seed, sp.Vocabs, r.dev); err != nil {
			return fmt.Errorf("knowledge: %w", err)
		}
		fmt.Fprintf(r.log, "knowledge: %s, a vector per scenario and per user with no text\n", cfg.Knowledge.Encoder)
	} else if cfg.Model.Meta.Levels.Enabled() {
		store, stats, err := r.buildKnowledge(ctx, sp)
		if err != nil {
			return fmt.Errorf("knowledge: %w", err)
		}
		fmt.Fprintf(r.log, "knowledge: %d prompts (%d stored before, %d encoded) with %s in %s\n", stats.Prompts, stats.Stored, stats.Encoded, cfg.Knowledge.Encoder, store.Dir())
		know, r.missing, err = knowledge.ForModel(store, sp.Vocabs, r.dev)
		store.Close()
		if err != nil {
			return err
		}
		if r.missing > 0 {
			fmt.Fprintf(r.log, "knowledge: %d users have no vector and use the learned fallback\n", r.missing)
		}
	}
	m, err := buildModel(cfg.Model, sp.Vocabs, know, r.dev)
	if err != nil {
		return err
	}
	r.model = m
	fmt.Fprintf(r.log, "model: %s, meta networks %s, %d parameters, on %s\n", cfg.Model.Backbone, cfg.Model.Meta.Levels, m.Store.NumParameters(), r.dev)
	if r.opt, r.params, err = newOptimizer(cfg.Train, r.model); err != nil {
		return err
	}
	r.group = newGrouper(sp.Vocabs.Schema(), r.dev)
	r.state = State{Format: stateFormat, Seed: cfg.Seed, TorchVersion: torch.CompiledVersion(), Backbone: cfg.Model.Backbone, Meta: string(cfg.Model.Meta.Levels)}
	if ck != nil {
		if err := restoreModel(ck.Dir, r.model.Store); err != nil {
			return err
		}
		if err := restoreOptimizer(ck.Dir, r.opt, ck.State.OptimizerSteps); err != nil {
			return err
		}
		r.state = ck.State
		fmt.Fprintf(r.log, "resumed from %s at epoch %d, batch %d (step %d)\n", ck.Dir, r.state.EpochsDone+1, r.state.Batch, r.state.Step)
		r.continuing(ck)
	}
	if r.ranks != nil && cfg.Dist.SyncBatchNorm {
		r.model.Store.SyncBatchStats(r.ranks.SumOverRanks)
	}
	return r.joinRanks()
}

// loadData loads the run's data, or takes what an earlier model of the
// same command loaded (the baseline trains on the main run's splits).
func (r *run) loadData(dcfg data.Config, opts []data.Option) (*data.Splits, error) {
	if d := r.opts.Data; d != nil && d.Splits != nil {
		return d.Splits, nil
	}
	fmt.Fprintf(r.log, "loading data (%s)\n", dcfg.Format)
	start := time.Now()
	sp, err := data.Load(dcfg, opts...)
	if err != nil {
		return nil, err
	}
	// Reading leaves garbage as large as the data (buffers, strings seen
	// once); the runtime hands it back to the system only slowly, which
	// would put it under libtorch's allocations in the process's peak.
	debug.FreeOSMemory()
	if sp.Train != nil {
		fmt.Fprintf(r.log, "data: %d train, %d valid, %d test rows in %.1f s\n", sp.Train.Len(), sp.Valid.Len(), sp.Test.Len(), time.Since(start).Seconds())
	}
	if r.opts.Data != nil {
		r.opts.Data.Splits = sp
	}
	return sp, nil
}

// buildModel creates the configured model for data mapped with vocabs; on
// failure it frees the knowledge it was given.
func buildModel(cfg model.Config, vocabs *data.Vocabs, know *model.Knowledge, dev torch.Device) (*model.Model, error) {
	spec := model.Spec{Numeric: len(vocabs.Numeric), Scenarios: len(vocabs.Scenarios)}
	for _, n := range vocabs.Sizes() {
		spec.VocabSizes = append(spec.VocabSizes, int64(n))
	}
	m, err := model.New(cfg, spec, know, dev)
	if err != nil && know != nil {
		know.Close()
	}
	return m, err
}

// contents are what a checkpoint of the run holds now.
func (r *run) contents() Contents {
	return Contents{Store: r.model.Store, Optimizer: r.opt, Vocabs: r.vocabs, Config: r.cfg, State: r.state}
}

func (r *run) scorer() scorer {
	return scorer{model: r.model, group: r.group, vocabs: r.vocabs, batches: evalBatches(r.cfg.Train), ranks: r.ranks}
}

// evaluate computes the model's metrics on a split of the run's data; nil when the split has no rows.
func (r *run) evaluate(part data.Part) (*metrics.Report, error) {
	acc, err := r.predictions(part)
	if acc == nil || err != nil {
		return nil, err
	}
	rep := acc.Compute(r.vocabs.Schema().ScenarioNames())
	return &rep, nil
}

// predictions scores a split of the run's data; nil when it has no rows.
func (r *run) predictions(part data.Part) (*metrics.Accumulator, error) {
	if r.ranks != nil { // every rank scores with rank 0's running statistics
		if err := r.broadcastModel(true); err != nil {
			return nil, err
		}
	}
	return r.scorer().predictions(r.splits, part)
}

func (r *run) close() {
	r.reducer.Close()
	r.opt.Close()
	if r.model != nil {
		r.model.Close()
	}
}

func (r *run) trainSource() (data.Source, error) {
	t := r.cfg.Train
	return r.splits.Source(data.Train, data.BatchOptions{
		Size: t.BatchSize, Shuffle: true, Seed: r.cfg.Seed, DropLast: t.DropLast, Workers: t.LoaderWorkers,
		Shard: data.Shard{Rank: r.rank(), Count: r.world()},
	})
}
