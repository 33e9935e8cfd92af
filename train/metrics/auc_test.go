package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

const tol = 1e-9

func TestAUC(t *testing.T) {
	tests := []struct {
		name   string
		labels []float32
		scores []float32
		want   float64
		ok     bool
	}{
		// The sklearn roc_auc_score docstring example.
		{"no ties", []float32{0, 0, 1, 1}, []float32{0.1, 0.4, 0.35, 0.8}, 0.75, true},
		// Pairs: 0.5 vs 0.5 counts a half, every other pair is ordered: 3.5/4.
		{"tie across classes", []float32{0, 1, 0, 1}, []float32{0.5, 0.5, 0.2, 0.9}, 0.875, true},
		{"all scores tied", []float32{0, 1, 1, 0, 1}, []float32{0.3, 0.3, 0.3, 0.3, 0.3}, 0.5, true},
		{"perfect", []float32{0, 0, 1}, []float32{0.1, 0.2, 0.3}, 1, true},
		{"inverted", []float32{1, 1, 0}, []float32{0.1, 0.2, 0.3}, 0, true},
		// Ties within a class only count as ordinary pairs: 7 of 9 pairs ordered.
		{"ties within class", []float32{0, 0, 1, 1, 1, 0}, []float32{0.2, 0.2, 0.7, 0.7, 0.1, 0.05}, 7.0 / 9, true},
		{"all negative", []float32{0, 0}, []float32{0.1, 0.9}, 0, false},
		{"all positive", []float32{1}, []float32{0.4}, 0, false},
		{"empty", nil, nil, 0, false},
		{"length mismatch", []float32{0, 1}, []float32{0.5}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AUC(tt.labels, tt.scores)
			if ok != tt.ok || math.Abs(got-tt.want) > tol {
				t.Fatalf("AUC = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// bruteAUC is the O(n²) definition: the fraction of (positive, negative)
// pairs ordered correctly, ties counting a half.
func bruteAUC(labels, scores []float32) float64 {
	var num, pairs float64
	for i := range labels {
		if labels[i] != 1 {
			continue
		}
		for j := range labels {
			if labels[j] != 0 {
				continue
			}
			pairs++
			switch {
			case scores[i] > scores[j]:
				num++
			case scores[i] == scores[j]:
				num += 0.5
			}
		}
	}
	return num / pairs
}

func TestAUCMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 2 + rng.IntN(300)
		levels := 1 + rng.IntN(20) // few levels force many ties
		labels, scores := make([]float32, n), make([]float32, n)
		for i := range labels {
			if rng.Float64() < 0.3 {
				labels[i] = 1
			}
			scores[i] = float32(rng.IntN(levels)) / float32(levels)
		}
		labels[0], labels[1] = 0, 1
		got, ok := AUC(labels, scores)
		want := bruteAUC(labels, scores)
		if !ok || math.Abs(got-want) > 1e-12 {
			t.Fatalf("trial %d (n=%d): AUC = %v, %v; brute force %v", trial, n, got, ok, want)
		}
	}
}

func BenchmarkAUC1M(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(3, 4))
	labels, scores := make([]float32, n), make([]float32, n)
	for i := range labels {
		if rng.Float64() < 0.1 {
			labels[i] = 1
		}
		scores[i] = rng.Float32()
	}
	b.ResetTimer()
	for b.Loop() {
		if _, ok := AUC(labels, scores); !ok {
			b.Fatal("undefined")
		}
	}
}
