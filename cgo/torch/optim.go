package torch

/*
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// OptimizerKind selects an update rule. Each follows PyTorch's formulas.
//
// Adding an optimizer:
//
//  1. the update rule in the shim (an MSR_* kind in msr.h; its slot count and
//     its step over a flat run of parameters in optim.cpp), following PyTorch's formula;
//  2. here, a kind constant and its entry in optimizers (name, slots in
//     PyTorch's state_dict naming, PyTorch's defaults);
//  3. a test against torch.optim in optim_test.go.
//
// train.optimizer reads its valid values from Optimizers, so the
// configuration, its error messages and the README check follow the list.
type OptimizerKind int

// Optimizers.
const (
	SGD     OptimizerKind = C.MSR_SGD
	Adam    OptimizerKind = C.MSR_ADAM
	AdamW   OptimizerKind = C.MSR_ADAMW
	Adagrad OptimizerKind = C.MSR_ADAGRAD
)

// optimizers is the one list of dense update rules, in the order docs list them.
var optimizers = []rule[OptimizerKind]{
	{Adam, "adam", []string{"exp_avg", "exp_avg_sq"}, OptimOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}},
	{AdamW, "adamw", []string{"exp_avg", "exp_avg_sq"}, OptimOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}},
	{Adagrad, "adagrad", []string{"sum"}, OptimOptions{LR: 1e-2, Eps: 1e-10}},
	{SGD, "sgd", []string{"momentum_buffer"}, OptimOptions{LR: 0.01}},
}

// rule is an entry of an optimizer registry (optimizers, sparseOptimizers).
type rule[K comparable] struct {
	kind K
	name string // in configurations
	// slots name the state kept per parameter (per table, sparse) as
	// PyTorch's state_dict names it; a checkpoint saves "<param>.<slot>".
	slots    []string
	defaults OptimOptions // PyTorch's
}

// kinds lists a registry's kinds in order.
func kinds[K comparable](rules []rule[K]) []K {
	out := make([]K, len(rules))
	for i, r := range rules {
		out[i] = r.kind
	}
	return out
}

// lookup finds kind's entry; ok is false for a kind the registry lacks.
func lookup[K comparable](rules []rule[K], kind K) (rule[K], bool) {
	for _, r := range rules {
		if r.kind == kind {
			return r, true
		}
	}
	return rule[K]{}, false
}

// Optimizers are the dense update rules, in the order docs list them; each
// kind's String is its name in configurations.
func Optimizers() []OptimizerKind { return kinds(optimizers) }

func (k OptimizerKind) String() string {
	if r, ok := lookup(optimizers, k); ok {
		return r.name
	}
	return fmt.Sprintf("optimizer(%d)", int(k))
}

// slots name the kind's per-parameter state.
func (k OptimizerKind) slots() []string {
	r, _ := lookup(optimizers, k)
	return r.slots
}

// OptimOptions are a parameter group's hyperparameters.
type OptimOptions struct {
	LR, WeightDecay     float64
	Momentum, Dampening float64 // SGD
	Nesterov            bool    // SGD
	Beta1, Beta2, Eps   float64 // Adam, AdamW (Eps also Adagrad)
	LRDecay             float64 // Adagrad
	InitialAccumulator  float64 // Adagrad
}

// DefaultOptimOptions are PyTorch's defaults for the kind.
func DefaultOptimOptions(kind OptimizerKind) OptimOptions {
	r, _ := lookup(optimizers, kind)
	return r.defaults
}

// Optimizer updates parameter groups. Its state lives in libtorch memory: Close it.
type Optimizer struct {
	h      C.msr_optim
	kind   OptimizerKind
	groups [][]string // parameter names per group
}

// NewOptimizer creates an optimizer with no parameters.
func NewOptimizer(kind OptimizerKind) (*Optimizer, error) {
	var h C.msr_optim
	if err := check("optimizer", C.msr_optim_new(C.int(kind), &h)); err != nil {
		return nil, err
	}
	return &Optimizer{h: h, kind: kind}, nil
}

// Kind is the update rule.
func (o *Optimizer) Kind() OptimizerKind { return o.kind }

// AddGroup adds parameters (with their names, for state export) under one set of hyperparameters.
func (o *Optimizer) AddGroup(names []string, params []*Tensor, opts OptimOptions) error {
	if len(names) != len(params) {
		return errorf("optimizer", "%d names for %d parameters", len(names), len(params))
	}
	if len(params) == 0 {
		return errorf("optimizer", "empty parameter group")
	}
	if err := o.closedErr("optimizer"); err != nil {
		return err
	}
	if bad := firstErr(params...); bad != nil {
		return bad.err
	}
	if opts.LR < 0 || opts.WeightDecay < 0 || opts.Momentum < 0 {
		return errorf("optimizer", "learning rate, weight decay and momentum must be >= 0, got %g, %g, %g", opts.LR, opts.WeightDecay, opts.Momentum)
	}
	hs := handles(params)
	if err := check("optimizer", C.msr_optim_add_group(o.h, (*C.msr_tensor)(unsafe.Pointer(&hs[0])), C.int(len(hs)), cOptions(opts))); err != nil {
		return err
	}
	o.groups = append(o.groups, append([]string(nil), names...))
	return nil
}

func cOptions(opts OptimOptions) C.msr_optim_options {
	return C.msr_optim_options{
		lr: C.double(opts.LR), weight_decay: C.double(opts.WeightDecay),
		momentum: C.double(opts.Momentum), dampening: C.double(opts.Dampening), nesterov: boolInt(opts.Nesterov),
		beta1: C.double(opts.Beta1), beta2: C.double(opts.Beta2), eps: C.double(opts.Eps),
		lr_decay: C.double(opts.LRDecay), initial_accumulator: C.double(opts.InitialAccumulator),
	}
}

// Step applies one update to every parameter that has a gradient.
func (o *Optimizer) Step() error {
	if err := o.closedErr("optimizer step"); err != nil {
		return err
	}
	return check("optimizer step", C.msr_optim_step(o.h))
}

// ZeroGrad drops every parameter's gradient.
func (o *Optimizer) ZeroGrad() error {
	if err := o.closedErr("optimizer zero_grad"); err != nil {
		return err
	}
	return check("optimizer zero_grad", C.msr_optim_zero_grad(o.h))
}

// closedErr refuses calls after Close, which would otherwise dereference a freed handle in C.
func (o *Optimizer) closedErr(op string) error {
	if o.h == nil {
		return errorf(op, "optimizer is closed")
	}
	return nil
}

// NumGroups is the number of parameter groups.
func (o *Optimizer) NumGroups() int { return len(o.groups) }

// SetLR sets the learning rate of every group (for schedules).
func (o *Optimizer) SetLR(lr float64) error {
	if err := o.closedErr("optimizer set_lr"); err != nil {
		return err
	}
	for g := range o.groups {
		if err := check("optimizer set_lr", C.msr_optim_set_lr(o.h, C.int(g), C.double(lr))); err != nil {
			return err
		}
	}
	return nil
}

// SetGroupLR sets one group's learning rate.
func (o *Optimizer) SetGroupLR(group int, lr float64) error {
	if err := o.closedErr("optimizer set_lr"); err != nil {
		return err
	}
	return check("optimizer set_lr", C.msr_optim_set_lr(o.h, C.int(group), C.double(lr)))
}

// LR is a group's learning rate.
func (o *Optimizer) LR(group int) (float64, error) {
	if err := o.closedErr("optimizer lr"); err != nil {
		return 0, err
	}
	var lr C.double
	err := check("optimizer lr", C.msr_optim_get_lr(o.h, C.int(group), &lr))
	return float64(lr), err
}

// GroupIsFlat reports whether a group keeps its parameters and their state
// as views into flat buffers, so that a step costs a few ops per run of
// parameters rather than per parameter. A group gets them when its
// parameters are dense tensors of one dtype and device, each the whole of
// its own storage (a parameter already in another optimizer's flat buffer
// is not moved again).
func (o *Optimizer) GroupIsFlat(group int) (bool, error) {
	if err := o.closedErr("optimizer group"); err != nil {
		return false, err
	}
	var flat C.int
	err := check("optimizer group", C.msr_optim_group_flat(o.h, C.int(group), &flat))
	return flat == 1, err
}

// StateTensors returns the optimizer's state tensors (aliases) named
// "<param name>.<slot>" (slots as in PyTorch: exp_avg, exp_avg_sq,
// momentum_buffer, sum), plus each parameter's step count as "<param name>.step".
func (o *Optimizer) StateTensors() (map[string]*Tensor, map[string]int64, error) {
	if err := o.closedErr("optimizer state"); err != nil {
		return nil, nil, err
	}
	tensors := map[string]*Tensor{}
	steps := map[string]int64{}
	for g, names := range o.groups {
		for p, name := range names {
			for k, slot := range o.kind.slots() {
				var out C.msr_tensor
				if err := check("optimizer state", C.msr_optim_state(o.h, C.int(g), C.int(p), C.int(k), &out)); err != nil {
					return nil, nil, err
				}
				tensors[name+"."+slot] = wrap(out)
			}
			var step C.int64_t
			if err := check("optimizer state", C.msr_optim_get_step(o.h, C.int(g), C.int(p), &step)); err != nil {
				return nil, nil, err
			}
			steps[name+".step"] = int64(step)
		}
	}
	return tensors, steps, nil
}

// LoadState restores what StateTensors exported; every entry must be present.
func (o *Optimizer) LoadState(tensors map[string]*Tensor, steps map[string]int64) error {
	current, _, err := o.StateTensors()
	if err != nil {
		return err
	}
	type at struct{ group, param int }
	var stepNames []string
	var where []at
	for g, names := range o.groups {
		for p, name := range names {
			stepNames = append(stepNames, name+".step")
			where = append(where, at{g, p})
		}
	}
	return loadState(current, tensors, steps, stepNames, func(i int, step int64) error {
		return check("optimizer state", C.msr_optim_set_step(o.h, C.int(where[i].group), C.int(where[i].param), C.int64_t(step)))
	})
}

// loadState copies saved state into an optimizer's current state tensors
// (aliases, closed here) and sets each of stepNames' counts through setStep.
// It checks that every entry is there before changing anything, so that a
// refused checkpoint leaves the optimizer as it was.
func loadState(current, tensors map[string]*Tensor, steps map[string]int64, stepNames []string, setStep func(i int, step int64) error) error {
	defer func() {
		for _, t := range current {
			if !t.owned {
				t.Close()
			}
		}
	}()
	for name := range current {
		if _, ok := tensors[name]; !ok {
			return fmt.Errorf("optimizer state: %q missing from the checkpoint", name)
		}
	}
	for _, name := range stepNames {
		if _, ok := steps[name]; !ok {
			return fmt.Errorf("optimizer state: %q missing from the checkpoint", name)
		}
	}
	for name, dst := range current {
		if err := dst.CopyFrom(tensors[name]); err != nil {
			return fmt.Errorf("optimizer state %q: %w", name, err)
		}
	}
	for i, name := range stepNames {
		if err := setStep(i, steps[name]); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the optimizer's state.
func (o *Optimizer) Close() {
	if o.h != nil {
		C.msr_optim_free(o.h)
		o.h = nil
	}
}
