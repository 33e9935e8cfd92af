package train

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
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

// EmbeddingOptimizers lists the valid values of train.embedding_optimizer.
func EmbeddingOptimizers() []EmbeddingOptimizer {
	out := []EmbeddingOptimizer{DenseEmbedding}
	for _, k := range torch.SparseKinds {
		out = append(out, EmbeddingOptimizer(k.Name))
	}
	return out
}

// ParseEmbeddingOptimizer checks a value of train.embedding_optimizer.
func ParseEmbeddingOptimizer(s string) (EmbeddingOptimizer, error) {
	var names []string
	for _, e := range EmbeddingOptimizers() {
		if string(e) == strings.ToLower(s) {
			return e, nil
		}
		names = append(names, string(e))
	}
	return "", fmt.Errorf("train.embedding_optimizer = %q: want one of %s", s, strings.Join(names, ", "))
}

// UnmarshalYAML accepts only the names EmbeddingOptimizers lists.
func (e *EmbeddingOptimizer) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseEmbeddingOptimizer(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*e = v
	return nil
}

// sparseKind is the row-wise optimizer, or false for dense.
func (e EmbeddingOptimizer) sparseKind() (torch.SparseKind, bool) {
	for _, k := range torch.SparseKinds {
		if k.Name == string(e) {
			return k.Kind, true
		}
	}
	return 0, false
}

// embeddingLR is the embedding optimizer's learning rate when the dense
// parameters' is lr: train.embedding_lr (0: train.lr for adam and sgd,
// adagradEmbeddingLR for the Adagrads) scaled by the schedule as train.lr is.
func (t Options) embeddingLR(lr float64) float64 {
	base := t.EmbeddingLR
	if base == 0 {
		switch kind, _ := t.EmbeddingOptimizer.sparseKind(); kind {
		case torch.SparseAdagrad, torch.SparseRowWiseAdagrad:
			base = adagradEmbeddingLR
		default:
			return lr
		}
	}
	return base * lr / t.LR
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
	o.LR = t.embeddingLR(t.LR)
	o.WeightDecay = t.WeightDecay
	opt, err := torch.NewSparseOptimizer(kind, table.Name(), table.Weight, o)
	if err != nil {
		return nil, fmt.Errorf("train.embedding_optimizer %s: %w", t.EmbeddingOptimizer, err)
	}
	return opt, nil
}
