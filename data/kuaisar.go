package data

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// KuaiSAR: a directory with rec_inter.csv (scenario "rec", label click,
// time timestamp) and src_inter.csv (scenario "search", label click_cnt > 0,
// time search_session_timestamp, categorical keyword and search_source),
// joined on user_id with user_features.csv and on item_id with
// item_features.csv when those files are present. Item text for prompts is
// the English category path (first > second > third level) and the caption
// token ids, parsed from lists written like "[20, 34, 3]".

var (
	kuaisarUserFeats = []string{"search_active_level", "rec_active_level", "onehot_feat1", "onehot_feat2"}
	kuaisarItemFeats = []string{"author_id", "item_type", "upload_type", "first_level_category_id", "second_level_category_id"}
	kuaisarScenarios = map[string]string{
		"rec":    "Kuaishou recommendation: short videos pushed to the user's feed without a query; label 1 when the user clicks the video.",
		"search": "Kuaishou search: items shown for a query the user typed (anonymised keyword tokens); label 1 when the user clicks the shown item.",
	}
)

// readKuaiSAR reads one KuaiSAR directory; its labels are always there.
func readKuaiSAR(cfg *Config, paths []string, _ bool) (*Raw, error) {
	if len(paths) != 1 {
		return nil, fmt.Errorf("data: format kuaisar: give one directory, not %d paths", len(paths))
	}
	dir := paths[0]
	zero := 0.0
	cols := Columns{User: Col("user_id"), Item: Col("item_id"),
		Categorical: []ColumnRef{Col("keyword"), Col("search_source")},
		Labels:      []ColumnRef{Col("click")}, Time: Col("timestamp")}
	raw := newRawFor(&cols)
	o := readOptions{delim: ',', header: true, skipBad: cfg.SkipBadRows, maxRows: cfg.MaxRows, optionalCat: true}
	o.scenarioConst = "rec"
	if err := readCSVFile(raw, filepath.Join(dir, "rec_inter.csv"), &cols, o); err != nil {
		return nil, err
	}
	cols.Labels = []ColumnRef{{Name: "click_cnt", As: "click", Threshold: &zero}}
	cols.Time = ColumnRef{Name: "search_session_timestamp", As: "timestamp"}
	o.scenarioConst = "search"
	if err := readCSVFile(raw, filepath.Join(dir, "src_inter.csv"), &cols, o); err != nil {
		return nil, err
	}
	for name, d := range kuaisarScenarios {
		raw.Descriptions[name] = d
	}
	if f := filepath.Join(dir, "user_features.csv"); exists(f) {
		feats, err := readFeatureTable(f, "user_id", kuaisarUserFeats, nil, cfg.SkipBadRows, &raw.Skipped)
		if err != nil {
			return nil, err
		}
		raw.joinCat(0, kuaisarUserFeats, feats)
	}
	if f := filepath.Join(dir, "item_features.csv"); exists(f) {
		feats, err := readFeatureTable(f, "item_id", kuaisarItemFeats, func(get func(string) (string, bool), key string) (string, error) {
			return kuaisarItemText(raw.Text, get, key)
		}, cfg.SkipBadRows, &raw.Skipped)
		if err != nil {
			return nil, err
		}
		raw.joinCat(1, kuaisarItemFeats, feats)
	}
	return raw, nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// kuaisarItemText keeps an item's category path and caption tokens; on
// error it names the bad column.
func kuaisarItemText(text *Text, get func(string) (string, bool), key string) (string, error) {
	var path []string
	for _, lv := range []string{"first", "second", "third", "fourth"} {
		if n, ok := get(lv + "_level_category_name_en"); ok && n != "" && n != "empty" {
			path = append(path, n)
		}
	}
	it := ItemText{Title: strings.Join(path, " > ")}
	if len(path) > 0 {
		it.Category = path[0]
	}
	if c, ok := get("caption"); ok {
		toks, err := parseTokenList(c)
		if err != nil {
			return "caption", err
		}
		it.Tokens = toks
	}
	text.Items[key] = it
	return "", nil
}

// parseTokenList parses "[20, 34, 3]" (or "" / "[]") into token ids.
func parseTokenList(s string) ([]int32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, fmt.Errorf("%w: token list must look like [1, 2, 3]", ErrSyntax)
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	if body == "" {
		return nil, nil
	}
	parts := strings.Split(body, ",")
	out := make([]int32, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: token %q is not an integer", ErrSyntax, strings.TrimSpace(p))
		}
		out[i] = int32(v)
	}
	return out, nil
}

// readFeatureTable reads a CSV with a header into key -> values of cols
// (columns absent from the file give ""). each, when set, sees every row and
// names the column of any error it returns.
func readFeatureTable(path, key string, cols []string, each func(get func(string) (string, bool), key string) (string, error),
	skipBad bool, bad *BadRows) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := newScanner(path, f, ',')
	ok, err := sc.scan()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &RowError{File: path, Line: 1, Err: ErrEmptyFile}
	}
	pos := map[string]int{}
	for i, h := range sc.fields {
		pos[string(h)] = i
	}
	sc.names = make([]string, len(sc.fields))
	for i, h := range sc.fields {
		sc.names[i] = string(h)
	}
	ki, ok := pos[key]
	if !ok {
		return nil, &RowError{File: path, Line: 1, Column: key, Err: ErrMissingColumn}
	}
	get := func(name string) (string, bool) {
		if i, ok := pos[name]; ok {
			return string(sc.fields[i]), true
		}
		return "", false
	}
	out := map[string][]string{}
	for {
		ok, err := sc.scan()
		if err == nil && !ok {
			break
		}
		if err == nil {
			err = sc.checkCount(len(sc.names))
		}
		var k string
		if err == nil {
			k = string(bytes.TrimSpace(sc.fields[ki]))
			if each != nil {
				if col, e := each(get, k); e != nil {
					v, _ := get(col)
					err = &RowError{File: path, Line: sc.line, Column: col, Value: v, Err: e}
				}
			}
		}
		if err != nil {
			if skipBad {
				bad.add(err)
				continue
			}
			return nil, err
		}
		vals := make([]string, len(cols))
		for j, c := range cols {
			vals[j], _ = get(c)
		}
		out[k] = vals
	}
	return out, nil
}
