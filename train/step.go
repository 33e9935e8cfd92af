package train

import (
	"fmt"
	"math"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
)

// A training step has three phases, each its own function so that other
// kinds of training plug in between them without touching the loop:
//
//	forwardBackward  the batch's loss and the parameters' gradients
//	lossValue        the step's one read of a value from the device: the
//	                 loss, checked before anything touches the weights
//	GradientHook     what the gradients go through before they are applied
//	                 (distributed training all-reduces them here)
//	update           clip the gradients, step the optimizer, zero them
//
// In one process there is no hook: the gradients are applied as backward left them.

// GradientHook sees every trainable parameter's gradient after backward
// and before clipping and the optimizer step; it may change them in place
// (average them across ranks, say). nil does nothing. A sparse embedding
// table is not among params: its gradient goes to SparseGradientHook.
type GradientHook func(params []*torch.Tensor) error

// SparseGradientHook sees the embedding table's gradient when the table
// trains with a row-wise optimizer (train.embedding_optimizer other than
// dense): the ids of the rows the step touched and their gradient rows,
// after GradientHook and before clipping and the row-wise update. It may
// replace g's tensors (say with every rank's ids and rows concatenated,
// Distinct false: the update sums repeated ids). The tensors belong to the
// step's scope. nil does nothing.
type SparseGradientHook func(g *torch.SparseGrad) error

// step runs one optimizer step on a batch and returns its loss.
func (r *run) step(b *data.Batch, total int) (float64, error) {
	scope := torch.NewScope()
	defer scope.Close()
	if err := r.setLR(r.cfg.Train.Schedule.lrAt(r.cfg.Train.LR, r.state.Step, total)); err != nil {
		return 0, err
	}
	if err := torch.ManualSeed(stepSeed(r.cfg.Seed, r.state.Step)); err != nil {
		return 0, err
	}
	if r.reducer != nil {
		if err := r.reducer.Begin(); err != nil {
			return 0, err
		}
	}
	loss, err := r.forwardBackward(b)
	if err != nil {
		return 0, err
	}
	value, err := lossValue(loss)
	if err != nil {
		return 0, err
	}
	return value, r.applyGradients()
}

// applyGradients is everything after backward: the gradient hooks, then the
// update.
func (r *run) applyGradients() error {
	if hook := r.opts.GradientHook; hook != nil {
		if err := hook(r.params); err != nil {
			return fmt.Errorf("gradient hook: %w", err)
		}
	}
	var sparse []torch.SparseGrad
	g, ok, err := r.model.Embedding.TakeSparseGrad() // none for a dense table
	if err != nil {
		return err
	}
	if ok {
		if hook := r.opts.SparseGradientHook; hook != nil {
			if err := hook(&g); err != nil {
				return fmt.Errorf("sparse gradient hook: %w", err)
			}
		}
		sparse = append(sparse, g)
	}
	return r.update(sparse)
}

// setLR gives the optimizer the schedule's learning rate when it changed.
func (r *run) setLR(lr float64) error {
	if lr == r.state.LR {
		return nil
	}
	if err := r.opt.SetLR(lr); err != nil {
		return err
	}
	r.state.LR = lr
	return nil
}

// forwardBackward computes the batch's mean BCE loss, which it returns on
// the device, and its gradients. It reads nothing back from the device, so
// on a GPU backward's kernels are queued behind the forward pass's without
// the host waiting for either.
func (r *run) forwardBackward(b *data.Batch) (*torch.Tensor, error) {
	r.model.Store.SetTraining(true)
	r.group.group(b)
	batch, label := r.group.tensors()
	loss := torch.BCEWithLogits(r.model.Forward(batch), label, nil, nil, torch.ReduceMean)
	return loss, loss.Backward()
}

// lossValue reads the loss back to the host. A non-finite loss stops the
// run before the gradient hook and the update, so no NaN reaches the weights.
func lossValue(loss *torch.Tensor) (float64, error) {
	value, err := loss.Item()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return 0, fmt.Errorf("%w (%v)", ErrNonFinite, value)
	}
	return value, nil
}

// update applies the gradients: clip their global norm (train.clip_norm,
// the sparse table's gradient rows included), step the optimizer, zero
// the dense gradients for the next step. sparse is empty for a dense table.
func (r *run) update(sparse []torch.SparseGrad) error {
	if r.cfg.Train.ClipNorm > 0 {
		var rows []*torch.Tensor
		for _, g := range sparse {
			rows = append(rows, g.Rows)
		}
		if _, err := torch.ClipGradNorm(r.params, r.cfg.Train.ClipNorm, rows...); err != nil {
			return err
		}
	}
	if err := r.opt.Step(sparse...); err != nil {
		return err
	}
	return r.opt.ZeroGrad()
}

// stepSeed makes each step's randomness (dropout) a function of the seed
// and the step alone, so a resumed run draws what an uninterrupted one would.
// It mixes them with SplitMix64's finaliser.
func stepSeed(seed int64, step int) uint64 {
	z := uint64(seed)*0x9e3779b97f4a7c15 + uint64(step) + 1
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
