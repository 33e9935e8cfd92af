package nn

import (
	"fmt"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// EmbeddingCollection looks up every categorical field of a batch with one
// op over one table (TorchRec's idea): field f's rows start at Offsets[f],
// so index i of field f is row Offsets[f]+i.
//
// The table learns in one of two ways. Dense (the default, as
// nn.Embedding): the table is an ordinary parameter and the backward pass
// yields a gradient as large as the table. Sparse (SetSparse, as
// nn.Embedding(sparse=True)): while gradients are on, a lookup gathers the
// batch's distinct rows into a small leaf that autograd sees, and the table
// stays out of autograd; after the backward pass TakeSparseGrad hands over
// the touched rows' ids and gradients for a torch.SparseOptimizer, so a
// step's cost follows the batch, not the vocabulary.
type EmbeddingCollection struct {
	Weight  *torch.Tensor // [sum of vocabulary sizes, Dim]
	Offsets []int64
	Sizes   []int64
	Dim     int64
	offsets *torch.Tensor // [1, fields] int64 on the store's device
	store   *Store
	name    string
	sparse  bool
	// This step's lookups in sparse mode: the gathered leaves and their row ids.
	leaves, ids []*torch.Tensor
}

// NewEmbeddingCollection creates "<path>.weight" for fields with the given vocabulary sizes.
func NewEmbeddingCollection(p Path, sizes []int64, dim int64) *EmbeddingCollection {
	e := &EmbeddingCollection{Sizes: append([]int64(nil), sizes...), Dim: dim, store: p.store, name: p.name("weight")}
	var total int64
	for _, n := range sizes {
		e.Offsets = append(e.Offsets, total)
		total += n
	}
	e.Weight = p.Param("weight", []int64{total, dim}, Normal(0.01))
	e.offsets = p.Constant(torch.FromSlice(e.Offsets, 1, int64(len(sizes))))
	return e
}

// Name is the table's name in the store ("embedding.weight").
func (e *EmbeddingCollection) Name() string { return e.name }

// Rows is the number of rows of the table.
func (e *EmbeddingCollection) Rows() int64 {
	var n int64
	for _, s := range e.Sizes {
		n += s
	}
	return n
}

// SetSparse switches the table between dense and sparse learning (see the
// type's doc). A sparse table does not require grad and is left out of
// Store.ParameterTensors, so a dense optimizer never sees it.
func (e *EmbeddingCollection) SetSparse(on bool) error {
	if err := e.Weight.SetRequiresGrad(!on); err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	e.store.byName[e.name].Sparse = on
	e.sparse = on
	e.leaves, e.ids = nil, nil
	return nil
}

// Sparse reports whether the table learns sparsely.
func (e *EmbeddingCollection) Sparse() bool { return e.sparse }

// Fields is the number of categorical fields.
func (e *EmbeddingCollection) Fields() int64 { return int64(len(e.Sizes)) }

// OutDim is the width of Forward's output.
func (e *EmbeddingCollection) OutDim() int64 { return e.Dim * int64(len(e.Sizes)) }

// Forward maps per-field indices [B, fields] to concatenated embeddings [B, fields*Dim].
func (e *EmbeddingCollection) Forward(indices *torch.Tensor) *torch.Tensor {
	return e.PerField(indices).Flatten(1, 2)
}

// PerField maps per-field indices [B, fields] to each field's embedding [B, fields, Dim]
// (Forward's output is a view of it).
func (e *EmbeddingCollection) PerField(indices *torch.Tensor) *torch.Tensor {
	return e.lookup(indices.Add(e.offsets))
}

// Lookup returns the embeddings of one field for the given indices [B] → [B, Dim].
func (e *EmbeddingCollection) Lookup(field int, indices *torch.Tensor) *torch.Tensor {
	return e.lookup(indices.AddScalar(float64(e.Offsets[field])))
}

func (e *EmbeddingCollection) lookup(rows *torch.Tensor) *torch.Tensor {
	if !e.sparse || !torch.GradEnabled() {
		return torch.Embedding(e.Weight, rows)
	}
	leaf, ids, inverse := torch.GatherRows(e.Weight, rows)
	if leaf.Err() == nil {
		e.leaves, e.ids = append(e.leaves, leaf), append(e.ids, ids)
	}
	return torch.Embedding(leaf, inverse)
}

// Gathered lists the leaves of this step's sparse lookups, whose gradients
// TakeSparseGrad reads; gradient clipping includes them beside the dense
// parameters.
func (e *EmbeddingCollection) Gathered() []*torch.Tensor { return e.leaves }

// TakeSparseGrad returns the gradient of the rows this step's lookups
// touched (call it after the backward pass, inside the step's scope, which
// owns the tensors) and forgets the lookups. ok is false when there were
// none (a dense table, or no lookup with gradients on).
func (e *EmbeddingCollection) TakeSparseGrad() (g torch.SparseGrad, ok bool, err error) {
	leaves, ids := e.leaves, e.ids
	e.leaves, e.ids = nil, nil
	if len(leaves) == 0 {
		return torch.SparseGrad{}, false, nil
	}
	grads := make([]*torch.Tensor, len(leaves))
	for i, l := range leaves {
		if grads[i] = l.Grad(); grads[i] == nil {
			return torch.SparseGrad{}, false, fmt.Errorf("%s: a lookup has no gradient: run the backward pass first", e.name)
		}
	}
	if len(leaves) == 1 {
		g = torch.SparseGrad{Table: e.name, IDs: ids[0], Rows: grads[0], Distinct: true}
	} else {
		g = torch.SparseGrad{Table: e.name, IDs: torch.Cat(ids, 0), Rows: torch.Cat(grads, 0)}
	}
	if err := g.Rows.Err(); err != nil {
		return torch.SparseGrad{}, false, fmt.Errorf("%s: %w", e.name, err)
	}
	return g, true, g.IDs.Err()
}
