package train

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/model/nn"
)

// EmbeddingOptimizer is train.embedding_optimizer: how the embedding table
// learns. "dense" trains it with train.optimizer like every other
// parameter, a gradient as large as the table each step; the others are
// row-wise optimizers (torch.SparseKinds) that touch only the rows a batch
// looked up, so a step's cost follows the batch, not the vocabulary.
type EmbeddingOptimizer string

// DenseEmbedding is the behaviour before row-wise optimizers: the table in train.optimizer.
const DenseEmbedding EmbeddingOptimizer = "dense"

// DefaultEmbeddingOptimizer is chosen by measurement (README, Embedding
// optimizers): row-wise Adagrad at its default learning rate matched or
// beat dense Adam's test AUC with 1 float of state per row.
const DefaultEmbeddingOptimizer EmbeddingOptimizer = "rowwise_adagrad"

// adagradEmbeddingLR is train.embedding_lr's default for adagrad and
// rowwise_adagrad, which want a larger step than Adam (README, Embedding optimizers).
const adagradEmbeddingLR = 0.05

// rowWiseOptimizers are torch.SparseKinds: the binding's registry is the only list.
var rowWiseOptimizers = choice.FromKinds[EmbeddingOptimizer]("row-wise optimizer", torch.SparseKinds())

// EmbeddingOptimizerValues are train.embedding_optimizer's values: dense, then the row-wise optimizers.
var EmbeddingOptimizerValues = choice.New("embedding optimizer", append([]EmbeddingOptimizer{DenseEmbedding}, rowWiseOptimizers.Values()...)...)

// UnmarshalYAML accepts one of EmbeddingOptimizerValues.
func (e *EmbeddingOptimizer) UnmarshalYAML(n *yaml.Node) error {
	return EmbeddingOptimizerValues.Decode(n, e)
}

// sparseKind is the row-wise optimizer, or false for dense.
func (e EmbeddingOptimizer) sparseKind() (torch.SparseKind, bool) { return rowWiseOptimizers.Kind(e) }

// embeddingLR is the embedding optimizer's learning rate before the
// schedule: train.embedding_lr, or when 0 train.lr for adam and sgd and
// adagradEmbeddingLR for the Adagrads. The combined optimizer scales it by
// the schedule as it scales train.lr.
func (t Options) embeddingLR() float64 {
	if t.EmbeddingLR != 0 {
		return t.EmbeddingLR
	}
	switch kind, _ := t.EmbeddingOptimizer.sparseKind(); kind {
	case torch.SparseAdagrad, torch.SparseRowWiseAdagrad:
		return adagradEmbeddingLR
	}
	return t.LR
}

// newOptimizer creates the run's optimizer: train.optimizer over the
// model's trainable parameters and, unless the table trains densely, the
// row-wise train.embedding_optimizer over its embedding table, combined.
// It returns the dense parameters too (a sparse table is not among them).
func newOptimizer(t Options, m *model.Model) (*torch.CombinedOptimizer, []*torch.Tensor, error) {
	kind, err := t.Optimizer.Kind()
	if err != nil {
		return nil, nil, err
	}
	var sparse []*torch.SparseOptimizer
	s, err := newSparseOptimizer(t, m.Embedding)
	if err != nil {
		return nil, nil, err
	}
	if s != nil {
		sparse = append(sparse, s)
	}
	o := torch.DefaultOptimOptions(kind)
	o.LR, o.WeightDecay, o.Momentum = t.LR, t.WeightDecay, t.Momentum
	dense, err := torch.NewOptimizer(kind)
	if err == nil {
		names, params := m.Store.ParameterTensors()
		if err = dense.AddGroup(names, params, o); err == nil {
			var opt *torch.CombinedOptimizer
			if opt, err = torch.NewCombinedOptimizer(dense, sparse...); err == nil {
				return opt, params, nil
			}
		}
		dense.Close()
	}
	for _, s := range sparse {
		s.Close()
	}
	return nil, nil, err
}

// newSparseOptimizer switches the model's table to sparse learning and
// creates its row-wise optimizer; nil for a dense table.
func newSparseOptimizer(t Options, table *nn.EmbeddingCollection) (*torch.SparseOptimizer, error) {
	kind, sparse := t.EmbeddingOptimizer.sparseKind()
	if !sparse {
		return nil, nil
	}
	if err := table.SetSparse(true); err != nil {
		return nil, err
	}
	o := torch.DefaultSparseOptions(kind)
	o.LR = t.embeddingLR()
	o.WeightDecay = t.WeightDecay
	opt, err := torch.NewSparseOptimizer(kind, table.Name(), table.Weight, o)
	if err != nil {
		return nil, fmt.Errorf("train.embedding_optimizer %s: %w", t.EmbeddingOptimizer, err)
	}
	return opt, nil
}
