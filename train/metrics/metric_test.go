package metrics

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricTable(t *testing.T) {
	assert.Equal(t, "auc, gauc or logloss", MetricNames())
	auc, ok := Lookup("auc")
	require.True(t, ok)
	logloss, ok := Lookup("logloss")
	require.True(t, ok)
	_, ok = Lookup("f1")
	assert.False(t, ok)

	assert.True(t, auc.Better(0.7, 0.6))
	assert.True(t, logloss.Better(0.3, 0.4))
	v, ok := logloss.Of(Entry{LogLoss: ptr(0.25)})
	assert.True(t, ok)
	assert.Equal(t, 0.25, v)
	_, ok = auc.Of(Entry{AUCUndefined: ReasonAllZero})
	assert.False(t, ok)

	assert.True(t, HigherIsBetter("test.overall.gauc"))
	assert.False(t, HigherIsBetter("valid.scenario.search.logloss"))
	assert.True(t, HigherIsBetter("train.samples_per_sec"))
}
