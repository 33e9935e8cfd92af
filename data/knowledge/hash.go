package knowledge

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"unicode"
)

// HashBuckets is the number of feature-hashing buckets of the hash encoder.
const HashBuckets = 1 << 18

// DefaultHashDim is the hash encoder's default output dimension.
const DefaultHashDim = 64

// HashEncoder is a deterministic text encoder that needs no GPU or server.
// It is NOT a language model: it lower-cases the text, splits it into words
// (runs of Unicode letters and digits), hashes unigrams and bigrams into
// HashBuckets signed buckets (FNV-1a) with 1+ln(tf) weights, projects the
// bucket vector to Dim dimensions with a fixed seeded ±1 random matrix and
// L2-normalises the result. Texts sharing words get similar vectors; nothing
// more is understood. It embeds a prompt's Facts (its Text when Facts is
// empty) and returns no reasoning. Empty text gives the zero vector.
type HashEncoder struct {
	dim  int
	seed uint64
}

// NewHashEncoder returns a hash encoder; dim <= 0 selects DefaultHashDim.
func NewHashEncoder(dim int, seed uint64) *HashEncoder {
	if dim <= 0 {
		dim = DefaultHashDim
	}
	return &HashEncoder{dim: dim, seed: seed}
}

func (h *HashEncoder) Name() string { return "hash" }
func (h *HashEncoder) Dim() int     { return h.dim }

// Model names the algorithm and seed, so a store notices a changed seed.
func (h *HashEncoder) Model() string {
	return fmt.Sprintf("fnv1a-unigram-bigram-%d-seed%d", HashBuckets, h.seed)
}

// BatchSize lets Build flush the store every 1024 prompts.
func (h *HashEncoder) BatchSize() int { return 1024 }

// Encode embeds each prompt's Facts (or Text).
func (h *HashEncoder) Encode(ctx context.Context, prompts []Prompt) ([]Result, error) {
	out := make([]Result, 0, len(prompts))
	for i, p := range prompts {
		if i%256 == 0 && ctx.Err() != nil {
			return out, context.Cause(ctx)
		}
		text := p.Facts
		if text == "" {
			text = p.Text
		}
		out = append(out, Result{Key: p.Key, Vector: h.Vector(text)})
	}
	return out, nil
}

// Vector embeds one text. The result depends only on the text, the
// dimension and the seed: features are accumulated in sorted order in
// float64, so it is identical on every platform.
func (h *HashEncoder) Vector(text string) []float32 {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	tf := map[string]int{}
	for i, w := range words {
		tf[w]++
		if i > 0 {
			tf[words[i-1]+" "+w]++
		}
	}
	buckets := map[uint32]float64{}
	for _, f := range sortedKeys(tf) {
		hf := fnv.New64a()
		hf.Write([]byte(f))
		sum := hf.Sum64()
		w := 1 + math.Log(float64(tf[f]))
		if sum>>63 == 1 {
			w = -w
		}
		buckets[uint32(sum%HashBuckets)] += w
	}
	ids := make([]uint32, 0, len(buckets))
	for b := range buckets {
		ids = append(ids, b)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	acc := make([]float64, h.dim)
	for _, b := range ids {
		w := buckets[b]
		state := h.seed ^ (uint64(b)+1)*0x9e3779b97f4a7c15
		var bits uint64
		for d := range acc {
			if d%64 == 0 {
				bits = splitmix64(&state)
			}
			if bits&1 == 1 {
				acc[d] += w
			} else {
				acc[d] -= w
			}
			bits >>= 1
		}
	}
	var norm float64
	for _, x := range acc {
		norm += float64(x * x) // the conversion forbids fusing into an FMA
	}
	v := make([]float32, h.dim)
	if norm == 0 {
		return v
	}
	norm = math.Sqrt(norm)
	for i, x := range acc {
		v[i] = float32(x / norm)
	}
	return v
}

// splitmix64 advances state and returns the next pseudo-random word.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// cosine is the cosine similarity of two vectors; 0 when either is zero.
func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
