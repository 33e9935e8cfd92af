package model

import (
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestDefaultRolesFollowTheSchema(t *testing.T) {
	assert.Equal(t, []Role{RoleUser, RoleItem, RoleContext, RoleContext}, DefaultRoles(4))
	assert.Equal(t, []Role{RoleUser}, DefaultRoles(1))
}

func TestRoleYAML(t *testing.T) {
	var got struct{ Roles []Role }
	require.NoError(t, yaml.Unmarshal([]byte("roles: [user, Item, scenario]"), &got))
	assert.Equal(t, []Role{RoleUser, RoleItem, RoleScenario}, got.Roles)
	err := yaml.Unmarshal([]byte("roles: [user,\n  author]"), &got)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `line 2: unknown role "author": want one of user, item, scenario, context`)
}

// TestFieldLayoutSelect: Select gathers each role's fields, role by role,
// whether they are consecutive (one Narrow) or not.
func TestFieldLayoutSelect(t *testing.T) {
	lockThread(t)
	sc := torch.NewScope()
	defer sc.Close()
	l := FieldLayout{Roles: []Role{RoleUser, RoleContext, RoleItem, RoleItem, RoleContext, RoleItem}, Dim: 2}
	// Field f of row r holds the values 100r + 10f + {0, 1}.
	var v []float32
	for r := 0; r < 2; r++ {
		for f := 0; f < 6; f++ {
			v = append(v, float32(100*r+10*f), float32(100*r+10*f+1))
		}
	}
	fields := torch.FromSlice(v, 2, 6, 2)
	got := l.Select(fields, RoleItem, RoleUser)
	require.NoError(t, got.Err())
	assert.Equal(t, []int64{2, 8}, got.Shape())
	assert.Equal(t, l.Width(RoleItem, RoleUser), int64(8))
	assert.Equal(t, []float32{20, 21, 30, 31, 50, 51, 0, 1, 120, 121, 130, 131, 150, 151, 100, 101}, values(t, got))
	assert.Nil(t, l.Select(fields, RoleScenario))
	assert.Zero(t, l.Width(RoleScenario))
}

func TestFieldLayoutRequireRoles(t *testing.T) {
	l := FieldLayout{Roles: DefaultRoles(1), Dim: 4}
	assert.NoError(t, l.requireRoles("model.x.roles", []Role{RoleUser}))
	err := l.requireRoles("model.x.roles", []Role{RoleUser, RoleItem})
	require.Error(t, err)
	assert.Equal(t, `model.x.roles needs a field with role "item"; the data has fields with roles user`, err.Error())
	err = FieldLayout{}.requireRoles("model.x.roles", []Role{RoleUser})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the data has no categorical fields")
}

// TestModelSpecRoles: a spec without roles follows the schema's convention;
// roles that do not match the fields are refused.
func TestModelSpecRoles(t *testing.T) {
	_, err := Spec{VocabSizes: []int64{3, 4}, Roles: []Role{RoleUser}}.fieldLayout(8)
	require.Error(t, err)
	l, err := Spec{VocabSizes: []int64{3, 4, 5}}.fieldLayout(8)
	require.NoError(t, err)
	assert.Equal(t, FieldLayout{Roles: DefaultRoles(3), Dim: 8}, l)
}
