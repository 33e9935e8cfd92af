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
func NewOpenAIEncoder(cfg OpenAIConfig) (*OpenAIEncoder, error) {
	if cfg.BaseURL == "" || cfg.EmbeddingModel == "" || cfg.Dim <= 0 {
		return nil, fmt.Errorf("openai encoder: base URL, embedding model and a positive dim are required")
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
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
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
// new requests. It returns every result that completed, with the first
// error (and how many prompts failed).
func (e *OpenAIEncoder) Encode(ctx context.Context, prompts []Prompt) ([]Result, error) {
	var (
		mu       sync.Mutex
		firstErr error
		failures int
		stop     bool
		wg       sync.WaitGroup
		sem      = make(chan struct{}, e.cfg.Concurrency)
	)
	fail := func(err error, n int) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
		failures += n
		stop = stop || stopsBatch(err)
	}
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stop || ctx.Err() != nil
	}
	// run starts fn in a goroutine when a slot frees, unless stopped.
	run := func(fn func()) bool {
		if !acquire(ctx, sem) {
			return false
		}
		if stopped() {
			<-sem
			return false
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn()
		}()
		return true
	}

	reasoning := make([]string, len(prompts))
	chatted := make([]bool, len(prompts))
	for i, p := range prompts {
		if e.cfg.ChatModel == "" {
			chatted[i] = true
			continue
		}
		started := run(func() {
			r, err := e.chat(ctx, p.Text)
			if err != nil {
				fail(fmt.Errorf("%s: chat completion: %w", p.Key, err), 1)
				return
			}
			reasoning[i], chatted[i] = r, true
		})
		if !started {
			break
		}
	}
	wg.Wait()
	// What was reasoned about is still worth embedding even if the chat
	// endpoint failed for good: only embedding errors stop this phase.
	stop = false

	var ready []int
	for i := range prompts {
		if chatted[i] {
			ready = append(ready, i)
		}
	}
	vectors := make([][]float32, len(prompts))
	for start := 0; start < len(ready); start += e.cfg.EmbedBatch {
		batch := ready[start:min(start+e.cfg.EmbedBatch, len(ready))]
		started := run(func() {
			inputs := make([]string, len(batch))
			for j, i := range batch {
				inputs[j] = embeddingInput(prompts[i].Text, reasoning[i])
			}
			vecs, err := e.embed(ctx, inputs)
			if err != nil {
				fail(fmt.Errorf("%s: embeddings: %w", batchName(prompts, batch), err), len(batch))
				return
			}
			for j, i := range batch {
				if err := checkVector(prompts[i].Key, vecs[j], e.cfg.Dim); err != nil {
					fail(fmt.Errorf("embeddings from %s: %w", e.cfg.BaseURL, err), 1)
					continue
				}
				vectors[i] = vecs[j]
			}
		})
		if !started {
			break
		}
	}
	wg.Wait()

	var out []Result
	for i, p := range prompts {
		if vectors[i] != nil {
			out = append(out, Result{Key: p.Key, Reasoning: reasoning[i], Vector: vectors[i]})
		}
	}
	if err := ctx.Err(); err != nil {
		return out, context.Cause(ctx)
	}
	if failures > 1 {
		firstErr = fmt.Errorf("%d of %d prompts failed; first: %w", failures, len(prompts), firstErr)
	}
	return out, firstErr
}

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
