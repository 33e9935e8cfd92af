package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/train/metrics"
)

// A seeded synthetic multi-scenario task: x ~ N(0, I_24), scenario s drawn
// with probabilities 0.5, 0.3, 0.2, and
//
//	P(y = 1 | x, s) = σ(w·x + w_s·x + b_s)
//
// with a shared w and a different w_s per scenario, so that a model must
// both share and specialise. Each backbone (with its default config) trains
// with Adam for a fixed number of steps and must reach a held-out AUC above
// learnThreshold; trained on shuffled labels it must stay near 0.5.

const (
	learnDim   = 24
	learnSteps = 150
	learnBatch = 256
	learnTest  = 4000
	// learnThreshold is set from measured runs (see TestBackboneLearns) with a margin.
	learnThreshold = 0.80
)

type synthTask struct {
	shared   []float64
	specific [][]float64
	bias     []float64
	probs    []float64
}

func newSynthTask(seed uint64) *synthTask {
	r := rand.New(rand.NewPCG(seed, 1))
	vec := func() []float64 {
		v := make([]float64, learnDim)
		for i := range v {
			v[i] = r.NormFloat64() * 1.5 / math.Sqrt(learnDim)
		}
		return v
	}
	task := &synthTask{shared: vec(), probs: []float64{0.5, 0.3, 0.2}}
	for s := 0; s < testScenarios; s++ {
		task.specific = append(task.specific, vec())
		task.bias = append(task.bias, r.NormFloat64()*0.5)
	}
	return task
}

// batch draws n rows grouped by scenario: features, labels, scenario counts,
// and the Bayes-optimal logit of each row.
func (task *synthTask) batch(r *rand.Rand, n int) (x []float32, y []float32, scen []int64, counts []int64, bayes []float32) {
	counts = make([]int64, testScenarios)
	for i := 0; i < n; i++ {
		u, s := r.Float64(), 0
		for s < testScenarios-1 && u >= task.probs[s] {
			u -= task.probs[s]
			s++
		}
		counts[s]++
	}
	for s, c := range counts {
		for i := int64(0); i < c; i++ {
			logit := task.bias[s]
			for j := 0; j < learnDim; j++ {
				v := r.NormFloat64()
				x = append(x, float32(v))
				logit += v * (task.shared[j] + task.specific[s][j])
			}
			label := float32(0)
			if r.Float64() < 1/(1+math.Exp(-logit)) {
				label = 1
			}
			y = append(y, label)
			scen = append(scen, int64(s))
			bayes = append(bayes, float32(logit))
		}
	}
	return x, y, scen, counts, bayes
}

// inputFrom makes an Input of the rows; as in the full model, the fields
// are the first columns of x (testFields' width of them).
func inputFrom(x []float32, scen, counts []int64) Input {
	n := int64(len(scen))
	in := Input{X: torch.FromSlice(x, n, learnDim), Scenario: torch.FromSlice(scen, n), Counts: counts}
	in.Fields = in.X.Narrow(1, 0, testFields.Width(Roles...)).Reshape(n, int64(len(testFields.Roles)), testFields.Dim)
	return in
}

// trainAndTest trains a default-config backbone on the task and returns its held-out AUC.
func trainAndTest(t *testing.T, name string, task *synthTask, shuffle bool) float64 {
	store, bb := buildBackbone(t, name, learnDim, testScenarios, DefaultBackboneConfig(), 11)
	opt := newAdam(t, store, 3e-3)
	defer opt.Close()
	r := rand.New(rand.NewPCG(7, 7))
	for step := 0; step < learnSteps; step++ {
		x, y, scen, counts, _ := task.batch(r, learnBatch)
		if shuffle {
			r.Shuffle(len(y), func(i, j int) { y[i], y[j] = y[j], y[i] })
		}
		sc := torch.NewScope()
		adamStep(t, opt, torch.BCEWithLogits(bb.Forward(inputFrom(x, scen, counts)), torch.FromSlice(y), nil, nil, torch.ReduceMean))
		sc.Close()
	}
	store.SetTraining(false)
	x, y, scen, counts, _ := task.batch(rand.New(rand.NewPCG(99, 99)), learnTest)
	sc := torch.NewScope()
	defer sc.Close()
	var logits []float32
	torch.NoGrad(func() { logits = values(t, bb.Forward(inputFrom(x, scen, counts))) })
	return testAUC(t, y, logits)
}

// testAUC is the held-out AUC, which is defined: the test set has both classes.
func testAUC(t *testing.T, labels, scores []float32) float64 {
	t.Helper()
	v, ok := metrics.AUC(labels, scores)
	if !ok {
		t.Fatal("the test set lacks a class: AUC undefined")
	}
	return v
}

// TestBackboneLearns. Measured on this task (seeded, one libtorch thread):
// the Bayes-optimal AUC is 0.834; after 150 steps the backbones reach
// 0.811 (EPNet) to 0.826, and trained on shuffled labels 0.49–0.60 (not
// exactly 0.5: a function fitted to noise still correlates with the true
// logit by chance in 24 dimensions). The threshold 0.80 is 0.011 below the weakest backbone;
// the control must stay below 0.65, far under the threshold, which shows the
// threshold is not reached without learning from the labels.
func TestBackboneLearns(t *testing.T) {
	lockThread(t)
	task := newSynthTask(2024)
	_, y, _, _, bayes := task.batch(rand.New(rand.NewPCG(99, 99)), learnTest)
	t.Logf("Bayes-optimal test AUC %.4f", testAUC(t, y, bayes))
	for _, name := range BackboneNames() {
		t.Run(name, func(t *testing.T) {
			got := trainAndTest(t, name, task, false)
			t.Logf("%s: test AUC %.4f after %d steps", name, got, learnSteps)
			if got < learnThreshold {
				t.Errorf("%s: test AUC %.4f < %.2f", name, got, learnThreshold)
			}
			control := trainAndTest(t, name, task, true)
			t.Logf("%s: shuffled labels: test AUC %.4f", name, control)
			if control > 0.65 {
				t.Errorf("%s: trained on shuffled labels, test AUC %.4f: the task leaks labels", name, control)
			}
		})
	}
}
