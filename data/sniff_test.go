package data

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// sniffRowsOf makes n rows of clicks in three scenarios, with user and
// item ids as given, a city, a price and a 0/1 click.
func sniffRowsOf(n int, row func(scenario string, user, item int, city string, price float64, click int) []string) [][]string {
	r := rand.New(rand.NewPCG(1, 2))
	scen := []string{"books", "music", "films"}
	cities := []string{"Paris", "Rome", "Oslo", "Lima"}
	var out [][]string
	for range n {
		out = append(out, row(scen[r.IntN(3)], 1000+r.IntN(400), 50000+r.IntN(900), cities[r.IntN(4)], float64(r.IntN(10000))/100, r.IntN(2)))
	}
	return out
}

func joinRows(header []string, rows [][]string, delim string) string {
	var b strings.Builder
	if header != nil {
		b.WriteString(strings.Join(header, delim) + "\n")
	}
	for _, r := range rows {
		b.WriteString(strings.Join(r, delim) + "\n")
	}
	return b.String()
}

// data init's guesses on files of several shapes, each read back with the
// real reader: every guessed config loads, and scenario, user, item and
// label are the right columns.
func TestSniffCSV(t *testing.T) {
	plain := func(s string, u, i int, city string, price float64, click int) []string {
		return []string{s, fmt.Sprint(u), fmt.Sprint(i), city, fmt.Sprint(price), fmt.Sprint(click)}
	}
	header := []string{"domain", "user_id", "item_id", "city", "price", "click"}
	rows := sniffRowsOf(600, plain)
	type want struct {
		delim                       byte
		header                      bool
		scenario, user, item, label string // field names (col<i> without a header)
		categorical, numeric        []string
	}
	named := want{',', true, "domain", "user_id", "item_id", "click", []string{"city"}, []string{"price"}}
	for _, tc := range []struct {
		name, file, content string
		want                want
	}{
		{"csv with a header", "a.csv", joinRows(header, rows, ","), named},
		{"tsv", "a.tsv", joinRows(header, rows, "\t"), want{'\t', true, "domain", "user_id", "item_id", "click", []string{"city"}, []string{"price"}}},
		{"tab-separated, named .txt", "a.txt", joinRows(header, rows, "\t"), want{'\t', true, "domain", "user_id", "item_id", "click", []string{"city"}, []string{"price"}}},
		{"semicolons", "a.csv", joinRows(header, rows, ";"), want{';', true, "domain", "user_id", "item_id", "click", []string{"city"}, []string{"price"}}},
		{"byte-order mark", "a.csv", "\ufeff" + joinRows(header, rows, ","), named},
		{"no header", "a.csv", joinRows(nil, rows, ","), want{',', false, "col0", "col1", "col2", "col5", []string{"col3"}, []string{"col4"}}},
		{"quoted fields", "a.csv", joinRows(header, sniffRowsOf(600, func(s string, u, i int, city string, price float64, click int) []string {
			return []string{s, fmt.Sprint(u), fmt.Sprint(i), fmt.Sprintf("%q", city+", Earth"), fmt.Sprint(price), fmt.Sprint(click)}
		}), ","), named},
		{"scenario named oddly, columns in another order", "a.csv", joinRows([]string{"clicked", "who", "what", "surface", "price"}, sniffRowsOf(600, func(s string, u, i int, city string, price float64, click int) []string {
			return []string{fmt.Sprint(click), "u" + fmt.Sprint(u), "i" + fmt.Sprint(i), s, fmt.Sprint(price)}
		}), ","), want{',', true, "surface", "who", "what", "clicked", nil, []string{"price"}}},
		{"unnamed columns found by content", "a.csv", joinRows([]string{"a", "b", "c", "d", "e"}, sniffRowsOf(600, func(s string, u, i int, city string, price float64, click int) []string {
			return []string{fmt.Sprint(u), fmt.Sprint(i), s, fmt.Sprint(price), fmt.Sprint(click)}
		}), ","), want{',', true, "c", "a", "b", "e", nil, []string{"d"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "", tc.file, tc.content)
			s, err := SniffCSV(p)
			require.NoError(t, err)
			assert.Equal(t, string(tc.want.delim), string(s.Delimiter), s.DelimWhy)
			assert.Equal(t, tc.want.header, s.Header, s.HeaderWhy)
			cols := s.Config.Columns
			assert.Equal(t, tc.want.scenario, cols.Scenario.Field(), "scenario")
			assert.Equal(t, tc.want.user, cols.User.Field(), "user")
			assert.Equal(t, tc.want.item, cols.Item.Field(), "item")
			require.Len(t, cols.Labels, 1)
			assert.Equal(t, tc.want.label, cols.Labels[0].Field(), "label")
			assert.Equal(t, tc.want.categorical, refFieldsOrNil(cols.Categorical), "categorical")
			assert.Equal(t, tc.want.numeric, refFieldsOrNil(cols.Numeric), "numeric")
			// The real reader reads it as guessed.
			cfg := s.Config
			cfg.Split.Ratios = []float64{1, 0, 0}
			sp, err := Load(cfg)
			require.NoError(t, err)
			assert.Equal(t, 600, sp.Train.Len())
			assert.ElementsMatch(t, []string{"books", "music", "films"}, sp.Vocabs.Schema().ScenarioNames())
			// The YAML it writes is a config that says the same.
			var b strings.Builder
			require.NoError(t, s.WriteYAML(&b, p))
			var back struct{ Data Config }
			require.NoError(t, decodeYAMLStrict(b.String(), &back), b.String())
			assert.Equal(t, normalColumns(s.Config.Columns), normalColumns(back.Data.Columns), b.String())
			assert.Equal(t, s.Config.Delimiter, back.Data.Delimiter)
			assert.Equal(t, *s.Config.Header, *back.Data.Header)
			assert.Contains(t, b.String(), "# guess")
		})
	}
}

// normalColumns drops the difference between an empty list and none.
func normalColumns(c Columns) Columns {
	for _, l := range []*[]ColumnRef{&c.Categorical, &c.Numeric, &c.Labels} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return c
}

func refFieldsOrNil(refs []ColumnRef) []string {
	if len(refs) == 0 {
		return nil
	}
	return refFields(refs)
}

// A rating with no 0/1 column becomes the label through a threshold, and a
// second outcome is kept out of the features.
func TestSniffLabels(t *testing.T) {
	p := writeFile(t, "", "r.csv", "user,movie,genre,rating\n"+strings.Repeat("u1,m1,drama,4\nu2,m2,comedy,2\nu3,m1,drama,5\n", 20))
	s, err := SniffCSV(p)
	require.NoError(t, err)
	require.Len(t, s.Config.Columns.Labels, 1)
	l := s.Config.Columns.Labels[0]
	assert.Equal(t, "rating", l.Name)
	require.NotNil(t, l.Threshold)
	assert.Equal(t, 3.0, *l.Threshold)
	assert.Equal(t, "genre", s.Config.Columns.ItemCategory.Field())
	assert.Contains(t, s.Notes, "no column looks like the scenario: set columns.scenario (a column with one value per scenario)")

	p = writeFile(t, "", "o.csv", "scenario,user_id,item_id,click,purchase\n"+strings.Repeat("a,1,2,1,0\nb,2,3,0,0\na,3,2,1,1\n", 20))
	s, err = SniffCSV(p)
	require.NoError(t, err)
	assert.Equal(t, []string{"click", "purchase"}, refFields(s.Config.Columns.Labels))
	assert.Empty(t, s.Config.Columns.Categorical)
}

func decodeYAMLStrict(text string, out any) error {
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	return dec.Decode(out)
}
