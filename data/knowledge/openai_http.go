package knowledge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// httpError is a non-2xx answer.
type httpError struct {
	method, url string
	status      int
	message     string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.url, e.status, http.StatusText(e.status), e.message)
}

// errGaveUp marks a request that failed after every retry: the server is
// not healthy, so Encode starts no further requests.
var errGaveUp = errors.New("giving up")

// stopsBatch reports errors that every further request would hit too: an
// exhausted retry budget, bad credentials, an unknown model or URL.
func stopsBatch(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		switch he.status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
			return true
		}
	}
	return errors.Is(err, errGaveUp)
}

func retryable(status int) bool { return status == http.StatusTooManyRequests || status >= 500 }

// post sends body as JSON to BaseURL+path and decodes the answer into out.
// 429s, 5xx answers, network errors and per-request timeouts are retried up
// to MaxRetries times with jittered exponential backoff (or the server's
// Retry-After); other 4xx answers and malformed JSON fail at once.
func (e *OpenAIEncoder) post(ctx context.Context, path string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	url := e.cfg.BaseURL + path
	for attempt := 0; ; attempt++ {
		data, retryAfter, err := e.once(ctx, url, payload)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var he *httpError
		if err == nil {
			if jerr := json.Unmarshal(data, out); jerr != nil {
				return fmt.Errorf("POST %s: malformed JSON answer: %v", url, jerr)
			}
			return nil
		}
		if errors.As(err, &he) && !retryable(he.status) {
			return err
		}
		if attempt >= e.cfg.MaxRetries {
			return fmt.Errorf("%w after %s: %w", errGaveUp, plural(attempt+1, "attempt"), err)
		}
		wait := e.wait
		if wait == nil {
			wait = sleep
		}
		if err := wait(ctx, e.backoff(attempt, retryAfter)); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx ends (its cause).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// once makes one request and returns the body of a 2xx answer, or an error
// (an *httpError for other statuses) and the server's Retry-After.
func (e *OpenAIEncoder) once(ctx context.Context, url string, payload []byte) ([]byte, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if e.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("POST %s: reading answer: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, parseRetryAfter(resp.Header.Get("Retry-After")), &httpError{"POST", url, resp.StatusCode, serverMessage(data)}
	}
	return data, 0, nil
}

// serverMessage extracts the error text of an OpenAI-style ({"error":
// {"message": ...}}), Ollama-style ({"error": "..."}) or FastAPI-style
// ({"detail": ...}) error body, else returns the body, shortened.
func serverMessage(body []byte) string {
	var v struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		var obj struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &obj) == nil && obj.Message != "":
			return obj.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case len(v.Detail) > 0:
			return string(v.Detail)
		}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if msg == "" {
		msg = "(empty body)"
	}
	return msg
}

func parseRetryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff is the wait before retry attempt+1: the server's Retry-After when
// it sent one, else BackoffBase·2^attempt capped at BackoffMax, with
// jitter in [d/2, d].
func (e *OpenAIEncoder) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, 5*time.Minute)
	}
	d := e.cfg.BackoffMax
	if attempt < 30 {
		d = min(e.cfg.BackoffBase<<attempt, e.cfg.BackoffMax)
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
