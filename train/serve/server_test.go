package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allRows() []int {
	idx := make([]int, len(fx.rows))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// The served scores equal predict's for the same raw rows, whatever the
// request size: ids sent as numbers or strings, unseen users (the fallback
// knowledge vector) and items, missing values, every scenario.
func TestServedScoresEqualPredict(t *testing.T) {
	ts := startServer(t, Options{})
	all := allRows()
	for _, part := range [][]int{all[:1], all[1:8], all[8:], all} {
		r, err := score(ts.url, part)
		require.NoError(t, err)
		assert.Equal(t, fx.nameA, r.Model)
		require.NoError(t, checkScores(r, part))
	}
	assert.NotEqual(t, fx.wantA[0], fx.wantB[0], "the two fixture models must differ for the reload test to mean anything")
}

// Concurrent clients each get their own rows' scores back, in order.
func TestConcurrentClientsGetTheirOwnRows(t *testing.T) {
	ts := startServer(t, Options{MaxBatchRows: 64, MaxWait: 0})
	errs := parallel(16, func(c int) error {
		rng := rand.New(rand.NewPCG(uint64(c), 1))
		for range 15 {
			idx := make([]int, 1+rng.IntN(20))
			for i := range idx {
				idx[i] = rng.IntN(len(fx.rows))
			}
			r, err := score(ts.url, idx)
			if err == nil {
				err = checkScores(r, idx)
			}
			if err != nil {
				return fmt.Errorf("client %d: %w", c, err)
			}
		}
		return nil
	})
	require.Empty(t, errs)
	assert.Equal(t, float64(16*15), testutil.ToFloat64(ts.metrics.requests.WithLabelValues("200")))
}

// Requests that queue while the model is busy are scored together in one
// batch, each answered with its own rows.
func TestQueuedRequestsShareABatch(t *testing.T) {
	g := newGate()
	ts := startServer(t, Options{Load: gatedLoader(g), MaxBatchRows: 100})
	g.on.Store(true)
	results := make(chan asyncResult, 8)
	send := func(idx []int) { scoreAsync(ts.url, idx, results) }
	send([]int{0, 1, 2})
	require.Equal(t, 3, <-g.entered, "the first request is scored alone")
	for k := range 5 {
		send([]int{10 + k, 20 + k})
	}
	eventually(t, "5 requests queued behind the busy model", func() bool { return len(ts.batcher.jobs) == 5 })
	g.release <- struct{}{}
	require.Equal(t, 10, <-g.entered, "the 5 queued requests make one batch")
	g.release <- struct{}{}
	for range 6 {
		res := <-results
		require.NoError(t, res.err)
		require.NoError(t, checkScores(res.r, res.idx))
	}
	assert.Equal(t, uint64(2), sampleCount(t, ts.metrics.batchRows))
}

func sampleCount(t *testing.T, h prometheus.Histogram) uint64 {
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount()
}

// Reloading under load loses no request: every request is answered, each
// entirely by the model it names; a bad checkpoint is refused and the old
// model keeps serving; a swapped-out model is closed once its requests end.
func TestReloadUnderLoadLosesNoRequest(t *testing.T) {
	var c counts
	ts := startServer(t, Options{Load: countingLoader(&c), AdminAddr: "127.0.0.1:0", AdminToken: "s3cret", MaxWait: 0})
	admin := "http://" + ts.AdminAddr() + "/admin/reload"
	reload := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, admin, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A checkpoint whose weights are cut short.
	broken := filepath.Join(t.TempDir(), "broken")
	require.NoError(t, os.CopyFS(broken, os.DirFS(fx.nameA)))
	require.NoError(t, os.Truncate(filepath.Join(broken, "model.safetensors"), 100))

	stop := make(chan struct{})
	var answered [8]int
	var started atomic.Int64
	load := make(chan []error, 1)
	go func() {
		load <- parallel(8, func(k int) error {
			rng := rand.New(rand.NewPCG(uint64(k), 2))
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				idx := []int{rng.IntN(len(fx.rows)), rng.IntN(len(fx.rows)), rng.IntN(len(fx.rows))}
				r, err := score(ts.url, idx)
				if err == nil {
					err = checkScores(r, idx)
				}
				if err != nil {
					return fmt.Errorf("client %d, request %d: %w", k, answered[k], err)
				}
				answered[k]++
				started.Add(1)
			}
		})
	}()
	expect := func(name string) {
		r, err := score(ts.url, []int{0})
		require.NoError(t, err)
		require.Equal(t, name, r.Model, "a request after the reload")
	}
	eventually(t, "the clients under way", func() bool { return started.Load() >= 16 })
	for range 3 {
		code, body := reload(fmt.Sprintf(`{"checkpoint": %q}`, fx.runB))
		require.Equal(t, http.StatusOK, code, body)
		expect(fx.nameB)
		code, body = reload(fmt.Sprintf(`{"checkpoint": %q}`, broken))
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		require.Contains(t, body, "reload_refused")
		require.Contains(t, body, "still serving "+fx.nameB)
		expect(fx.nameB)
		code, body = reload(`{"checkpoint": "/no/such/run"}`)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		expect(fx.nameB)
		name, err := ts.Reload(fx.runA) // what SIGHUP calls, here naming a path
		require.NoError(t, err)
		require.Equal(t, fx.nameA, name)
		expect(fx.nameA)
	}
	code, body := reload("") // the path loaded last
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, fmt.Sprintf(`{"model": %q}`, fx.nameA), body)
	close(stop)
	require.Empty(t, <-load)
	total := 0
	for _, n := range answered {
		total += n
	}
	require.Positive(t, total)
	assert.Equal(t, float64(total+12), testutil.ToFloat64(ts.metrics.requests.WithLabelValues("200")), "every request answered 200")
	assert.Zero(t, testutil.CollectAndCount(ts.metrics.errors), "no request failed")
	assert.Equal(t, float64(8), testutil.ToFloat64(ts.metrics.reloads.WithLabelValues("swapped")), "the start and 7 reloads")
	assert.Equal(t, float64(6), testutil.ToFloat64(ts.metrics.reloads.WithLabelValues("refused")))
	assert.Equal(t, int64(8), c.loaded.Load(), "the start and 7 reloads; the broken checkpoint never loads")
	eventually(t, "every swapped-out model closed", func() bool { return c.closed.Load() == 7 })

	// The token is required; the admin endpoints are not on the main address.
	for _, auth := range []string{"", "Bearer wrong", "s3cret"} {
		req, _ := http.NewRequest(http.MethodPost, admin, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "authorization %q", auth)
	}
	code, _, err := post(ts.url+"/admin/reload", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, code)
}

// SIGTERM (a canceled context) drains: requests in flight are answered,
// new connections are refused, and Run returns cleanly.
func TestShutdownDrainsRequestsInFlight(t *testing.T) {
	g := newGate()
	ts := startServer(t, Options{Load: gatedLoader(g)})
	g.on.Store(true)
	results := make(chan asyncResult, 3)
	send := func(k int) { scoreAsync(ts.url, []int{k, k + 40}, results) }
	send(0)
	<-g.entered
	send(1)
	send(2)
	eventually(t, "2 requests queued", func() bool { return len(ts.batcher.jobs) == 2 })
	ts.cancel()
	eventually(t, "the listener closed", func() bool {
		c, err := net.Dial("tcp", ts.Addr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	assert.True(t, ts.draining.Load())
	g.release <- struct{}{}
	<-g.entered
	g.release <- struct{}{}
	for range 3 {
		res := <-results
		require.NoError(t, res.err)
		require.NoError(t, checkScores(res.r, res.idx))
	}
	require.NoError(t, ts.stop(t))
	assert.Nil(t, ts.current.p.Load(), "the model is freed")
}

// Bad input gets a 4xx naming the row and field, never a 5xx, and the
// server goes on serving.
func TestBadInputGets4xx(t *testing.T) {
	ts := startServer(t, Options{MaxRequestRows: 5, MaxBodyBytes: 4096})
	row := func(change map[string]any) string {
		r := map[string]any{}
		for k, v := range fx.rows[0] {
			r[k] = v
		}
		for k, v := range change {
			if v == "DELETE" {
				delete(r, k)
			} else {
				r[k] = v
			}
		}
		b, _ := json.Marshal(r)
		return string(b)
	}
	good := row(nil)
	rows := func(rs ...string) string { return `{"rows": [` + strings.Join(rs, ",") + `]}` }
	tests := []struct {
		name   string
		method string
		body   string
		status int
		kind   errorKind
		row    int // -1: none
		field  string
	}{
		{"truncated JSON", "", `{"rows": [`, 400, kindMalformedJSON, -1, ""},
		{"not JSON", "", `hello`, 400, kindMalformedJSON, -1, ""},
		{"empty body", "", ``, 400, kindMalformedJSON, -1, ""},
		{"data after the object", "", rows(good) + ` {}`, 400, kindMalformedJSON, -1, ""},
		{"bad escape in a value", "", rows(good, `{"scenario": "\x01"}`), 400, kindMalformedJSON, -1, ""},
		{"an array body", "", `[1]`, 400, kindWrongType, -1, ""},
		{"unknown top-level key", "", `{"rowz": []}`, 400, kindUnknownKey, -1, ""},
		{"no rows", "", `{"rows": []}`, 400, kindNoRows, -1, ""},
		{"rows not an array", "", `{"rows": 3}`, 400, kindWrongType, -1, ""},
		{"a row not an object", "", rows(good, `5`), 400, kindWrongType, 1, ""},
		{"a null row", "", rows(good, `null`), 400, kindWrongType, 1, ""},
		{"missing item", "", rows(good, row(map[string]any{"item_id": "DELETE"})), 400, kindMissingField, 1, "item_id"},
		{"missing scenario", "", rows(row(map[string]any{"scenario": "DELETE"})), 400, kindMissingField, 0, "scenario"},
		{"null scenario", "", rows(row(map[string]any{"scenario": nil})), 400, kindMissingField, 0, "scenario"},
		{"missing numeric", "", rows(good, good, row(map[string]any{"item_pop": "DELETE"})), 400, kindMissingField, 2, "item_pop"},
		{"unknown scenario", "", rows(good, row(map[string]any{"scenario": "moon"})), 400, kindUnknownScenario, 1, "scenario"},
		{"boolean id", "", rows(row(map[string]any{"item_id": true})), 400, kindWrongType, 0, "item_id"},
		{"object id", "", rows(row(map[string]any{"user_id": map[string]int{"a": 1}})), 400, kindWrongType, 0, "user_id"},
		{"array category", "", rows(row(map[string]any{"item_category": []int{1}})), 400, kindWrongType, 0, "item_category"},
		{"text numeric", "", rows(good, row(map[string]any{"item_pop": "cheap"})), 400, kindWrongType, 1, "item_pop"},
		{"null numeric", "", rows(row(map[string]any{"user_activity": nil})), 400, kindWrongType, 0, "user_activity"},
		{"infinite numeric", "", rows(row(map[string]any{"user_activity": json.Number("1e999")})), 400, kindWrongType, 0, "user_activity"},
		{"invalid UTF-8", "", rows(good, strings.Replace(good, `"item_category":"`, "\"item_category\":\"\xff", 1)), 400, kindMalformedJSON, 1, "item_category"},
		{"too many rows", "", rows(good, good, good, good, good, good), 413, kindTooManyRows, -1, ""},
		{"body over the limit", "", rows(good) + strings.Repeat(" ", 5000), 413, kindBodyTooLarge, -1, ""},
		{"GET", http.MethodGet, ``, 405, kindMethod, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, ts.url+"/v1/score", bytes.NewReader([]byte(tc.body)))
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			var e errorResponse
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			assert.Equal(t, string(tc.kind), e.Error.Kind, e.Error.Message)
			if tc.row >= 0 {
				require.NotNil(t, e.Error.Row, e.Error.Message)
				assert.Equal(t, tc.row, *e.Error.Row)
				assert.Contains(t, e.Error.Message, fmt.Sprintf("row %d", tc.row))
			} else {
				assert.Nil(t, e.Error.Row, e.Error.Message)
			}
			assert.Equal(t, tc.field, e.Error.Field)
			if tc.field != "" {
				assert.Contains(t, e.Error.Message, fmt.Sprintf("%q", tc.field))
			}
		})
	}
	r, err := score(ts.url, []int{0, 1})
	require.NoError(t, err)
	require.NoError(t, checkScores(r, []int{0, 1}))
	for _, code := range []string{"500", "503"} {
		assert.Zero(t, testutil.ToFloat64(ts.metrics.requests.WithLabelValues(code)))
	}
	assert.Equal(t, float64(10), testutil.ToFloat64(ts.metrics.errors.WithLabelValues(string(kindWrongType))))
	// The same counts as Prometheus scrapes them.
	resp, err := client.Get(ts.url + "/metrics")
	require.NoError(t, err)
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`msrtrain_serve_errors_total{kind="missing_field"} 4`,
		`msrtrain_serve_requests_total{code="200"} 1`,
		`msrtrain_serve_rows_total 2`,
		`msrtrain_serve_request_duration_seconds_count 27`,
		`msrtrain_serve_batch_rows_count 1`,
		fmt.Sprintf(`msrtrain_serve_model_info{model=%q} 1`, fx.nameA),
	} {
		assert.Contains(t, string(text), want)
	}
}

func TestHealthReadyAndModel(t *testing.T) {
	ts := startServer(t, Options{})
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get(ts.url + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	ts.draining.Store(true)
	resp, err := client.Get(ts.url + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "not ready while draining")
	ts.draining.Store(false)

	resp, err = client.Get(ts.url + "/v1/model")
	require.NoError(t, err)
	defer resp.Body.Close()
	var d modelDescription
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	assert.Equal(t, modelDescription{Model: fx.nameA, ScenarioField: "scenario", Scenarios: d.Scenarios,
		Categorical: []string{"user_id", "item_id", "item_category", "user_segment"},
		Numeric:     []string{"item_pop", "user_activity"}}, d)
	assert.NotEmpty(t, d.Scenarios)
}

func TestOptionsValidate(t *testing.T) {
	load := CheckpointLoader("cpu", 1)
	tests := []struct {
		name   string
		change func(*Options)
		want   string // "" for valid
	}{
		{"defaults", func(o *Options) {}, ""},
		{"admin on loopback without a token", func(o *Options) { o.AdminAddr = "127.0.0.1:9090" }, ""},
		{"admin on localhost without a token", func(o *Options) { o.AdminAddr = "localhost:9090" }, ""},
		{"admin on every interface without a token", func(o *Options) { o.AdminAddr = ":9090" }, "not a loopback address"},
		{"admin off loopback with a token", func(o *Options) { o.AdminAddr = "0.0.0.0:9090"; o.AdminToken = "t" }, ""},
		{"admin address without a port", func(o *Options) { o.AdminAddr = "127.0.0.1" }, "--admin-addr"},
		{"no checkpoint", func(o *Options) { o.Checkpoint = "" }, "--checkpoint"},
		{"zero batch", func(o *Options) { o.MaxBatchRows = -1 }, "--max-batch-rows"},
		{"negative wait", func(o *Options) { o.MaxWait = -1 }, "--max-wait"},
		{"write timeout below the request timeout", func(o *Options) { o.WriteTimeout = o.RequestTimeout / 2 }, "--write-timeout"},
	}
	for _, tc := range tests {
		o := Options{Checkpoint: "run", Load: load}
		o.fillDefaults()
		tc.change(&o)
		err := o.Validate()
		if tc.want == "" {
			assert.NoError(t, err, tc.name)
		} else if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.want, tc.name)
		}
	}
	// A bad checkpoint at start is an error, and nothing is left listening.
	_, err := New(Options{Checkpoint: filepath.Join(fx.dir, "nothing"), Load: load, Addr: "127.0.0.1:0"})
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no checkpoint"), "%v", err)
}
