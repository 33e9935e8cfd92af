package knowledge

import (
	"context"
	"math"
	"testing"
)

func TestHashEncoderSignal(t *testing.T) {
	h := NewHashEncoder(0, 1)
	if h.Dim() != DefaultHashDim {
		t.Fatalf("dim = %d", h.Dim())
	}
	a := h.Vector("Loves science fiction movies and space documentaries.")
	tests := []struct {
		name     string
		text     string
		min, max float64
	}{
		{"identical", "loves SCIENCE fiction movies, and space documentaries", 0.9999, 1.0001},
		{"similar", "enjoys science fiction movies about space", 0.3, 1},
		{"unrelated", "buys kitchen knives and cooking pans for the restaurant", -0.3, 0.3},
		{"empty", "", 0, 0},
	}
	for _, tc := range tests {
		c := cosine(a, h.Vector(tc.text))
		if c < tc.min || c > tc.max {
			t.Errorf("%s: cosine %.3f outside [%v, %v]", tc.name, c, tc.min, tc.max)
		}
	}
	var norm float64
	for _, x := range a {
		norm += float64(x) * float64(x)
	}
	if math.Abs(norm-1) > 1e-6 {
		t.Errorf("norm² = %v, want 1", norm)
	}
}

// TestHashEncoderExpectedCosine averages over seeds: the projection keeps
// the cosine of the hashed feature vectors in expectation. The texts have
// 13 and 11 features (unigrams and bigrams, all tf 1) and share 6 (science,
// fiction, movies, space, "science fiction", "fiction movies"), so the
// expected cosine is 6/sqrt(13·11).
func TestHashEncoderExpectedCosine(t *testing.T) {
	var similar, unrelated float64
	const seeds = 40
	for seed := uint64(0); seed < seeds; seed++ {
		h := NewHashEncoder(256, seed)
		a := h.Vector("loves science fiction movies and space documentaries")
		similar += cosine(a, h.Vector("enjoys science fiction movies about space"))
		unrelated += cosine(a, h.Vector("buys kitchen knives or cooking pans for restaurants"))
	}
	want := 6 / math.Sqrt(13*11)
	similar /= seeds
	unrelated /= seeds
	if math.Abs(similar-want) > 0.03 || math.Abs(unrelated) > 0.03 {
		t.Errorf("mean cosine similar %.3f (want %.3f), unrelated %.3f (want 0)", similar, want, unrelated)
	}
}

// TestHashEncoderDeterministic pins the output so a change to the
// algorithm (which would silently invalidate stored vectors) is noticed.
func TestHashEncoderDeterministic(t *testing.T) {
	v := NewHashEncoder(8, 7).Vector("jazz piano jazz")
	want := goldenHash
	for i := range want {
		if v[i] != want[i] {
			t.Fatalf("Vector = %v, want %v", v, want)
		}
	}
	other := NewHashEncoder(8, 8).Vector("jazz piano jazz")
	if cosine(v, other) > 0.99 {
		t.Error("a different seed gives the same projection")
	}
	res, err := NewHashEncoder(8, 7).Encode(context.Background(), []Prompt{{Key: "user:1", Text: "ignored", Facts: "jazz piano jazz"}, {Key: "user:2", Text: "jazz piano jazz"}})
	if err != nil || len(res) != 2 || cosine(res[0].Vector, v) < 0.9999 || cosine(res[1].Vector, v) < 0.9999 || res[0].Reasoning != "" {
		t.Errorf("Encode = %+v, %v", res, err)
	}
}
