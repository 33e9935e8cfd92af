package ddp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestFromEnv(t *testing.T) {
	torchrun := map[string]string{
		"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
		"MASTER_ADDR": "node0", "MASTER_PORT": "29500", "TORCHELASTIC_USE_AGENT_STORE": "True",
		"TORCHELASTIC_RESTART_COUNT": "2", "TORCHELASTIC_RUN_ID": "job42",
	}
	l, err := fromLookup(lookupIn(torchrun))
	require.NoError(t, err)
	assert.Equal(t, Launch{Rank: 3, WorldSize: 8, LocalRank: 1, LocalWorldSize: 4, MasterAddr: "node0", MasterPort: 29500,
		AgentStore: true, RestartCount: 2, RunID: "job42"}, *l)
	assert.Equal(t, "/worker/attempt_2/msrtrain", l.storePrefix(), "torch.distributed's per-attempt prefix")

	l, err = fromLookup(lookupIn(map[string]string{}))
	require.NoError(t, err)
	assert.Nil(t, l, "no environment: one process")

	l, err = fromLookup(lookupIn(map[string]string{"RANK": "0", "WORLD_SIZE": "1"}))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", l.MasterAddr, "a job of one hosts its own store")
	assert.Equal(t, 0, l.MasterPort)

	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"RANK": "1"}, "WORLD_SIZE is not set"},
		{map[string]string{"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, `RANK="x" is not a non-negative integer`},
		{map[string]string{"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, "RANK=2 is outside WORLD_SIZE=2"},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "1"}, "MASTER_ADDR is not set"},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "a"}, "MASTER_PORT is not set"},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "70000"}, "MASTER_PORT=70000 is not a port"},
	} {
		_, err := fromLookup(lookupIn(c.env))
		assert.ErrorContains(t, err, c.want, "%v", c.env)
	}
}

func TestBackendText(t *testing.T) {
	for i, name := range BackendNames {
		var b Backend
		require.NoError(t, b.UnmarshalText([]byte(name)))
		assert.Equal(t, Backend(i), b)
		text, _ := b.MarshalText()
		assert.Equal(t, name, string(text))
	}
	var b Backend
	assert.ErrorContains(t, b.UnmarshalText([]byte("mpi")), `unknown backend "mpi": want auto, gloo, nccl`)
}
