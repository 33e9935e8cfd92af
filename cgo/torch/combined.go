package torch

import (
	"fmt"
	"maps"
)

// SparseGrad is the gradient of the rows of one embedding table that a step
// touched: row ids and gradient rows, the form in which distributed
// training exchanges them between ranks and a SparseOptimizer consumes them.
type SparseGrad struct {
	Table string  // the table's name, as its SparseOptimizer knows it
	IDs   *Tensor // [n] int64 rows of the table
	Rows  *Tensor // [n, dim] their gradients
	// Distinct: no id repeats (one lookup this step). Gradients gathered
	// from several lookups or ranks may repeat ids; the optimizer sums them.
	Distinct bool
}

// CombinedOptimizer drives a dense optimizer and the row-wise optimizers of
// sparse embedding tables as one, like TorchRec's CombinedOptimizer: one
// step, one learning rate, one state dict. It owns them: Close frees all.
type CombinedOptimizer struct {
	dense  *Optimizer
	sparse []*SparseOptimizer
	// baseLR is the dense learning rate at creation and sparseLR each
	// sparse optimizer's: a schedule scales them all by the same factor.
	baseLR   float64
	sparseLR []float64
}

// NewCombinedOptimizer combines dense (whose groups all have one learning
// rate) with the sparse optimizers, whose tables' names must differ. On
// error the caller still owns the optimizers.
func NewCombinedOptimizer(dense *Optimizer, sparse ...*SparseOptimizer) (*CombinedOptimizer, error) {
	lr, err := dense.LR(0)
	if err != nil {
		return nil, err
	}
	c := &CombinedOptimizer{dense: dense, baseLR: lr}
	seen := map[string]bool{}
	for _, s := range sparse {
		if seen[s.Name()] {
			return nil, errorf("combined optimizer", "two sparse optimizers for table %s", s.Name())
		}
		seen[s.Name()] = true
		slr, err := s.LR()
		if err != nil {
			return nil, err
		}
		c.sparse, c.sparseLR = append(c.sparse, s), append(c.sparseLR, slr)
	}
	return c, nil
}

// Dense is the dense parameters' optimizer.
func (c *CombinedOptimizer) Dense() *Optimizer { return c.dense }

// Sparse are the tables' row-wise optimizers, in the order given.
func (c *CombinedOptimizer) Sparse() []*SparseOptimizer { return c.sparse }

// Step applies one update: the dense optimizer to every parameter with a
// gradient, and each table's optimizer to its rows in grads (a table
// absent from grads is not stepped: no lookup touched it).
func (c *CombinedOptimizer) Step(grads ...SparseGrad) error {
	if err := c.dense.Step(); err != nil {
		return err
	}
	for _, g := range grads {
		s := c.table(g.Table)
		if s == nil {
			return errorf("combined optimizer step", "no sparse optimizer for table %q", g.Table)
		}
		if err := s.Step(g.IDs, g.Rows, g.Distinct); err != nil {
			return fmt.Errorf("%s: %w", g.Table, err)
		}
	}
	return nil
}

func (c *CombinedOptimizer) table(name string) *SparseOptimizer {
	for _, s := range c.sparse {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// ZeroGrad drops the dense parameters' gradients (a table's gradient rows
// belong to the step that gathered them).
func (c *CombinedOptimizer) ZeroGrad() error { return c.dense.ZeroGrad() }

// SetLR sets the dense learning rate to lr and scales every sparse
// optimizer's by the same factor against the rates they were created with,
// so that one schedule drives all of them.
func (c *CombinedOptimizer) SetLR(lr float64) error {
	if err := c.dense.SetLR(lr); err != nil {
		return err
	}
	for i, s := range c.sparse {
		slr := lr
		if c.sparseLR[i] != c.baseLR {
			slr = c.sparseLR[i] * lr / c.baseLR
		}
		if err := s.SetLR(slr); err != nil {
			return err
		}
	}
	return nil
}

// StateTensors returns every optimizer's state tensors (aliases) and step
// counts under the names each gives them ("<param>.<slot>",
// "<table>.<slot>", "<name>.step").
func (c *CombinedOptimizer) StateTensors() (map[string]*Tensor, map[string]int64, error) {
	tensors, steps, err := c.dense.StateTensors()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range c.sparse {
		st, ss, err := s.StateTensors()
		if err != nil {
			closeAliases(tensors)
			return nil, nil, err
		}
		maps.Copy(tensors, st)
		maps.Copy(steps, ss)
	}
	return tensors, steps, nil
}

// LoadState restores what StateTensors exported; every optimizer's entries must be present.
func (c *CombinedOptimizer) LoadState(tensors map[string]*Tensor, steps map[string]int64) error {
	if err := c.dense.LoadState(tensors, steps); err != nil {
		return err
	}
	for _, s := range c.sparse {
		if err := s.LoadState(tensors, steps); err != nil {
			return err
		}
	}
	return nil
}

// Close frees every optimizer's state.
func (c *CombinedOptimizer) Close() {
	if c == nil {
		return
	}
	c.dense.Close()
	for _, s := range c.sparse {
		s.Close()
	}
}

// closeAliases closes the aliases a StateTensors returned.
func closeAliases(ts map[string]*Tensor) {
	for _, t := range ts {
		if !t.owned {
			t.Close()
		}
	}
}
