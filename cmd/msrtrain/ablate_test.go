package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/knowledge"
)

// TestAblationPoints: one factor at a time around the full model, the bare
// backbone first (the baseline), every point a valid configuration.
func TestAblationPoints(t *testing.T) {
	base := train.DefaultConfig()
	describe := func(cfg train.Config) []string {
		var out []string
		for _, p := range ablationPoints(cfg) {
			s := ""
			for _, k := range p.Keys {
				s += k + "=" + p.Overrides[k].(string) + " "
			}
			out = append(out, s)
		}
		return out
	}
	assert.Equal(t, []string{
		"model.meta.levels=none ",
		"model.meta.levels=both knowledge.encoder=hash model.meta.placement=bottom ",
		"model.meta.levels=scenario knowledge.encoder=hash model.meta.placement=bottom ",
		"model.meta.levels=user knowledge.encoder=hash model.meta.placement=bottom ",
		"model.meta.levels=both knowledge.encoder=learned model.meta.placement=bottom ",
		"model.meta.levels=both knowledge.encoder=random model.meta.placement=bottom ",
		"model.meta.levels=both knowledge.encoder=hash model.meta.placement=branch ",
	}, describe(base))
	withFile := base
	withFile.Knowledge.File = knowledge.FileConfig{Vectors: "v.npy", IDs: "ids.json"}
	assert.Contains(t, describe(withFile), "model.meta.levels=both knowledge.encoder=file model.meta.placement=bottom ")

	spec, err := ablationSpec(base, t.TempDir(), []int64{1, 2}, 1)
	require.NoError(t, err)
	require.NoError(t, validateSweep(spec))
}
