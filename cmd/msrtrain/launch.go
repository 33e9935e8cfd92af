package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/msrtrain/msrtrain/cgo/torch"
)

// launchLocal is `train --nproc N`: torchrun's single-machine launch, thinly.
// It hosts the store as torchrun's agent does, starts N copies of this
// command (without --nproc) with the worker environment torchrun sets, and
// waits for them; the job fails if any rank does.
func launchLocal(ctx context.Context, n int) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	store, err := torch.NewStore(torch.StoreOptions{Host: "127.0.0.1", Server: true, WorldSize: n, Timeout: time.Minute})
	if err != nil {
		return fmt.Errorf("--nproc: hosting the store: %w", err)
	}
	defer store.Close()
	args := withoutFlag(os.Args[1:], "nproc")
	var procs []*exec.Cmd
	for rank := range n {
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(),
			"RANK="+strconv.Itoa(rank), "LOCAL_RANK="+strconv.Itoa(rank),
			"WORLD_SIZE="+strconv.Itoa(n), "LOCAL_WORLD_SIZE="+strconv.Itoa(n),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(store.Port()),
			"TORCHELASTIC_USE_AGENT_STORE=True", "TORCHELASTIC_RESTART_COUNT=0")
		if rank > 0 {
			cmd.Stdout = nil // rank 0 prints the results
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("--nproc: starting rank %d: %w", rank, err)
		}
		procs = append(procs, cmd)
	}
	var errs []error
	for rank, p := range procs {
		if err := p.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("rank %d: %w", rank, err))
		}
	}
	return errors.Join(errs...)
}

// withoutFlag drops --name N, --name=N, -name N and -name=N from args.
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		switch {
		case a == name && strings.HasPrefix(args[i], "-"):
			i++ // and its value
		case strings.HasPrefix(a, name+"=") && strings.HasPrefix(args[i], "-"):
		default:
			out = append(out, args[i])
		}
	}
	return out
}
