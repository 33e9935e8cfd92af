package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/data/parquet"
	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train"
	"github.com/msrtrain/msrtrain/train/report/reporttest"
)

// torchrun is the real launcher, from Debian's python3-torch.
const torchrun = "/usr/bin/torchrun"

// freePort is a TCP port nothing listens on now, for a launcher's store.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var binary string

// workDir holds the binary and the fixtures tests share.
var workDir string

// TestMain builds msrtrain once; the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "msrtrain-cli")
	if err != nil {
		panic(err)
	}
	workDir = dir
	binary = filepath.Join(dir, "msrtrain")
	// The CLI's children inherit it: run outputs must be group-readable under it.
	syscall.Umask(0o022)
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building msrtrain: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tiny are the overrides of a run that takes a second or two.
var tiny = []string{
	"--set", "data.synthetic.rows=5000", "--set", "data.synthetic.users=300", "--set", "data.synthetic.items_per_scenario=60",
	"--set", "train.epochs=2", "--set", "train.batch_size=128", "--set", "model.star.hidden=[16,8]",
	"--set", "model.meta.layers=[8]", "--set", "model.meta.generator.hidden=[8]", "--set", "knowledge.hash.dim=8",
	"--threads", "1",
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn runs msrtrain in directory dir ("" for this one).
func runIn(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("msrtrain %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

var tinyFixture struct {
	once        sync.Once
	out, stdout string
	err         error
}

// tinyRun is a tiny run on the embedded synthetic data and what train
// printed on standard output; trained once for the tests that share it.
func tinyRun(t *testing.T) (out, stdout string) {
	t.Helper()
	f := &tinyFixture
	f.once.Do(func() {
		f.out = filepath.Join(workDir, "tiny-run")
		args := append([]string{"--out", f.out, "train"}, tiny...)
		cmd := exec.Command(binary, args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			f.err = fmt.Errorf("msrtrain %s: %w\n%s", strings.Join(args, " "), err, e.String())
		}
		f.stdout = o.String()
	})
	require.NoError(t, f.err)
	return f.out, f.stdout
}

func TestTrainEvalPredict(t *testing.T) {
	out, trainOut := tinyRun(t)
	// The last line is the report's path, and the page checks out.
	lines := strings.Split(strings.TrimSpace(trainOut), "\n")
	if want := "report: " + filepath.Join(out, "report.html"); lines[len(lines)-1] != want {
		t.Errorf("train's last line is %q, want %q", lines[len(lines)-1], want)
	}
	if _, err := reporttest.CheckPage(filepath.Join(out, "report.html")); err != nil {
		t.Error(err)
	}
	for _, f := range []string{"config.yaml", "metrics.jsonl", "summary.json", "checkpoints/best", "checkpoints/latest"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("train output: %v", err)
		}
	}
	// A list value with a comma is one override.
	resolved, err := train.LoadConfig(filepath.Join(out, "config.yaml"), nil)
	require.NoError(t, err)
	assert.Equal(t, []int64{16, 8}, resolved.Model.STAR.Hidden)
	var summary struct {
		Test struct {
			Overall struct{ AUC *float64 } `json:"overall"`
		} `json:"test"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	if err := json.Unmarshal(b, &summary); err != nil || summary.Test.Overall.AUC == nil {
		t.Fatalf("summary.json: %v %s", err, b)
	}

	// Training again into the same directory would mix two runs: refused, nothing touched.
	if _, errOut, code := run(t, append([]string{"--out", out, "train"}, tiny...)...); code != 1 || !strings.Contains(errOut, "already holds a run") {
		t.Errorf("second train into %s: exit %d, %q", out, code, errOut)
	}
	evalOut := mustRun(t, "eval", "--checkpoint", out, "--split", "test", "--threads", "1")
	if !strings.Contains(evalOut, "overall") || !strings.Contains(evalOut, "video") {
		t.Errorf("eval prints no per-scenario table:\n%s", evalOut)
	}
	if want := fmt.Sprintf("%.4f", *summary.Test.Overall.AUC); !strings.Contains(evalOut, want) {
		t.Errorf("eval's overall AUC differs from the run's test AUC %s:\n%s", want, evalOut)
	}

	// The same evaluation sharded over 2 ranks by the real launcher: rank 0
	// gathers every prediction, so the metrics are one process's, exactly.
	// make setup installs torchrun (python3-torch): missing, it is a failure.
	{
		_, err := os.Stat(torchrun)
		require.NoError(t, err, "torchrun, from python3-torch, which make setup installs")
		best, err := train.CheckpointDir(out, "best")
		require.NoError(t, err)
		onePath := filepath.Join(best, "eval-test.json")
		one, err := os.ReadFile(onePath)
		require.NoError(t, err)
		require.NoError(t, os.Remove(onePath))
		cmd := exec.Command(torchrun, "--redirects", "2", "--tee", "2", "--nproc_per_node", "2",
			"--master_addr", "127.0.0.1", "--master_port", fmt.Sprint(freePort(t)),
			"--no_python", binary, "eval", "--checkpoint", out, "--split", "test", "--threads", "1")
		cmd.Env = append(os.Environ(), "GLOO_SOCKET_IFNAME=lo")
		outBytes, err := cmd.CombinedOutput()
		require.NoError(t, err, "torchrun eval:\n%s", outBytes)
		two, err := os.ReadFile(onePath)
		require.NoError(t, err, "rank 0 writes the report")
		assert.JSONEq(t, string(one), string(two))
		assert.Equal(t, 1, strings.Count(string(outBytes), "overall"), "only rank 0 prints the table:\n%s", outBytes)
	}

	// Outputs follow the umask (022 here, see TestMain): the group reads them.
	for _, f := range []string{"config.yaml", "summary.json", "metrics.jsonl", "report.html", "checkpoints/best", "knowledge/index.json"} {
		requireGroupReadable(t, filepath.Join(out, f))
	}
	best, err := train.CheckpointDir(out, "best")
	require.NoError(t, err)
	for _, f := range []string{"model.safetensors", "optimizer.safetensors", "vocabs.json", "config.yaml", "state.json"} {
		requireGroupReadable(t, filepath.Join(best, f))
	}

	// predict on the synthetic run: data synth with the run's own config
	// writes the run's rows, which predict reads; one score per row, in order.
	dir := t.TempDir()
	rowsPath := filepath.Join(dir, "rows.csv")
	mustRun(t, "data", "synth", "-c", filepath.Join(out, "config.yaml"), "--output", rowsPath)
	scores := filepath.Join(dir, "scores.csv")
	mustRun(t, "predict", "--checkpoint", out, "--input", rowsPath, "--output", scores, "--threads", "1")
	requireGroupReadable(t, scores)
	f, _ := os.Open(scores)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	if len(rows) != 5001 || strings.Join(rows[0], ",") != "row,scenario,score" {
		t.Fatalf("predict wrote %d lines, header %v; want 5000 rows and a header", len(rows), rows[0])
	}
	for i, r := range rows[1:] {
		if r[0] != fmt.Sprint(i) {
			t.Fatalf("row %d is numbered %s: not in input order", i, r[0])
		}
	}

	// A predict that fails leaves no file behind.
	failed := filepath.Join(dir, "failed.csv")
	_, errOut, code := run(t, "predict", "--checkpoint", out, "--input", filepath.Join(dir, "nope.csv"), "--output", failed, "--threads", "1")
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "--input: stat "+filepath.Join(dir, "nope.csv")+": no such file or directory")
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("scenario,user_id\nvideo,u1\n"), 0o644))
	_, errOut, code = run(t, "predict", "--checkpoint", out, "--input", bad, "--output", failed, "--threads", "1")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, `column "item_id": value "": required column missing`)
	assert.NoFileExists(t, failed)

	// Into a pipe: whole, without fsync (which a pipe refuses)...
	cmd := exec.Command(binary, "predict", "--checkpoint", out, "--input", rowsPath, "--threads", "1")
	var piped, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &piped, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	assert.Equal(t, 5001, strings.Count(piped.String(), "\n"))
	// ... and into a reader that leaves after the first line, as head does:
	// a quiet end with status 0.
	cmd = exec.Command(binary, "predict", "--checkpoint", out, "--input", rowsPath, "--threads", "1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr.Reset()
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	first, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "row,scenario,score\n", first)
	stdout.Close()
	require.NoError(t, cmd.Wait(), "predict | head: %s", stderr.String())
	assert.NotContains(t, stderr.String(), "msrtrain:")
}

// requireGroupReadable fails unless the group may read path, as a umask of
// 022 grants.
func requireGroupReadable(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode().Perm()&0o040, "%s has mode %v: not group-readable under umask 022", path, st.Mode().Perm())
}

var csvFixture struct {
	once      sync.Once
	csv, run  string
	predicted [][]string
	err       error
}

// csvRun is a model trained on a CSV file, the file, and predict's output
// for it; made once for the tests that share it.
func csvRun(t *testing.T) (csvPath, run string, predicted [][]string) {
	t.Helper()
	f := &csvFixture
	f.once.Do(func() {
		dir := filepath.Join(workDir, "csv-run")
		f.csv = filepath.Join(dir, "rows.csv")
		f.run = filepath.Join(dir, "run")
		scores := filepath.Join(dir, "scores.csv")
		steps := [][]string{
			append(append([]string{"data", "synth", "--output", f.csv}, tiny[:6]...), "--set", "data.synthetic.rows=300"),
			append([]string{"--out", f.run, "-c", f.csv + ".yaml", "train", "--set", "model.meta.levels=none"}, tiny[6:]...),
			{"predict", "--checkpoint", f.run, "--input", f.csv, "--output", scores, "--threads", "1"},
		}
		if f.err = os.MkdirAll(dir, 0o755); f.err != nil {
			return
		}
		for _, args := range steps {
			if out, err := exec.Command(binary, args...).CombinedOutput(); err != nil {
				f.err = fmt.Errorf("msrtrain %s: %w\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		b, err := os.ReadFile(scores)
		if err != nil {
			f.err = err
			return
		}
		f.predicted, f.err = csv.NewReader(bytes.NewReader(b)).ReadAll()
	})
	require.NoError(t, f.err)
	return f.csv, f.run, f.predicted
}

// TestPredictParquet: the rows of the shared CSV run as Parquet, scored
// into Parquet by the same model: the same scores, rows and scenarios as
// predict's CSV.
func TestPredictParquet(t *testing.T) {
	_, ckpt, predicted := csvRun(t)
	pqPath := filepath.Join(t.TempDir(), "rows.parquet")
	mustRun(t, append(append([]string{"data", "synth", "--output", pqPath}, tiny[:6]...), "--set", "data.synthetic.rows=300")...)
	pqScores := filepath.Join(t.TempDir(), "scores.parquet")
	mustRun(t, "predict", "--checkpoint", ckpt, "--input", pqPath, "--output", pqScores, "--threads", "1")
	assert.Equal(t, predicted[1:], readScores(t, pqScores))
}

// TestExport: msrtrain export writes the directory a serving team gets
// (train/export tests its scores); a second export into it is refused.
func TestExport(t *testing.T) {
	_, ckpt, _ := csvRun(t)
	exported := filepath.Join(t.TempDir(), "exported")
	exportOut := mustRun(t, "export", "--checkpoint", ckpt, "--out", exported, "--name", "ranker", "--threads", "1")
	assert.Contains(t, exportOut, `Triton model "ranker"`)
	for _, f := range []string{"model.pt", "features.json", "vocabularies.json", "triton/ranker/config.pbtxt", "triton/ranker/1/model.pt"} {
		assert.FileExists(t, filepath.Join(exported, f))
	}
	if _, errOut, code := run(t, "export", "--checkpoint", ckpt, "--out", exported); code != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("export into a full directory: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run(t, "export", "--checkpoint", ckpt); code != 2 || !strings.Contains(errOut, "--out") {
		t.Errorf("export without --out: exit %d, %q", code, errOut)
	}
}

// readScores reads predict's Parquet output as CSV's records would read.
func readScores(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := parquet.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out [][]string
	for g := range f.NumRowGroups() {
		var row, scenario, score parquet.Chunk
		require.NoError(t, f.ReadNumbers(g, f.Column("row"), &row))
		require.NoError(t, f.ReadText(g, f.Column("scenario"), &scenario))
		require.NoError(t, f.ReadNumbers(g, f.Column("score"), &score))
		for i := range row.Rows {
			out = append(out, []string{fmt.Sprint(row.Ints[i]), scenario.Dict[scenario.Codes[i]],
				strconv.FormatFloat(score.Values[i], 'g', 7, 32)})
		}
	}
	return out
}

func TestBadInputIsAClearErrorWithStatus2(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("train:\n  lr: 0.01\n  epocs: 3\n"), 0o644)
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte("metric: test.overall.auc\ngrid:\n  model.backbon: [star]\n"), 0o644)
	missingData := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missingData, []byte("data: {format: csv, path: clicks.csv, columns: {scenario: s, user: u, item: i, labels: [y]}}\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cuda on a CPU machine", []string{"--device", "cuda", "train"}, "no CUDA support"},
		{"unknown key", []string{"train", "--set", "model.backbon=star"}, `unknown config key "model.backbon"`},
		{"wrong type", []string{"train", "--set", "train.epochs=many"}, "config key train.epochs = many: cannot unmarshal"},
		{"negative lr", []string{"train", "--set", "train.lr=-1"}, "train.lr = -1: must be positive"},
		{"zero batch", []string{"train", "--set", "train.batch_size=0"}, "train.batch_size = 0"},
		{"unknown backbone", []string{"train", "--set", "model.backbone=dcn"}, `model.backbone = "dcn"`},
		{"unknown key in a file", []string{"-c", badYAML, "train"}, `config ` + badYAML + `: line 3: unknown config key "train.epocs"; did you mean "train.epochs"? (train has: `},
		{"missing config file", []string{"-c", filepath.Join(dir, "nope.yaml"), "train"}, "nope.yaml"},
		{"missing data file", []string{"-c", missingData, "data", "validate"}, "data.path: " + filepath.Join(dir, "clicks.csv") + ": no such file or directory"},
		{"flags after the argument", []string{"data", "init", "clicks.csv", "--output", "run.yaml"}, "data init: flags go before clicks.csv: msrtrain data init --output run.yaml clicks.csv"},
		{"no checkpoint", []string{"eval", "--checkpoint", dir}, "holds no checkpoint"},
		{"sweep spec key", []string{"sweep", "--out", dir, spec}, "model.backbon"},
		{"ablate without seeds", []string{"ablate", "--seeds", "0", "--out", dir}, "--seeds and --workers must be at least 1"},
		{"unknown flag", []string{"train", "--epochs", "3"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		_, errOut, code := run(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", tc.name, code, errOut, tc.want)
		}
	}
}

// TestReportAndExplain runs `report` and `knowledge explain` on a trained
// run whose store has no reasoning (the hash encoder's).
func TestReportAndExplain(t *testing.T) {
	out, _ := tinyRun(t)
	os.Remove(filepath.Join(out, "report.html"))
	if got := mustRun(t, "report", "--threads", "1", out); got != "report: "+filepath.Join(out, "report.html")+"\n" {
		t.Errorf("report printed %q", got)
	}
	page, err := reporttest.CheckPage(filepath.Join(out, "report.html"))
	require.NoError(t, err)
	// Every command the page suggests works on this run, as printed.
	require.Len(t, page.Commands, 2, "explain a user and a scenario")
	for _, line := range page.Commands {
		args, err := reporttest.SplitCommand(line)
		require.NoError(t, err)
		require.Equal(t, "msrtrain", args[0], line)
		if stdout, stderr, code := run(t, args[1:]...); code != 0 || !strings.Contains(stdout, "effect on the model's logits") {
			t.Errorf("the report suggests %q: exit %d\n%s%s", line, code, stdout, stderr)
		}
	}
	explain := []string{"knowledge", "explain", "--checkpoint", out, "--threads", "1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown user", []string{"--user", "nobody"}, `user "nobody" is not in the training data of synthetic`},
		{"unknown scenario", []string{"--scenario", "radio"}, `scenario "radio" is not in the data; its scenarios are video, search, shop`},
		{"neither", nil, "give one of --user ID or --scenario NAME"},
	} {
		_, errOut, code := run(t, append(explain, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", tc.name, code, errOut, tc.want)
		}
	}
	// The default run's store is the hash encoder's, with no reasoning: the
	// command the report suggests explains it all the same.
	got := mustRun(t, append(explain, "--user", "u1")...)
	for _, want := range []string{"user:u1 (most rows in", "prompt:\n  You are an expert", "reasoning: none (the hash encoder is not an LLM", "nearest scenarios", "effect on the model's logits, against the learned fallback vector:", "mean |shift|"} {
		if !strings.Contains(got, want) {
			t.Errorf("explain output lacks %q:\n%s", want, got)
		}
	}
}

// TestSweep runs a 2×2 grid with 2 seeds in which one point fails at run
// time (the file encoder without a file, only needed when meta networks are
// on), then reruns it: finished trials are skipped, the failed ones are
// tried again (and fail again), and the results are the same.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	os.WriteFile(base, []byte(`threads: 1
data: {synthetic: {rows: 3000, users: 200, items_per_scenario: 40}}
train: {epochs: 1, batch_size: 256}
model: {star: {hidden: [8]}, meta: {layers: [4], generator: {hidden: [8]}}}
knowledge: {hash: {dim: 8}}
`), 0o644)
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte(`base: base.yaml
seeds: 2
workers: 2
metric: test.overall.auc
grid:
  model.meta.levels: [none, both]
  knowledge.encoder: [hash, file]
`), 0o644)
	out := filepath.Join(dir, "sweep")
	stdout, stderr, code := run(t, "sweep", "--out", out, spec)
	if code != 1 {
		t.Fatalf("sweep with a failing point: exit %d, want 1 (failed trials)\n%s\n%s", code, stdout, stderr)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	require.NoError(t, err)
	if !strings.Contains(string(md), "knowledge.encoder = file needs") {
		t.Errorf("results.md does not record the failing point's error:\n%s", md)
	}
	if _, err := reporttest.CheckPage(filepath.Join(out, "results.html")); err != nil {
		t.Error(err)
	}
	checkResults := func(when string) {
		res, _ := os.ReadFile(filepath.Join(out, "results.csv"))
		if ok, failed := strings.Count(string(res), ",ok,"), strings.Count(string(res), ",failed,"); ok != 6 || failed != 2 {
			t.Errorf("%s: results.csv has %d ok and %d failed trials, want 6 and 2:\n%s", when, ok, failed, res)
		}
	}
	checkResults("first run")
	firstTable := stdout

	stdout, stderr, code = run(t, "sweep", "--out", out, spec)
	if code != 1 || !strings.Contains(stderr, "2 trial(s) failed") {
		t.Errorf("rerun: exit %d, want 1 and the 2 failed trials named:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, " ok ("); n != 0 {
		t.Errorf("rerun ran %d finished trials again:\n%s", n, stderr)
	}
	if n := strings.Count(stderr, " failed ("); n != 2 {
		t.Errorf("rerun tried %d failed trials again, want 2:\n%s", n, stderr)
	}
	if stdout != firstTable {
		t.Errorf("rerun printed another results table:\n%s\nfirst run:\n%s", stdout, firstTable)
	}
	checkResults("rerun")
}

// TestAblate runs the ablation table on tiny data with one seed (the
// paired statistics are train/sweep's tests'): every point against the bare
// backbone; then a learned-knowledge trial's report says it has no
// knowledge view, and explain refuses it.
func TestAblate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ablate")
	stdout := mustRun(t, "ablate", "--out", out, "--seeds", "1", "--workers", "2", "--threads", "1",
		"--set", "data.synthetic.rows=2000", "--set", "data.synthetic.users=150", "--set", "data.synthetic.items_per_scenario=40",
		"--set", "train.epochs=1", "--set", "train.batch_size=256", "--set", "model.star.hidden=[8]",
		"--set", "model.meta.layers=[4]", "--set", "model.meta.generator.hidden=[8]", "--set", "knowledge.hash.dim=8",
		"--set", "knowledge.learned.dim=8", "--set", "knowledge.random.dim=8")
	for _, want := range []string{"## Paired differences from the baseline", "| baseline |", "| random | bottom |", "| hash | branch |"} {
		assert.Contains(t, stdout, want)
	}
	// 7 points: none, both, scenario, user, learned, random, branch.
	assert.Equal(t, 7+2, strings.Count(stdout, "\n|"), "a header, a rule and one row per point:\n%s", stdout)
	res, err := os.ReadFile(filepath.Join(out, "results.csv"))
	require.NoError(t, err)
	assert.Equal(t, 7, strings.Count(string(res), ",ok,"), "7 points, one seed")

	trials, err := filepath.Glob(filepath.Join(out, "trials", "p004-s1-*"))
	require.NoError(t, err)
	require.Len(t, trials, 1, "the learned encoder's trial")
	mustRun(t, "report", "--threads", "1", trials[0])
	page, err := os.ReadFile(filepath.Join(trials[0], "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(page), "knowledge.encoder = learned: the vectors have no text and no store")
	_, errOut, code := run(t, "knowledge", "explain", "--checkpoint", trials[0], "--user", "u1", "--threads", "1")
	assert.NotZero(t, code)
	assert.Contains(t, errOut, "knowledge.encoder = learned: its vectors have no prompt, reasoning or store to explain")
}

// TestGivenSplitFiles trains on a config file that gives train, valid and
// test files and nothing else about the split, as the README shows: giving
// them is enough to select them.
func TestGivenSplitFiles(t *testing.T) {
	dir := t.TempDir()
	all := filepath.Join(dir, "all.csv")
	mustRun(t, append(append([]string{"data", "synth", "--output", all}, tiny[:6]...), "--set", "data.synthetic.rows=400")...)
	b, err := os.ReadFile(all)
	require.NoError(t, err)
	lines := strings.SplitAfter(strings.TrimSpace(string(b)), "\n")
	header, rows := lines[0], lines[1:]
	require.Len(t, rows, 400)
	for name, part := range map[string][]string{"train.csv": rows[:300], "valid.csv": rows[300:350], "test.csv": rows[350:]} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(header+strings.Join(part, "")+"\n"), 0o644))
	}
	cfg := filepath.Join(dir, "run.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`data:
  format: csv
  train: %[1]s/train.csv
  valid: %[1]s/valid.csv
  test: %[1]s/test.csv
  columns:
    scenario: scenario
    user: user_id
    item: item_id
    categorical: [item_category, user_segment]
    numeric: [item_pop, user_activity]
    labels: [click]
model: {meta: {levels: none}}
train: {epochs: 1, batch_size: 100}
`, dir)), 0o644))
	out := filepath.Join(dir, "run")
	mustRun(t, "--out", out, "-c", cfg, "train", "--threads", "1")
	var summary struct {
		Steps int `json:"steps"`
		Test  struct {
			Overall struct {
				Count int `json:"count"`
			} `json:"overall"`
		} `json:"test"`
	}
	b, err = os.ReadFile(filepath.Join(out, "summary.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &summary))
	assert.Equal(t, 3, summary.Steps, "300 training rows in batches of 100")
	assert.Equal(t, 50, summary.Test.Overall.Count, "the test split is test.csv")
}

// TestDataValidateReportsSkippedRows: the skipped rows are the whole
// message, with no empty "msrtrain:" line after them.
func TestDataValidateReportsSkippedRows(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d.csv"), []byte("s,u,i,y\na,1,2,1\na,1,3,7\nb,2,2,0\n"), 0o644))
	cfg := filepath.Join(dir, "run.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("data: {format: csv, path: d.csv, skip_bad_rows: true, columns: {scenario: s, user: u, item: i, labels: [y]}}\n"), 0o644))
	stdout, stderr, code := run(t, "-c", cfg, "data", "validate")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "skipped 1 bad row(s); first:\n  "+filepath.Join(dir, "d.csv")+`:3: column "y": value "7": label must be 0 or 1`)
	assert.Empty(t, stderr)
}

// TestHelpListsEveryBackbone: --help names every backbone of the registry.
func TestHelpListsEveryBackbone(t *testing.T) {
	help := mustRun(t, "--help")
	names := model.BackboneNames()
	assert.Contains(t, help, fmt.Sprintf("one of %d backbones (model.backbone: %s)", len(names), strings.Join(names, ", ")))
	for _, c := range []string{"train", "eval"} {
		assert.Contains(t, mustRun(t, c, "--help"), "torchrun --nproc_per_node 2 --redirects 2 --tee 2 --no_python", "msrtrain %s --help", c)
	}
}
