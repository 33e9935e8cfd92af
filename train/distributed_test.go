package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/data/safetensors"
	"github.com/msrtrain/msrtrain/train/ddp"
)

// The ranks of these tests are child processes: this test binary re-run
// with rankJobEnv naming what to do, and the torchrun worker environment,
// set either by launchRanks (which hosts the store as torchrun's agent
// does) or by the real torchrun.

const (
	rankJobEnv    = "MSR_TRAIN_TEST_RANK_JOB"  // train, eval or die
	rankConfigEnv = "MSR_TRAIN_TEST_CONFIG"    // the run's resolved config.yaml
	rankEvalEnv   = "MSR_TRAIN_TEST_EVAL"      // eval: checkpoint to evaluate; rank 0 writes the report beside it
	rank1SetEnv   = "MSR_TRAIN_TEST_RANK1_SET" // an override rank 1 alone applies to the config
	dieAtStep     = 24                         // die: rank 1 kills itself after this step, in epoch 2 (18 steps each)
)

func TestMain(m *testing.M) {
	if job := os.Getenv(rankJobEnv); job != "" {
		if err := rankMain(job); err != nil {
			fmt.Fprintln(os.Stderr, "rank failed:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func rankMain(job string) error {
	var sets []string
	if set := os.Getenv(rank1SetEnv); set != "" && os.Getenv("RANK") == "1" {
		sets = append(sets, set)
	}
	cfg, err := LoadConfig(os.Getenv(rankConfigEnv), sets)
	if err != nil {
		return err
	}
	ranks, err := JoinFromEnv(cfg)
	if err != nil {
		return err
	}
	if ranks == nil {
		return fmt.Errorf("no launch environment")
	}
	_, err = onTorchThread(func() (struct{}, error) {
		var err error
		switch job {
		case "eval":
			err = rankEval(ranks)
		default:
			opts := RunOptions{Ranks: ranks, Log: os.Stderr}
			if job == "die" && ranks.Rank() == 1 && ranks.RestartCount == 0 {
				opts.afterStep = func(step int) {
					if step == dieAtStep {
						syscall.Kill(os.Getpid(), syscall.SIGKILL)
					}
				}
			}
			_, err = Train(context.Background(), cfg, opts)
		}
		return struct{}{}, err
	})
	if err != nil {
		ranks.Fail(err)
		return err
	}
	ranks.Close()
	return nil
}

// rankEval evaluates a checkpoint over the ranks; rank 0 writes the report.
func rankEval(ranks *ddp.Group) error {
	dir := os.Getenv(rankEvalEnv)
	l, err := LoadModel(dir, "cpu", 1)
	if err != nil {
		return err
	}
	defer l.Close()
	l.Ranks = ranks
	rep, err := l.Evaluate(data.Test)
	if err != nil || ranks.Rank() != 0 {
		return err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "eval-2-ranks.json"), b, 0o644)
}

// launchRanks runs world ranks of job on cfg, as torchrun would, and returns
// each rank's error and standard error.
func launchRanks(t testing.TB, world int, job string, cfg Config, env ...string) ([]error, []string) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	yml, err := cfg.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, yml, 0o644))
	store, err := torch.NewStore(torch.StoreOptions{Host: "127.0.0.1", Server: true, WorldSize: world, Timeout: time.Minute})
	require.NoError(t, err)
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	errs := make([]error, world)
	logs := make([]*strings.Builder, world)
	var procs []*exec.Cmd
	for r := range world {
		cmd := exec.CommandContext(ctx, exe, "-test.run", "^$")
		logs[r] = &strings.Builder{}
		cmd.Stderr = logs[r]
		cmd.Env = append(os.Environ(), rankJobEnv+"="+job, rankConfigEnv+"="+cfgPath, "GLOO_SOCKET_IFNAME=lo",
			"RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(store.Port()), "TORCHELASTIC_USE_AGENT_STORE=True")
		cmd.Env = append(cmd.Env, env...)
		require.NoError(t, cmd.Start())
		procs = append(procs, cmd)
	}
	out := make([]string, world)
	for r, p := range procs {
		errs[r] = p.Wait()
		out[r] = logs[r].String()
	}
	return errs, out
}

func requireRanksOK(t *testing.T, errs []error, logs []string) {
	t.Helper()
	for r, err := range errs {
		require.NoError(t, err, "rank %d:\n%s", r, logs[r])
	}
}

// latestParams reads the model tensors of a run's latest checkpoint.
func latestParams(t *testing.T, out string) map[string][]float32 {
	t.Helper()
	dir, err := CheckpointDir(out, "latest")
	require.NoError(t, err)
	tensors, _, err := safetensors.ReadFile(filepath.Join(dir, modelFile))
	require.NoError(t, err)
	params := map[string][]float32{}
	for name, tensor := range tensors {
		params[name], err = tensor.Float32()
		require.NoError(t, err, name)
	}
	return params
}

func maxAbsDiff(t *testing.T, a, b map[string][]float32) float64 {
	t.Helper()
	require.Equal(t, len(a), len(b))
	var worst float64
	for name, va := range a {
		vb, ok := b[name]
		require.True(t, ok, name)
		require.Len(t, vb, len(va), name)
		for i := range va {
			worst = math.Max(worst, math.Abs(float64(va[i]-vb[i])))
		}
	}
	return worst
}

// distConfig is a tiny run on a backbone without batch statistics, whose
// epochs hold whole global batches, so that 2 ranks of batch B take exactly
// the steps of one process of batch 2B.
func distConfig(t *testing.T, batch int, overrides ...string) Config {
	base := []string{"model.backbone=shared_bottom", "model.shared_bottom.bottom.hidden=[32,16]",
		"model.shared_bottom.tower.hidden=[8]", "train.batch_size=" + strconv.Itoa(batch), "train.drop_last=true",
		"train.early_stopping.patience=0", "dist.timeout_seconds=20"}
	return tinyConfig(t, append(base, overrides...)...)
}

// TestDataParallelMatchesOneProcess: 2 ranks with batch B take the same
// steps as one process with batch 2B (parameters within 1e-5, test AUC
// within 1e-4), with and without the meta networks; and evaluating one
// checkpoint over 2 ranks gives exactly one process's metrics.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	for _, meta := range []string{"none", "both"} {
		t.Run("meta "+meta, func(t *testing.T) {
			one := distConfig(t, 256, "model.meta.levels="+meta)
			oneRes := trainTiny(t, context.Background(), one, false)

			two := distConfig(t, 128, "model.meta.levels="+meta)
			errs, logs := launchRanks(t, 2, "train", two)
			requireRanksOK(t, errs, logs)
			var twoRes Result
			b, err := os.ReadFile(filepath.Join(two.Out, "summary.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &twoRes))

			assert.Equal(t, oneRes.Steps, twoRes.Steps)
			assert.Equal(t, 2, twoRes.WorldSize)
			assert.Equal(t, 256, twoRes.GlobalBatch)
			diff := maxAbsDiff(t, latestParams(t, one.Out), latestParams(t, two.Out))
			assert.Less(t, diff, 1e-5, "largest parameter difference after %d steps", oneRes.Steps)
			assert.InDelta(t, *oneRes.Test.Overall.AUC, *twoRes.Test.Overall.AUC, 1e-4)

			// The all-reduce overlapped with the backward pass, in buckets
			// of 10 KB so that many start early, sums the same numbers.
			overlapped := distConfig(t, 128, "model.meta.levels="+meta, "dist.overlap=true", "dist.bucket_mb=0.01")
			errs, logs = launchRanks(t, 2, "train", overlapped)
			requireRanksOK(t, errs, logs)
			assert.Zero(t, maxAbsDiff(t, latestParams(t, two.Out), latestParams(t, overlapped.Out)), "overlapped against after the backward pass")

			// Evaluation of one checkpoint: sharded over 2 ranks == one process, exactly.
			best, err := CheckpointDir(one.Out, "best")
			require.NoError(t, err)
			errs, logs = launchRanks(t, 2, "eval", one, rankEvalEnv+"="+best)
			requireRanksOK(t, errs, logs)
			l, err := LoadModel(best, "cpu", 1)
			require.NoError(t, err)
			want, err := onTorchThread(func() (any, error) { return l.Evaluate(data.Test) })
			l.Close()
			require.NoError(t, err)
			wantJSON, _ := json.Marshal(want)
			got, err := os.ReadFile(filepath.Join(best, "eval-2-ranks.json"))
			require.NoError(t, err)
			assert.JSONEq(t, string(wantJSON), string(got))
		})
	}
}

// TestSyncBatchNormMatchesOneProcess: on backbones with batch statistics
// (STAR's partitioned norm, HAMUR's domain norm, BatchNorm in HAMUR's
// network), 2 ranks of batch B with dist.sync_batch_norm take the steps of
// one process of batch 2B (parameters and running statistics within 1e-5),
// and without it they do not, as each rank normalises with its own rows.
// STAR runs at batch 4 a rank, so that scenarios with no rows or one row on
// a rank, or one row in all, come up; for few steps, because statistics of
// two or three rows amplify rounding step after step. SGD throughout: the
// Linear before each of HAMUR's BatchNorms has a bias whose gradient is
// zero but for rounding, which Adam would blow up into full steps of random
// sign, differently in one process and two ranks.
func TestSyncBatchNormMatchesOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	for _, tc := range []struct {
		batch int // a rank's
		sets  []string
	}{
		{4, []string{"model.backbone=star", "model.star.hidden=[16]", "model.star.aux_hidden=[8]", "data.synthetic.rows=300",
			"train.embedding_optimizer=sgd"}},
		{128, []string{"model.backbone=hamur", "model.hamur.network.hidden=[16]", "model.hamur.network.batch_norm=true",
			"model.hamur.hyper.hidden=[8]", "model.hamur.rank=4", "model.hamur.adapter_dim=8"}},
	} {
		t.Run(tc.sets[0], func(t *testing.T) {
			base := append([]string{"model.meta.levels=none", "train.epochs=1", "train.optimizer=sgd", "train.lr=0.05"}, tc.sets...)
			one := distConfig(t, 2*tc.batch, base...)
			oneRes := trainTiny(t, context.Background(), one, false)
			params := latestParams(t, one.Out)
			for _, sync := range []bool{true, false} {
				two := distConfig(t, tc.batch, append(base, "dist.sync_batch_norm="+strconv.FormatBool(sync))...)
				errs, logs := launchRanks(t, 2, "train", two)
				requireRanksOK(t, errs, logs)
				diff := maxAbsDiff(t, params, latestParams(t, two.Out))
				t.Logf("sync_batch_norm=%v: largest difference from one process %.2g after %d steps", sync, diff, oneRes.Steps)
				if sync {
					assert.Less(t, diff, 1e-5, "synchronised")
				} else {
					assert.Greater(t, diff, 1e-4, "per-rank statistics should differ from one process's")
				}
			}
		})
	}
}

// TestRanksMustAgree: ranks whose dist settings differ in what shapes the
// collectives are refused before training, naming the rank; a different
// timeout is fine.
func TestRanksMustAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	for _, tc := range []struct {
		set     string
		refused bool
	}{
		{"dist.bucket_mb=1", true},
		{"dist.overlap=true", true},
		{"dist.timeout_seconds=30", false},
	} {
		t.Run(tc.set, func(t *testing.T) {
			cfg := distConfig(t, 128, "train.epochs=1")
			errs, logs := launchRanks(t, 2, "train", cfg, rank1SetEnv+"="+tc.set)
			if !tc.refused {
				requireRanksOK(t, errs, logs)
				return
			}
			require.Error(t, errs[0], "rank 0 must refuse:\n%s", logs[0])
			assert.Contains(t, logs[0], "the configuration of rank(s) 1 differs")
			_, err := os.Stat(filepath.Join(cfg.Out, "checkpoints"))
			assert.True(t, os.IsNotExist(err), "nothing trained")
		})
	}
}

// TestDataParallelRankDies: when a rank is killed mid-epoch, the other
// fails with an error naming it (within the timeout: no hang); relaunched
// as torchrun's restart would be, the job resumes from its latest
// checkpoint and finishes.
func TestDataParallelRankDies(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	cfg := distConfig(t, 128)
	errs, logs := launchRanks(t, 2, "die", cfg)
	require.Error(t, errs[1], "rank 1 should have died")
	require.Error(t, errs[0], "rank 0 must fail when rank 1 dies:\n%s", logs[0])
	assert.Contains(t, logs[0], "rank 1", "rank 0's error names the dead rank:\n%s", logs[0])
	assert.Contains(t, logs[0], "rank 0 of 2")
	t.Logf("rank 0 said: %s", lastLine(logs[0]))

	errs, logs = launchRanks(t, 2, "die", cfg, "TORCHELASTIC_RESTART_COUNT=1")
	requireRanksOK(t, errs, logs)
	assert.Contains(t, logs[0], "resuming from the latest checkpoint")
	_, err := os.Stat(filepath.Join(cfg.Out, "summary.json"))
	require.NoError(t, err)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestTorchrunRestartResumes: the real launcher (torchrun's static
// rendezvous, its agent hosting the store) runs 2 ranks; rank 1 dies in
// the second epoch of the first attempt, torchrun restarts the job
// (--max_restarts 1), which resumes from the latest checkpoint and ends
// where one uninterrupted process with the global batch ends.
func TestTorchrunRestartResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	const torchrun = "/usr/bin/torchrun"
	_, err := os.Stat(torchrun)
	require.NoError(t, err, "torchrun, from python3-torch, which make setup installs")
	exe, err := os.Executable()
	require.NoError(t, err)
	cfg := distConfig(t, 128)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	yml, err := cfg.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, yml, 0o644))
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// --redirects 2 --tee 2 (stderr to files and the console): Debian's
	// torchrun 1.13 under Python 3.11 fails on the default "0", whose
	// Std.NONE a 3.11 IntFlag no longer yields when iterated.
	cmd := exec.CommandContext(ctx, torchrun, "--redirects", "2", "--tee", "2", "--nproc_per_node", "2", "--max_restarts", "1",
		"--master_addr", "127.0.0.1", "--master_port", strconv.Itoa(port), "--no_python", exe, "-test.run", "^$")
	cmd.Env = append(os.Environ(), rankJobEnv+"=die", rankConfigEnv+"="+cfgPath, "GLOO_SOCKET_IFNAME=lo")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "torchrun:\n%s", out)
	assert.Contains(t, string(out), "resuming from the latest checkpoint")

	one := distConfig(t, 256)
	trainTiny(t, context.Background(), one, false)
	assert.Less(t, maxAbsDiff(t, latestParams(t, one.Out), latestParams(t, cfg.Out)), 1e-5)
}

// freePort is a loopback port nothing listens on (just now).
func freePort(t testing.TB) int {
	t.Helper()
	s, err := torch.NewStore(torch.StoreOptions{Host: "127.0.0.1", Server: true, Timeout: time.Second})
	require.NoError(t, err)
	defer s.Close()
	return s.Port()
}
