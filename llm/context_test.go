package llm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// ollamaEval answers like /api/generate, reporting n evaluated prompt
// tokens.
func ollamaEval(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"response":"ok","done":true,"done_reason":"stop","prompt_eval_count":%d,"eval_count":1}`, n)
	}
}

// Unless the options fix num_ctx, every Ollama request asks for a window
// that holds its prompt and reply, never smaller than one asked for
// before (a smaller one would reload the model), and at most max_context.
func TestOllamaContextWindow(t *testing.T) {
	srv := newScripted(t, ollamaEval(10))
	long := Request{Prompt: strings.Repeat("x", 7000), MaxTokens: 256} // 3500+256+64 -> 4096
	short := Request{Prompt: "hi", MaxTokens: 8}                       // -> 2048, but never shrink
	huge := Request{Prompt: strings.Repeat("x", 100000), MaxTokens: 8} // capped
	cases := []struct {
		name string
		mc   ModelConfig
		reqs []Request
		want []any // num_ctx sent, nil for none
	}{
		{"sized", ModelConfig{}, []Request{short, long, short}, []any{2048.0, 4096.0, 4096.0}},
		{"capped", ModelConfig{MaxContext: 8192}, []Request{huge}, []any{8192.0}},
		{"fixed by options", ModelConfig{Options: map[string]any{"num_ctx": 512}}, []Request{long}, []any{512.0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.mc.Model, c.mc.Endpoint = "m", srv.URL
			o, err := NewOllama(c.mc, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, req := range c.reqs {
				first := srv.Requests()
				if _, err := o.Generate(context.Background(), req); err != nil {
					t.Fatal(err)
				}
				opts, _ := srv.Body(first)["options"].(map[string]any)
				if got := opts["num_ctx"]; got != c.want[i] {
					t.Errorf("request %d: num_ctx %v, want %v", i, got, c.want[i])
				}
			}
		})
	}
}

// A response whose prompt was cut to the window is flagged; the pool
// counts it and warns once per model.
func TestOllamaTruncationReported(t *testing.T) {
	for _, c := range []struct {
		evaluated int
		truncated bool
	}{{2048, true}, {2047, true}, {1026, true}, {1500, false}, {10, false}} {
		if got := truncated(c.evaluated, 2048); got != c.truncated {
			t.Errorf("truncated(%d, 2048) = %v, want %v", c.evaluated, got, c.truncated)
		}
	}
	srv := newScripted(t, ollamaEval(2048)) // the window the request asked for, filled
	var logs bytes.Buffer
	pool, err := NewPool(Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: srv.URL}}}},
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		resp, err := pool.Do(context.Background(), "m", Request{Prompt: strings.Repeat("y", 100+i), MaxTokens: 8}, 0)
		if err != nil || !resp.Truncated {
			t.Fatalf("call %d: %+v, %v", i, resp, err)
		}
	}
	if s := pool.Stats()["m"]; s.Truncated != 3 {
		t.Errorf("truncated count %d, want 3", s.Truncated)
	}
	if n := strings.Count(logs.String(), "cut a prompt"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
