package torch

/*
#include "msr.h"
*/
import "C"

import "fmt"

// sortedVisitBytes is the table size in bytes from which GatherRows and
// the row-wise updates visit rows in address order (kLargeTableBytes in
// cgo/shim/internal.h), for tests that must exercise both orders.
func sortedVisitBytes() int64 { return int64(C.msr_sparse_sorted_visit_bytes()) }

// GatherRows prepares a sparse embedding lookup: the distinct rows that
// indices (int64, any shape) name in table, copied into rows [U, dim], a new
// leaf that requires grad, with their row numbers ids [U] (in order of first
// occurrence on the CPU) and inverse (indices' shape), each index's position
// among them. Embedding(rows, inverse) then equals Embedding(table, indices),
// and after the backward pass rows.Grad() holds the gradient of the touched
// rows only, duplicates summed: what a SparseOptimizer consumes. The table
// itself never enters autograd.
func GatherRows(table, indices *Tensor) (rows, ids, inverse *Tensor) {
	if bad := firstErr(table, indices); bad != nil {
		return bad, bad, bad
	}
	var r, i, inv C.msr_tensor
	if err := check("gather rows", C.msr_embedding_gather(table.h, indices.h, &r, &i, &inv)); err != nil {
		return failed(err), failed(err), failed(err)
	}
	return wrap(r), wrap(i), wrap(inv)
}

// SparseKind selects a row-wise update rule for an embedding table.
type SparseKind int

// Row-wise optimizers. Each updates only the rows a step names; the others,
// their state included, stay bit for bit as they were.
const (
	// SparseSGD: w -= lr·g.
	SparseSGD SparseKind = C.MSR_SPARSE_SGD
	// SparseAdam: torch.optim.SparseAdam (lazy Adam): the touched rows'
	// moments decay, the others' wait; bias correction uses the table's step count.
	SparseAdam SparseKind = C.MSR_SPARSE_ADAM
	// SparseAdagrad: torch.optim.Adagrad on a sparse gradient; one accumulator per element.
	SparseAdagrad SparseKind = C.MSR_SPARSE_ADAGRAD
	// SparseRowWiseAdagrad: FBGEMM's row-wise Adagrad, one accumulator per
	// row fed the mean of the row's squared gradient.
	SparseRowWiseAdagrad SparseKind = C.MSR_SPARSE_ROWWISE_ADAGRAD
)

// sparseOptimizers is the one list of row-wise update rules, in the order
// docs list them (the state's slots as PyTorch's state_dict names them;
// FBGEMM's eps for row-wise Adagrad).
var sparseOptimizers = []rule[SparseKind]{
	{SparseSGD, "sgd", nil, OptimOptions{LR: 0.01}},
	{SparseAdam, "adam", []string{"exp_avg", "exp_avg_sq"}, OptimOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}},
	{SparseAdagrad, "adagrad", []string{"sum"}, OptimOptions{LR: 1e-2, Eps: 1e-10}},
	{SparseRowWiseAdagrad, "rowwise_adagrad", []string{rowSlot}, OptimOptions{LR: 1e-2, Eps: 1e-8}},
}

// rowSlot is row-wise Adagrad's accumulator, one value per row; every
// other slot holds one value per element of the table.
const rowSlot = "row_sum"

// SparseKinds are the row-wise update rules, in the order docs list them;
// each kind's String is its name in configurations.
func SparseKinds() []SparseKind { return kinds(sparseOptimizers) }

func (k SparseKind) String() string {
	if r, ok := lookup(sparseOptimizers, k); ok {
		return r.name
	}
	return fmt.Sprintf("sparse optimizer(%d)", int(k))
}

// slots name the kind's state.
func (k SparseKind) slots() []string {
	r, _ := lookup(sparseOptimizers, k)
	return r.slots
}

// DefaultSparseOptions are PyTorch's defaults for the kind (FBGEMM's eps for row-wise Adagrad).
func DefaultSparseOptions(kind SparseKind) OptimOptions {
	r, _ := lookup(sparseOptimizers, kind)
	return r.defaults
}

// StateBytesPerRow is the optimizer state a kind keeps per table row of width dim, in float32.
func (k SparseKind) StateBytesPerRow(dim int64) int64 {
	var floats int64
	for _, slot := range k.slots() {
		if slot == rowSlot {
			floats++
		} else {
			floats += dim
		}
	}
	return 4 * floats
}

// SparseOptimizer updates the rows of one embedding table that a step
// touched. Its state lives in libtorch memory: Close it. Weight decay, when
// set, is L2 on the touched rows only (PyTorch refuses weight decay with
// sparse gradients), so untouched rows never move.
type SparseOptimizer struct {
	h    C.msr_sparse_optim
	kind SparseKind
	name string
	rows int64
}

// NewSparseOptimizer creates a row-wise optimizer for table [rows, dim],
// which must not require grad. name prefixes its state's names ("<name>.exp_avg").
func NewSparseOptimizer(kind SparseKind, name string, table *Tensor, opts OptimOptions) (*SparseOptimizer, error) {
	if bad := firstErr(table); bad != nil {
		return nil, bad.err
	}
	if opts.LR < 0 || opts.WeightDecay < 0 {
		return nil, errorf("sparse optimizer", "learning rate and weight decay must be >= 0, got %g, %g", opts.LR, opts.WeightDecay)
	}
	shape := table.Shape()
	if len(shape) != 2 {
		return nil, errorf("sparse optimizer", "%s: the table must be [rows, dim], got %v", name, shape)
	}
	var h C.msr_sparse_optim
	if err := check("sparse optimizer", C.msr_sparse_optim_new(C.int(kind), table.h, cOptions(opts), &h)); err != nil {
		return nil, err
	}
	return &SparseOptimizer{h: h, kind: kind, name: name, rows: shape[0]}, nil
}

// Kind is the update rule.
func (o *SparseOptimizer) Kind() SparseKind { return o.kind }

// Name is the table's name.
func (o *SparseOptimizer) Name() string { return o.name }

// Step updates the rows ids [n] (int64) with gradient rows grad [n, dim].
// Repeated ids are summed first, so gradients gathered from several ranks
// can be passed as they are; with distinct true the caller promises there
// are none (GatherRows' ids) and that pass is skipped. The step count
// advances even when no row is given.
func (o *SparseOptimizer) Step(ids, grad *Tensor, distinct bool) error {
	if err := o.closedErr("sparse step"); err != nil {
		return err
	}
	if bad := firstErr(ids, grad); bad != nil {
		return bad.err
	}
	return check("sparse step", C.msr_sparse_optim_step(o.h, ids.h, grad.h, boolInt(distinct)))
}

// SetLR sets the learning rate (for schedules).
func (o *SparseOptimizer) SetLR(lr float64) error {
	if err := o.closedErr("sparse set_lr"); err != nil {
		return err
	}
	return check("sparse set_lr", C.msr_sparse_optim_set_lr(o.h, C.double(lr)))
}

// LR is the learning rate.
func (o *SparseOptimizer) LR() (float64, error) {
	if err := o.closedErr("sparse lr"); err != nil {
		return 0, err
	}
	var lr C.double
	err := check("sparse lr", C.msr_sparse_optim_get_lr(o.h, &lr))
	return float64(lr), err
}

func (o *SparseOptimizer) closedErr(op string) error {
	if o.h == nil {
		return errorf(op, "sparse optimizer is closed")
	}
	return nil
}

// StateTensors returns the state (aliases) named "<table name>.<slot>" and the step count as "<table name>.step".
func (o *SparseOptimizer) StateTensors() (map[string]*Tensor, map[string]int64, error) {
	if err := o.closedErr("sparse state"); err != nil {
		return nil, nil, err
	}
	tensors := map[string]*Tensor{}
	for k, slot := range o.kind.slots() {
		var out C.msr_tensor
		if err := check("sparse state", C.msr_sparse_optim_state(o.h, C.int(k), &out)); err != nil {
			return nil, nil, err
		}
		tensors[o.name+"."+slot] = wrap(out)
	}
	var step C.int64_t
	if err := check("sparse state", C.msr_sparse_optim_get_step(o.h, &step)); err != nil {
		return nil, nil, err
	}
	return tensors, map[string]int64{o.name + ".step": int64(step)}, nil
}

// LoadState restores what StateTensors exported; every entry must be present.
func (o *SparseOptimizer) LoadState(tensors map[string]*Tensor, steps map[string]int64) error {
	current, _, err := o.StateTensors()
	if err != nil {
		return err
	}
	return loadState(current, tensors, steps, []string{o.name + ".step"}, func(_ int, step int64) error {
		return check("sparse state", C.msr_sparse_optim_set_step(o.h, C.int64_t(step)))
	})
}

// Close frees the optimizer's state.
func (o *SparseOptimizer) Close() {
	if o.h != nil {
		C.msr_sparse_optim_free(o.h)
		o.h = nil
	}
}
