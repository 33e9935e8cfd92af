package model

import (
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/model/nn"
)

// SharedBottomConfig is the Shared-Bottom backbone's section, model.shared_bottom.
type SharedBottomConfig struct {
	// Bottom is the MLP every sample goes through (default [256, 128], relu).
	Bottom nn.MLPConfig `yaml:"bottom"`
	// Tower is each scenario's MLP before its logit (default [64, 32], relu, then → 1).
	Tower nn.MLPConfig `yaml:"tower"`
}

// DefaultSharedBottomConfig: bottom [256, 128], towers [64, 32] → 1, ReLU, no BatchNorm or dropout.
func DefaultSharedBottomConfig() SharedBottomConfig {
	return SharedBottomConfig{
		Bottom: nn.MLPConfig{Hidden: []int64{256, 128}, Activation: nn.ReLU},
		Tower:  nn.MLPConfig{Hidden: []int64{64, 32}, Activation: nn.ReLU},
	}
}

// Validate checks the section; key is its path in the config ("model.shared_bottom").
func (c SharedBottomConfig) Validate(key string) error {
	if err := validateMLP(key+".bottom", c.Bottom, false); err != nil {
		return err
	}
	return validateMLP(key+".tower", c.Tower, false)
}

// SharedBottom is hard parameter sharing (Caruana, "Multitask Learning",
// Machine Learning 1997; Ruder, "An Overview of Multi-Task Learning in Deep
// Neural Networks", 2017): one bottom network shared by all scenarios and
// one tower per scenario. For a sample x of scenario s:
//
//	h = f_bottom(x)
//	ŷ = t_s(h)
//
// The bottom runs once on the whole batch; tower s runs on scenario s's rows only.
type SharedBottom struct {
	bottom *nn.MLP
	towers *scenarioTowers
}

// newSharedBottom creates "bottom.*" and "towers.<s>.*" under p.
func newSharedBottom(p nn.Path, in Shape, cfg BackboneConfig) Backbone {
	c := cfg.SharedBottom
	bottom := c.Bottom
	bottom.OutputActivation = true
	m := &SharedBottom{bottom: nn.NewMLP(p.Sub("bottom"), in.Width, bottom)}
	m.towers = newScenarioTowers(p.Sub("towers"), m.bottom.Out, in.Scenarios, c.Tower)
	return m
}

// Forward returns one logit per row [B].
func (m *SharedBottom) Forward(in Input) *torch.Tensor {
	return m.towers.Forward(in, m.bottom.Forward(in.X))
}

// Script emits Forward as TorchScript (see nn.Script).
func (m *SharedBottom) Script(s *nn.Script, in ScriptInput) string {
	return m.towers.Script(s, in, m.bottom.Script(s, in.X))
}
