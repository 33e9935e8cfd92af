package data

import (
	"strings"
	"testing"
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
	if err != nil {
		t.Fatal(err)
	}
	d, _ := c.delimiter(c.Path)
	switch {
	case *c.Columns.Scenario.Index != 3 || c.Columns.User.Name != "user_id" || c.Columns.Item.Field() != "item":
		t.Errorf("columns %+v", c.Columns)
	case *c.Columns.Labels[0].Threshold != 3 || c.Columns.Labels[0].Field() != "label":
		t.Errorf("label %+v", c.Columns.Labels[0])
	case *c.Header || d != '\t' || c.Split.Method != "time" || c.MinCount != 2 || !c.SkipBadRows || c.Seed != 42:
		t.Errorf("config %+v", c)
	case c.Scenarios[0].Description != "Books.":
		t.Errorf("scenarios %+v", c.Scenarios)
	}
	def := DefaultConfig()
	if def.Format != "synthetic" || !equal(def.Split.Ratios, []float64{8, 1, 1}) || def.Synthetic.Rows != 250000 || def.Split.Method != "random" {
		t.Errorf("defaults %+v", def)
	}
	for _, bad := range []string{"formt: csv", "format: parquet", "split: {ratios: [1, 1]}", "format: csv", "delimiter: ab",
		"format: douban\npath: x\nstream: {enabled: true}", "split: {method: files}"} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseConfig([]byte("")); err != nil {
		t.Errorf("empty config: %v", err)
	}
	if _, err := LoadConfig("testdata/none.yaml"); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("missing file: %v", err)
	}
}
