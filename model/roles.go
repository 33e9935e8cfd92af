package model

import (
	"fmt"
	"slices"
	"strings"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
	"go.yaml.in/yaml/v3"
)

// Features by role. Some backbones treat categorical fields by what they
// are rather than as one bottom vector: PPNet gates its towers with the id
// embeddings (user, item), EPNet and AdaSparse condition on scenario-side
// features. A backbone reads them from Input.Fields, the per-field
// embeddings as looked up, before the meta networks transform X (so an
// id embedding stays an id embedding whatever model.meta.fusion does),
// using the FieldLayout it was built with.

// Role is what a categorical field describes.
type Role string

// The roles. The data schema's convention (data.Schema) is that field 0 is
// the user and field 1 the item; DefaultRoles encodes it.
const (
	RoleUser     Role = "user"     // the user id
	RoleItem     Role = "item"     // the item id
	RoleScenario Role = "scenario" // a scenario-side feature: describes the scenario (an id, its statistics), not the user or the item
	RoleContext  Role = "context"  // any other feature
)

// Roles lists the valid roles, in the order errors and docs show them.
var Roles = []Role{RoleUser, RoleItem, RoleScenario, RoleContext}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(s))
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("unknown role %q: want one of %s", s, roleList(Roles))
	}
	return r, nil
}

// UnmarshalYAML reads a role name, refusing unknown ones.
func (r *Role) UnmarshalYAML(n *yaml.Node) error {
	parsed, err := ParseRole(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*r = parsed
	return nil
}

func roleList(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// DefaultRoles is the data schema's convention for n categorical fields:
// field 0 the user, field 1 the item, every other field context.
func DefaultRoles(n int) []Role {
	roles := make([]Role, n)
	for i := range roles {
		switch i {
		case 0:
			roles[i] = RoleUser
		case 1:
			roles[i] = RoleItem
		default:
			roles[i] = RoleContext
		}
	}
	return roles
}

// FieldLayout describes Input.Fields: one role per categorical field, in
// the order of the fields, each embedded in Dim values.
type FieldLayout struct {
	Roles []Role
	Dim   int64
}

// Indices are the fields that play role r, in field order.
func (l FieldLayout) Indices(r Role) []int64 {
	var idx []int64
	for i, fr := range l.Roles {
		if fr == r {
			idx = append(idx, int64(i))
		}
	}
	return idx
}

// Width is the width of Select(fields, rs...): Dim per field with one of the roles.
func (l FieldLayout) Width(rs ...Role) int64 {
	var n int64
	for _, r := range rs {
		n += int64(len(l.Indices(r))) * l.Dim
	}
	return n
}

// Select gathers the embeddings of the fields with roles rs from fields
// [B, len(Roles), Dim] into [B, Width(rs...)], role by role and in field
// order within a role. A run of consecutive fields is one Narrow. Nil when
// no field has any of the roles.
func (l FieldLayout) Select(fields *torch.Tensor, rs ...Role) *torch.Tensor {
	var parts []*torch.Tensor
	for _, r := range l.runs(rs) {
		parts = append(parts, fields.Narrow(1, r[0], r[1]).Flatten(1, 2))
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	return torch.Cat(parts, 1)
}

// script emits Select on the variable fields; "" when no field has any of the roles.
func (l FieldLayout) script(s *nn.Script, fields string, rs ...Role) string {
	var parts []string
	for _, r := range l.runs(rs) {
		parts = append(parts, fmt.Sprintf("%s.narrow(1, %d, %d).flatten(1, 2)", fields, r[0], r[1]))
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return s.Let("%s", parts[0])
	}
	return s.Let("torch.cat([%s], 1)", strings.Join(parts, ", "))
}

// runs are Select's runs of consecutive fields: (first field, count) each.
func (l FieldLayout) runs(rs []Role) [][2]int64 {
	var out [][2]int64
	for _, r := range rs {
		idx := l.Indices(r)
		for start := 0; start < len(idx); {
			end := start + 1
			for end < len(idx) && idx[end] == idx[end-1]+1 {
				end++
			}
			out = append(out, [2]int64{idx[start], int64(end - start)})
			start = end
		}
	}
	return out
}

// validate checks the layout against the fields' count when the data gives one.
func (l FieldLayout) validate() error {
	if len(l.Roles) == 0 {
		return nil
	}
	if l.Dim < 1 {
		return fmt.Errorf("field embedding width %d: must be >= 1", l.Dim)
	}
	for i, r := range l.Roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("field %d: unknown role %q: want one of %s", i, r, roleList(Roles))
		}
	}
	return nil
}

// requireRoles reports the first role in need that no field plays, naming
// key (the config key that asks for it) and the roles the data has.
func (l FieldLayout) requireRoles(key string, need []Role) error {
	for _, r := range need {
		if len(l.Indices(r)) == 0 {
			have := "no categorical fields"
			if len(l.Roles) > 0 {
				have = "fields with roles " + roleList(l.Roles)
			}
			return fmt.Errorf("%s needs a field with role %q; the data has %s", key, r, have)
		}
	}
	return nil
}

// roleReader is a config section whose backbone reads fields by role; the
// registry checks that the data has them before the backbone is built and
// that every batch carries Input.Fields.
type roleReader interface {
	// NeededRoles are the roles the backbone cannot do without, and the key that asks for them.
	NeededRoles(key string) (string, []Role)
}
