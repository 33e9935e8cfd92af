package knowledge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// OpenAIConfig configures the encoder for servers that speak the OpenAI
// HTTP API (vLLM, llama.cpp's server, Ollama, TEI, OpenAI).
type OpenAIConfig struct {
	BaseURL        string // e.g. http://localhost:8000/v1
	ChatModel      string // reasoning model; empty embeds the prompt alone
	EmbeddingModel string
	Dim            int           // expected embedding dimension (required)
	APIKeyEnv      string        // env var holding the API key; default OPENAI_API_KEY
	SystemPrompt   string        // default DefaultSystemPrompt
	MaxTokens      int           // reasoning length limit; default 512
	Concurrency    int           // requests in flight; default 4
	EmbedBatch     int           // inputs per embeddings request; default 16
	Timeout        time.Duration // per request; default 2m
	MaxRetries     int           // retries of 429, 5xx and timeouts; default 5
	BackoffBase    time.Duration // first backoff; default 500ms, doubled per retry
	BackoffMax     time.Duration // backoff cap; default 30s
	HTTPClient     *http.Client  // default a client without a global timeout
}

// DefaultSystemPrompt is the chat system message unless configured.
const DefaultSystemPrompt = "You are a helpful assistant with expert knowledge of recommender systems and user behaviour."

// OpenAIEncoder asks a chat model to reason about each prompt, then embeds
// the prompt followed by the reasoning.
type OpenAIEncoder struct {
	cfg    OpenAIConfig
	apiKey string
	// wait sleeps before a retry (sleep when nil); tests record the waits instead.
	wait func(ctx context.Context, d time.Duration) error
}

// NewOpenAIEncoder validates cfg, fills defaults and reads the API key from
// the environment (requests carry no Authorization header when it is unset).
// MaxRetries is taken as given: 0 means one attempt per request.
func NewOpenAIEncoder(cfg OpenAIConfig) (*OpenAIEncoder, error) {
	if missing := cfg.missing(); len(missing) > 0 {
		return nil, missing
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxTokens, 512)
	def(&cfg.Concurrency, 4)
	def(&cfg.EmbedBatch, 16)
	cfg.MaxRetries = max(cfg.MaxRetries, 0)
	defDur(&cfg.Timeout, 2*time.Minute)
	defDur(&cfg.BackoffBase, 500*time.Millisecond)
	defDur(&cfg.BackoffMax, 30*time.Second)
	if cfg.APIKeyEnv == "" {
		cfg.APIKeyEnv = "OPENAI_API_KEY"
	}
	if cfg.SystemPrompt == "" {
		cfg.SystemPrompt = DefaultSystemPrompt
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	return &OpenAIEncoder{cfg: cfg, apiKey: os.Getenv(cfg.APIKeyEnv)}, nil
}

// MissingSettings is NewOpenAIEncoder's error for required settings left
// empty: BaseURL, EmbeddingModel, Dim (OpenAIConfig's field names).
type MissingSettings []string

func (m MissingSettings) Error() string {
	return "openai encoder: missing " + strings.Join(m, ", ")
}

// missing lists the required settings cfg lacks.
func (cfg OpenAIConfig) missing() MissingSettings {
	var out MissingSettings
	for _, f := range []struct {
		name  string
		lacks bool
	}{{"BaseURL", cfg.BaseURL == ""}, {"EmbeddingModel", cfg.EmbeddingModel == ""}, {"Dim", cfg.Dim <= 0}} {
		if f.lacks {
			out = append(out, f.name)
		}
	}
	return out
}

func (e *OpenAIEncoder) Name() string { return "openai" }
func (e *OpenAIEncoder) Dim() int     { return e.cfg.Dim }

// Model is "chat+embedding", or the embedding model alone without chat.
func (e *OpenAIEncoder) Model() string {
	if e.cfg.ChatModel == "" {
		return e.cfg.EmbeddingModel
	}
	return e.cfg.ChatModel + "+" + e.cfg.EmbeddingModel
}

// BatchSize keeps every request slot busy while bounding the work a crash
// can lose to one chunk.
func (e *OpenAIEncoder) BatchSize() int { return max(4*e.cfg.Concurrency, e.cfg.EmbedBatch) }

// Encode runs the chat completions (Concurrency at a time), then embeds
// prompt + reasoning in batches of EmbedBatch. A prompt that fails (a 4xx,
// a malformed answer) does not stop the others; an error every request
// would hit (retries exhausted, 401, 403, 404) or a cancelled context stops
// new requests. It returns every result that completed and, when some
// prompts got none, a *PromptsFailed counting them.
func (e *OpenAIEncoder) Encode(ctx context.Context, prompts []Prompt) ([]Result, error) {
	rs := newRequests(ctx, e.cfg.Concurrency)
	reasoning, chatted := e.chatPhase(rs, prompts)
	// What was reasoned about is still worth embedding even if the chat
	// endpoint failed for good: only embedding errors stop this phase.
	rs.resume()
	vectors := e.embedPhase(rs, prompts, reasoning, chatted)

	var out []Result
	for i, p := range prompts {
		if vectors[i] != nil {
			out = append(out, Result{Key: p.Key, Reasoning: reasoning[i], Vector: vectors[i]})
		}
	}
	if err := ctx.Err(); err != nil {
		return out, context.Cause(ctx)
	}
	if rs.failures == 0 {
		return out, nil
	}
	return out, &PromptsFailed{Prompts: len(prompts), Failed: rs.failures, NotTried: len(prompts) - len(out) - rs.failures, First: rs.firstErr}
}

// chatPhase asks the chat model about every prompt; chatted[i] says the
// prompt is ready to embed (always, without a chat model).
func (e *OpenAIEncoder) chatPhase(rs *requests, prompts []Prompt) (reasoning []string, chatted []bool) {
	reasoning, chatted = make([]string, len(prompts)), make([]bool, len(prompts))
	for i, p := range prompts {
		if e.cfg.ChatModel == "" {
			chatted[i] = true
			continue
		}
		started := rs.start(func() {
			r, err := e.chat(rs.ctx, p.Text)
			if err != nil {
				rs.fail(fmt.Errorf("%s: chat completion: %w", p.Key, err), 1)
				return
			}
			reasoning[i], chatted[i] = r, true
		})
		if !started {
			break
		}
	}
	rs.wait()
	return reasoning, chatted
}

// embedPhase embeds the chatted prompts with their reasoning, EmbedBatch
// inputs per request; vectors[i] is nil where prompt i got none.
func (e *OpenAIEncoder) embedPhase(rs *requests, prompts []Prompt, reasoning []string, chatted []bool) [][]float32 {
	var ready []int
	for i := range prompts {
		if chatted[i] {
			ready = append(ready, i)
		}
	}
	vectors := make([][]float32, len(prompts))
	for start := 0; start < len(ready); start += e.cfg.EmbedBatch {
		batch := ready[start:min(start+e.cfg.EmbedBatch, len(ready))]
		started := rs.start(func() {
			inputs := make([]string, len(batch))
			for j, i := range batch {
				inputs[j] = embeddingInput(prompts[i].Text, reasoning[i])
			}
			vecs, err := e.embed(rs.ctx, inputs)
			if err != nil {
				rs.fail(fmt.Errorf("%s: embeddings: %w", batchName(prompts, batch), err), len(batch))
				return
			}
			for j, i := range batch {
				if err := checkVector(prompts[i].Key, vecs[j], e.cfg.Dim); err != nil {
					rs.fail(fmt.Errorf("embeddings from %s: %w", e.cfg.BaseURL, err), 1)
					continue
				}
				vectors[i] = vecs[j]
			}
		})
		if !started {
			break
		}
	}
	rs.wait()
	return vectors
}

// requests runs an encoder's HTTP requests, a bounded number at a time,
// and counts the prompts that failed. The first error that every further
// request would hit too (stopsBatch) stops new requests.
type requests struct {
	ctx      context.Context
	sem      chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	firstErr error
	failures int
	stop     bool
}

func newRequests(ctx context.Context, concurrency int) *requests {
	return &requests{ctx: ctx, sem: make(chan struct{}, concurrency)}
}

// fail records an error that cost n prompts their result.
func (rs *requests) fail(err error, n int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.firstErr == nil {
		rs.firstErr = err
	}
	rs.failures += n
	rs.stop = rs.stop || stopsBatch(err)
}

func (rs *requests) stopped() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.stop || rs.ctx.Err() != nil
}

// resume lets new requests start again after a phase that stopped.
func (rs *requests) resume() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.stop = false
}

// start runs fn in a goroutine when a slot frees, unless requests stopped;
// it reports whether fn started.
func (rs *requests) start(fn func()) bool {
	if !acquire(rs.ctx, rs.sem) {
		return false
	}
	if rs.stopped() {
		<-rs.sem
		return false
	}
	rs.wg.Add(1)
	go func() {
		defer func() { <-rs.sem; rs.wg.Done() }()
		fn()
	}()
	return true
}

// wait waits for every started request.
func (rs *requests) wait() { rs.wg.Wait() }

// acquire takes a semaphore slot unless ctx ends first.
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// embeddingInput is the text embedded for a prompt: the prompt, then the
// LLM's reasoning about it.
func embeddingInput(prompt, reasoning string) string {
	if reasoning == "" {
		return prompt
	}
	return prompt + "\n\n" + reasoning
}

func batchName(prompts []Prompt, batch []int) string {
	if len(batch) == 1 {
		return prompts[batch[0]].Key
	}
	return fmt.Sprintf("%s (and %d more)", prompts[batch[0]].Key, len(batch)-1)
}

type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	Temperature float64       `json:"temperature"`
	MaxTokens   int           `json:"max_tokens"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

func (e *OpenAIEncoder) chat(ctx context.Context, prompt string) (string, error) {
	req := chatRequest{
		Model:     e.cfg.ChatModel,
		Messages:  []chatMessage{{"system", e.cfg.SystemPrompt}, {"user", prompt}},
		MaxTokens: e.cfg.MaxTokens,
	}
	var resp chatResponse
	if err := e.post(ctx, "/chat/completions", req, &resp); err != nil {
		return "", err
	}
	if len(resp.Choices) == 0 || resp.Choices[0].Message.Content == nil {
		return "", errors.New("malformed answer: no choices[0].message.content")
	}
	return strings.TrimSpace(*resp.Choices[0].Message.Content), nil
}

type embeddingRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
}

type embeddingResponse struct {
	Data []struct {
		Index     *int      `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
}

// embed returns one vector per input, in input order.
func (e *OpenAIEncoder) embed(ctx context.Context, inputs []string) ([][]float32, error) {
	var resp embeddingResponse
	req := embeddingRequest{Model: e.cfg.EmbeddingModel, Input: inputs, EncodingFormat: "float"}
	if err := e.post(ctx, "/embeddings", req, &resp); err != nil {
		return nil, err
	}
	if len(resp.Data) != len(inputs) {
		return nil, fmt.Errorf("malformed answer: %d embeddings for %d inputs", len(resp.Data), len(inputs))
	}
	out := make([][]float32, len(inputs))
	for k, d := range resp.Data {
		i := k
		if d.Index != nil {
			i = *d.Index
		}
		if i < 0 || i >= len(inputs) || out[i] != nil {
			return nil, fmt.Errorf("malformed answer: bad or repeated embedding index %d", i)
		}
		v := make([]float32, len(d.Embedding))
		for j, x := range d.Embedding {
			v[j] = float32(x)
			if math.Abs(x) > math.MaxFloat32 {
				v[j] = float32(math.Inf(1)) // reported by checkVector
			}
		}
		out[i] = v
	}
	return out, nil
}
