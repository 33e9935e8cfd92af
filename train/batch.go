package train

import (
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
)

// grouper reorders a batch so that each scenario's rows are contiguous
// (model.Input's contract) with a counting sort into reused buffers, then
// copies it into tensors once.
type grouper struct {
	scenarios int
	fields    int
	numeric   int
	labels    int
	dev       torch.Device

	counts   []int64
	next     []int64
	scenario []int64
	cat      []int64
	num      []float32
	label    []float32 // the first label only: the training target
	user     []int64
	row      []int64
}

func newGrouper(schema *data.Schema, dev torch.Device) *grouper {
	return &grouper{
		scenarios: len(schema.Scenarios), fields: len(schema.Categorical),
		numeric: len(schema.Numeric), labels: len(schema.Labels), dev: dev,
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// group fills the buffers from b in scenario order; stable within a scenario.
func (g *grouper) group(b *data.Batch) {
	n := b.Size
	g.counts = grow(g.counts, g.scenarios)
	g.next = grow(g.next, g.scenarios)
	clear(g.counts)
	for _, s := range b.Scenario[:n] {
		g.counts[s]++
	}
	var off int64
	for s, c := range g.counts {
		g.next[s] = off
		off += c
	}
	g.scenario = grow(g.scenario, n)
	g.cat = grow(g.cat, n*g.fields)
	g.num = grow(g.num, n*g.numeric)
	g.label = grow(g.label, n)
	g.user = grow(g.user, n)
	g.row = grow(g.row, n)
	for i := range n {
		s := b.Scenario[i]
		j := g.next[s]
		g.next[s]++
		g.scenario[j] = s
		copy(g.cat[int(j)*g.fields:int(j+1)*g.fields], b.Cat[i*g.fields:(i+1)*g.fields])
		if g.numeric > 0 {
			copy(g.num[int(j)*g.numeric:int(j+1)*g.numeric], b.Num[i*g.numeric:(i+1)*g.numeric])
		}
		g.label[j] = b.Label[i*g.labels]
		g.user[j] = b.Cat[i*g.fields] // field 0 is the user
		g.row[j] = b.Row[i]
	}
}

// tensors copies the grouped batch to the device (inside the caller's scope).
func (g *grouper) tensors() (model.Batch, *torch.Tensor) {
	n := int64(len(g.scenario))
	mb := model.Batch{
		Cat:      g.toDevice(torch.FromSlice(g.cat, n, int64(g.fields))),
		Scenario: g.toDevice(torch.FromSlice(g.scenario)),
		Counts:   g.counts,
	}
	if g.numeric > 0 {
		mb.Num = g.toDevice(torch.FromSlice(g.num, n, int64(g.numeric)))
	}
	return mb, g.toDevice(torch.FromSlice(g.label))
}

// toDevice moves a host tensor to the model's device. To CUDA it goes
// through page-locked memory, from which the copy runs asynchronously: the
// host goes on queueing the step's kernels while the batch crosses, as with
// PyTorch's DataLoader(pin_memory=True) and .to(non_blocking=True). The
// pinned block comes from libtorch's caching host allocator, which hands it
// out again only after the copy that read it has finished.
func (g *grouper) toDevice(t *torch.Tensor) *torch.Tensor {
	switch {
	case g.dev.Type == torch.CPUType:
		return t
	case g.dev.IsCUDA():
		return t.PinMemory().ToDevice(g.dev, true)
	}
	return t.ToDevice(g.dev, false)
}
