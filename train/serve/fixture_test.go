package serve

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train"
)

// fixture is shared by the package's tests: two tiny models trained once
// on the same CSV data (A with both meta levels, B another seed without
// them), request rows, and predict's scores of those rows under each.
var fx struct {
	dir          string
	runA, runB   string // run directories
	nameA, nameB string // their best checkpoints, as responses name them
	rows         []map[string]any
	wantA, wantB []float32
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "msrtrain-serve")
	if err == nil {
		err = buildFixture(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve fixture:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildFixture(dir string) error {
	fx.dir = dir
	synth := data.DefaultConfig().Synthetic
	synth.Rows, synth.Users, synth.ItemsPerScenario = 3000, 200, 60
	gen, err := data.Generate(synth, 1)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := data.WriteCSV(&buf, gen.Raw); err != nil {
		return err
	}
	records, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		return err
	}
	header := records[0]
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	// Numeric ids, so that requests can send them as JSON numbers.
	for _, r := range records[1:] {
		r[col["user_id"]] = strings.TrimPrefix(r[col["user_id"]], "u")
		r[col["item_id"]] = strings.TrimPrefix(r[col["item_id"]], "i")
	}
	trainCSV := filepath.Join(dir, "train.csv")
	if err := writeCSV(trainCSV, records); err != nil {
		return err
	}

	// Request rows: rows of the data, then an unseen user (so no knowledge:
	// the fallback vector), an unseen item, a missing categorical value,
	// and a row per scenario.
	reqRecords := [][]string{header}
	for _, r := range records[1:121] {
		reqRecords = append(reqRecords, r)
	}
	last := len(reqRecords)
	for _, change := range []map[string]string{
		{"user_id": "987654"},
		{"item_id": "987654"},
		{"user_segment": ""},
		{"user_id": "987655", "item_id": "x-unseen", "item_category": "nothing"},
	} {
		r := append([]string{}, records[1+len(reqRecords)][:]...)
		for k, v := range change {
			r[col[k]] = v
		}
		reqRecords = append(reqRecords, r)
	}
	for _, sc := range gen.ScenarioInfo {
		r := append([]string{}, records[1][:]...)
		r[col["scenario"]] = sc.Name
		reqRecords = append(reqRecords, r)
	}
	predictCSV := filepath.Join(dir, "rows.csv")
	if err := writeCSV(predictCSV, reqRecords); err != nil {
		return err
	}
	for i, r := range reqRecords[1:] {
		fx.rows = append(fx.rows, jsonRow(i, header, r, i >= last-1))
	}

	cfgA := data.CSVConfig(gen.Raw, trainCSV)
	if fx.runA, fx.nameA, fx.wantA, err = trainAndPredict(dir, "a", cfgA, predictCSV, "model.meta.levels=both", "seed=1"); err != nil {
		return err
	}
	fx.runB, fx.nameB, fx.wantB, err = trainAndPredict(dir, "b", cfgA, predictCSV, "model.meta.levels=none", "seed=2")
	return err
}

// jsonRow is a CSV record as a request row, varying how values are sent:
// ids as JSON numbers or strings, numeric values as numbers or strings, a
// missing categorical value as null; the label and time are extra keys,
// which the server ignores.
func jsonRow(i int, header, r []string, nullMissing bool) map[string]any {
	row := map[string]any{}
	for j, h := range header {
		v := r[j]
		switch {
		case (h == "user_id" || h == "item_id") && i%2 == 0 && isInteger(v):
			row[h] = json.Number(v)
		case (h == "item_pop" || h == "user_activity") && i%3 != 0:
			row[h] = json.Number(v)
		case v == "" && nullMissing:
			row[h] = nil
		default:
			row[h] = v
		}
	}
	return row
}

func isInteger(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func writeCSV(path string, records [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.WriteAll(records)
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// trainAndPredict trains a tiny model on cfg into dir/name and scores the
// rows of predictCSV with msrtrain predict's code.
func trainAndPredict(dir, name string, dcfg data.Config, predictCSV string, overrides ...string) (run, checkpoint string, scores []float32, err error) {
	cfg, err := train.LoadConfig("", append([]string{
		"train.epochs=1", "train.batch_size=128", "train.eval_batch_size=1000", "train.log_every=1000",
		"model.star.hidden=[16,8]", "model.star.aux_hidden=[8]", "model.meta.layers=[8]",
		"model.meta.generator.hidden=[8]", "knowledge.hash.dim=8", "threads=1", "device=cpu",
	}, overrides...))
	if err != nil {
		return
	}
	cfg.Data = dcfg
	cfg.Out = filepath.Join(dir, name)
	var out bytes.Buffer
	err = onTorchThread(func() error {
		if _, err := train.Train(context.Background(), cfg, train.RunOptions{}); err != nil {
			return err
		}
		m, err := train.LoadModel(cfg.Out, "cpu", 1)
		if err != nil {
			return err
		}
		defer m.Close()
		checkpoint = m.Checkpoint.Dir
		_, err = m.Predict(predictCSV, &out, data.FormatCSV)
		return err
	})
	if err != nil {
		return
	}
	records, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		return
	}
	for _, r := range records[1:] {
		p, perr := strconv.ParseFloat(r[2], 32)
		if perr != nil {
			return "", "", nil, perr
		}
		scores = append(scores, float32(p))
	}
	return cfg.Out, checkpoint, scores, nil
}

// onTorchThread runs f on a goroutine locked to its own OS thread, as the CLI does.
func onTorchThread(f func() error) error {
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}

// testServer is a Server running in the test's process.
type testServer struct {
	*Server
	url    string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.Checkpoint == "" {
		opts.Checkpoint = fx.runA
	}
	if opts.Load == nil {
		opts.Load = CheckpointLoader("cpu", 1)
	}
	opts.Addr = "127.0.0.1:0"
	s, err := New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, url: "http://" + s.Addr(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop shuts the server down and waits for Run (once).
func (ts *testServer) stop(t *testing.T) error {
	ts.cancel()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(time.Minute):
		t.Fatal("the server did not stop within a minute")
	}
	return nil
}

// scoreResponse is a 200's body.
type scoreResponse struct {
	Model  string    `json:"model"`
	Scores []float32 `json:"scores"`
}

// errorResponse is a 4xx's or 5xx's body.
type errorResponse struct {
	Error struct {
		Kind    string `json:"kind"`
		Row     *int   `json:"row"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"error"`
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}

func post(url string, body []byte) (int, []byte, error) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// requestBody is a score request for fixture rows idx.
func requestBody(idx []int) []byte {
	rows := make([]map[string]any, len(idx))
	for i, k := range idx {
		rows[i] = fx.rows[k]
	}
	b, _ := json.Marshal(map[string]any{"rows": rows})
	return b
}

// score posts fixture rows idx and decodes the 200 it requires.
func score(url string, idx []int) (scoreResponse, error) {
	var r scoreResponse
	code, body, err := post(url+"/v1/score", requestBody(idx))
	if err != nil {
		return r, err
	}
	if code != http.StatusOK {
		return r, fmt.Errorf("status %d: %s", code, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %s", err, body)
	}
	return r, nil
}

// asyncResult is what scoreAsync sends.
type asyncResult struct {
	idx []int
	r   scoreResponse
	err error
}

// scoreAsync posts fixture rows idx from a goroutine and sends the outcome to results.
func scoreAsync(url string, idx []int, results chan<- asyncResult) {
	go func() {
		r, err := score(url, idx)
		results <- asyncResult{idx, r, err}
	}()
}

// checkScores compares a response with predict's scores of rows idx under
// the model the response names.
func checkScores(r scoreResponse, idx []int) error {
	var want []float32
	switch r.Model {
	case fx.nameA:
		want = fx.wantA
	case fx.nameB:
		want = fx.wantB
	default:
		return fmt.Errorf("scored by %q, neither fixture model", r.Model)
	}
	if len(r.Scores) != len(idx) {
		return fmt.Errorf("%d scores for %d rows", len(r.Scores), len(idx))
	}
	for i, k := range idx {
		if d := r.Scores[i] - want[k]; d > 1e-6 || d < -1e-6 {
			return fmt.Errorf("row %d (fixture row %d): served %v, predict %v", i, k, r.Scores[i], want[k])
		}
	}
	return nil
}

// gate holds every Score call of the models a gatedLoader loads, once
// closed is set, until the test lets it through; each held call's rows
// come out of entered.
type gate struct {
	on      atomic.Bool
	entered chan int
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan int, 64), release: make(chan struct{}, 64)} }

type gatedModel struct {
	Model
	g *gate
}

func (m gatedModel) Score(t *data.Table) ([]float32, error) {
	if m.g.on.Load() {
		m.g.entered <- t.Len()
		<-m.g.release
	}
	return m.Model.Score(t)
}

func gatedLoader(g *gate) Loader {
	load := CheckpointLoader("cpu", 1)
	return func(path string) (Model, error) {
		m, err := load(path)
		if err != nil {
			return nil, err
		}
		return gatedModel{m, g}, nil
	}
}

// countingLoader counts loads and closes of the models it loads.
type counts struct{ loaded, closed atomic.Int64 }

type countedModel struct {
	Model
	c *counts
}

func (m countedModel) Close() {
	m.c.closed.Add(1)
	m.Model.Close()
}

func countingLoader(c *counts) Loader {
	load := CheckpointLoader("cpu", 1)
	return func(path string) (Model, error) {
		m, err := load(path)
		if err != nil {
			return nil, err
		}
		c.loaded.Add(1)
		return countedModel{m, c}, nil
	}
}

// eventually polls cond (a state, never a duration: the tests do not
// assert on time) until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// parallel runs f(0..n-1) in goroutines and returns their errors joined.
func parallel(n int, f func(i int) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}
