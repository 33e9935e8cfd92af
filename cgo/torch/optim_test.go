package torch

import (
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"runtime"
	"testing"
)

// optimCase mirrors one entry of CASES in testdata/optim_goldens.py: two
// parameter groups (p0 alone, p1 alone) with their own hyperparameters.
type optimCase struct {
	name   string
	kind   OptimizerKind
	g0, g1 OptimOptions
}

var optimCases = []optimCase{
	{"sgd", SGD, OptimOptions{LR: 0.1, WeightDecay: 0.01}, OptimOptions{LR: 0.05}},
	{"sgd momentum", SGD, OptimOptions{LR: 0.1, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01}, OptimOptions{LR: 0.05, Momentum: 0.5}},
	{"sgd nesterov", SGD, OptimOptions{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}, OptimOptions{LR: 0.05, Momentum: 0.8, Nesterov: true}},
	{"adam", Adam, OptimOptions{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, OptimOptions{LR: 0.02, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6}},
	{"adamw", AdamW, OptimOptions{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}, OptimOptions{LR: 0.02, Beta1: 0.8, Beta2: 0.99, Eps: 1e-8}},
	// Both groups start their sums at 0.1: torch 1.13 takes the constructor's value for every group.
	{"adagrad", Adagrad, OptimOptions{LR: 0.1, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulator: 0.1, Eps: 1e-10}, OptimOptions{LR: 0.05, InitialAccumulator: 0.1, Eps: 1e-10}},
}

// Made by /usr/bin/python3 cgo/torch/testdata/optim_goldens.py (torch 1.13.0):
// parameters and state after 6 steps of torch.optim on optimLoss, with the
// groups' learning rates scaled by 0.5 and 0.25 before step 4.
var optimGoldens = map[string]map[string][]float64{
	"sgd": {
		"p0": {0.1584833264350891, 0.040250737220048904, 0.4864060580730438, 0.52846360206604, -0.23280660808086395, -0.06877618283033371},
		"p1": {0.04210791364312172, -0.3384973406791687, 0.34651103615760803},
	},
	"sgd momentum": {
		"p0":                 {-0.22677358984947205, 0.2641215920448303, -0.16396000981330872, 0.2362743467092514, 0.9881317019462585, -0.19213730096817017},
		"p0.momentum_buffer": {1.0661548376083374, 0.5173553228378296, 3.24147629737854, 1.5430454015731812, -0.8965725898742676, -0.689558744430542},
		"p1":                 {-0.009956099092960358, -0.39219069480895996, 0.2553543150424957},
		"p1.momentum_buffer": {0.5170754790306091, 2.3674323558807373, 0.4651526212692261},
	},
	"sgd nesterov": {
		"p0":                 {-0.14420880377292633, 0.15343818068504333, -0.26546886563301086, 0.178217813372612, 0.5739323496818542, -0.05274975672364235},
		"p0.momentum_buffer": {0.2269936203956604, 0.377836674451828, 2.290170669555664, 1.142686367034912, 0.6442927122116089, -0.7227034568786621},
		"p1":                 {-0.12909170985221863, -0.48798868060112, 0.11216789484024048},
		"p1.momentum_buffer": {1.2855417728424072, 3.3311595916748047, 1.0152482986450195},
	},
	"adam": {
		"p0":            {0.4551011025905609, -0.20514722168445587, 0.9550081491470337, 0.705078125, -1.4550213813781738, 0.08015375584363937},
		"p0.exp_avg":    {0.49289780855178833, -0.5283340215682983, 0.6270249485969543, 0.25285080075263977, -2.186265230178833, 0.354489266872406},
		"p0.exp_avg_sq": {0.006711266469210386, 0.007760148495435715, 0.010732458904385567, 0.0017611742950975895, 0.1306748390197754, 0.003499113954603672},
		"p1":            {0.1248333528637886, -0.32407301664352417, 0.5252434611320496},
		"p1.exp_avg":    {0.6241438984870911, -0.5468220710754395, 1.1794631481170654},
		"p1.exp_avg_sq": {0.041247084736824036, 0.029527511447668076, 0.1530214101076126},
	},
	"adamw": {
		"p0":            {0.4529416561126709, -0.20410996675491333, 0.9506007432937622, 0.7017949819564819, -1.4483698606491089, 0.07967539876699448},
		"p0.exp_avg":    {0.48961788415908813, -0.5263751745223999, 0.6216332912445068, 0.24902062118053436, -2.1743433475494385, 0.3538150191307068},
		"p0.exp_avg_sq": {0.006625844165682793, 0.007706182077527046, 0.010551256127655506, 0.0017090236069634557, 0.12931518256664276, 0.003486204193904996},
		"p1":            {0.12483521550893784, -0.32407402992248535, 0.5252444744110107},
		"p1.exp_avg":    {0.6237035989761353, -0.5461982488632202, 1.1790883541107178},
		"p1.exp_avg_sq": {0.041201360523700714, 0.029466724023222923, 0.15294945240020752},
	},
	"adagrad": {
		"p0":     {0.24834296107292175, -0.024894818663597107, 0.7200947403907776, 0.5009040236473083, -1.2179933786392212, -0.07372097671031952},
		"p0.sum": {4.012570858001709, 3.309706687927246, 9.33402156829834, 1.377802848815918, 109.26407623291016, 1.2697288990020752},
		"p1":     {0.07592632621526718, -0.26627328991889954, 0.4762451648712158},
		"p1.sum": {3.6238129138946533, 3.9590752124786377, 12.641318321228027},
	},
}

const optimSteps, optimLRChange = 6, 3

// optimLoss is loss_fn in testdata/optim_goldens.py.
func optimLoss(p0, p1 *Tensor) *Tensor {
	a := FromSlice([]float32{1, 2, 0.5, 0.3, 1.5, 2}, 2, 3)
	return a.Mul(p0).Mul(p0).Sum(false).Add(p0.Matmul(p1).Tanh().Sum(false)).Add(p1.Mul(p1).Mul(p1).Sum(false))
}

// optimRun holds parameters (unowned, as in a trainer) and their optimizer.
type optimRun struct {
	p0, p1 *Tensor
	opt    *Optimizer
	steps  int
}

func newOptimRun(t *testing.T, c optimCase, p0, p1 []float32) *optimRun {
	r := &optimRun{p0: FromSlice(p0, 2, 3), p1: FromSlice(p1)}
	require.NoError(t, r.p0.SetRequiresGrad(true))
	require.NoError(t, r.p1.SetRequiresGrad(true))
	opt, err := NewOptimizer(c.kind)
	require.NoError(t, err)
	r.opt = opt
	require.NoError(t, opt.AddGroup([]string{"p0"}, []*Tensor{r.p0}, c.g0))
	require.NoError(t, opt.AddGroup([]string{"p1"}, []*Tensor{r.p1}, c.g1))
	return r
}

// step runs the next training step, changing the learning rates as the golden script does.
func (r *optimRun) step(t *testing.T, c optimCase) {
	if r.steps == optimLRChange {
		require.NoError(t, r.opt.SetGroupLR(0, c.g0.LR*0.5))
		require.NoError(t, r.opt.SetGroupLR(1, c.g1.LR*0.25))
	}
	s := NewScope()
	defer s.Close()
	require.NoError(t, r.opt.ZeroGrad())
	require.NoError(t, optimLoss(r.p0, r.p1).Backward())
	require.NoError(t, r.opt.Step())
	r.steps++
}

// snapshot reads parameters and optimizer state into Go memory, as a checkpoint would.
func (r *optimRun) snapshot(t *testing.T) (map[string][]float32, map[string]int64) {
	s := NewScope()
	defer s.Close()
	out := map[string][]float32{}
	var err error
	out["p0"], err = r.p0.Float32s()
	require.NoError(t, err)
	out["p1"], err = r.p1.Float32s()
	require.NoError(t, err)
	state, steps, err := r.opt.StateTensors()
	require.NoError(t, err)
	for name, st := range state {
		out[name], err = st.Float32s()
		require.NoError(t, err)
	}
	return out, steps
}

func (r *optimRun) close() {
	r.opt.Close()
	r.p0.Close()
	r.p1.Close()
}

var optimP0, optimP1 = []float32{0.5, -0.25, 1, 0.75, -1.5, 0.125}, []float32{0.2, -0.4, 0.6}

func TestOptimizerMatchesPyTorch(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, c := range optimCases {
		t.Run(c.name, func(t *testing.T) {
			base := LiveTensors()
			r := newOptimRun(t, c, optimP0, optimP1)
			defer func() {
				r.close()
				assert.Equal(t, base, LiveTensors())
			}()
			for lr, g := range []float64{c.g0.LR, c.g1.LR} {
				got, err := r.opt.LR(lr)
				require.NoError(t, err)
				assert.Equal(t, g, got)
			}
			for i := 0; i < optimSteps; i++ {
				r.step(t, c)
			}
			lr0, err := r.opt.LR(0)
			require.NoError(t, err)
			assert.Equal(t, c.g0.LR*0.5, lr0)
			got, steps := r.snapshot(t)
			golden := optimGoldens[c.name]
			require.True(t, golden != nil, "no golden for %q", c.name)
			for name, want := range golden {
				g, ok := got[name]
				require.True(t, ok, "the optimizer exports no %q", name)
				gf := make([]float64, len(g))
				for i, v := range g {
					gf[i] = float64(v)
				}
				requireSliceClose(t, want, gf, 1e-6, 1e-5, name)
			}
			assert.Equal(t, map[string]int64{"p0.step": optimSteps, "p1.step": optimSteps}, steps)
		})
	}
}

// Stopping after k steps, saving parameters and optimizer state, and
// continuing in a fresh optimizer from the restored state gives exactly the
// parameters of a run that never stopped.
func TestOptimizerSaveRestore(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const k = 2
	for _, c := range optimCases {
		t.Run(c.name, func(t *testing.T) {
			straight := newOptimRun(t, c, optimP0, optimP1)
			defer straight.close()
			for i := 0; i < k; i++ {
				straight.step(t, c)
			}
			ckpt, steps := straight.snapshot(t)

			resumed := newOptimRun(t, c, ckpt["p0"], ckpt["p1"])
			defer resumed.close()
			fresh := newOptimRun(t, c, ckpt["p0"], ckpt["p1"]) // same parameters, state not restored
			defer fresh.close()
			func() {
				s := NewScope()
				defer s.Close()
				state := map[string]*Tensor{}
				for name, v := range ckpt {
					if name != "p0" && name != "p1" {
						state[name] = FromSlice(v)
					}
				}
				// The checkpoint holds flat vectors; LoadState copies into the state's shape.
				state["p0."+c.kind.slots()[0]] = state["p0."+c.kind.slots()[0]].Reshape(2, 3)
				if len(c.kind.slots()) > 1 {
					state["p0."+c.kind.slots()[1]] = state["p0."+c.kind.slots()[1]].Reshape(2, 3)
				}
				// A checkpoint missing an entry is refused, and changes nothing.
				before, beforeSteps := fresh.snapshot(t)
				partial := map[string]int64{"p0.step": steps["p0.step"]}
				assert.ErrorContains(t, fresh.opt.LoadState(state, partial), `"p1.step" missing`)
				noP1 := map[string]*Tensor{}
				for name, v := range state {
					if name != "p1."+c.kind.slots()[0] {
						noP1[name] = v
					}
				}
				assert.ErrorContains(t, fresh.opt.LoadState(noP1, steps), `"p1.`+c.kind.slots()[0]+`" missing`)
				after, afterSteps := fresh.snapshot(t)
				assert.Equal(t, before, after, "a refused checkpoint changed the state")
				assert.Equal(t, beforeSteps, afterSteps, "a refused checkpoint changed the step counts")
				require.NoError(t, resumed.opt.LoadState(state, steps))
			}()
			resumed.steps, fresh.steps = k, k

			for i := k; i < optimSteps; i++ {
				straight.step(t, c)
				resumed.step(t, c)
				fresh.step(t, c)
			}
			want, wantSteps := straight.snapshot(t)
			got, gotSteps := resumed.snapshot(t)
			assert.Equal(t, want, got, "parameters and state after resuming")
			assert.Equal(t, wantSteps, gotSteps)
			if c.name != "sgd" { // plain SGD has no state to lose
				other, _ := fresh.snapshot(t)
				assert.NotEqual(t, want["p0"], other["p0"], "without the restored state the run should differ")
			}
		})
	}
}

func TestOptimizerErrors(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	names := map[OptimizerKind]string{}
	for _, k := range Optimizers() {
		names[k] = k.String()
	}
	assert.Equal(t, map[OptimizerKind]string{Adam: "adam", AdamW: "adamw", Adagrad: "adagrad", SGD: "sgd"}, names)
	assert.Equal(t, "optimizer(99)", OptimizerKind(99).String())
	assert.Equal(t, OptimOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}, DefaultOptimOptions(AdamW))

	opt, err := NewOptimizer(Adam)
	require.NoError(t, err)
	p := FromSlice([]float32{1, 2})
	defer p.Close()
	assert.ErrorContains(t, opt.AddGroup([]string{"p"}, []*Tensor{p}, DefaultOptimOptions(Adam)), "does not require grad")
	require.NoError(t, p.SetRequiresGrad(true))
	assert.ErrorContains(t, opt.AddGroup([]string{"p", "q"}, []*Tensor{p}, DefaultOptimOptions(Adam)), "2 names for 1 parameters")
	assert.ErrorContains(t, opt.AddGroup(nil, nil, DefaultOptimOptions(Adam)), "empty parameter group")
	assert.ErrorContains(t, opt.AddGroup([]string{"p"}, []*Tensor{p}, OptimOptions{LR: -1}), "must be >= 0")
	require.NoError(t, opt.AddGroup([]string{"p"}, []*Tensor{p}, DefaultOptimOptions(Adam)))
	_, err = opt.LR(3)
	assert.ErrorContains(t, err, "no group 3")
	assert.ErrorContains(t, opt.SetGroupLR(-1, 0.1), "no group -1")
	require.NoError(t, opt.SetLR(0.5))
	lr, err := opt.LR(0)
	require.NoError(t, err)
	assert.Equal(t, 0.5, lr)
	// A step with no gradients leaves the parameter alone.
	require.NoError(t, opt.Step())
	v, _ := p.Float32s()
	assert.Equal(t, []float32{1, 2}, v)
	opt.Close()
	opt.Close()
	// A closed optimizer reports an error rather than crashing.
	assert.ErrorContains(t, opt.Step(), "closed")
	assert.ErrorContains(t, opt.ZeroGrad(), "closed")
	_, err = opt.LR(0)
	assert.ErrorContains(t, err, "closed")
}

// A group keeps its parameters in flat buffers and updates runs of them
// with one set of ops; that must change the op count, not the arithmetic.
// Three parameters in one group are compared with the same three each alone
// in its own group (never flattened), over steps where the middle one gets
// no gradient every other step (skipped, as PyTorch skips it), so the runs
// split and the step counts diverge.
func TestOptimizerGroupUpdatesLikeSeparateParameters(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	inits := [][]float32{{0.5, -0.25, 1, 0.75, -1.5, 0.125}, {0.2, -0.4, 0.6}, {0.3, 0.9, -0.7, 0.1}}
	shapes := [][]int64{{2, 3}, {3}, {4}}
	names := []string{"a", "b", "c"}
	loss := func(ps []*Tensor, withB bool) *Tensor {
		l := ps[0].Mul(ps[0]).Sum(false).Add(ps[2].Tanh().Mul(ps[2]).Sum(false))
		if withB {
			l = l.Add(ps[0].Matmul(ps[1]).Sigmoid().Sum(false))
		}
		return l
	}
	for _, c := range optimCases {
		t.Run(c.name, func(t *testing.T) {
			base := LiveTensors()
			together, apart := make([]*Tensor, 3), make([]*Tensor, 3)
			for i := range inits {
				together[i] = FromSlice(inits[i], shapes[i]...)
				apart[i] = FromSlice(inits[i], shapes[i]...)
				require.NoError(t, together[i].SetRequiresGrad(true))
				require.NoError(t, apart[i].SetRequiresGrad(true))
			}
			optTogether, err := NewOptimizer(c.kind)
			require.NoError(t, err)
			optApart, err := NewOptimizer(c.kind)
			require.NoError(t, err)
			defer func() {
				optTogether.Close()
				optApart.Close()
				for i := range inits {
					together[i].Close()
					apart[i].Close()
				}
				assert.Equal(t, base, LiveTensors())
			}()
			require.NoError(t, optTogether.AddGroup(names, together, c.g0))
			for i := range apart {
				require.NoError(t, optApart.AddGroup(names[i:i+1], apart[i:i+1], c.g0))
			}
			flat, err := optTogether.GroupIsFlat(0)
			require.NoError(t, err)
			require.True(t, flat, "three float32 CPU parameters should share flat buffers")
			flat, err = optApart.GroupIsFlat(0)
			require.NoError(t, err)
			require.True(t, !flat, "a group of one has nothing to flatten")
			// The parameters now live in optTogether's buffer: a second optimizer
			// over them must leave them there, or the first would update stale copies.
			second, err := NewOptimizer(c.kind)
			require.NoError(t, err)
			require.NoError(t, second.AddGroup(names, together, c.g0))
			flat, err = second.GroupIsFlat(0)
			require.NoError(t, err)
			require.True(t, !flat, "parameters already in a flat buffer were moved again")
			second.Close()
			_, err = optTogether.GroupIsFlat(1)
			require.ErrorContains(t, err, "no group 1")
			for step := 0; step < 7; step++ {
				for _, run := range []struct {
					opt *Optimizer
					ps  []*Tensor
				}{{optTogether, together}, {optApart, apart}} {
					s := NewScope()
					require.NoError(t, run.opt.ZeroGrad())
					require.NoError(t, loss(run.ps, step%2 == 0).Backward())
					require.NoError(t, run.opt.Step())
					s.Close()
				}
			}
			for i := range inits {
				want, err := apart[i].Float32s()
				require.NoError(t, err)
				got, err := together[i].Float32s()
				require.NoError(t, err)
				assert.Equal(t, want, got, "parameter %s", names[i])
			}
			s := NewScope()
			defer s.Close()
			wantState, wantSteps, err := optApart.StateTensors()
			require.NoError(t, err)
			gotState, gotSteps, err := optTogether.StateTensors()
			require.NoError(t, err)
			assert.Equal(t, wantSteps, gotSteps)
			assert.Equal(t, map[string]int64{"a.step": 7, "b.step": 4, "c.step": 7}, gotSteps)
			require.Equal(t, len(wantState), len(gotState))
			for name, w := range wantState {
				g, ok := gotState[name]
				require.True(t, ok, "no state %q", name)
				wv, err := w.Float32s()
				require.NoError(t, err)
				gv, err := g.Float32s()
				require.NoError(t, err)
				assert.Equal(t, wv, gv, "state %s", name)
			}
		})
	}
}
