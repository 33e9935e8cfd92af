package export

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/cgo/pybench"
	"github.com/msrtrain/msrtrain/cgo/torch"
	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train"
)

// trainedRun trains LLM4MSR on STAR (both levels) for one epoch on a small
// synthetic dataset written as CSV, and returns the run directory and the
// CSV file.
func trainedRun(t *testing.T) (run, rows string) {
	t.Helper()
	dir := t.TempDir()
	synth := data.DefaultConfig().Synthetic
	synth.Rows, synth.Users, synth.ItemsPerScenario = 3000, 200, 50
	sd, err := data.Generate(synth, 3)
	require.NoError(t, err)
	rows = filepath.Join(dir, "rows.csv")
	var buf bytes.Buffer
	require.NoError(t, data.WriteCSV(&buf, sd.Raw))
	require.NoError(t, os.WriteFile(rows, buf.Bytes(), 0o644))
	cfg, err := train.LoadConfig("", []string{
		"train.epochs=1", "train.batch_size=128", "train.eval_batch_size=500", "train.log_every=1000",
		"model.star.hidden=[16,8]", "model.star.aux_hidden=[8]", "model.meta.layers=[8]",
		"model.meta.generator.hidden=[8]", "knowledge.hash.dim=8", "threads=1", "device=cpu",
	})
	require.NoError(t, err)
	cfg.Data = data.CSVConfig(sd.Raw, rows)
	cfg.Out = filepath.Join(dir, "run")
	_, err = train.Train(t.Context(), cfg, train.RunOptions{})
	require.NoError(t, err)
	return cfg.Out, rows
}

// withUnseenValues rewrites some rows of a CSV with values training never
// saw: users (every 7th row), items (every 5th) and an empty category.
func withUnseenValues(t *testing.T, in, out string, keep int) {
	t.Helper()
	records := readCSV(t, in)
	header := records[0]
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	records = records[:min(keep+1, len(records))]
	for i, r := range records[1:] {
		if i%7 == 3 {
			r[col["user_id"]] = "never-seen-user-" + strconv.Itoa(i)
		}
		if i%5 == 0 {
			r[col["item_id"]] = "never-seen-item"
		}
		if i%11 == 2 {
			r[col["item_category"]] = ""
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(t, w.WriteAll(records))
	require.NoError(t, os.WriteFile(out, buf.Bytes(), 0o644))
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return records
}

// readPredictions reads predict's scores, row by row.
func readPredictions(t *testing.T, path string) []float64 {
	t.Helper()
	var out []float64
	for _, r := range readCSV(t, path)[1:] {
		v, err := strconv.ParseFloat(r[2], 64)
		require.NoError(t, err)
		out = append(out, v)
	}
	return out
}

// TestExportScoresRawRowsAsPredict: a run exported, its raw rows encoded
// from features.json alone and scored with torch.jit.load in Python, and
// through Features.Encode and the binding in Go, give msrtrain predict's
// scores; the directory is complete, and a failed export leaves nothing.
func TestExportScoresRawRowsAsPredict(t *testing.T) {
	// All torch work on this goroutine's OS thread, as the CLI does.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	run, rows := trainedRun(t)
	raw := filepath.Join(t.TempDir(), "raw.csv")
	withUnseenValues(t, rows, raw, 400)
	out := filepath.Join(t.TempDir(), "exported")

	feats, err := Export(Options{Checkpoint: run, Out: out, Threads: 1})
	require.NoError(t, err)
	for _, f := range []string{ModelFile, FeaturesFile, VocabulariesFile, "triton/msrtrain_star/config.pbtxt", "triton/msrtrain_star/1/model.pt"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	siblings, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Len(t, siblings, 1, "the temporary directory is gone")
	assert.Equal(t, "both", feats.Model.MetaLevels)
	assert.True(t, feats.UserKnowledge.Used)

	// predict's scores, the reference.
	var predicted bytes.Buffer
	l, err := train.LoadModel(run, "cpu", 1)
	require.NoError(t, err)
	_, err = l.Predict(raw, &predicted, data.FormatCSV)
	l.Close()
	require.NoError(t, err)
	predPath := filepath.Join(t.TempDir(), "predicted.csv")
	require.NoError(t, os.WriteFile(predPath, predicted.Bytes(), 0o644))
	want := readPredictions(t, predPath)
	require.Len(t, want, 400)

	// Python, from the files alone.
	scores := filepath.Join(t.TempDir(), "scores.txt")
	cmd := exec.Command(pybench.Python, filepath.Join("testdata", "encode_and_score.py"), out, raw, scores)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", pybench.Python, b)
	lines := strings.Fields(string(mustRead(t, scores)))
	require.Len(t, lines, len(want))
	for i, l := range lines {
		v, err := strconv.ParseFloat(l, 64)
		require.NoError(t, err)
		require.InDelta(t, want[i], v, 1e-5, "row %d (Python)", i)
	}

	// Go: the reader, Encode and the binding.
	read, err := ReadFeatures(out)
	require.NoError(t, err)
	assert.Equal(t, feats.Categorical, read.Categorical)
	rawRows := readRawRows(t, raw, read)
	enc, err := read.Encode(rawRows)
	require.NoError(t, err)
	assert.Contains(t, enc.UserKnowledgeRow, int64(-1), "unseen users have no knowledge")
	m, err := torch.LoadScriptModule(filepath.Join(out, ModelFile))
	require.NoError(t, err)
	defer m.Close()
	sc := torch.NewScope()
	defer sc.Close()
	got, err := m.Forward(enc.Tensors()...).Float32s()
	require.NoError(t, err)
	for i := range want {
		require.InDelta(t, want[i], got[i], 1e-5, "row %d (Go binding)", i)
	}

	config := string(mustRead(t, filepath.Join(out, "triton/msrtrain_star/config.pbtxt")))
	for _, s := range []string{`platform: "pytorch_libtorch"`, "max_batch_size: 4096", `name: "cat__0"`, "dims: [ 4 ]",
		`name: "num__1"`, `name: "scenario__2"`, `name: "user_knowledge_row__3"`, `name: "probability__0"`, "reshape: { shape: [ ] }", "dynamic_batching"} {
		assert.Contains(t, config, s)
	}

	// Into a directory that holds something: refused, nothing touched.
	_, err = Export(Options{Checkpoint: run, Out: out})
	assert.ErrorContains(t, err, "not empty")
	// A failure after loading (a bad Triton name) leaves no directory behind.
	other := filepath.Join(t.TempDir(), "other")
	_, err = Export(Options{Checkpoint: run, Out: other, Name: "bad name"})
	assert.ErrorContains(t, err, `"bad name"`)
	assert.NoDirExists(t, other)
	entries, _ := os.ReadDir(filepath.Dir(other))
	assert.Empty(t, entries)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// readRawRows reads a CSV into Encode's rows by column name.
func readRawRows(t *testing.T, path string, f *Features) []Row {
	t.Helper()
	records := readCSV(t, path)
	var rows []Row
	for _, r := range records[1:] {
		row := Row{Categorical: map[string]string{}, Numeric: map[string]float64{}}
		for i, h := range records[0] {
			switch {
			case h == "scenario":
				row.Scenario = r[i]
			case slicesContains(f.Numeric, h):
				v, err := strconv.ParseFloat(r[i], 32)
				require.NoError(t, err)
				row.Numeric[h] = v
			default:
				row.Categorical[h] = r[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func slicesContains(fields []NumericField, name string) bool {
	for _, f := range fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// TestEncodeNamesRowAndField: bad rows are refused with the row and the field.
func TestEncodeNamesRowAndField(t *testing.T) {
	f := &Features{
		Categorical:   []CategoricalField{{Column: 0, Name: "user_id", VocabularySize: 3}, {Column: 1, Name: "item_id", VocabularySize: 2}},
		Numeric:       []NumericField{{Column: 0, Name: "price"}},
		Scenarios:     []Scenario{{Index: 0, Name: "video"}, {Index: 1, Name: "shop"}},
		UserKnowledge: UserKnowledge{Used: true, Column: 0, Rows: 1, MissingRow: -1},
	}
	v := &Vocabularies{Fields: map[string][]string{"user_id": {"u1", "u2"}, "item_id": {"i1"}}, UserKnowledgeRow: []int64{-1, -1, 0}}
	require.NoError(t, f.check(v))
	f.attach(v)
	ok := Row{Scenario: "shop", Categorical: map[string]string{"user_id": "u2", "item_id": "i9"}, Numeric: map[string]float64{"price": 2.5}}
	enc, err := f.Encode([]Row{ok})
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 0}, enc.Cat, "unknown item: out of vocabulary")
	assert.Equal(t, []int64{1}, enc.Scenario)
	assert.Equal(t, []int64{0}, enc.UserKnowledgeRow)
	assert.Equal(t, []float32{2.5}, enc.Num)

	bad := func(edit func(r *Row)) error {
		r := Row{Scenario: ok.Scenario, Categorical: map[string]string{"user_id": "u1", "item_id": "i1"}, Numeric: map[string]float64{"price": 1}}
		edit(&r)
		_, err := f.Encode([]Row{ok, r})
		return err
	}
	for _, tc := range []struct {
		edit      func(r *Row)
		field     string
		sentinel  error
		mentioned string
	}{
		{func(r *Row) { r.Scenario = "news" }, "scenario", ErrUnknownScenario, "video, shop"},
		{func(r *Row) { delete(r.Categorical, "item_id") }, "item_id", ErrMissingField, "missing"},
		{func(r *Row) { delete(r.Numeric, "price") }, "price", ErrMissingField, "missing"},
		{func(r *Row) { r.Numeric["price"] = 1e39 }, "price", ErrNotFinite, "1e+39"},
	} {
		err := bad(tc.edit)
		var re *RowError
		require.True(t, errors.As(err, &re), "%v", err)
		assert.Equal(t, 1, re.Row)
		assert.Equal(t, tc.field, re.Field)
		assert.ErrorIs(t, err, tc.sentinel)
		assert.Contains(t, err.Error(), tc.mentioned)
		assert.Contains(t, err.Error(), fmt.Sprintf("row 1: field %q", tc.field))
	}
}
