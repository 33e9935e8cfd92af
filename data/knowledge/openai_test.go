package knowledge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDim = 16

// fakeAI implements the OpenAI chat-completions and embeddings endpoints.
// Chat answers "analysis of <prompt>"; embeddings are hash vectors of the
// input. fault may answer a request itself.
type fakeAI struct {
	t     *testing.T
	hash  *HashEncoder
	mu    sync.Mutex
	calls map[string]int // per "chat:<prompt>" or "embed:<first input>"
	auth  map[string]bool
	fault func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool
}

func newFakeAI(t *testing.T) (*fakeAI, *httptest.Server) {
	f := &fakeAI{t: t, hash: NewHashEncoder(testDim, 9), calls: map[string]int{}, auth: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAI) count(kind, content string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[kind+":"+content]++
	return f.calls[kind+":"+content]
}

// setFault swaps the fault injector; handlers of cancelled requests may
// still be running, so it goes through the lock, and so does resetting counts.
func (f *fakeAI) setFault(fn func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
	f.calls = map[string]int{}
}

func (f *fakeAI) snapshot() (map[string]int, func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := make(map[string]int, len(f.calls))
	for k, v := range f.calls {
		calls[k] = v
	}
	return calls, f.fault
}

func (f *fakeAI) total(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, c := range f.calls {
		if strings.HasPrefix(k, kind+":") {
			n += c
		}
	}
	return n
}

func (f *fakeAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.auth[r.Header.Get("Authorization")] = true
	f.mu.Unlock()
	switch r.URL.Path {
	case "/v1/chat/completions":
		var req chatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "chat-m" || len(req.Messages) != 2 ||
			req.Messages[0].Role != "system" || req.Messages[1].Role != "user" || req.MaxTokens != 512 || req.Temperature != 0 {
			http.Error(w, `{"error":{"message":"bad chat request"}}`, http.StatusBadRequest)
			return
		}
		content := req.Messages[1].Content
		attempt := f.count("chat", content)
		if _, fault := f.snapshot(); fault != nil && fault(w, r, "chat", content, attempt) {
			return
		}
		reply := "analysis of " + content
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": reply}}}})
	case "/v1/embeddings":
		var req embeddingRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "embed-m" || len(req.Input) == 0 || req.EncodingFormat != "float" {
			http.Error(w, `{"error":{"message":"bad embeddings request"}}`, http.StatusBadRequest)
			return
		}
		attempt := f.count("embed", req.Input[0])
		if _, fault := f.snapshot(); fault != nil && fault(w, r, "embed", strings.Join(req.Input, "|"), attempt) {
			return
		}
		var data []any
		for i := len(req.Input) - 1; i >= 0; i-- { // out of order on purpose
			data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": f.hash.Vector(req.Input[i])})
		}
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
	default:
		http.NotFound(w, r)
	}
}

func testEncoder(t *testing.T, url string, mod func(*OpenAIConfig)) *OpenAIEncoder {
	cfg := OpenAIConfig{BaseURL: url + "/v1/", ChatModel: "chat-m", EmbeddingModel: "embed-m", Dim: testDim,
		APIKeyEnv: "MSRTRAIN_TEST_KEY", Concurrency: 3, EmbedBatch: 4, Timeout: 2 * time.Second, MaxRetries: 3,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewOpenAIEncoder(cfg)
	require.NoError(t, err)
	return e
}

func testPrompts(n int) []Prompt {
	ps := make([]Prompt, n)
	for i := range ps {
		ps[i] = Prompt{Key: UserKey(fmt.Sprint(i)), Text: fmt.Sprintf("prompt %d", i)}
	}
	return ps
}

// checkResults asserts results hold exactly the keys want, with the fake
// server's reasoning and vectors.
func checkResults(t *testing.T, f *fakeAI, res []Result, want []Prompt) {
	t.Helper()
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d", len(res), len(want))
	}
	byKey := map[string]Result{}
	for _, r := range res {
		byKey[r.Key] = r
	}
	for _, p := range want {
		r, ok := byKey[p.Key]
		reasoning := "analysis of " + p.Text
		if !ok || r.Reasoning != reasoning || !reflect.DeepEqual(r.Vector, f.hash.Vector(p.Text+"\n\n"+reasoning)) {
			t.Fatalf("%s: result %+v, %v", p.Key, r, ok)
		}
	}
}

// checkSubset asserts every result is correct, whichever were returned.
func checkSubset(t *testing.T, f *fakeAI, res []Result, from []Prompt) {
	t.Helper()
	var want []Prompt
	for _, p := range from {
		for _, r := range res {
			if r.Key == p.Key {
				want = append(want, p)
			}
		}
	}
	checkResults(t, f, res, want)
}

func TestOpenAIEncoderHappyPath(t *testing.T) {
	t.Setenv("MSRTRAIN_TEST_KEY", "sk-test")
	f, srv := newFakeAI(t)
	e := testEncoder(t, srv.URL, nil)
	if e.Name() != "openai" || e.Model() != "chat-m+embed-m" || e.Dim() != testDim || e.BatchSize() != 12 {
		t.Errorf("identity: %s %s %d %d", e.Name(), e.Model(), e.Dim(), e.BatchSize())
	}
	prompts := testPrompts(10)
	res, err := e.Encode(context.Background(), prompts)
	require.NoError(t, err)
	checkResults(t, f, res, prompts)
	if f.total("chat") != 10 || f.total("embed") != 3 {
		t.Errorf("calls: %d chats, %d embedding requests; want 10 and 3", f.total("chat"), f.total("embed"))
	}
	if !reflect.DeepEqual(f.auth, map[string]bool{"Bearer sk-test": true}) {
		t.Errorf("Authorization headers = %v", f.auth)
	}
}

func TestOpenAIEncoderRetries(t *testing.T) {
	// backoff is any wait testEncoder's backoff allows (BackoffBase 1ms
	// doubled, capped at BackoffMax 5ms, jittered down to half).
	const backoff = -1
	tests := []struct {
		name      string
		fault     func(w http.ResponseWriter, kind string, attempt int) bool
		wantCalls map[string]int // total per kind for the single prompt
		wantWaits []time.Duration
	}{
		{"429 twice", func(w http.ResponseWriter, kind string, attempt int) bool {
			if kind == "chat" && attempt <= 2 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, `{"error":{"message":"slow down"}}`, http.StatusTooManyRequests)
				return true
			}
			return false
		}, map[string]int{"chat": 3, "embed": 1}, []time.Duration{backoff, backoff}},
		{"429 honours Retry-After", func(w http.ResponseWriter, kind string, attempt int) bool {
			if kind == "embed" && attempt == 1 {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		}, map[string]int{"chat": 1, "embed": 2}, []time.Duration{7 * time.Second}},
		{"500 and 503", func(w http.ResponseWriter, kind string, attempt int) bool {
			if attempt == 1 {
				code := map[string]int{"chat": 500, "embed": 503}[kind]
				http.Error(w, "oops", code)
				return true
			}
			return false
		}, map[string]int{"chat": 2, "embed": 2}, []time.Duration{backoff, backoff}},
		{"timeout", func(w http.ResponseWriter, kind string, attempt int) bool {
			if kind == "chat" && attempt == 1 {
				time.Sleep(300 * time.Millisecond)
			}
			return false
		}, map[string]int{"chat": 2, "embed": 1}, []time.Duration{backoff}},
		{"connection dropped", func(w http.ResponseWriter, kind string, attempt int) bool {
			if kind == "embed" && attempt == 1 {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return true
			}
			return false
		}, map[string]int{"chat": 1, "embed": 2}, []time.Duration{backoff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeAI(t)
			f.setFault(func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool {
				return tc.fault(w, kind, attempt)
			})
			e := testEncoder(t, srv.URL, func(c *OpenAIConfig) { c.Timeout = 100 * time.Millisecond })
			var mu sync.Mutex
			var waits []time.Duration
			e.wait = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				waits = append(waits, d)
				return nil
			}
			prompts := testPrompts(1)
			res, err := e.Encode(context.Background(), prompts)
			require.NoError(t, err)
			checkResults(t, f, res, prompts)
			for kind, n := range tc.wantCalls {
				if got := f.total(kind); got != n {
					t.Errorf("%s calls = %d, want %d", kind, got, n)
				}
			}
			require.Len(t, waits, len(tc.wantWaits), "one wait before each retry: %v", waits)
			for i, want := range tc.wantWaits {
				if want == backoff {
					assert.True(t, waits[i] >= time.Millisecond/2 && waits[i] <= 5*time.Millisecond, "wait %d: %v, want a backoff in [0.5ms, 5ms]", i, waits[i])
				} else {
					assert.Equal(t, want, waits[i], "wait %d: the server's Retry-After", i)
				}
			}
		})
	}
}

func TestOpenAIEncoderErrors(t *testing.T) {
	bad := Prompt{Key: "user:bad", Text: "prompt BAD"}
	tests := []struct {
		name      string
		kind      string
		answer    func(w http.ResponseWriter, content string)
		want      []string
		wantCalls int  // requests of kind carrying the bad prompt
		stops     bool // the error stops new requests, so some good prompts may be skipped
	}{
		{"400 names the server's message", "chat", func(w http.ResponseWriter, _ string) {
			http.Error(w, `{"error":{"message":"model 'chat-m' does not exist","type":"invalid_request_error"}}`, 400)
		}, []string{"user:bad: chat completion", "400 Bad Request: model 'chat-m' does not exist"}, 1, false},
		{"401 ollama style", "chat", func(w http.ResponseWriter, _ string) {
			http.Error(w, `{"error":"unauthorized"}`, 401)
		}, []string{"user:bad", "401 Unauthorized: unauthorized"}, 1, true},
		{"persistent 500", "chat", func(w http.ResponseWriter, _ string) {
			http.Error(w, "upstream crashed", 500)
		}, []string{"user:bad", "giving up after 4 attempts", "500 Internal Server Error: upstream crashed"}, 4, true},
		{"malformed JSON", "chat", func(w http.ResponseWriter, _ string) {
			w.Write([]byte(`{"choices": [`))
		}, []string{"user:bad", "malformed JSON answer"}, 1, false},
		{"missing content", "chat", func(w http.ResponseWriter, _ string) {
			w.Write([]byte(`{"choices": []}`))
		}, []string{"user:bad", "no choices[0].message.content"}, 1, false},
		{"wrong dimension", "embed", func(w http.ResponseWriter, _ string) {
			w.Write([]byte(`{"data": [{"index": 0, "embedding": [1, 2, 3]}]}`))
		}, []string{"user:bad: vector has dimension 3, want 16"}, 1, false},
		{"overflowing value", "embed", func(w http.ResponseWriter, _ string) {
			v := make([]string, testDim)
			for i := range v {
				v[i] = "0"
			}
			v[5] = "1e39"
			w.Write([]byte(`{"data": [{"index": 0, "embedding": [` + strings.Join(v, ",") + `]}]}`))
		}, []string{"user:bad: vector component 5 is +Inf"}, 1, false},
		{"count mismatch", "embed", func(w http.ResponseWriter, _ string) {
			w.Write([]byte(`{"data": []}`))
		}, []string{"user:bad: embeddings", "0 embeddings for 1 inputs"}, 1, false},
		{"malformed embeddings", "embed", func(w http.ResponseWriter, _ string) {
			w.Write([]byte(`{"data": [{"index": 0, "embedding": "AAAA"}]}`))
		}, []string{"user:bad: embeddings", "malformed JSON answer"}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeAI(t)
			f.setFault(func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool {
				if kind == tc.kind && strings.Contains(content, "BAD") {
					tc.answer(w, content)
					return true
				}
				return false
			})
			// Embed one prompt per request so the bad one fails alone.
			e := testEncoder(t, srv.URL, func(c *OpenAIConfig) { c.EmbedBatch = 1 })
			good := testPrompts(3)
			res, err := e.Encode(context.Background(), append([]Prompt{good[0], bad}, good[1:]...))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.stops {
				checkSubset(t, f, res, good)
			} else {
				checkResults(t, f, res, good) // nothing else lost
			}
			calls, _ := f.snapshot()
			if got := calls[tc.kind+":prompt BAD"+map[string]string{"chat": "", "embed": "\n\nanalysis of prompt BAD"}[tc.kind]]; got != tc.wantCalls {
				t.Errorf("bad prompt sent %d times, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestOpenAIBuildResumes(t *testing.T) {
	f, srv := newFakeAI(t)
	e := testEncoder(t, srv.URL, func(c *OpenAIConfig) { c.Concurrency = 2; c.EmbedBatch = 2 }) // 8 prompts per chunk
	prompts := testPrompts(20)
	meta := Meta{Encoder: e.Name(), Model: e.Model(), Dim: e.Dim(), TemplateHash: "t"}
	dir := t.TempDir()

	// Run 1: interrupted (as by Ctrl-C) when the 12th chat arrives, in the
	// second chunk; the first chunk is already stored.
	ctx, cancel := context.WithCancel(context.Background())
	var chats int
	var mu sync.Mutex
	f.setFault(func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool {
		mu.Lock()
		defer mu.Unlock()
		if kind == "chat" {
			if chats++; chats == 12 {
				cancel()
			}
		}
		return false
	})
	s, _ := Open(dir, meta)
	st, err := Build(ctx, s, e, prompts, nil)
	if !errors.Is(err, context.Canceled) || st.Encoded != 8 {
		t.Fatalf("interrupted build: %+v, %v", st, err)
	}

	// Run 2: one prompt is refused; everything else is stored.
	f.setFault(func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool {
		if content == "prompt 13" {
			http.Error(w, `{"error":{"message":"prompt too long"}}`, 400)
			return true
		}
		return false
	})
	s, err = Open(dir, meta)
	if err != nil || s.Len() != 8 {
		t.Fatalf("reopen: %d vectors, %v", s.Len(), err)
	}
	st, err = Build(context.Background(), s, e, prompts, nil)
	// A refusal of one prompt stops nothing: every other prompt is stored,
	// and the error counts the build's prompts.
	if err == nil || !strings.Contains(err.Error(), "openai encoder: 1 of 12 prompts failed; first: user:13: chat completion") ||
		!strings.Contains(err.Error(), "(11 encoded and stored; rerun to retry the rest)") || st.Encoded != 11 {
		t.Fatalf("build with a refused prompt: %+v, %v", st, err)
	}

	// Run 3: only the missing prompt is sent.
	f.setFault(nil)
	s, _ = Open(dir, meta)
	st, err = Build(context.Background(), s, e, prompts, nil)
	if err != nil || st != (BuildStats{Prompts: 20, Stored: 19, Encoded: 1}) {
		t.Fatalf("final build: %+v, %v", st, err)
	}
	want := map[string]int{"chat:prompt 13": 1, "embed:prompt 13\n\nanalysis of prompt 13": 1}
	if calls, _ := f.snapshot(); !reflect.DeepEqual(calls, want) {
		t.Errorf("final build sent %v, want %v", calls, want)
	}
	res := make([]Result, 0, len(prompts))
	for _, p := range prompts {
		v, _ := s.Lookup(p.Key)
		r, _, _ := s.Reasoning(p.Key)
		res = append(res, Result{Key: p.Key, Reasoning: r, Vector: v})
	}
	checkResults(t, f, res, prompts)
}

// A server that fails every request for good: the error counts the whole
// build's prompts (those of the first chunk that failed, and every one not
// tried after), and max_retries 0 means one attempt.
func TestOpenAIBuildCountsEveryPrompt(t *testing.T) {
	f, srv := newFakeAI(t)
	// The server answers once both request slots are in use, so that two
	// requests are in flight when the first failure stops new ones.
	var arrived sync.WaitGroup
	arrived.Add(2)
	var once sync.Once
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	f.setFault(func(w http.ResponseWriter, r *http.Request, kind, content string, attempt int) bool {
		arrived.Done()
		select {
		case <-both:
		case <-time.After(5 * time.Second):
			once.Do(func() { t.Error("the second request never came") })
		}
		http.Error(w, "no model loaded", http.StatusServiceUnavailable)
		return true
	})
	e := testEncoder(t, srv.URL, func(c *OpenAIConfig) { c.Concurrency = 2; c.EmbedBatch = 2; c.MaxRetries = 0 }) // 8 prompts per chunk
	s, err := Open(t.TempDir(), Meta{Encoder: e.Name(), Model: e.Model(), Dim: e.Dim()})
	require.NoError(t, err)
	st, err := Build(context.Background(), s, e, testPrompts(30), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "knowledge: openai encoder: 2 of 30 prompts failed and 28 were not tried; first: user:")
	assert.Contains(t, err.Error(), "giving up after 1 attempt: POST ")
	assert.Contains(t, err.Error(), "(0 encoded and stored; rerun to retry the rest)")
	assert.Equal(t, 0, st.Encoded)
	assert.Equal(t, 2, f.total("chat"), "two requests in flight, no retry, then none")
}

// The missing-settings error names each setting that is missing.
func TestOpenAIEncoderNamesMissingSettings(t *testing.T) {
	_, err := NewOpenAIEncoder(OpenAIConfig{BaseURL: "http://x/v1"})
	assert.EqualError(t, err, "openai encoder: missing EmbeddingModel, Dim")
	assert.Equal(t, MissingSettings{"EmbeddingModel", "Dim"}, err)
	_, err = NewOpenAIEncoder(OpenAIConfig{EmbeddingModel: "m", Dim: 8})
	assert.EqualError(t, err, "openai encoder: missing BaseURL")
}
