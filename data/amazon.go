package data

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Amazon reviews: one JSON-lines review file per category, one scenario per
// category (named from the file: reviews_Beauty_5.json, Beauty_5.json and
// Beauty.json all give "Beauty"; .gz files are read too). A review gives
// reviewerID (user), asin (item), overall (label 1 when above 3) and
// unixReviewTime (time). A meta_<Category>.json(.gz) file beside it, when
// present, gives each item's title (kept for prompts), brand and category
// (both become categorical features).

type amazonReview struct {
	ReviewerID string   `json:"reviewerID"`
	Asin       string   `json:"asin"`
	Overall    *float64 `json:"overall"`
	Time       int64    `json:"unixReviewTime"`
}

type amazonMeta struct {
	Asin       string          `json:"asin"`
	Title      string          `json:"title"`
	Brand      string          `json:"brand"`
	Category   []string        `json:"category"`   // 2018 release
	Categories json.RawMessage `json:"categories"` // 2014 release: [["a", "b"]]
}

// readAmazon reads review files, or every review file in a directory; a
// review's rating is its label, so there is no file without labels.
func readAmazon(cfg *Config, paths []string, _ bool) (*Raw, error) {
	var files []string
	for _, p := range paths {
		if !isDir(p) {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && !strings.HasPrefix(n, "meta_") && strings.Contains(n, ".json") {
				files = append(files, filepath.Join(p, n))
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("amazon: no review files in %v", paths)
	}
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(amazonCategory(a), amazonCategory(b)) })
	raw := newRaw([]string{"user_id", "item_id"}, nil, []string{"label"}, true)
	meta := map[string][]string{}
	for _, f := range files {
		cat := amazonCategory(f)
		raw.Descriptions[cat] = fmt.Sprintf("Amazon %s: product reviews in the %s category; label 1 when the rating is above 3 of 5.",
			strings.ReplaceAll(cat, "_", " "), strings.ReplaceAll(cat, "_", " "))
		for _, m := range []string{"meta_" + cat + ".json", "meta_" + cat + ".json.gz"} {
			mf := filepath.Join(filepath.Dir(f), m)
			if _, err := os.Stat(mf); err == nil {
				if err := readAmazonMeta(mf, raw.Text, meta, cfg.SkipBadRows, &raw.Skipped); err != nil {
					return nil, err
				}
			}
		}
		if err := readAmazonReviews(raw, f, cat, cfg); err != nil {
			return nil, err
		}
	}
	raw.joinCat(1, []string{"brand", "category"}, meta)
	return raw, nil
}

// amazonCategory names the scenario of a review file.
func amazonCategory(path string) string {
	n := filepath.Base(path)
	n = strings.TrimSuffix(n, ".gz")
	n = strings.TrimSuffix(strings.TrimSuffix(n, ".json"), ".jsonl")
	n = strings.TrimPrefix(n, "reviews_")
	return strings.TrimSuffix(n, "_5")
}

// openMaybeGzip opens a file, decompressing .gz files.
func openMaybeGzip(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, &RowError{File: path, Line: 1, Err: err}
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}, nil
}

// jsonLines calls f for each non-blank line of a JSON-lines file; f's
// errors are row errors, skipped and counted under skipBad.
func jsonLines(path string, skipBad bool, bad *BadRows, f func(sc *scanner) error) (int, error) {
	r, err := openMaybeGzip(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	sc := newScanner(path, r, 0)
	n := 0
	for {
		ok, err := sc.scan()
		if err == nil && !ok {
			break
		}
		if err == nil {
			err = f(sc)
		}
		if err != nil {
			var re *RowError
			if skipBad && errors.As(err, &re) && re.Line > 0 {
				bad.add(err)
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}

func jsonErr(sc *scanner, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &RowError{File: sc.file, Line: sc.line, Column: te.Field, Value: string(sc.rec), Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
	}
	return &RowError{File: sc.file, Line: sc.line, Value: string(sc.rec), Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
}

func readAmazonReviews(raw *Raw, path, cat string, cfg *Config) error {
	file := raw.addFile(path)
	scen := raw.Scenario.Dict.codeString(cat)
	codes := make([]int32, 2)
	lab := make([]float32, 1)
	kept := 0
	_, err := jsonLines(path, cfg.SkipBadRows, &raw.Skipped, func(sc *scanner) error {
		if cfg.MaxRows > 0 && kept >= cfg.MaxRows {
			return nil
		}
		var r amazonReview
		if err := json.Unmarshal(sc.rec, &r); err != nil {
			return jsonErr(sc, err)
		}
		missing := func(col string) error {
			return &RowError{File: sc.file, Line: sc.line, Column: col, Value: string(sc.rec), Err: ErrMissingColumn}
		}
		switch {
		case r.ReviewerID == "":
			return missing("reviewerID")
		case r.Asin == "":
			return missing("asin")
		case r.Overall == nil:
			return missing("overall")
		}
		codes[0] = raw.Cat[0].Dict.codeString(r.ReviewerID)
		codes[1] = raw.Cat[1].Dict.codeString(r.Asin)
		lab[0] = 0
		if *r.Overall > 3 {
			lab[0] = 1
		}
		raw.appendRow(file, sc.line, scen, codes, nil, lab, r.Time)
		kept++
		return nil
	})
	if err != nil {
		return err
	}
	if kept == 0 {
		return &RowError{File: path, Line: 1, Err: ErrEmptyFile}
	}
	return nil
}

func readAmazonMeta(path string, text *Text, feats map[string][]string, skipBad bool, bad *BadRows) error {
	_, err := jsonLines(path, skipBad, bad, func(sc *scanner) error {
		var m amazonMeta
		if err := json.Unmarshal(sc.rec, &m); err != nil {
			return jsonErr(sc, err)
		}
		if m.Asin == "" {
			return &RowError{File: sc.file, Line: sc.line, Column: "asin", Value: string(sc.rec), Err: ErrMissingColumn}
		}
		cat := ""
		if len(m.Category) > 0 {
			cat = m.Category[len(m.Category)-1]
		} else if len(m.Categories) > 0 {
			var cs [][]string
			if json.Unmarshal(m.Categories, &cs) == nil && len(cs) > 0 && len(cs[0]) > 0 {
				cat = cs[0][len(cs[0])-1]
			}
		}
		text.Items[m.Asin] = ItemText{Title: m.Title, Category: cat}
		feats[m.Asin] = []string{m.Brand, cat}
		return nil
	})
	return err
}
