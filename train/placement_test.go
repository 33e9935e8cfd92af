package train

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model"
)

// The trainer's own path on libtorch's meta device, for every registered
// backbone with the meta networks off and on: the run prepared on meta
// (knowledge, model, optimizer, batches moved as they go to CUDA), one step's
// phases (forwardBackward, the gradient hook, update) and the evaluation
// forward. Under torch.CheckPlacement a tensor the trainer or the model
// makes on the CPU fails here as it would on a GPU. The phases that read
// values back (lossValue, the metrics) are the host's and stay out: meta has
// no values. It runs on its own goroutine (onTorchThread), where require
// would end the goroutine and hang the test: failures return errors.
func TestTrainerPlacementOnMeta(t *testing.T) {
	for _, backbone := range model.BackboneNames() {
		for _, levels := range []string{"none", "both"} {
			t.Run(backbone+"/meta="+levels, func(t *testing.T) {
				cfg := tinyConfig(t, "model.backbone="+backbone, "model.meta.levels="+levels, "data.synthetic.rows=1500")
				_, err := onTorchThread(func() (struct{}, error) { return struct{}{}, placementRun(t, cfg) })
				require.NoError(t, err)
			})
		}
	}
}

func placementRun(t *testing.T, cfg Config) error {
	restore := torch.CheckPlacement()
	defer restore()
	if err := torch.SetUpProcess(cfg.Threads); err != nil {
		return err
	}
	hookCalls := 0
	r := &run{cfg: cfg, dev: torch.Meta, log: io.Discard, opts: RunOptions{Log: io.Discard, GradientHook: func(params []*torch.Tensor) error {
		hookCalls++
		for _, p := range params {
			if g := p.Grad(); g != nil {
				assert.Equal(t, torch.Meta, g.Device())
			}
		}
		return nil
	}}}
	if err := r.prepare(context.Background(), nil); err != nil {
		return err
	}
	defer r.close()
	src, err := r.trainSource()
	if err != nil {
		return err
	}
	it := src.Epoch(0, 0)
	defer it.Close()
	b, ok := it.Next()
	if !ok {
		return fmt.Errorf("no training batch")
	}
	defer it.Release(b)

	scope := torch.NewScope()
	defer scope.Close()
	loss, err := r.forwardBackward(b)
	if err != nil {
		return err
	}
	assert.Equal(t, torch.Meta, loss.Device())
	if err := r.applyGradients(); err != nil {
		return err
	}
	assert.Equal(t, 1, hookCalls)
	for _, p := range r.params {
		assert.Equal(t, torch.Meta, p.Device())
	}

	s := r.scorer()
	s.model.Store.SetTraining(false)
	var probs *torch.Tensor
	torch.NoGrad(func() { probs = s.probabilities(b) })
	if err := probs.Err(); err != nil {
		return err
	}
	assert.Equal(t, []int64{int64(b.Size)}, probs.Shape())
	assert.Equal(t, torch.Meta, probs.Device())
	_, err = lossValue(loss)
	assert.Error(t, err, "meta has no values to read")
	return nil
}
