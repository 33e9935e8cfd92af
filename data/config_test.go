package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
format: csv
path: data.tsv
header: false
columns:
  scenario: 3
  user: user_id
  item: {index: 5, as: item}
  labels:
    - {name: rating, as: label, threshold: 3}
split: {method: time, ratios: [7, 2, 1]}
min_count: 2
skip_bad_rows: true
scenarios:
  - {name: book, description: Books.}
`))
	require.NoError(t, err)
	d, _ := c.delimiter(c.Path)
	assert.Equal(t, 3, *c.Columns.Scenario.Index)
	assert.Equal(t, "user_id", c.Columns.User.Name)
	assert.Equal(t, "item", c.Columns.Item.Field())
	assert.Equal(t, 3.0, *c.Columns.Labels[0].Threshold)
	assert.Equal(t, "label", c.Columns.Labels[0].Field())
	assert.False(t, *c.Header)
	assert.Equal(t, byte('\t'), d)
	assert.Equal(t, SplitTime, c.Split.Method)
	assert.Equal(t, 2, c.MinCount)
	assert.True(t, c.SkipBadRows)
	assert.Equal(t, int64(42), c.Seed)
	assert.Equal(t, "Books.", c.Scenarios[0].Description)

	def := DefaultConfig()
	assert.Equal(t, FormatSynthetic, def.Format)
	assert.Equal(t, []float64{8, 1, 1}, def.Split.Ratios)
	assert.Equal(t, 250000, def.Synthetic.Rows)
	assert.Equal(t, SplitAuto, def.Split.Method)
	assert.Equal(t, SplitRandom, def.splitMethod())

	for _, bad := range []struct{ yaml, want string }{
		{"formt: csv", "formt"},
		{"format: orc", `line 1: unknown data format "orc": want synthetic, csv, parquet, douban, kuaisar or amazon`},
		{"split: {ratios: [1, 1]}", "want three numbers"},
		{"format: csv", "format csv needs path, files or train"},
		{"delimiter: ab", `delimiter "ab"`},
		{"format: douban\npath: x\nstream: {enabled: true}", "stream is supported for format csv or parquet only, not douban"},
		{"split: {method: files}", "split method files needs train"},
		{"split: {method: shuffled}", `unknown split method "shuffled"`},
		{"format: csv\ntrain: a.csv\nsplit: {method: random}", "split.method is random; drop split.method or set it to files"},
	} {
		_, err := ParseConfig([]byte(bad.yaml))
		assert.ErrorContains(t, err, bad.want, "%q", bad.yaml)
	}
	_, err = ParseConfig([]byte(""))
	assert.NoError(t, err, "empty config")
	_, err = LoadConfig("testdata/none.yaml")
	assert.ErrorContains(t, err, "none.yaml")
}

// TestGivenTrainSelectsFiles: train (with valid and test) selects the files
// split, whether the config is parsed alone or over the filled defaults.
func TestGivenTrainSelectsFiles(t *testing.T) {
	c, err := ParseConfig([]byte("format: csv\ntrain: a.csv\nvalid: b.csv\n"))
	require.NoError(t, err)
	assert.Equal(t, SplitFiles, c.splitMethod())

	over := DefaultConfig()
	over.Format, over.Train = FormatCSV, "a.csv"
	require.NoError(t, over.Validate())
	assert.Equal(t, SplitFiles, over.splitMethod())
}
