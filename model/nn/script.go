package nn

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// Script writes the TorchScript source of a forward pass in evaluation
// mode, for a model whose tensors are registered in a torch.ScriptModule
// under their store names (Store.Vars). Each module's emitter sits beside
// its Go forward and writes the same ops in the same order, so that the
// exported module differs from the Go forward in float rounding at most;
// an emitter takes its inputs as TorchScript expressions (variable names)
// and returns the variable that holds its output.
//
// Emitting source, rather than tracing one batch, keeps what depends on
// the data (which scenarios a batch holds, how many rows each has) as
// control flow in the module.
type Script struct {
	store   *Store
	names   map[*torch.Tensor]string
	lines   []string
	depth   int
	next    int
	derived []derived
	taken   map[string]bool
	// replaced are the store's tensors a derived one stands in for (Replace), by name.
	replaced map[string]bool
	err      error
}

// derived is a tensor the exported module keeps beside the store's own
// (knowledge vectors, precomputed tables), registered as a buffer under name.
type derived struct {
	name   string
	tensor *torch.Tensor
}

// NewScript starts the source of a method over the tensors of s.
func NewScript(s *Store) *Script {
	sc := &Script{store: s, names: map[*torch.Tensor]string{}, taken: map[string]bool{}, replaced: map[string]bool{}, depth: 1}
	for _, v := range s.Vars() {
		sc.names[v.Tensor] = v.Name
		sc.taken[v.Name] = true
	}
	return sc
}

// Fail records the first error; Err reports it after emission.
func (s *Script) Fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Err is the first error met while emitting.
func (s *Script) Err() error { return s.err }

// Ref is the expression that reads t, a tensor of the store or one added
// with Buffer.
func (s *Script) Ref(t *torch.Tensor) string {
	name, ok := s.names[t]
	if !ok {
		s.Fail(fmt.Errorf("script: a tensor the forward pass reads is neither in the model's store nor added as a buffer"))
		return "UNKNOWN_TENSOR"
	}
	return torch.ScriptRef(name)
}

// Buffer adds a derived tensor under name (a dotted path not in the store)
// and returns the expression that reads it.
func (s *Script) Buffer(name string, t *torch.Tensor) string {
	if s.taken[name] {
		s.Fail(fmt.Errorf("script: buffer %q is already taken", name))
	}
	s.taken[name] = true
	s.names[t] = name
	s.derived = append(s.derived, derived{name: name, tensor: t})
	return torch.ScriptRef(name)
}

// Replace registers t as a buffer under name, a tensor of the store, in
// that tensor's place: the module holds t there, not the store's tensor
// (which Ref then no longer reads, and Register leaves out). Learned
// knowledge is a parameter of the store that the module keeps as a
// buffer, and in another layout.
func (s *Script) Replace(name string, t *torch.Tensor) string {
	found := false
	for old, n := range s.names {
		if n == name {
			delete(s.names, old)
			found = true
		}
	}
	if !found || s.replaced[name] {
		s.Fail(fmt.Errorf("script: %q is not a tensor of the store that can be replaced", name))
	}
	s.replaced[name] = true
	s.names[t] = name
	s.derived = append(s.derived, derived{name: name, tensor: t})
	return torch.ScriptRef(name)
}

// Register puts into mod, on the CPU, every tensor the source reads: the
// store's (trainable ones as parameters, the others as buffers) but those
// that Replace stood a derived one in for, then the ones added with
// Buffer and Replace, as buffers.
func (s *Script) Register(mod *torch.ScriptModule) error {
	register := func(name string, t *torch.Tensor, slot torch.ScriptSlot) error {
		if t.Device().Type != torch.CPUType {
			t = t.ToDevice(torch.CPU, false)
		}
		return mod.Register(name, t, slot)
	}
	for _, v := range s.store.Vars() {
		if s.replaced[v.Name] {
			continue
		}
		slot := torch.ScriptBuffer
		if v.Trainable {
			slot = torch.ScriptParameter
		}
		if err := register(v.Name, v.Tensor, slot); err != nil {
			return err
		}
	}
	for _, d := range s.derived {
		if err := register(d.name, d.tensor, torch.ScriptBuffer); err != nil {
			return err
		}
	}
	return nil
}

// Line writes one statement at the current indentation.
func (s *Script) Line(format string, args ...any) {
	s.lines = append(s.lines, strings.Repeat("    ", s.depth)+fmt.Sprintf(format, args...))
}

// Let assigns an expression to a new variable and returns its name.
func (s *Script) Let(format string, args ...any) string {
	v := s.Fresh("v")
	s.Line("%s = %s", v, fmt.Sprintf(format, args...))
	return v
}

// Fresh is a new variable name starting with prefix.
func (s *Script) Fresh(prefix string) string {
	s.next++
	return prefix + strconv.Itoa(s.next)
}

// Block writes a compound statement's header ("if n > 0:") and its body one level deeper.
func (s *Script) Block(header string, body func()) {
	s.Line("%s", header)
	s.depth++
	before := len(s.lines)
	body()
	if len(s.lines) == before {
		s.Line("pass")
	}
	s.depth--
}

// Method is the source of a method with the given signature ("def forward(self, x: Tensor) -> Tensor:")
// whose body is everything written so far; the body is then cleared for the next method.
func (s *Script) Method(signature string) string {
	src := signature + "\n" + strings.Join(s.lines, "\n") + "\n"
	s.lines = nil
	return src
}

// Float writes a float64 so that TorchScript reads back the same value.
func Float(v float64) string {
	out := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(out, ".eEn") { // "2" would be an int
		out += ".0"
	}
	return out
}

// Ints writes a TorchScript list of ints.
func Ints(v []int64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(x, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Script emits the layer: torch.linear, as Forward's torch.Linear.
func (l *Linear) Script(s *Script, x string) string {
	bias := "None"
	if l.Bias != nil {
		bias = s.Ref(l.Bias)
	}
	return s.Let("torch.linear(%s, %s, %s)", x, s.Ref(l.Weight), bias)
}

// ScriptExpr is the activation applied to the expression x, as Apply.
func (a Activation) ScriptExpr(x string) string {
	switch a {
	case ReLU, "":
		return "torch.relu(" + x + ")"
	case LeakyReLU:
		return "torch.leaky_relu(" + x + ", 0.01)"
	case Sigmoid:
		return "torch.sigmoid(" + x + ")"
	case Tanh:
		return "torch.tanh(" + x + ")"
	case GELU:
		return "torch.gelu(" + x + ")"
	case SiLU:
		return "torch.silu(" + x + ")"
	}
	return x
}

// Script emits the activation into a new variable (x itself for the identity).
func (a Activation) Script(s *Script, x string) string {
	if e := a.ScriptExpr(x); e != x {
		return s.Let("%s", e)
	}
	return x
}

// ScriptBatchNorm emits a batch normalisation in evaluation mode (running
// statistics), the expressions being those of the weight, bias and statistics.
func ScriptBatchNorm(s *Script, x, weight, bias, mean, variance string, momentum, eps float64) string {
	return s.Let("torch.batch_norm(%s, %s, %s, %s, %s, False, %s, %s, True)", x, weight, bias, mean, variance, Float(momentum), Float(eps))
}

// Script emits the normalisation with running statistics (evaluation mode).
func (b *BatchNorm1d) Script(s *Script, x string) string {
	return ScriptBatchNorm(s, x, s.Ref(b.Weight), s.Ref(b.Bias), s.Ref(b.RunningMean), s.Ref(b.RunningVar), b.Momentum, b.Eps)
}

// Script emits the normalisation.
func (l *LayerNorm) Script(s *Script, x string) string {
	return s.Let("torch.layer_norm(%s, [%d], %s, %s, %s)", x, l.Features, s.Ref(l.Weight), s.Ref(l.Bias), Float(l.Eps))
}

// Script emits every block in evaluation mode (dropout is the identity there).
func (m *MLP) Script(s *Script, x string) string {
	for _, b := range m.layers {
		x = b.linear.Script(s, x)
		if !b.lastAct {
			continue
		}
		if b.bn != nil {
			x = b.bn.Script(s, x)
		}
		if b.ln != nil {
			x = b.ln.Script(s, x)
		}
		x = b.act.Script(s, x)
	}
	return x
}

// ScriptPerField emits PerField: per-field indices [B, fields] to embeddings [B, fields, Dim].
func (e *EmbeddingCollection) ScriptPerField(s *Script, indices string) string {
	offsets := s.Let("torch.tensor([%s], dtype=torch.long, device=%s.device)", strings.Trim(Ints(e.Offsets), "[]"), indices)
	return s.Let("torch.embedding(%s, %s + %s)", s.Ref(e.Weight), indices, offsets)
}
