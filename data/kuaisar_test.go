package data

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func kuaisarDir(t *testing.T, itemFeatures string) string {
	dir := t.TempDir()
	writeFile(t, dir, "rec_inter.csv", "user_id,item_id,playing_time,duration_ms,time,timestamp,click,forward,like,follow,search,search_item_related\n"+
		"1,10,5000,9000,2023-05-22 08:00:00,1684713600000.0,1,0,0,0,0,0\n"+
		"2,11,0,9000,2023-05-22 09:00:00,1684717200000.0,0,0,0,0,0,0\n"+
		"1,12,100,9000,2023-05-23 09:00:00,1684803600000.0,1,0,1,0,0,0\n")
	writeFile(t, dir, "src_inter.csv", "user_id,search_session_id,search_session_time,search_session_timestamp,keyword,search_source,item_id,click_cnt,item_type\n"+
		"1,77,2023-05-22 10:00:00,1684720800000,\"[20, 34, 3]\",SEARCH,10,2,VIDEO\n"+
		"3,78,2023-05-22 11:00:00,1684724400000,[5],SUGGEST,13,0,USER\n")
	writeFile(t, dir, "user_features.csv", "user_id,search_active_level,rec_active_level,onehot_feat1,onehot_feat2\n1,high,mid,0,3\n2,low,low,1,7\n")
	writeFile(t, dir, "item_features.csv", itemFeatures)
	return dir
}

const kuaisarItems = "item_id,caption,author_id,item_type,upload_time,upload_type,first_level_category_id,first_level_category_name,first_level_category_name_en,second_level_category_id,second_level_category_name,second_level_category_name_en\n" +
	"10,\"[1, 2, 3]\",5,VIDEO,2023-05-01,a,7,游戏,Games,70,手游,Mobile games\n" +
	"13,[],0,USER,2023-05-01,b,0,空,empty,0,空,empty\n"

func TestKuaiSAR(t *testing.T) {
	cfg := Config{Format: "kuaisar", Path: kuaisarDir(t, kuaisarItems), Split: SplitConfig{Ratios: []float64{1, 0, 0}}}
	sp, err := Load(cfg)
	require.NoError(t, err)
	tab := sp.Train
	if tab.Len() != 5 || !equal(sp.Vocabs.Schema().ScenarioNames(), []string{"rec", "search"}) {
		t.Fatalf("rows %d scenarios %v", tab.Len(), sp.Vocabs.Schema().ScenarioNames())
	}
	raw, err := ReadFile(cfg, cfg.Path) // as read, before Load keeps only what its tables need
	require.NoError(t, err)
	if !equal(scenarios(raw), []string{"rec", "rec", "rec", "search", "search"}) ||
		!equal(raw.Labels[0].Values, []float32{1, 0, 1, 1, 0}) ||
		!equal(raw.Time, []int64{1684713600000, 1684717200000, 1684803600000, 1684720800000, 1684724400000}) {
		t.Errorf("scenarios %v labels %v time %v", scenarios(raw), raw.Labels[0].Values, raw.Time)
	}
	want := map[string][]string{
		"keyword":             {"", "", "", "[20, 34, 3]", "[5]"},
		"search_source":       {"", "", "", "SEARCH", "SUGGEST"},
		"search_active_level": {"high", "low", "high", "high", ""},
		"item_type":           {"VIDEO", "", "", "VIDEO", "USER"},
	}
	for f, c := range raw.Cat {
		if w, ok := want[c.Name]; ok && !equal(column(raw, f), w) {
			t.Errorf("%s = %q, want %q", c.Name, column(raw, f), w)
		}
	}
	if it := raw.Text.Items["10"]; it.Title != "Games > Mobile games" || it.Category != "Games" || !equal(it.Tokens, []int32{1, 2, 3}) {
		t.Errorf("item 10 text %+v", it)
	}
	if it := raw.Text.Items["13"]; it.Title != "" || it.Tokens != nil {
		t.Errorf("item 13 text %+v", it)
	}
	if sp.Stats[1].SharedUsers[0] != 0.5 { // search users {1,3}; 1 is also in rec
		t.Errorf("shared %v", sp.Stats[1].SharedUsers)
	}
}

func TestKuaiSARBadCaption(t *testing.T) {
	items := kuaisarItems + "14,\"[1, x]\",0,USER,2023-05-01,b,0,空,empty,0,空,empty\n"
	_, err := Load(Config{Format: "kuaisar", Path: kuaisarDir(t, items)})
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), `item_features.csv:4: column "caption": value "[1, x]"`) {
		t.Errorf("err = %v", err)
	}
}

func TestParseTokenList(t *testing.T) {
	tests := []struct {
		in   string
		want []int32
		bad  bool
	}{
		{"[20, 34, 3]", []int32{20, 34, 3}, false},
		{"[7]", []int32{7}, false},
		{"[]", nil, false},
		{"", nil, false},
		{"20, 34", nil, true},
		{"[1,,2]", nil, true},
	}
	for _, tt := range tests {
		got, err := parseTokenList(tt.in)
		if (err != nil) != tt.bad || !equal(got, tt.want) {
			t.Errorf("parseTokenList(%q) = %v, %v", tt.in, got, err)
		}
	}
}
