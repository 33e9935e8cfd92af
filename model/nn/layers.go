package nn

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
)

// Linear is y = x·Wᵀ + b with PyTorch's default initialisation, so that a
// model trained here starts where the same model in PyTorch would.
type Linear struct {
	Weight *torch.Tensor // [out, in]
	Bias   *torch.Tensor // [out], nil without bias
}

// NewLinear creates "<path>.weight" and "<path>.bias".
func NewLinear(p Path, in, out int64, bias bool) *Linear {
	l := &Linear{Weight: p.Param("weight", []int64{out, in}, KaimingUniform(math.Sqrt(5)))}
	if bias {
		l.Bias = p.Param("bias", []int64{out}, Uniform(1/math.Sqrt(float64(in))))
	}
	return l
}

// Forward applies the layer.
func (l *Linear) Forward(x *torch.Tensor) *torch.Tensor { return torch.Linear(x, l.Weight, l.Bias) }

// Activation names a pointwise nonlinearity.
type Activation string

// Activations.
const (
	ReLU      Activation = "relu"
	LeakyReLU Activation = "leaky_relu"
	Sigmoid   Activation = "sigmoid"
	Tanh      Activation = "tanh"
	GELU      Activation = "gelu"
	SiLU      Activation = "silu"
	Identity  Activation = "none"
)

// ActivationValues are the activations a config may name.
var ActivationValues = choice.New("activation", ReLU, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, Identity)

// UnmarshalYAML accepts one of ActivationValues.
func (a *Activation) UnmarshalYAML(n *yaml.Node) error { return ActivationValues.Decode(n, a) }

// ParseActivation checks an activation name; empty means relu.
func ParseActivation(s string) (Activation, error) {
	if s == "" {
		return ReLU, nil
	}
	return ActivationValues.Parse(s)
}

// Apply runs the activation.
func (a Activation) Apply(x *torch.Tensor) *torch.Tensor {
	switch a {
	case ReLU, "":
		return x.Relu()
	case LeakyReLU:
		return x.LeakyRelu(0.01)
	case Sigmoid:
		return x.Sigmoid()
	case Tanh:
		return x.Tanh()
	case GELU:
		return x.Gelu()
	case SiLU:
		return x.Silu()
	}
	return x
}

// BatchNorm1d normalises each feature over the batch, keeping running
// statistics for evaluation (PyTorch's defaults: momentum 0.1, eps 1e-5).
type BatchNorm1d struct {
	store                   *Store
	Weight, Bias            *torch.Tensor
	RunningMean, RunningVar *torch.Tensor
	Momentum, Eps           float64
}

// NewBatchNorm1d creates weight, bias, running_mean and running_var under p.
func NewBatchNorm1d(p Path, features int64) *BatchNorm1d {
	shape := []int64{features}
	return &BatchNorm1d{
		store:       p.store,
		Weight:      p.Param("weight", shape, Ones),
		Bias:        p.Param("bias", shape, Zeros),
		RunningMean: p.Buffer("running_mean", shape, Zeros),
		RunningVar:  p.Buffer("running_var", shape, Ones),
		Momentum:    0.1, Eps: 1e-5,
	}
}

// Forward normalises with batch statistics in training and running
// statistics in evaluation (see Store.BatchNorm).
func (b *BatchNorm1d) Forward(x *torch.Tensor) *torch.Tensor {
	return b.store.BatchNorm(x, b.Weight, b.Bias, b.RunningMean, b.RunningVar, b.Momentum, b.Eps)
}

// LayerNorm normalises each sample over its last dimension.
type LayerNorm struct {
	Weight, Bias *torch.Tensor
	Features     int64
	Eps          float64
}

// NewLayerNorm creates weight and bias under p.
func NewLayerNorm(p Path, features int64) *LayerNorm {
	shape := []int64{features}
	return &LayerNorm{Weight: p.Param("weight", shape, Ones), Bias: p.Param("bias", shape, Zeros), Features: features, Eps: 1e-5}
}

// Forward applies the normalisation.
func (l *LayerNorm) Forward(x *torch.Tensor) *torch.Tensor {
	return torch.LayerNorm(x, []int64{l.Features}, l.Weight, l.Bias, l.Eps)
}

// Dropout zeroes activations with probability P in training only.
type Dropout struct {
	store *Store
	P     float64
}

// NewDropout binds a dropout rate to the store's training mode.
func NewDropout(p Path, rate float64) *Dropout { return &Dropout{store: p.store, P: rate} }

// Forward applies dropout.
func (d *Dropout) Forward(x *torch.Tensor) *torch.Tensor {
	if d.P == 0 || !d.store.training {
		return x
	}
	return torch.Dropout(x, d.P, true)
}

// MLPConfig describes a stack of Linear → BatchNorm? → LayerNorm? → activation → Dropout? blocks.
type MLPConfig struct {
	Hidden     []int64    `yaml:"hidden"`
	Activation Activation `yaml:"activation"`
	BatchNorm  bool       `yaml:"batch_norm"`
	Dropout    float64    `yaml:"dropout"`
	// OutputActivation applies the activation after the last layer too (off for towers that end in a logit).
	OutputActivation bool `yaml:"-"`
	// LayerNorm normalises every activated layer's output before its
	// activation, as Scenario-Wise-Rec's M3oE does; backbones set it, no config key does.
	LayerNorm bool `yaml:"-"`
}

// Validate checks sizes and rates.
func (c MLPConfig) Validate(field string) error {
	for i, h := range c.Hidden {
		if h <= 0 {
			return fmt.Errorf("%s.hidden[%d] = %d: layer sizes must be positive", field, i, h)
		}
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("%s.dropout = %g: must be in [0, 1)", field, c.Dropout)
	}
	if _, err := ParseActivation(string(c.Activation)); err != nil {
		return fmt.Errorf("%s.activation: %w", field, err)
	}
	return nil
}

// MLP is a feed-forward stack. Its parameters are named like PyTorch's
// nn.Sequential of blocks: "<path>.<i>.linear.weight", "<path>.<i>.bn.weight".
type MLP struct {
	layers []mlpBlock
	Out    int64
}

type mlpBlock struct {
	linear  *Linear
	bn      *BatchNorm1d
	ln      *LayerNorm
	drop    *Dropout
	act     Activation
	lastAct bool
}

// NewMLP builds the stack; Out is the last hidden size (in when Hidden is empty).
func NewMLP(p Path, in int64, cfg MLPConfig) *MLP {
	m := &MLP{Out: in}
	for i, h := range cfg.Hidden {
		bp := p.Index(i)
		blk := mlpBlock{linear: NewLinear(bp.Sub("linear"), m.Out, h, true), act: cfg.Activation}
		last := i == len(cfg.Hidden)-1
		blk.lastAct = !last || cfg.OutputActivation
		if blk.lastAct {
			if cfg.BatchNorm {
				blk.bn = NewBatchNorm1d(bp.Sub("bn"), h)
			}
			if cfg.LayerNorm {
				blk.ln = NewLayerNorm(bp.Sub("ln"), h)
			}
			if cfg.Dropout > 0 {
				blk.drop = NewDropout(bp, cfg.Dropout)
			}
		}
		m.layers = append(m.layers, blk)
		m.Out = h
	}
	return m
}

// Forward runs every block.
func (m *MLP) Forward(x *torch.Tensor) *torch.Tensor {
	for _, b := range m.layers {
		x = b.linear.Forward(x)
		if !b.lastAct {
			continue
		}
		if b.bn != nil {
			x = b.bn.Forward(x)
		}
		if b.ln != nil {
			x = b.ln.Forward(x)
		}
		x = b.act.Apply(x)
		if b.drop != nil {
			x = b.drop.Forward(x)
		}
	}
	return x
}
