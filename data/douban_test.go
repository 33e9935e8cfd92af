package data

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDoubanFixture(t *testing.T) {
	cfg := Config{Format: "douban", Path: "testdata/douban_sample/douban_sample.csv", Split: SplitConfig{Ratios: []float64{1, 0, 0}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	want := map[string]struct {
		rows int
		pos  float64
	}{"book": {364, .71}, "movie": {2299, .62}, "music": {337, .78}}
	for _, st := range sp.Stats {
		w := want[st.Name]
		if st.Rows != w.rows || !near(st.PositiveRate, w.pos, 0.005) {
			t.Errorf("%s: rows %d pos %.3f, want %d %.2f", st.Name, st.Rows, st.PositiveRate, w.rows, w.pos)
		}
		if st.Users == 0 || st.SharedUsers[0] == 0 && st.Name != "book" {
			t.Errorf("%s: users %d shared %v", st.Name, st.Users, st.SharedUsers)
		}
	}
	if s := sp.Vocabs.Schema(); !equal(s.Categorical, []string{"user_id", "item_id", "living_place", "time_bin"}) || s.Labels[0] != "label" {
		t.Errorf("schema %+v", s)
	}
	// living_place holds UTF-8 Chinese text, kept as is.
	if got := sp.Vocabs.Fields[2].Token(int64(sp.Train.Cat[2])); got != "北京" {
		t.Errorf("living_place[0] = %q", got)
	}
	if sp.Vocabs.Scenarios[0].Description == "" {
		t.Error("douban scenarios should carry descriptions")
	}
}

func TestDoubanDomainIDs(t *testing.T) {
	for _, header := range []string{"", "domain_id,user_id,item_id,label\n"} {
		p := writeFile(t, "", "douban.csv", header+"0,7,100,1\n1,7,200,0\n2,8,300,1\n2,7,301,1\n")
		raw, err := ReadFile(Config{Format: "douban"}, p)
		require.NoError(t, err)
		if got := scenarios(raw); !equal(got, []string{"music", "book", "movie", "movie"}) {
			t.Errorf("header %q: scenarios %v", header, got)
		}
		if !equal(column(raw, 0), []string{"7", "7", "8", "7"}) || !equal(raw.Labels[0].Values, []float32{1, 0, 1, 1}) {
			t.Errorf("users %v labels %v", column(raw, 0), raw.Labels[0].Values)
		}
	}
}
