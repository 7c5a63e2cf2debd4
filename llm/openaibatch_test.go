package llm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// A Batch API line's body is byte for byte what the synchronous client
// sends, and a reply body parses to the same Response, for chat and
// completion requests, greedy and sampled.
func TestOpenAIBatchRequestIsTheSyncBody(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var paths []string
	reply := map[string]string{
		"/v1/chat/completions": `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15}}`,
		"/v1/completions":      `{"id":"x","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" upon a time","finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, reply[r.URL.Path])
	}))
	defer srv.Close()
	o, err := NewOpenAI(ModelConfig{Model: "gpt-x", Endpoint: srv.URL + "/v1"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	reqs := map[string]Request{
		"chat greedy":       {Messages: []Message{{"system", "Be brief."}, {"user", "Capital of France?"}}, MaxTokens: 16, TopK: 50, Stop: []string{"\n\n"}},
		"chat sampled":      {Messages: []Message{{"user", "Hi"}}, Temperature: 0.7, TopP: 1, Seed: ptr[int64](42)},
		"completion greedy": {Prompt: "Once", MaxTokens: 2},
		"completion seed":   {Prompt: "1. a |EoS|\n2.", Temperature: 0.7, TopP: 0.9, TopK: 50, MaxTokens: 256, Seed: ptr[int64](-3), Stop: []string{"|EoS|"}},
	}
	for name, req := range reqs {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			n := len(bodies)
			mu.Unlock()
			sync, err := o.Generate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			url, body, err := OpenAIBatchRequest("gpt-x", req)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			sent, path := bodies[n], paths[n]
			mu.Unlock()
			if url != path || !bytes.Equal(body, sent) {
				t.Errorf("batch line %s %s\nsync request %s %s", url, body, path, sent)
			}
			if req.Temperature == 0 && !bytes.Contains(body, []byte(`"temperature":0.000001`)) {
				t.Errorf("greedy request without the greedy temperature: %s", body)
			}
			got, err := ParseOpenAIReply(url, []byte(reply[url]))
			if err != nil {
				t.Fatal(err)
			}
			sync.Latency = 0
			if got != sync {
				t.Errorf("parsed reply %+v, synchronous %+v", got, sync)
			}
		})
	}
	if _, _, err := OpenAIBatchRequest("m", Request{}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("empty request: %v, want ErrBadRequest", err)
	}
	for _, body := range []string{`{"choices":[]}`, `not json`} {
		if _, err := ParseOpenAIReply(BatchCompletionURL, []byte(body)); !errors.Is(err, ErrBadResponse) {
			t.Errorf("reply %q: %v, want ErrBadResponse", body, err)
		}
	}
}

func TestOpenAIAccess(t *testing.T) {
	env := map[string]string{"K": "sk-secret-0123456789", "TOK": "tok-9876543210"}
	getenv := func(k string) string { return env[k] }
	a, err := NewOpenAIAccess(ModelConfig{Backend: BackendOpenAI, Model: "m", APIKeyEnv: "K",
		Headers: map[string]string{"X-Token": "${TOK}", "X-Plain": "p"}}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if a.BaseURL != DefaultOpenAIURL || a.Header.Get("Authorization") != "Bearer sk-secret-0123456789" ||
		a.Header.Get("X-Token") != "tok-9876543210" || a.Header.Get("X-Plain") != "p" || a.Header.Get("User-Agent") == "" {
		t.Errorf("access %s %v", a.BaseURL, a.Header)
	}
	msg := a.Redact("echo sk-secret-0123456789 and tok-9876543210")
	if strings.Contains(msg, "secret") || strings.Contains(msg, "tok-") {
		t.Errorf("not redacted: %q", msg)
	}
	se := &StatusError{Backend: BackendOpenAI, StatusCode: 500, Body: "key sk-secret-0123456789"}
	if err := a.Scrub(se); strings.Contains(err.Error(), "secret") || !errors.Is(err, ErrServer) {
		t.Errorf("scrubbed: %v", err)
	}
	if _, err := NewOpenAIAccess(ModelConfig{Backend: BackendOpenAI, Model: "m", APIKeyEnv: "NONE"}, getenv); err == nil || !strings.Contains(err.Error(), "NONE is not set") {
		t.Errorf("missing key on a hosted server: %v", err)
	}
	if a, err := NewOpenAIAccess(ModelConfig{Backend: BackendOpenAI, Model: "m", Endpoint: "http://127.0.0.1:8000/v1/"}, getenv); err != nil || a.Header.Get("Authorization") != "" || a.BaseURL != "http://127.0.0.1:8000/v1" {
		t.Errorf("local server without a key: %v %v", a, err)
	}
}

func TestBatchPrice(t *testing.T) {
	half := Price{PromptPerMillion: 0.15, CompletionPerMillion: 0.6}
	if b := half.Batch(); b.PromptPerMillion != 0.075 || b.CompletionPerMillion != 0.3 {
		t.Errorf("default batch price %+v", b)
	}
	set := Price{PromptPerMillion: 1, CompletionPerMillion: 2, BatchPromptPerMillion: ptr(0.0), BatchCompletionPerMillion: ptr(1.5)}
	if b := set.Batch(); b.PromptPerMillion != 0 || b.CompletionPerMillion != 1.5 {
		t.Errorf("configured batch price %+v", b)
	}
	m := ModelInfo{Price: half}
	if m.CallPrice() != half {
		t.Errorf("synchronous model: %+v", m.CallPrice())
	}
	m.Batch = true
	if m.CallPrice() != half.Batch() {
		t.Errorf("batch model: %+v", m.CallPrice())
	}
	for _, tc := range []struct {
		mc   ModelConfig
		want bool
	}{
		{ModelConfig{Backend: BackendOpenAI}, true},
		{ModelConfig{Backend: BackendOpenAI, Endpoint: "https://api.example.com/v1"}, true},
		{ModelConfig{Backend: BackendOpenAI, Endpoint: "http://127.0.0.1:8000/v1"}, false},
		{ModelConfig{Backend: BackendOpenAI, Endpoint: "http://gpu-box:8000/v1"}, false},
		{ModelConfig{Backend: BackendOllama, Endpoint: "https://ollama.example.com"}, false},
	} {
		if got := tc.mc.Hosted(); got != tc.want {
			t.Errorf("%s %s: hosted %v", tc.mc.Backend, tc.mc.Endpoint, got)
		}
	}
}

func TestBatchValidation(t *testing.T) {
	c := Config{Models: Models{
		{Name: "o", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "x", Batch: true}},
		{Name: "p", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "x", Batch: true, Price: Price{BatchPromptPerMillion: ptr(-1.0)}}},
		{Name: "q", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "x", Batch: true}},
	}}
	err := c.Validate()
	for _, want := range []string{"models.o.batch: only the openai backend has a Batch API", "models.p.price: batch prices must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "models.q") {
		t.Errorf("valid batch model rejected: %v", err)
	}
}
