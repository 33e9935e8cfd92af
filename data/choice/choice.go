// Package choice parses configuration options that take one of a fixed set
// of values (an optimizer, a data format, a decay schedule). Each option is
// a string type with one Set listing its values; parsing, YAML decoding,
// error messages and documentation checks all read that list, so adding a
// value is adding it to the Set.
//
// It is a leaf package (the standard library and YAML only), so that data,
// model and train share it without depending on one another.
package choice

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Set is the values an option of type T takes, in the order docs list them.
type Set[T ~string] struct {
	what   string
	values []T
}

// New lists an option's values; what names the option in errors ("optimizer").
func New[T ~string](what string, values ...T) Set[T] {
	return Set[T]{what: what, values: values}
}

// Values are the valid values, in order.
func (s Set[T]) Values() []T { return append([]T(nil), s.values...) }

// Names are the valid values as plain strings, in order.
func (s Set[T]) Names() []string {
	names := make([]string, len(s.values))
	for i, v := range s.values {
		names[i] = string(v)
	}
	return names
}

// Has reports whether v is one of the values.
func (s Set[T]) Has(v T) bool {
	for _, x := range s.values {
		if x == v {
			return true
		}
	}
	return false
}

// Parse reads a value, ignoring case.
func (s Set[T]) Parse(text string) (T, error) {
	v := T(strings.ToLower(strings.TrimSpace(text)))
	if !s.Has(v) {
		return "", &Error{What: s.what, Value: text, Want: s.String()}
	}
	return v, nil
}

// Decode parses a YAML scalar into *out; its error names the node's line.
// An option type's UnmarshalYAML is one call to it.
func (s Set[T]) Decode(n *yaml.Node, out *T) error {
	if n.Kind != yaml.ScalarNode {
		return &Error{What: s.what, Value: fmt.Sprintf("<%s>", kindName(n.Kind)), Want: s.String(), Line: n.Line}
	}
	v, err := s.Parse(n.Value)
	if err != nil {
		err.(*Error).Line = n.Line
		return err
	}
	*out = v
	return nil
}

// Check returns nil for a valid value and otherwise an error naming the
// configuration key (for values set in Go rather than parsed).
func (s Set[T]) Check(key string, v T) error {
	if s.Has(v) {
		return nil
	}
	return fmt.Errorf("%s = %q: want %s", key, string(v), s)
}

// String lists the values for a message: "a, b or c".
func (s Set[T]) String() string {
	names := s.Names()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Error is a value outside an option's set.
type Error struct {
	What  string // the option, "optimizer"
	Value string
	Want  string // the valid values, "a, b or c"
	Line  int    // of the YAML node; 0 when not parsed from YAML
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("unknown %s %q: want %s", e.What, e.Value, e.Want)
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return msg
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "not a value"
}

// Kinds is a Set whose values name the kinds of a lower layer's own
// enumeration (torch.OptimizerKind): the option's values are the kinds'
// String names, parsed like any Set's, and Kind maps a value back.
type Kinds[T ~string, K comparable] struct {
	Set[T]
	kinds map[T]K
}

// FromKinds lists kinds, in order, as the values of an option of type T.
func FromKinds[T ~string, K interface {
	comparable
	String() string
}](what string, kinds []K) Kinds[T, K] {
	k := Kinds[T, K]{kinds: make(map[T]K, len(kinds))}
	values := make([]T, len(kinds))
	for i, kind := range kinds {
		values[i] = T(kind.String())
		k.kinds[values[i]] = kind
	}
	k.Set = New(what, values...)
	return k
}

// Kind is the kind a value names; ok is false for a value outside the set.
func (k Kinds[T, K]) Kind(v T) (kind K, ok bool) {
	kind, ok = k.kinds[v]
	return kind, ok
}
