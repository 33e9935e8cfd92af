package data

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// BenchmarkParseCSV reads a 1M-row generic CSV (9 columns: scenario, 4
// categorical, 2 numeric, label, time) into a Raw.
func BenchmarkParseCSV(b *testing.B) {
	p := filepath.Join(b.TempDir(), "bench.csv")
	const rows = 1_000_000
	writeSyntheticCSV(b, p, rows, 1)
	cfg := syntheticCSVConfig(p)
	b.ResetTimer()
	for b.Loop() {
		raw, err := ReadFile(cfg, p)
		if err != nil || raw.Len() != rows {
			b.Fatal(raw.Len(), err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBatcher measures the batcher alone: shuffled batches of 1024
// from the default synthetic training table.
func BenchmarkBatcher(b *testing.B) {
	tab := batcherTable(b, 250000)
	bt, err := NewBatcher(tab, BatchOptions{Size: 1024, Shuffle: true, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	batches := 0
	for epoch := 0; b.Loop(); epoch++ {
		it := bt.Epoch(epoch, 0)
		for x, ok := it.Next(); ok; x, ok = it.Next() {
			batches++
			it.Release(x)
		}
		it.Close()
	}
	b.ReportMetric(float64(batches)/b.Elapsed().Seconds(), "batches/s")
	b.ReportMetric(float64(batches*1024)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkGenerate measures the synthetic generator at its default size.
func BenchmarkGenerate(b *testing.B) {
	rows := 0
	for b.Loop() {
		d, err := Generate(Synthetic{}, 1)
		if err != nil {
			b.Fatal(err)
		}
		rows += d.Raw.Len()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

var (
	loadCSV     = flag.String("load-csv", "", "BenchmarkLoad: a data config reading CSV (the .yaml `msrtrain data synth` writes); empty: 1M synthetic rows")
	loadParquet = flag.String("load-parquet", "", "BenchmarkLoad: the same rows as Parquet (file, directory or glob)")
)

// BenchmarkLoad loads the same rows from CSV and from DuckDB-written
// Parquet with Load (read, split, vocabularies, encoding), the two
// alternated in each round, and reports the best time of each and the
// ratio. Without flags the rows are 1M synthetic ones.
func BenchmarkLoad(b *testing.B) {
	csvCfg, pqCfg := benchLoadConfigs(b)
	best := [2]time.Duration{math.MaxInt64, math.MaxInt64}
	var rows int
	for b.Loop() {
		for i, cfg := range []Config{csvCfg, pqCfg} {
			start := time.Now()
			sp, err := Load(cfg)
			if err != nil {
				b.Fatal(err)
			}
			best[i] = min(best[i], time.Since(start))
			rows = sp.Train.Len() + sp.Valid.Len() + sp.Test.Len()
			runtime.GC()
		}
	}
	b.ReportMetric(best[0].Seconds(), "csv-s")
	b.ReportMetric(best[1].Seconds(), "parquet-s")
	b.ReportMetric(best[0].Seconds()/best[1].Seconds(), "csv/parquet")
	b.ReportMetric(float64(rows)/best[1].Seconds(), "parquet-rows/s")
}

func benchLoadConfigs(b *testing.B) (Config, Config) {
	if *loadCSV != "" {
		text, err := os.ReadFile(*loadCSV)
		if err != nil {
			b.Fatal(err)
		}
		var doc struct{ Data yaml.Node }
		var cfg Config
		if err := yaml.Unmarshal(text, &doc); err != nil {
			b.Fatal(err)
		}
		if err := doc.Data.Decode(&cfg); err != nil {
			b.Fatal(err)
		}
		cfg.fillDefaults()
		return cfg, asParquet(cfg, *loadParquet)
	}
	dir := b.TempDir()
	d, err := Generate(Synthetic{Rows: 1_000_000}, 1)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "rows.csv")
	f, err := os.Create(path)
	if err == nil {
		err = WriteCSV(f, d.Raw)
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	pq := filepath.Join(dir, "rows.parquet")
	if err := runDuckDB([]string{fmt.Sprintf("COPY (FROM read_csv('%s', header = true)) TO '%s' (FORMAT parquet)", path, pq)}); err != nil {
		b.Fatal(err)
	}
	cfg := CSVConfig(d.Raw, path)
	return cfg, asParquet(cfg, pq)
}
