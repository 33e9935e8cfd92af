package train

import (
	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data/choice"
)

// The configuration's fixed-choice options. Each is parsed once, when the
// YAML (or a --set override, or a sweep's value) is decoded; the rest of
// the code asks the value, never compares its text.

// Optimizer is train.optimizer, one of torch's optimizers.
type Optimizer string

// OptimizerValues are torch.Optimizers: the binding's registry is the only list.
var OptimizerValues = choice.FromKinds[Optimizer]("optimizer", torch.Optimizers())

// UnmarshalYAML accepts one of OptimizerValues.
func (o *Optimizer) UnmarshalYAML(n *yaml.Node) error { return OptimizerValues.Decode(n, o) }

// Kind is the binding's optimizer.
func (o Optimizer) Kind() (torch.OptimizerKind, error) {
	if k, ok := OptimizerValues.Kind(o); ok {
		return k, nil
	}
	return 0, OptimizerValues.Check("train.optimizer", o)
}

// Decay is train.schedule.decay, the learning rate's shape after warm-up.
type Decay string

// The decays.
const (
	DecayNone   Decay = "none"
	DecayCosine Decay = "cosine"
	DecayLinear Decay = "linear"
	DecayStep   Decay = "step" // × gamma every step_size steps
)

// DecayValues are train.schedule.decay's values.
var DecayValues = choice.New("decay", DecayNone, DecayCosine, DecayLinear, DecayStep)

// UnmarshalYAML accepts one of DecayValues.
func (d *Decay) UnmarshalYAML(n *yaml.Node) error { return DecayValues.Decode(n, d) }
