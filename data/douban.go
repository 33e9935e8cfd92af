package data

import (
	"bufio"
	"os"
	"strings"
)

// Douban multi-domain data comes in two layouts, told apart by the first
// line of the first file:
//
//   - domain_id,user_id,item_id,label (0 music, 1 book, 2 movie), with or
//     without that header;
//   - user_id,item_id,rating,domain,living_place,join_time,time_bin (the
//     Scenario-Wise-Rec sample): domain names the scenario, rating is the
//     0/1 label, living_place and time_bin are categorical features.
//
// Either way users are shared across the domains.

var doubanDomains = map[string]string{"0": "music", "1": "book", "2": "movie"}

var doubanDescriptions = map[string]string{
	"book":  "Douban books: users mark books they have read; label 1 when they rated the book above 3 of 5.",
	"movie": "Douban movies: users mark films they have seen; label 1 when they rated the film above 3 of 5.",
	"music": "Douban music: users mark albums they have heard; label 1 when they rated the album above 3 of 5.",
}

func readDouban(cfg *Config, files []string, predict bool) (*Raw, error) {
	first, err := firstLine(files[0])
	if err != nil {
		return nil, err
	}
	names := strings.Split(first, ",")
	c := *cfg
	header := true
	if has(names, "domain") && has(names, "rating") {
		c.Columns = Columns{Scenario: Col("domain"), User: Col("user_id"), Item: Col("item_id"),
			Categorical: []ColumnRef{Col("living_place"), Col("time_bin")}, Labels: []ColumnRef{{Name: "rating", As: "label"}}}
	} else {
		_, err := parseInt(strings.TrimSpace(names[0]))
		header = err != nil
		c.Columns = Columns{Scenario: ColAt(0, "domain"), User: ColAt(1, "user_id"), Item: ColAt(2, "item_id"),
			Labels: []ColumnRef{ColAt(3, "label")}}
	}
	c.Header = &header
	c.Delimiter = ","
	raw, err := readGeneric(&c, files, predict)
	if err != nil {
		return nil, err
	}
	raw.Scenario.Dict.rename(doubanDomains)
	for name, d := range doubanDescriptions {
		raw.Descriptions[name] = d
	}
	return raw, nil
}

// rename replaces interned strings (scenario codes by their names).
func (d *Dict) rename(m map[string]string) {
	if d.index == nil {
		d.reindex()
	}
	for code, s := range d.Strings {
		if to, ok := m[s]; ok {
			if _, taken := d.index[to]; taken {
				continue
			}
			delete(d.index, s)
			d.Strings[code] = to
			d.index[to] = int32(code)
		}
	}
}

func has(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// firstLine returns the first line of a file, for sniffing its layout.
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	skipBOM(r)
	line, err := r.ReadString('\n')
	if err != nil && line == "" {
		return "", &RowError{File: path, Line: 1, Err: ErrEmptyFile}
	}
	return strings.TrimRight(line, "\r\n"), nil
}
