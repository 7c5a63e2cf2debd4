package jetstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/nats-io/nats.go"
)

// startServer starts a real embedded JetStream server on a free loopback
// port with its store in a temporary directory.
func startServer(t *testing.T, token string) *Server {
	t.Helper()
	s, err := StartServer(ServerConfig{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, s *Server, token string) *nats.Conn {
	t.Helper()
	nc, err := Connect(context.Background(), s.ClientURL(), ConnectOptions{Name: t.Name(), Auth: Auth{Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// echoServer is a fake model server whose reply names the model and
// repeats the prompt.
func echoServer(t *testing.T, latency time.Duration) *llmtest.Server {
	t.Helper()
	srv := llmtest.NewServer(func(c llmtest.Call) string { return c.Model + " says " + c.Text() })
	srv.SetLatency(latency)
	t.Cleanup(srv.Close)
	return srv
}

// poolConfig has two models on url: an Ollama one and an
// OpenAI-compatible one whose key is read from MY_KEY.
func poolConfig(url string, maxConcurrent int) llm.Config {
	return llm.Config{
		Models: llm.Models{
			{Name: "a", ModelConfig: llm.ModelConfig{Backend: llm.BackendOllama, Model: "a", Endpoint: url, Roles: []llm.Role{llm.RoleEnsemble}}},
			{Name: "b", ModelConfig: llm.ModelConfig{Backend: llm.BackendOpenAI, Model: "b", Endpoint: url + "/v1", APIKeyEnv: "MY_KEY", Roles: []llm.Role{llm.RoleEnsemble}}},
		},
		Endpoints: map[string]llm.EndpointConfig{url: {MaxConcurrent: maxConcurrent}, url + "/v1": {MaxConcurrent: maxConcurrent}},
		Retry:     llm.RetryConfig{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond},
	}
}

func newPool(t *testing.T, cfg llm.Config, cache *llm.Cache, env map[string]string) *llm.Pool {
	t.Helper()
	opts := []llm.Option{llm.WithGetenv(func(k string) string { return env[k] })}
	if cache != nil {
		opts = append(opts, llm.WithCache(cache))
	}
	p, err := llm.NewPool(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newExecutor(t *testing.T, nc *nats.Conn, local *llm.Pool, o Options) *Executor {
	t.Helper()
	o.Conn, o.Local = nc, local
	e, err := NewExecutor(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// runWorker runs a worker until the test ends (or stop is called) and
// returns it.
func runWorker(t *testing.T, nc *nats.Conn, pool *llm.Pool, drain time.Duration) (w *Worker, stop func()) {
	t.Helper()
	w, err := NewWorker(context.Background(), WorkerOptions{Conn: nc, Pool: pool, DrainTimeout: drain, RetryDelay: 50 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
	t.Cleanup(stop)
	return w, stop
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// failingServer answers every Ollama call with status and counts them.
func failingServer(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, fmt.Sprintf(`{"error":"status %d"}`, status), status)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func req(i int) llm.Request {
	return llm.Request{Prompt: fmt.Sprintf("prompt number %d", i), MaxTokens: 16}
}
