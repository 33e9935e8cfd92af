package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAmazon(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "reviews_Beauty_5.json",
		`{"reviewerID": "A1", "asin": "B01", "overall": 5.0, "unixReviewTime": 1400000000, "summary": "great"}`+"\n"+
			`{"reviewerID": "A2", "asin": "B02", "overall": 3.0, "unixReviewTime": 1400000100}`+"\n")
	writeFile(t, dir, "meta_Beauty.json", `{"asin": "B01", "title": "Rose Lip Balm", "brand": "Acme", "category": ["Beauty", "Lips"]}`+"\n")
	// A gzipped category with the 2014 nested categories in its meta file.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"reviewerID": "A1", "asin": "C01", "overall": 4, "unixReviewTime": 1500000000}` + "\n"))
	w.Close()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Health_5.json.gz"), gz.Bytes(), 0o644))
	writeFile(t, dir, "meta_Health.json", `{"asin": "C01", "title": "Vitamin C", "categories": [["Health", "Vitamins"]]}`+"\n")

	cfg := Config{Format: "amazon", Path: dir, Split: SplitConfig{Ratios: []float64{1, 0, 0}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	raw, err := ReadFile(cfg, dir) // as read, before Load keeps only what its tables need
	require.NoError(t, err)
	if got := sp.Vocabs.Schema().ScenarioNames(); !equal(got, []string{"Beauty", "Health"}) {
		t.Fatalf("scenarios %v", got)
	}
	if !equal(column(raw, 0), []string{"A1", "A2", "A1"}) || !equal(raw.Labels[0].Values, []float32{1, 0, 1}) ||
		!equal(raw.Time, []int64{1400000000, 1400000100, 1500000000}) {
		t.Errorf("users %v labels %v time %v", column(raw, 0), raw.Labels[0].Values, raw.Time)
	}
	if !equal(column(raw, 2), []string{"Acme", "", ""}) || !equal(column(raw, 3), []string{"Lips", "", "Vitamins"}) {
		t.Errorf("brand %v category %v", column(raw, 2), column(raw, 3))
	}
	if it := raw.Text.Items["B01"]; it.Title != "Rose Lip Balm" || it.Category != "Lips" {
		t.Errorf("item text %+v", it)
	}
	if sp.Stats[1].SharedUsers[0] != 1 || !strings.Contains(sp.Vocabs.Scenarios[0].Description, "Beauty") {
		t.Errorf("stats %+v desc %q", sp.Stats[1], sp.Vocabs.Scenarios[0].Description)
	}
	h := sp.Train.UserHistories(5)
	if h[0].User != "A1" || len(h[0].Scenarios[0]) != 1 || h[0].Scenarios[0][0].Title != "Rose Lip Balm" || len(h[0].Scenarios[1]) != 1 {
		t.Errorf("history %+v", h[0])
	}
}

func TestAmazonBadInput(t *testing.T) {
	tests := []struct {
		name, line string
		want       error
		msg        string
	}{
		{"not json", `{"reviewerID": "A1", `, ErrSyntax, "Beauty.json:2: value"},
		{"missing asin", `{"reviewerID": "A1", "overall": 5}`, ErrMissingColumn, `Beauty.json:2: column "asin"`},
		{"rating not a number", `{"reviewerID": "A1", "asin": "B", "overall": "five"}`, ErrSyntax, `Beauty.json:2: column "overall"`},
		{"invalid UTF-8", "{\"reviewerID\": \"A\xff\", \"asin\": \"B\", \"overall\": 5}", ErrInvalidUTF8, `Beauty.json:2: column "#0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "", "Beauty.json", `{"reviewerID": "A0", "asin": "B", "overall": 5}`+"\n"+tt.line+"\n")
			_, err := Load(Config{Format: "amazon", Path: p})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	p := writeFile(t, "", "Beauty.json", "")
	if _, err := Load(Config{Format: "amazon", Path: p}); !errors.Is(err, ErrEmptyFile) {
		t.Errorf("empty: err = %v", err)
	}
}
