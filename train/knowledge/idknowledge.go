package knowledge

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/model"
)

// idKnowledgeStream separates the knowledge vectors' random stream from the
// run's other uses of its seed.
const idKnowledgeStream = 0x6b6e6f77

// IDKnowledge is the knowledge of the encoders that read no text: a vector
// per scenario and per user of the vocabulary, unit-length random
// directions drawn from the run's seed (the scale of the hash encoder's
// normalised vectors). The random encoder keeps them as drawn; the learned
// one starts from the same draw and trains them with the model (they are
// then parameters, saved and restored with it). The out-of-vocabulary user
// uses the learned fallback, as with a store. The draw depends only on the
// seed, the dimension and the vocabulary sizes, so eval and predict
// rebuild the random vectors exactly.
func IDKnowledge(c Config, seed int64, vocabs *data.Vocabs, dev torch.Device) (*model.Knowledge, error) {
	var dim int
	switch c.Encoder {
	case EncoderLearned:
		dim = c.Learned.Dim
	case EncoderRandom:
		dim = c.Random.Dim
	default:
		return nil, fmt.Errorf("knowledge.encoder = %s reads text: its vectors come from a knowledge store", c.Encoder)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), idKnowledgeStream))
	scenario := unitRows(rng, len(vocabs.Scenarios), dim)
	users := vocabs.Fields[0].Size()
	user := unitRows(rng, users, dim)
	known := make([]bool, users)
	for i := 1; i < users; i++ {
		known[i] = true
	}
	clear(user[:dim]) // row 0: the out-of-vocabulary user, on the fallback
	k, err := model.NewKnowledge(scenario, user, known, int64(dim), dev)
	if err != nil {
		return nil, err
	}
	k.Learned = c.Encoder == EncoderLearned
	return k, nil
}

// unitRows draws rows Gaussian vectors of width dim scaled to unit length, row-major.
func unitRows(rng *rand.Rand, rows, dim int) []float32 {
	out := make([]float32, rows*dim)
	v := make([]float64, dim)
	for r := range rows {
		var norm float64
		for i := range v {
			v[i] = rng.NormFloat64()
			norm += v[i] * v[i]
		}
		norm = math.Sqrt(norm)
		for i, x := range v {
			out[r*dim+i] = float32(x / norm)
		}
	}
	return out
}
