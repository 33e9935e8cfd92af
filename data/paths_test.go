package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A CSV saved by a spreadsheet program starts with a UTF-8 byte-order mark;
// every reader takes the first column's name without it.
func TestByteOrderMark(t *testing.T) {
	const bom = "\ufeff"
	dir := t.TempDir()
	csvPath := writeFile(t, dir, "d.csv", bom+"scen,user,item,city,price,click,ts,title\na,u1,i1,c,1,1,5,t\nb,u2,i2,c,2,0,6,t\n")
	cfg := csvConfig(csvPath)
	cfg.Split.Ratios = []float64{1, 0, 0}
	for _, stream := range []bool{false, true} {
		cfg.Stream.Enabled = stream
		sp, err := Load(cfg)
		require.NoError(t, err, "stream %v", stream)
		assert.Equal(t, []string{"a", "b"}, sp.Vocabs.Schema().ScenarioNames(), "stream %v", stream)
	}
	raw, err := ReadFile(csvConfig(csvPath), csvPath)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, scenarios(raw))

	// Douban's layout is sniffed from the first line, which starts with the mark.
	douban := writeFile(t, dir, "douban.csv", bom+"domain_id,user_id,item_id,label\n0,7,100,1\n1,7,200,0\n")
	sp, err := Load(Config{Format: "douban", Path: douban, Split: SplitConfig{Ratios: []float64{1, 0, 0}}})
	require.NoError(t, err)
	assert.Equal(t, 2, sp.Train.Len())
}

// A missing column lists the columns the file has.
func TestMissingColumnListsTheFilesColumns(t *testing.T) {
	p := writeFile(t, "", "d.csv", "scen,user,item,city,price,ts,title\na,u,i,c,1,5,t\n")
	_, err := Load(csvConfig(p))
	require.ErrorIs(t, err, ErrMissingColumn)
	assert.Contains(t, err.Error(), `column "click": value "": required column missing (label); the file's columns are "scen", "user", "item", "city", "price", "ts", "title"`)
}

// A file the config names but that is not there is an error naming its key.
func TestMissingFileNamesItsKey(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "d.csv", "scen,user,item,city,price,click,ts,title\na,u,i,c,1,1,5,t\n")
	for _, tc := range []struct {
		key string
		set func(c *Config, missing string)
	}{
		{"data.path", func(c *Config, m string) { c.Path = m }},
		{"data.files[1]", func(c *Config, m string) { c.Files = []string{p, m} }},
		{"data.valid", func(c *Config, m string) { c.Path, c.Train, c.Valid = "", p, m }},
	} {
		cfg := csvConfig(p)
		missing := filepath.Join(dir, "nope.csv")
		tc.set(&cfg, missing)
		_, err := Load(cfg)
		require.Error(t, err, tc.key)
		assert.Equal(t, tc.key+": "+missing+": no such file or directory", err.Error())
	}
	// A Parquet glob pattern that matches nothing is named the same way.
	cfg := csvConfig(p)
	cfg.Format, cfg.Path = FormatParquet, filepath.Join(dir, "part-*.parquet")
	_, err := Load(cfg)
	require.Error(t, err)
	assert.Equal(t, "data.path: "+cfg.Path+": no file matches the pattern", err.Error())
}

func TestResolvePaths(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	cfg := Config{Path: "clicks.csv", Files: []string{"/abs/more.csv", "sub/b.csv"}, Train: "../t.csv"}
	require.NoError(t, cfg.ResolvePaths("/configs/x"))
	assert.Equal(t, Config{Path: "/configs/x/clicks.csv", Files: []string{"/abs/more.csv", "/configs/x/sub/b.csv"}, Train: "/configs/t.csv"}, cfg)
	rel := Config{Path: "clicks.csv"}
	require.NoError(t, rel.ResolvePaths(""))
	assert.Equal(t, filepath.Join(wd, "clicks.csv"), rel.Path, "no base: the working directory")
}

// A synthetic run's rows, as `msrtrain data synth` writes them, are read
// back for prediction with the synthetic run's own data config.
func TestReadFileOfGeneratedData(t *testing.T) {
	d, err := Generate(Synthetic{Rows: 200, Users: 30, ItemsPerScenario: 20}, 3)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, WriteCSV(&b, d.Raw))
	p := writeFile(t, "", "synth.csv", b.String())
	raw, err := ReadFile(DefaultConfig(), p)
	require.NoError(t, err)
	require.Equal(t, d.Raw.Len(), raw.Len())
	assert.Equal(t, column(d.Raw, 0), column(raw, 0))
	assert.Equal(t, scenarios(d.Raw), scenarios(raw))
	assert.Equal(t, d.Raw.Labels[0].Values, raw.Labels[0].Values)
}
