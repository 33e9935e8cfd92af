package data

import (
	"path/filepath"
	"testing"
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
	for b.Loop() {
		if _, err := Generate(Synthetic{}, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(250000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
