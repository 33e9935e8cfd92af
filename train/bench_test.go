package train

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
)

// BenchmarkLoaderVsTrainer measures, in one run on the default synthetic
// data, how fast the batcher alone hands out training batches and how fast
// the trainer consumes them (LLM4MSR on STAR, and the bare backbone), and
// prints the ratio: the loader must stay well ahead so it never starves
// training.
//
//	go test -run '^$' -bench LoaderVsTrainer -benchtime 1x ./train/
func BenchmarkLoaderVsTrainer(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Train.Epochs = 1
	cfg.Train.EarlyStopping.Patience = 0
	for n := 0; n < b.N; n++ {
		sp, err := data.Load(cfg.Data)
		if err != nil {
			b.Fatal(err)
		}
		src, err := sp.Source(data.Train, data.BatchOptions{Size: cfg.Train.BatchSize, Shuffle: true, Seed: cfg.Seed, Workers: cfg.Train.LoaderWorkers})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rows := 0
		it := src.Epoch(0, 0)
		for {
			bt, ok := it.Next()
			if !ok {
				break
			}
			rows += bt.Size
			it.Release(bt)
		}
		it.Close()
		loader := float64(rows) / time.Since(start).Seconds()

		fmt.Printf("batch %d, %d training rows, %d threads\n", cfg.Train.BatchSize, rows, runtime.NumCPU())
		fmt.Printf("%-28s %12.0f rows/s\n", "loader alone", loader)
		for _, levels := range []model.MetaLevels{model.LevelsBoth, model.LevelsNone} {
			c := cfg
			c.Model.Meta.Levels = levels
			c.Out = b.TempDir()
			res, err := onTorchThread(func() (*Result, error) { return Train(context.Background(), c, RunOptions{}) })
			if err != nil {
				b.Fatal(err)
			}
			name := "trainer, LLM4MSR on STAR"
			if levels == "none" {
				name = "trainer, bare STAR"
			}
			fmt.Printf("%-28s %12.0f samples/s   loader is %.0f× faster\n", name, res.SamplesPerSec, loader/res.SamplesPerSec)
			b.ReportMetric(loader/res.SamplesPerSec, "loader/trainer-"+string(levels))
		}
	}
}
