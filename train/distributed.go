package train

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	kb "github.com/msrtrain/msrtrain/data/knowledge"
	"github.com/msrtrain/msrtrain/train/ddp"
	"github.com/msrtrain/msrtrain/train/knowledge"
)

// What a run does differently as one rank of a data-parallel job, with
// PyTorch DistributedDataParallel's semantics:
//
//   - before training, the ranks check that they agree on the
//     configuration, the vocabularies and the splits, and take rank 0's
//     parameters and buffers;
//   - each rank trains on its shard of every epoch (data.Shard by rows),
//     train.batch_size rows per step, and the gradients are averaged over
//     the ranks between backward and the update (the GradientHook), so that
//     a step equals one process's step on the ranks' batches together;
//   - batch statistics (BatchNorm, STAR's partitioned norm) are each
//     rank's own, as in DDP without SyncBatchNorm; rank 0's running
//     statistics are what evaluation and checkpoints use;
//   - evaluation scores whole batches round-robin and gathers them, so its
//     metrics equal one process's exactly;
//   - rank 0 builds the knowledge store, writes checkpoints and the logs;
//     the ranks agree on the step of every checkpoint;
//   - Ctrl-C on any rank stops every rank after the same step.
//
// Resuming reads the checkpoint on every rank: in a job across machines,
// out must be on a filesystem they share.

// JoinFromEnv joins the data-parallel job that torchrun (or Slurm, or a
// Kubernetes PyTorchJob) started this process in; nil when the environment
// names none.
func JoinFromEnv(cfg Config) (*ddp.Group, error) {
	l, err := ddp.FromEnv()
	if err != nil || l == nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dev, err := torch.ResolveDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	return ddp.Join(l, dev, cfg.Dist.options())
}

// rankDevice puts each rank of a job (l, nil for one process) on a GPU of
// its own, cuda:LOCAL_RANK, unless the configuration names the device's index.
func rankDevice(dev torch.Device, configured string, l *ddp.Launch) torch.Device {
	if l == nil || !dev.IsCUDA() || (configured != "auto" && configured != "cuda" && configured != "") {
		return dev
	}
	return torch.CUDA(l.LocalRank)
}

// LoadModelInJob is LoadModel for a process that torchrun (or Slurm, or a
// PyTorchJob) started: the model goes on this rank's device and the
// returned Loaded has joined the job with the checkpoint's dist settings,
// so that Evaluate scores this rank's shard and gathers the others'. Every
// rank must evaluate the same split; Close the Ranks afterwards (Fail them
// on an error). Without a launch environment it is LoadModel.
func LoadModelInJob(path, device string, threads int) (*Loaded, error) {
	l, err := ddp.FromEnv()
	if err != nil || l == nil {
		if err != nil {
			return nil, err
		}
		return LoadModel(path, device, threads)
	}
	dev, err := torch.ResolveDevice(device)
	if err != nil {
		return nil, err
	}
	m, err := LoadModel(path, rankDevice(dev, device, l).String(), threads)
	if err != nil {
		return nil, err
	}
	if m.Ranks, err = ddp.Join(l, m.Device, m.Checkpoint.Config.Dist.options()); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (r *run) rank() int {
	if r.ranks == nil {
		return 0
	}
	return r.ranks.Rank()
}

func (r *run) world() int {
	if r.ranks == nil {
		return 1
	}
	return r.ranks.Size()
}

func (r *run) rank0() bool { return r.rank() == 0 }

// stopping reports whether the loop should stop after the step it just
// took: in one process when ctx is cancelled; in a job when any rank's was,
// as agreed in that step's gradient all-reduce, so that all stop together.
func (r *run) stopping(ctx context.Context) bool {
	if r.ranks == nil {
		return ctx.Err() != nil
	}
	return r.stopAll
}

// averageGradients is a rank's GradientHook: then's, if any, then the
// average over the ranks, which also carries whether any rank was
// asked to stop.
func (r *run) averageGradients(ctx context.Context, then GradientHook) GradientHook {
	return func(params []*torch.Tensor) error {
		if then != nil {
			if err := then(params); err != nil {
				return err
			}
		}
		flags := []float64{0}
		if ctx.Err() != nil {
			flags[0] = 1
		}
		var err error
		if r.reducer != nil {
			err = r.reducer.Finish(flags)
		} else {
			err = r.ranks.AverageGrads(params, flags)
		}
		if err != nil {
			return err
		}
		r.stopAll = flags[0] > 0
		return nil
	}
}

// gatherSparseGradients is a rank's SparseGradientHook: then's, if any,
// then every rank's touched rows gathered, each scaled by 1/world, so that
// the row-wise update (which sums repeated ids) applies the average over
// the ranks, as the dense all-reduce does. Only rows some rank touched
// travel, never the table.
func (r *run) gatherSparseGradients(then SparseGradientHook) SparseGradientHook {
	return func(g *torch.SparseGrad) error {
		if then != nil {
			if err := then(g); err != nil {
				return err
			}
		}
		ids, _, err := r.ranks.AllGather(g.IDs)
		if err != nil {
			return err
		}
		rows, _, err := r.ranks.AllGather(g.Rows)
		if err != nil {
			return err
		}
		g.IDs, g.Rows, g.Distinct = ids, rows.MulScalar(1/float64(r.world())), false
		return nil
	}
}

// buildKnowledge builds the knowledge store on rank 0 while the others
// wait, then opens it everywhere (the others find it complete and read it).
func (r *run) buildKnowledge(ctx context.Context, sp *data.Splits) (*kb.Store, kb.BuildStats, error) {
	cfg := r.cfg
	if r.ranks == nil {
		return knowledge.Build(ctx, cfg.Knowledge, cfg.Out, sp, progressWriter(r.opts))
	}
	if !r.rank0() {
		if err := r.ranks.WaitFor("knowledge"); err != nil {
			return nil, kb.BuildStats{}, err
		}
		cfg.Knowledge.Force = false // rank 0 started it over already
		return knowledge.Build(ctx, cfg.Knowledge, cfg.Out, sp, io.Discard)
	}
	store, stats, err := knowledge.Build(ctx, cfg.Knowledge, cfg.Out, sp, progressWriter(r.opts))
	if aerr := r.ranks.Announce("knowledge", err); err == nil && aerr != nil {
		store.Close()
		return nil, stats, aerr
	}
	return store, stats, err
}

// joinRanks checks that every rank trains the same thing on the same data,
// then gives every rank rank 0's parameters and buffers.
func (r *run) joinRanks() error {
	if r.ranks == nil {
		return nil
	}
	cfg := r.cfg
	// Timeouts may differ between ranks; the rest of dist may not: buckets,
	// overlap and synchronised statistics shape the collectives.
	cfg.Dist.TimeoutSeconds = 0
	yml, err := cfg.Marshal()
	if err != nil {
		return err
	}
	vocabs, err := json.Marshal(r.vocabs)
	if err != nil {
		return err
	}
	var rows []int
	for _, p := range []data.Part{data.Train, data.Valid, data.Test} {
		src, err := r.splits.Source(p, evalBatches(r.cfg.Train))
		if err != nil {
			return err
		}
		rows = append(rows, src.NumBatches())
	}
	for _, c := range []struct {
		what  string
		value []byte
	}{
		{"configuration", yml},
		{"vocabularies", vocabs},
		{"split sizes (evaluation batches per split)", fmt.Append(nil, rows)},
		{"state (step, epoch, batch)", fmt.Appendf(nil, "%d %d %d", r.state.Step, r.state.EpochsDone, r.state.Batch)},
	} {
		sum := sha256.Sum256(c.value)
		if err := r.ranks.Agree(c.what, sum[:]); err != nil {
			return err
		}
	}
	if err := r.broadcastModel(false); err != nil {
		return err
	}
	fmt.Fprintf(r.log, "data parallel: %d ranks over %s, %d rows per rank per step, global batch %d\n",
		r.world(), r.ranks.Backend(), r.cfg.Train.BatchSize, r.world()*r.cfg.Train.BatchSize)
	return nil
}

// broadcastModel gives every rank rank 0's tensors: all of them, or only
// the buffers (running statistics, which each rank updates from its own batches).
func (r *run) broadcastModel(buffersOnly bool) error {
	var ts []*torch.Tensor
	for _, v := range r.model.Store.Vars() {
		if !buffersOnly || !v.Trainable {
			ts = append(ts, v.Tensor)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	return r.ranks.Broadcast(ts)
}

// checkpoint writes a checkpoint on rank 0 (as "best" too when best) once
// every rank agrees on the step; the others wait until it is complete, so
// that none reads a checkpoint still being written.
func (r *run) checkpoint(best bool) error {
	if r.ranks == nil {
		return saveCheckpoint(r.cfg.Out, r.contents(), best)
	}
	if err := r.agreeOnStep(); err != nil {
		return err
	}
	if err := r.broadcastModel(true); err != nil {
		return err
	}
	if r.rank0() {
		if err := saveCheckpoint(r.cfg.Out, r.contents(), best); err != nil {
			r.ranks.Fail(err)
			return err
		}
	}
	return r.ranks.Barrier("checkpoint")
}

// agreeOnStep fails when the ranks are not at the same step.
func (r *run) agreeOnStep() error {
	scope := torch.NewScope()
	defer scope.Close()
	step := float64(r.state.Step)
	t := torch.FromSlice([]float64{step, -step})
	if r.dev.IsCUDA() {
		t = t.ToDevice(r.dev, false)
	}
	if err := r.ranks.AllReduce(t, torch.AllReduceMax); err != nil {
		return err
	}
	v, err := t.Float64s()
	if err != nil {
		return err
	}
	if v[0] != step || -v[1] != step {
		return fmt.Errorf("dist: rank %d is at step %d, but the ranks span steps %g to %g: they are out of step", r.rank(), r.state.Step, -v[1], v[0])
	}
	return nil
}

// restoreBest loads the best checkpoint's weights on rank 0 and gives them to every rank.
func (r *run) restoreBest(dir string) error {
	if r.rank0() {
		if err := restoreModel(dir, r.model.Store); err != nil {
			if r.ranks != nil {
				r.ranks.Fail(err)
			}
			return err
		}
	}
	if r.ranks == nil {
		return nil
	}
	return r.broadcastModel(false)
}
