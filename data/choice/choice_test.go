package choice

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type color string

var colors = New[color]("color", "red", "green", "blue")

func (c *color) UnmarshalYAML(n *yaml.Node) error { return colors.Decode(n, c) }

func TestParseAndList(t *testing.T) {
	assert.Equal(t, "red, green or blue", colors.String())
	v, err := colors.Parse("Green")
	require.NoError(t, err)
	assert.Equal(t, color("green"), v)
	_, err = colors.Parse("pink")
	assert.EqualError(t, err, `unknown color "pink": want red, green or blue`)
	assert.EqualError(t, colors.Check("paint.color", "pink"), `paint.color = "pink": want red, green or blue`)
	assert.NoError(t, colors.Check("paint.color", "red"))
	assert.Equal(t, "a", New[color]("x", "a").String())
}

func TestDecodeNamesTheLine(t *testing.T) {
	var doc struct {
		Color color `yaml:"color"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("color: blue\n"), &doc))
	assert.Equal(t, color("blue"), doc.Color)

	err := yaml.Unmarshal([]byte("\ncolor: pink\n"), &doc)
	var ce *Error
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, 2, ce.Line)
	assert.EqualError(t, err, `line 2: unknown color "pink": want red, green or blue`)

	err = yaml.Unmarshal([]byte("color: [red]\n"), &doc)
	assert.ErrorContains(t, err, `line 1: unknown color "<a list>"`)
}

// shade stands for a lower layer's enumeration with names (torch.OptimizerKind).
type shade int

func (s shade) String() string { return [...]string{"light", "dark"}[s] }

func TestFromKindsMapsNamesBack(t *testing.T) {
	shades := FromKinds[color]("shade", []shade{1, 0})
	assert.Equal(t, []color{"dark", "light"}, shades.Values())
	v, err := shades.Parse("Light")
	require.NoError(t, err)
	k, ok := shades.Kind(v)
	assert.True(t, ok)
	assert.Equal(t, shade(0), k)
	_, ok = shades.Kind("pink")
	assert.False(t, ok)
	_, err = shades.Parse("pink")
	assert.EqualError(t, err, `unknown shade "pink": want dark or light`)
}

func TestSuggest(t *testing.T) {
	keys := []string{"epochs", "batch_size", "lr", "embedding_lr", "log_every"}
	for _, tc := range []struct{ word, want string }{
		{"epocs", "epochs"},
		{"epohcs", "epochs"}, // two letters swapped
		{"batchsize", "batch_size"},
		{"lrr", "lr"},
		{"momentum", ""}, // nothing close
		{"x", ""},
	} {
		if got := Suggest(tc.word, keys); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
