package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock whose Sleep returns at once and moves time forward,
// recording every requested wait.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if d > 0 {
		c.t = c.t.Add(d)
	}
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// scriptedServer answers the i-th request with steps[i] (the last step
// repeats). It records the decoded JSON bodies.
type scriptedServer struct {
	*httptest.Server
	steps  []http.HandlerFunc
	n      atomic.Int32
	mu     sync.Mutex
	bodies []map[string]any
	heads  []http.Header
	paths  []string
}

func newScripted(t *testing.T, steps ...http.HandlerFunc) *scriptedServer {
	t.Helper()
	s := &scriptedServer{steps: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		s.heads = append(s.heads, r.Header.Clone())
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		i := int(s.n.Add(1)) - 1
		s.steps[min(i, len(s.steps)-1)](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptedServer) Requests() int { return int(s.n.Load()) }

func (s *scriptedServer) Body(i int) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[i]
}

func (s *scriptedServer) Header(i int) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heads[i]
}

func (s *scriptedServer) Path(i int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[i]
}

// ollamaOK answers like /api/generate (or /api/chat when chat is true).
func ollamaOK(text string, chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if chat {
			fmt.Fprintf(w, `{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":%q},"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":3}`, text)
			return
		}
		fmt.Fprintf(w, `{"model":"m","created_at":"2025-01-01T00:00:00Z","response":%q,"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":3}`, text)
	}
}

// openaiChatOK answers like /v1/chat/completions.
func openaiChatOK(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15}}`, text)
	}
}

// openaiCompletionOK answers like /v1/completions.
func openaiCompletionOK(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":%q,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`, text)
	}
}

// status answers with code, a body and optional headers (name, value pairs).
func status(code int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// hang waits for the client to give up.
func hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// cutBody declares a longer body than it sends, then drops the connection.
func cutBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)+100))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// poolFor builds a pool over one model on the fake server, with a fake
// clock and jitter fixed at j.
func poolFor(t *testing.T, backend Backend, url string, ep EndpointConfig, retry RetryConfig, clk *fakeClock, opts ...Option) *Pool {
	t.Helper()
	cfg := Config{
		Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: backend, Model: "tiny", Endpoint: url}}},
		Endpoints: map[string]EndpointConfig{url: ep},
		Retry:     retry,
	}
	base := []Option{
		WithClock(clk.Now, clk.Sleep),
		WithJitter(func() float64 { return 0.5 }),
		WithGetenv(func(k string) string {
			if k == "OPENAI_API_KEY" {
				return "sk-test-secret-123456"
			}
			return ""
		}),
	}
	p, err := NewPool(cfg, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// The concrete backends satisfy Model.
var (
	_ Model = (*Ollama)(nil)
	_ Model = (*OpenAI)(nil)
	_ Model = missingKey{}
)

func jsonDecode(r *http.Request, v any) { json.NewDecoder(r.Body).Decode(v) }
