package llm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/internal/testenv"
)

// These tests talk to a real Ollama server serving the stories260K model
// under the names tiny, tiny-a, tiny-b and tiny-c. Start one with
//
//	eval "$(.ci/ollama.sh)"
//
// which sets ENSINSTRUCT_TEST_OLLAMA to its host:port.

// liveOllama returns the base URL of the test server; see testenv.Ollama.
func liveOllama(t *testing.T) string {
	t.Helper()
	return testenv.Ollama(t)
}

// liveOptions are passed on every request: one thread is much faster than
// two on a busy 2-core machine, and the context of the command tests' models
// (a different num_ctx makes the server reload a model).
var liveOptions = map[string]any{"num_thread": 1, "num_ctx": 512}

func liveCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLiveOllamaRawGenerate(t *testing.T) {
	base := liveOllama(t)
	o, err := NewOllama(ModelConfig{Model: "tiny", Endpoint: base, Options: liveOptions}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Prompt: "Once upon a time", MaxTokens: 12, Temperature: 0}
	r1, err := o.Generate(liveCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(r1.Text) == "" || r1.CompletionTokens == 0 || r1.PromptTokens == 0 {
		t.Errorf("response = %+v", r1)
	}
	if r1.FinishReason != "length" && r1.FinishReason != "stop" {
		t.Errorf("finish reason = %q", r1.FinishReason)
	}
	// Greedy decoding is deterministic.
	r2, err := o.Generate(liveCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Text != r1.Text {
		t.Errorf("greedy replies differ: %q vs %q", r1.Text, r2.Text)
	}
	// A stop sequence ends the text.
	r3, err := o.Generate(liveCtx(t), Request{Prompt: "Once upon a time", MaxTokens: 40, Stop: []string{"."}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r3.Text, ".") || r3.FinishReason != "stop" {
		t.Errorf("with stop \".\": %+v", r3)
	}
	t.Logf("tiny: %q", r1.Text)
}

func TestLiveOllamaChat(t *testing.T) {
	base := liveOllama(t)
	o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: base, Options: liveOptions}, nil)
	r, err := o.Generate(liveCtx(t), Request{Messages: []Message{{"user", "Tell me a story."}}, MaxTokens: 10, Seed: ptr[int64](1), Temperature: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	if r.Text == "" || r.CompletionTokens == 0 {
		t.Errorf("response = %+v", r)
	}
}

func TestLiveOpenAICompatible(t *testing.T) {
	base := liveOllama(t)
	o, err := NewOpenAI(ModelConfig{Model: "tiny", Endpoint: base + "/v1"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	chat, err := o.Generate(liveCtx(t), Request{Messages: []Message{{"user", "Hello"}}, MaxTokens: 8, Temperature: 0})
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	if chat.Text == "" || chat.CompletionTokens == 0 {
		t.Errorf("chat = %+v", chat)
	}
	comp, err := o.Generate(liveCtx(t), Request{Prompt: "Once upon a time", MaxTokens: 8, Temperature: 0})
	if err != nil {
		t.Fatalf("completion: %v", err)
	}
	if comp.Text == "" || comp.FinishReason != "length" || comp.CompletionTokens != 8 {
		t.Errorf("completion = %+v", comp)
	}
	// The native raw generate and the compatible completion agree under
	// greedy decoding (temperature 1e-6 versus 0).
	nat, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: base, Options: liveOptions}, nil)
	n, err := nat.Generate(liveCtx(t), Request{Prompt: "Once upon a time", MaxTokens: 8, Temperature: 0})
	if err != nil {
		t.Fatal(err)
	}
	if n.Text != comp.Text {
		t.Logf("native %q vs /v1 %q (templates may differ)", n.Text, comp.Text)
	}
}

func TestLiveModelNotFound(t *testing.T) {
	base := liveOllama(t)
	for _, tt := range []struct {
		name string
		m    Model
		req  Request
	}{
		{"native generate", must(NewOllama(ModelConfig{Model: "no-such-model", Endpoint: base}, nil)), Request{Prompt: "x"}},
		{"native chat", must(NewOllama(ModelConfig{Model: "no-such-model", Endpoint: base}, nil)), Request{Messages: []Message{{"user", "x"}}}},
		{"openai chat", must(NewOpenAI(ModelConfig{Model: "no-such-model", Endpoint: base + "/v1"}, nil, "")), Request{Messages: []Message{{"user", "x"}}}},
		{"openai completion", must(NewOpenAI(ModelConfig{Model: "no-such-model", Endpoint: base + "/v1"}, nil, "")), Request{Prompt: "x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.m.Generate(liveCtx(t), tt.req)
			if !errors.Is(err, ErrModelNotFound) {
				t.Fatalf("err = %v, want ErrModelNotFound", err)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 404 || se.Model != "no-such-model" {
				t.Errorf("err = %#v", err)
			}
			t.Log(err)
		})
	}
}

func TestLivePool(t *testing.T) {
	base := liveOllama(t)
	names := []string{"tiny", "tiny-a", "tiny-b", "tiny-c"}
	cfg := Config{Endpoints: map[string]EndpointConfig{base: {MaxConcurrent: 2, Timeout: 30 * time.Second}}}
	for _, n := range names {
		cfg.Models.Set(n, ModelConfig{Backend: BackendOllama, Model: n, Endpoint: base, Options: liveOptions, Roles: []Role{RoleEnsemble}})
	}
	cfg.Models.Set("compat", ModelConfig{Backend: BackendOpenAI, Model: "tiny", Endpoint: base + "/v1", Roles: []Role{RoleEnsemble}})
	cache, err := OpenCache(filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	p, err := NewPool(cfg, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	ctx := liveCtx(t)
	req := Request{Prompt: "One day, a little", MaxTokens: 10, Temperature: 0.8, TopK: 50}
	models := p.Models(RoleEnsemble)
	texts := make(map[string]string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(models))
	for _, m := range models {
		wg.Go(func() {
			r, err := p.Do(ctx, m, req, 0)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", m, err)
				return
			}
			mu.Lock()
			texts[m] = r.Text
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Replay: every call is a cache hit with the same text.
	for _, m := range models {
		r, err := p.Do(ctx, m, req, 0)
		if err != nil || !r.Cached || r.Text != texts[m] {
			t.Errorf("%s replay = %+v, %v; want the cached %q", m, r, err, texts[m])
		}
	}
	st := p.Stats()
	for _, m := range models {
		s := st[m]
		if s.Calls != 2 || s.CacheHits != 1 || s.Requests != 1 || s.CompletionTokens == 0 || s.LatencyP50Ms <= 0 {
			t.Errorf("%s stats = %+v", m, s)
		}
	}
	// A model missing from the server fails at once, naming the fix.
	p2, _ := NewPool(Config{Models: Models{{Name: "ghost", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "ghost", Endpoint: base}}}})
	_, err = p2.Do(ctx, "ghost", Request{Prompt: "x"}, 0)
	if !errors.Is(err, ErrModelNotFound) || !strings.Contains(err.Error(), "ollama pull ghost") || p2.Stats()["ghost"].Requests != 1 {
		t.Errorf("ghost: %v", err)
	}
	t.Logf("texts: %q", texts)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A prompt longer than Ollama's default window (2048 tokens) reaches the
// model whole: the request asks for a window that holds it, and the
// server's prompt_eval_count equals that of a run with a window far too
// large to cut anything. With the default window the same prompt is cut,
// and the response says so.
func TestLiveOllamaContextHoldsLongPrompts(t *testing.T) {
	base := liveOllama(t)
	prompt := strings.Repeat("the little cat sat on a warm mat and looked at the big red ball that rolled away under the old wooden table near the door ", 45)
	req := Request{Prompt: prompt, MaxTokens: 4}
	gen := func(opts map[string]any) Response {
		t.Helper()
		o, err := NewOllama(ModelConfig{Model: "tiny", Endpoint: base, Options: opts}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := o.Generate(liveCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	whole := gen(map[string]any{"num_thread": 1, "num_ctx": 8192})
	if whole.PromptTokens <= 2048 || whole.Truncated {
		t.Fatalf("reference: %d prompt tokens (truncated %v), want more than 2048", whole.PromptTokens, whole.Truncated)
	}
	auto := gen(map[string]any{"num_thread": 1})
	if auto.PromptTokens != whole.PromptTokens || auto.Truncated {
		t.Errorf("sized window: %d prompt tokens (truncated %v), want all %d", auto.PromptTokens, auto.Truncated, whole.PromptTokens)
	}
	cut := gen(map[string]any{"num_thread": 1, "num_ctx": 2048})
	if cut.PromptTokens >= whole.PromptTokens || !cut.Truncated {
		t.Errorf("default window: %d prompt tokens (truncated %v), want fewer than %d, flagged", cut.PromptTokens, cut.Truncated, whole.PromptTokens)
	}
	t.Logf("%d bytes: %d tokens whole, %d with num_ctx 2048", len(prompt), whole.PromptTokens, cut.PromptTokens)
}

// max_concurrent: auto against the real server: many callers on two
// models of one endpoint, every call answered, the limit within its
// bounds, and the same greedy replies as through a fixed limit.
func TestLiveAutoConcurrency(t *testing.T) {
	base := liveOllama(t)
	run := func(ep EndpointConfig) (map[string]string, EndpointStats) {
		ep.Timeout = 30 * time.Second
		cfg := Config{Endpoints: map[string]EndpointConfig{base: ep}}
		for _, n := range []string{"tiny", "tiny-a"} {
			cfg.Models.Set(n, ModelConfig{Backend: BackendOllama, Model: n, Endpoint: base, Options: liveOptions})
		}
		p, err := NewPool(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := liveCtx(t)
		out := map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Go(func() {
				for i := range 6 {
					m := []string{"tiny", "tiny-a"}[(w+i)%2]
					prompt := fmt.Sprintf("Once upon a time, %d little %d", w, i)
					r, err := p.Do(ctx, m, Request{Prompt: prompt, MaxTokens: 8, Temperature: 0}, 0)
					if err != nil {
						t.Errorf("%s: %v", m, err)
						return
					}
					mu.Lock()
					out[m+" "+prompt] = r.Text
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return out, p.EndpointStats()[0]
	}
	fixed, _ := run(EndpointConfig{MaxConcurrent: 2})
	auto, st := run(EndpointConfig{AutoConcurrency: true})
	if !st.Auto || st.Max != DefaultOllamaAutoCeiling || st.Limit < 1 || st.Limit > st.Max || st.BaselineMs <= 0 {
		t.Errorf("endpoint stats = %+v", st)
	}
	if len(auto) != 72 || len(fixed) != 72 {
		t.Fatalf("%d replies with auto, %d fixed; want 72", len(auto), len(fixed))
	}
	for k, v := range fixed {
		if auto[k] != v {
			t.Errorf("%s: %q with auto, %q fixed", k, auto[k], v)
		}
	}
	t.Logf("auto: %+v", st)
}
