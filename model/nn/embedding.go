package nn

import "github.com/msrtrain/msrtrain/cgo/torch"

// EmbeddingCollection looks up every categorical field of a batch with one
// op over one table (TorchRec's idea): field f's rows start at Offsets[f],
// so index i of field f is row Offsets[f]+i.
type EmbeddingCollection struct {
	Weight  *torch.Tensor // [sum of vocabulary sizes, Dim]
	Offsets []int64
	Sizes   []int64
	Dim     int64
	offsets *torch.Tensor // [1, fields] int64 on the store's device
}

// NewEmbeddingCollection creates "<path>.weight" for fields with the given vocabulary sizes.
func NewEmbeddingCollection(p Path, sizes []int64, dim int64) *EmbeddingCollection {
	e := &EmbeddingCollection{Sizes: append([]int64(nil), sizes...), Dim: dim}
	var total int64
	for _, n := range sizes {
		e.Offsets = append(e.Offsets, total)
		total += n
	}
	e.Weight = p.Param("weight", []int64{total, dim}, Normal(0.01))
	e.offsets = p.Constant(torch.FromSlice(e.Offsets, 1, int64(len(sizes))))
	return e
}

// Fields is the number of categorical fields.
func (e *EmbeddingCollection) Fields() int64 { return int64(len(e.Sizes)) }

// OutDim is the width of Forward's output.
func (e *EmbeddingCollection) OutDim() int64 { return e.Dim * int64(len(e.Sizes)) }

// Forward maps per-field indices [B, fields] to concatenated embeddings [B, fields*Dim].
func (e *EmbeddingCollection) Forward(indices *torch.Tensor) *torch.Tensor {
	return torch.Embedding(e.Weight, indices.Add(e.offsets)).Flatten(1, 2)
}

// Lookup returns the embeddings of one field for the given indices [B] → [B, Dim].
func (e *EmbeddingCollection) Lookup(field int, indices *torch.Tensor) *torch.Tensor {
	return torch.Embedding(e.Weight, indices.AddScalar(float64(e.Offsets[field])))
}
