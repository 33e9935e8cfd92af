package nn

import (
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// SumOverRanks sums a tensor over the ranks of a data-parallel job as an op
// autograd sees (torch.ProcessGroup.SumOverRanks).
type SumOverRanks func(*torch.Tensor) *torch.Tensor

// SyncBatchStats makes every batch normalisation of the model take its
// statistics over the rows of all ranks (PyTorch's SyncBatchNorm) while
// training; nil, the default, keeps each rank's own. Every rank must then
// run the same normalisations in the same order, which is why
// model.Input.Segments lists every scenario some rank has rows of while
// this is on.
func (s *Store) SyncBatchStats(sum SumOverRanks) { s.sumOverRanks = sum }

// OnAnyRank tells, from this rank's rows per scenario, which scenarios have
// rows on some rank (a sum over the ranks; see model.Input.OnAnyRank).
func (s *Store) OnAnyRank(counts []int64) ([]bool, error) {
	local := make([]float32, len(counts))
	for i, n := range counts {
		local[i] = float32(n)
	}
	total, err := s.sumOverRanks(torch.FromSlice(local).ToDevice(s.Device, false)).Float32s()
	if err != nil {
		return nil, fmt.Errorf("counting scenarios over the ranks: %w", err)
	}
	present := make([]bool, len(total))
	for i, n := range total {
		present[i] = n > 0
	}
	return present, nil
}

// SyncsBatchStats reports whether batch statistics are summed over ranks.
func (s *Store) SyncsBatchStats() bool { return s.sumOverRanks != nil }

// BatchNorm normalises x [n, D] feature by feature with scale weight and
// shift bias [D]. While training, with statistics of the batch, over every
// rank's rows when SyncBatchStats is on, and updates the running
// statistics [D] (views such as one scenario's row of a [S, D] buffer are
// updated in place); a batch of one row, which has no variance, and
// evaluation use the running statistics. Every batch normalisation of the
// model goes through here, so that synchronisation reaches all of them.
func (s *Store) BatchNorm(x, weight, bias, runningMean, runningVar *torch.Tensor, momentum, eps float64) *torch.Tensor {
	if err := x.Err(); err != nil {
		return x
	}
	if !s.training {
		return torch.BatchNorm(x, weight, bias, runningMean, runningVar, false, momentum, eps)
	}
	if s.sumOverRanks == nil {
		return torch.BatchNorm(x, weight, bias, runningMean, runningVar, x.Shape()[0] > 1, momentum, eps)
	}
	return syncedBatchNorm(s.sumOverRanks, x, weight, bias, runningMean, runningVar, momentum, eps)
}

// syncedBatchNorm is batch normalisation with the mean and the biased
// variance of the rows of every rank, in two sums over the ranks (the
// second of squares about the global mean, which keeps float32 accurate);
// the gradient flows through both sums, so each rank's rows receive the
// gradient of every rank's loss through the statistics, as one process
// holding all rows would give them.
func syncedBatchNorm(sum SumOverRanks, x, weight, bias, runningMean, runningVar *torch.Tensor, momentum, eps float64) *torch.Tensor {
	rows := x.Shape()[0]
	local := torch.Cat([]*torch.Tensor{x.Sum(false, 0), torch.Full([]int64{1}, float64(rows), x.DType(), x.Device())}, 0)
	total := sum(local)
	features := x.Shape()[1]
	n, err := total.Narrow(0, features, 1).Item()
	if err != nil {
		return torch.Failed(fmt.Errorf("synchronised batch norm: %w", err))
	}
	if n <= 1 {
		// Copies: autograd keeps what it normalised with, and other
		// scenarios' rows of the same buffers are updated in place below.
		return torch.BatchNorm(x, weight, bias, runningMean.Clone(), runningVar.Clone(), false, momentum, eps)
	}
	mean := total.Narrow(0, 0, features).DivScalar(n)
	centred := x.Sub(mean)
	variance := sum(centred.Square().Sum(false, 0)).DivScalar(n)
	torch.NoGrad(func() {
		err = updateRunning(runningMean, mean, momentum)
		if err == nil {
			err = updateRunning(runningVar, variance.MulScalar(n/(n-1)), momentum) // unbiased, as PyTorch keeps it
		}
	})
	if err != nil {
		return torch.Failed(fmt.Errorf("synchronised batch norm: running statistics: %w", err))
	}
	return centred.Mul(variance.AddScalar(eps).PowScalar(-0.5).Mul(weight)).Add(bias)
}

// updateRunning moves a running statistic towards the batch's: r ← (1−m)·r + m·batch.
func updateRunning(running, batch *torch.Tensor, momentum float64) error {
	return running.CopyFrom(running.MulScalar(1 - momentum).Add(batch.Detach().MulScalar(momentum)))
}
