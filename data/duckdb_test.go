package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// DuckDB writes the Parquet files these tests read back: a writer msrtrain
// did not write, with its own choices of encodings, compression, row
// groups and nulls. make setup installs it (npm's @duckdb/node-api, whose
// Linux binary ships inside the package) into third_party/duckdb; the tests
// fail, not skip, without it.

// runDuckDB runs SQL statements in one node process.
func runDuckDB(statements []string) error {
	root, err := filepath.Abs(filepath.Join("..", "third_party", "duckdb", "node_modules"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "@duckdb", "node-api")); err != nil {
		return fmt.Errorf("DuckDB for node is not installed in %s (run make setup): %w", root, err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "duckdb.js"))
	if err != nil {
		return err
	}
	in, err := json.Marshal(statements)
	if err != nil {
		return err
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+root)
	cmd.Stdin = bytes.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node %s: %w: %s", script, err, out)
	}
	return nil
}

// duckFixtures are the Parquet files of the tests, written once per run.
type duckFixtures struct {
	dir string
	// synth: the synthetic data as CSV (WriteCSV) and its config.
	synthCSV string
	synth    Config
	// ids: integer ids, text with empty cells (nulls), decimals, timestamps.
	idsCSV string
	ids    Config
	// holes: ids with empty numbers and a bad label (bad rows).
	holesCSV string
}

func (f *duckFixtures) at(name string) string { return filepath.Join(f.dir, name) }

var (
	fixturesOnce sync.Once
	fixtures     duckFixtures
	fixturesErr  error
)

// parquetFixtures writes every fixture with one DuckDB process, once.
func parquetFixtures(t *testing.T) *duckFixtures {
	t.Helper()
	fixturesOnce.Do(func() { fixturesErr = writeFixtures(&fixtures) })
	require.NoError(t, fixturesErr)
	return &fixtures
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtures.dir != "" {
		os.RemoveAll(fixtures.dir)
	}
	os.Exit(code)
}

func writeFixtures(f *duckFixtures) error {
	dir, err := os.MkdirTemp("", "msrtrain-parquet-")
	if err != nil {
		return err
	}
	f.dir = dir
	d, err := Generate(Synthetic{Scenarios: 3, Users: 300, ItemsPerScenario: 200, Rows: 5000}, 7)
	if err != nil {
		return err
	}
	f.synthCSV, f.idsCSV, f.holesCSV = f.at("synth.csv"), f.at("ids.csv"), f.at("holes.csv")
	var b bytes.Buffer
	if err := WriteCSV(&b, d.Raw); err != nil {
		return err
	}
	f.synth = CSVConfig(d.Raw, f.synthCSV)
	f.ids = Config{Format: FormatCSV, Path: f.idsCSV, Columns: Columns{
		Scenario: Col("scenario"), User: Col("user"), Item: Col("item"),
		Categorical: []ColumnRef{Col("city")}, Numeric: []ColumnRef{Col("price")},
		Labels: []ColumnRef{Col("click")}, Time: Col("day")}}
	spark := f.at("spark")
	for _, w := range []struct{ path, content string }{
		{f.synthCSV, b.String()}, {f.idsCSV, idsCSV(5000, false)}, {f.holesCSV, idsCSV(5000, true)},
		{filepath.Join(spark, "_SUCCESS"), ""}, {filepath.Join(spark, ".part-00000-c0.snappy.parquet.crc"), "crc"},
	} {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(w.path, []byte(w.content), 0o644); err != nil {
			return err
		}
	}
	copyTo := func(query, file, options string) string {
		return fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 2048%s)", query, f.at(file), options)
	}
	return runDuckDB([]string{
		fmt.Sprintf("CREATE TABLE synth AS SELECT * FROM read_csv('%s', header = true)", f.synthCSV),
		fmt.Sprintf("CREATE TABLE ids AS SELECT * FROM read_csv('%s', header = true)", f.idsCSV),
		fmt.Sprintf("CREATE TABLE holes AS SELECT * FROM read_csv('%s', header = true)", f.holesCSV),
		copyTo("FROM synth", "synth_snappy.parquet", ""),
		copyTo("FROM synth", "synth_zstd.parquet", ", COMPRESSION zstd"),
		copyTo("FROM synth", "synth_plain.parquet", ", DICTIONARY_SIZE_LIMIT 1"),
		copyTo("FROM synth", "synth_v2.parquet", ", PARQUET_VERSION V2"),
		copyTo("FROM synth", "hive", ", PARTITION_BY (scenario)"),
		copyTo("SELECT * FROM synth WHERE rowid < 2500", "spark/part-00000-c0.snappy.parquet", ""),
		copyTo("SELECT * FROM synth WHERE rowid >= 2500", "spark/part-00001-c0.snappy.parquet", ""),
		copyTo("SELECT * REPLACE (CASE WHEN click = 1 THEN 'yes' ELSE 'no' END AS click) FROM synth", "wrong_type.parquet", ""),
		copyTo("FROM ids", "ids.parquet", ""),
		copyTo("FROM ids", "ids_zstd_v2.parquet", ", COMPRESSION zstd, PARQUET_VERSION V2"),
		copyTo("FROM holes", "holes.parquet", ""),
	})
}

// idsCSV is rows of integer ids (some large), a city left empty in every
// seventh row, prices with two decimals, 0/1 clicks and timestamps; with
// holes, some prices are empty and one click is 2.
func idsCSV(rows int, holes bool) string {
	var b strings.Builder
	b.WriteString("scenario,user,item,city,price,click,day\n")
	cities := []string{"berlin", "lima", "osaka", "quito", "accra"}
	for i := range rows {
		city := cities[i*7%len(cities)]
		if i%7 == 3 {
			city = ""
		}
		price := fmt.Sprintf("%d.%02d", i*37%500, i*13%100)
		if holes && i%11 == 5 {
			price = ""
		}
		click := (i * 31 / 7) % 2
		if holes && i == 4321 {
			click = 2
		}
		fmt.Fprintf(&b, "s%d,%d,%d,%s,%s,%d,2024-03-%02d %02d:%02d:00\n",
			i%3, 1000+i*7919%400, 9_000_000_000+int64(i*104729%900), city, price, click, 1+i%28, i%24, i%60)
	}
	return b.String()
}
