// Package nn holds msrtrain's layers: a parameter store that names every
// tensor by its path (as PyTorch's state_dict does), and the modules the
// backbones are built from.
package nn

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// Var is a named tensor of a model: a trainable parameter or a buffer (running statistics).
type Var struct {
	Name      string
	Tensor    *torch.Tensor
	Trainable bool
	// Sparse: trained row by row by a sparse optimizer outside autograd
	// (an EmbeddingCollection after SetSparse); the tensor does not require grad.
	Sparse bool
}

// Store owns a model's parameters and buffers. Modules create their tensors
// through a Path, so each gets a dotted name like "towers.2.0.weight" that
// reads the same in our checkpoints and in PyTorch.
type Store struct {
	Device   torch.Device
	vars     []*Var
	byName   map[string]*Var
	consts   []*torch.Tensor // derived, not saved: rebuilt from the config
	training bool
	// sumOverRanks, when set, synchronises batch statistics (batchstats.go).
	sumOverRanks SumOverRanks
	err          error
}

// NewStore makes an empty store whose tensors will live on dev.
func NewStore(dev torch.Device) *Store {
	return &Store{Device: dev, byName: map[string]*Var{}, training: true}
}

// Root is the path of the store's top-level names.
func (s *Store) Root() Path { return Path{store: s} }

// Err is the first error met while creating tensors; check it after building a model.
func (s *Store) Err() error { return s.err }

// SetTraining switches every module between training (batch statistics,
// dropout on) and evaluation.
func (s *Store) SetTraining(on bool) { s.training = on }

// Training reports the current mode.
func (s *Store) Training() bool { return s.training }

// Vars lists every tensor in creation order.
func (s *Store) Vars() []*Var { return s.vars }

// Parameters lists the trainable tensors in creation order.
func (s *Store) Parameters() []*Var {
	var out []*Var
	for _, v := range s.vars {
		if v.Trainable {
			out = append(out, v)
		}
	}
	return out
}

// ParameterTensors returns the tensors autograd trains (every trainable
// one except sparse tables) and their names, in creation order: what a
// dense optimizer takes.
func (s *Store) ParameterTensors() (names []string, tensors []*torch.Tensor) {
	for _, v := range s.Parameters() {
		if v.Sparse {
			continue
		}
		names = append(names, v.Name)
		tensors = append(tensors, v.Tensor)
	}
	return names, tensors
}

// NumParameters counts trainable scalars.
func (s *Store) NumParameters() int64 {
	var n int64
	for _, v := range s.Parameters() {
		n += v.Tensor.Numel()
	}
	return n
}

// Get returns a tensor by its full name.
func (s *Store) Get(name string) (*torch.Tensor, bool) {
	v, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return v.Tensor, true
}

// StateDict maps every name to its tensor (aliases, not copies).
func (s *Store) StateDict() map[string]*torch.Tensor {
	out := make(map[string]*torch.Tensor, len(s.vars))
	for _, v := range s.vars {
		out[v.Name] = v.Tensor
	}
	return out
}

// LoadStateDict copies values into the store's tensors. The names must match
// exactly and shapes must agree, so a checkpoint of another model or
// configuration is refused with the offending names.
func (s *Store) LoadStateDict(state map[string]*torch.Tensor) error {
	var missing, unexpected []string
	for _, v := range s.vars {
		if _, ok := state[v.Name]; !ok {
			missing = append(missing, v.Name)
		}
	}
	for name := range state {
		if _, ok := s.byName[name]; !ok {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing) > 0 || len(unexpected) > 0 {
		sort.Strings(missing)
		sort.Strings(unexpected)
		return fmt.Errorf("state dict does not match the model: missing %s; unexpected %s", list(missing), list(unexpected))
	}
	for _, v := range s.vars {
		src := state[v.Name]
		if err := src.Err(); err != nil {
			return fmt.Errorf("state dict: %s: %w", v.Name, err)
		}
		if got, want := src.Shape(), v.Tensor.Shape(); !slices.Equal(got, want) {
			return fmt.Errorf("state dict: %s has shape %v, the model wants %v", v.Name, got, want)
		}
		if err := v.Tensor.CopyFrom(src); err != nil {
			return fmt.Errorf("state dict: %s: %w", v.Name, err)
		}
	}
	return nil
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 8 {
		return strings.Join(names[:8], ", ") + fmt.Sprintf(" and %d more", len(names)-8)
	}
	return strings.Join(names, ", ")
}

// Close frees every tensor of the store.
func (s *Store) Close() {
	for _, v := range s.vars {
		v.Tensor.Close()
	}
	for _, t := range s.consts {
		t.Close()
	}
	s.vars, s.consts = nil, nil
	s.byName = map[string]*Var{}
}

// Path is a position in the store's name tree.
type Path struct {
	store  *Store
	prefix string
}

// Sub descends one level: Root().Sub("towers").Sub("2") names "towers.2.*".
func (p Path) Sub(name string) Path {
	if p.prefix == "" {
		return Path{store: p.store, prefix: name}
	}
	return Path{store: p.store, prefix: p.prefix + "." + name}
}

// Index is Sub with a number, for lists of modules.
func (p Path) Index(i int) Path { return p.Sub(fmt.Sprint(i)) }

// Store is the store the path belongs to.
func (p Path) Store() *Store { return p.store }

func (p Path) name(leaf string) string {
	if p.prefix == "" {
		return leaf
	}
	return p.prefix + "." + leaf
}

// Init says how a new parameter is filled.
type Init struct {
	Kind   torch.InitKind
	P1, P2 float64
}

// Common initialisations.
var (
	Zeros         = Init{Kind: torch.InitConstant}
	Ones          = Init{Kind: torch.InitConstant, P1: 1}
	XavierUniform = Init{Kind: torch.InitXavierUniform, P1: 1}
)

// Uniform is U(-bound, bound), PyTorch's default for Linear biases (bound = 1/sqrt(fan_in)).
func Uniform(bound float64) Init { return Init{Kind: torch.InitUniform, P1: -bound, P2: bound} }

// Normal is N(0, std).
func Normal(std float64) Init { return Init{Kind: torch.InitNormal, P2: std} }

// KaimingUniform with negative slope a: PyTorch's default for Linear weights uses a = sqrt(5).
func KaimingUniform(a float64) Init { return Init{Kind: torch.InitKaimingUniform, P1: a} }

// Constant moves a CPU tensor that the model derives from its config (not
// saved in checkpoints) to the store's device and keeps it until Close.
func (p Path) Constant(t *torch.Tensor) *torch.Tensor {
	s := p.store
	d := t.ToDevice(s.Device, false)
	if d != t {
		t.Close()
	}
	if err := d.Err(); err != nil && s.err == nil {
		s.err = fmt.Errorf("model: constant under %q: %w", p.prefix, err)
	}
	s.consts = append(s.consts, d)
	return d
}

// Param creates a trainable float32 tensor named by the path.
func (p Path) Param(name string, shape []int64, init Init) *torch.Tensor {
	return p.add(name, shape, init, true)
}

// Buffer creates a non-trainable float32 tensor (running statistics) named by the path.
func (p Path) Buffer(name string, shape []int64, init Init) *torch.Tensor {
	return p.add(name, shape, init, false)
}

func (p Path) add(leaf string, shape []int64, init Init, trainable bool) *torch.Tensor {
	s := p.store
	name := p.name(leaf)
	if _, dup := s.byName[name]; dup && s.err == nil {
		s.err = fmt.Errorf("model: two tensors named %q", name)
	}
	t := torch.Empty(shape, torch.Float32, s.Device)
	if err := t.Init(init.Kind, init.P1, init.P2); err != nil && s.err == nil {
		s.err = fmt.Errorf("model: initialising %s %v: %w", name, shape, err)
	}
	if trainable {
		if err := t.SetRequiresGrad(true); err != nil && s.err == nil {
			s.err = fmt.Errorf("model: %s: %w", name, err)
		}
	}
	v := &Var{Name: name, Tensor: t, Trainable: trainable}
	s.vars = append(s.vars, v)
	s.byName[name] = v
	return t
}
