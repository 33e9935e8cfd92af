// Package ddp joins msrtrain to a data-parallel job the way a PyTorch
// worker does: it reads the environment that torchrun (and Slurm or a
// Kubernetes PyTorchJob) sets, meets the other ranks at a c10d TCPStore and
// opens a process group over it, Gloo on CPUs and NCCL on GPUs.
//
// Beyond the collectives, a Group keeps one promise: when a rank dies or
// stops answering, every other rank fails within the configured timeout
// with an error that names that rank. Each rank bumps a heartbeat counter
// in the store and records its own failure there before it exits; a failed
// collective reads both to say which peer is at fault.
package ddp

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Launch is the torchrun worker contract: what the launcher tells each
// process through its environment (see torch/distributed/run.py and the
// elastic agent's _start_workers).
type Launch struct {
	Rank, WorldSize           int    // RANK, WORLD_SIZE
	LocalRank, LocalWorldSize int    // LOCAL_RANK, LOCAL_WORLD_SIZE
	MasterAddr                string // MASTER_ADDR: where the store listens
	MasterPort                int    // MASTER_PORT
	// AgentStore (TORCHELASTIC_USE_AGENT_STORE=True): the launcher hosts the
	// store and every rank is a client, under a per-attempt key prefix;
	// otherwise rank 0 hosts it.
	AgentStore bool
	// RestartCount (TORCHELASTIC_RESTART_COUNT) is how many times torchrun
	// restarted the job; a restarted job resumes from its latest checkpoint.
	RestartCount int
	RunID        string // TORCHELASTIC_RUN_ID
}

// FromEnv reads the launch environment; nil (and no error) when none is set,
// meaning one process as usual. A variable that is set but wrong is an
// error naming it.
func FromEnv() (*Launch, error) { return fromLookup(os.LookupEnv) }

func fromLookup(lookup func(string) (string, bool)) (*Launch, error) {
	_, hasRank := lookup("RANK")
	_, hasWorld := lookup("WORLD_SIZE")
	if !hasRank && !hasWorld {
		return nil, nil
	}
	var l Launch
	var errs []string
	integer := func(name string, dst *int, required bool, def int) {
		v, ok := lookup(name)
		if !ok || v == "" {
			if required {
				errs = append(errs, name+" is not set")
			}
			*dst = def
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			errs = append(errs, fmt.Sprintf("%s=%q is not a non-negative integer", name, v))
			return
		}
		*dst = n
	}
	integer("RANK", &l.Rank, true, 0)
	integer("WORLD_SIZE", &l.WorldSize, true, 1)
	integer("LOCAL_RANK", &l.LocalRank, false, 0) // a PyTorchJob pod is one process: its GPU 0
	integer("LOCAL_WORLD_SIZE", &l.LocalWorldSize, false, l.WorldSize)
	integer("MASTER_PORT", &l.MasterPort, l.WorldSize > 1, 29500)
	integer("TORCHELASTIC_RESTART_COUNT", &l.RestartCount, false, 0)
	l.MasterAddr, _ = lookup("MASTER_ADDR")
	switch {
	case l.MasterAddr == "" && l.WorldSize > 1:
		errs = append(errs, "MASTER_ADDR is not set")
	case l.MasterAddr == "": // a job of one: its own store on a free port
		l.MasterAddr, l.MasterPort = "127.0.0.1", 0
	}
	agent, _ := lookup("TORCHELASTIC_USE_AGENT_STORE")
	l.AgentStore = agent == "True" // torchrun writes str(True)
	l.RunID, _ = lookup("TORCHELASTIC_RUN_ID")
	if len(errs) == 0 {
		switch {
		case l.WorldSize == 0:
			errs = append(errs, "WORLD_SIZE=0: a job needs at least one process")
		case l.Rank >= l.WorldSize:
			errs = append(errs, fmt.Sprintf("RANK=%d is outside WORLD_SIZE=%d", l.Rank, l.WorldSize))
		case l.MasterPort > 65535:
			errs = append(errs, fmt.Sprintf("MASTER_PORT=%d is not a port", l.MasterPort))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("distributed launch environment: %s", strings.Join(errs, "; "))
	}
	return &l, nil
}

// storePrefix keeps each torchrun attempt's keys apart in the agent's
// store, as torch.distributed does ("/worker/attempt_N").
func (l *Launch) storePrefix() string {
	if l.AgentStore {
		return fmt.Sprintf("/worker/attempt_%d/msrtrain", l.RestartCount)
	}
	return "msrtrain"
}
