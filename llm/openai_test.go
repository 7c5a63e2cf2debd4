package llm

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestOpenAIChatRequestShape(t *testing.T) {
	srv := newScripted(t, openaiChatOK("Paris."))
	o, err := NewOpenAI(ModelConfig{Model: "gpt-x", Endpoint: srv.URL + "/v1", Headers: map[string]string{"X-Org": "abc"}}, nil, "sk-secret")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := o.Generate(context.Background(), Request{
		Messages: []Message{{"user", "Capital of France?"}}, MaxTokens: 16, Temperature: 0, TopK: 50,
		Seed: ptr[int64](3), Stop: []string{"\n\n"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Paris." || resp.FinishReason != "stop" || resp.PromptTokens != 11 || resp.CompletionTokens != 4 {
		t.Errorf("response = %+v", resp)
	}
	if p := srv.Path(0); p != "/v1/chat/completions" {
		t.Errorf("path = %q", p)
	}
	b := srv.Body(0)
	if b["temperature"] != greedyTemperature {
		t.Errorf("temperature = %v, want %v (greedy)", b["temperature"], greedyTemperature)
	}
	if _, ok := b["top_k"]; ok {
		t.Errorf("top_k sent to an OpenAI-compatible server: %v", b)
	}
	if b["max_tokens"] != 16.0 || b["seed"] != 3.0 || b["model"] != "gpt-x" {
		t.Errorf("body = %v", b)
	}
	h := srv.Header(0)
	if got := h.Get("Authorization"); got != "Bearer sk-secret" {
		t.Errorf("Authorization = %q", got)
	}
	if got := h.Get("X-Org"); got != "abc" {
		t.Errorf("X-Org = %q", got)
	}
}

func TestOpenAICompletion(t *testing.T) {
	srv := newScripted(t, openaiCompletionOK(" upon a time"))
	o, _ := NewOpenAI(ModelConfig{Model: "base", Endpoint: srv.URL + "/v1"}, nil, "")
	resp, err := o.Generate(context.Background(), Request{Prompt: "Once", MaxTokens: 2, Temperature: 0.7, TopP: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != " upon a time" || resp.FinishReason != "length" || resp.CompletionTokens != 2 {
		t.Errorf("response = %+v", resp)
	}
	if p := srv.Path(0); p != "/v1/completions" {
		t.Errorf("path = %q", p)
	}
	b := srv.Body(0)
	if b["prompt"] != "Once" || b["top_p"] != 0.5 {
		t.Errorf("body = %v", b)
	}
	if got := srv.Header(0).Get("Authorization"); got != "" {
		t.Errorf("Authorization sent without a key: %q", got)
	}
}

func TestOpenAIErrors(t *testing.T) {
	const key = "sk-live-abcdefghijklmnop"
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
		inMsg   []string
		status  int
	}{
		{
			name:    "OpenAI model_not_found",
			handler: status(404, `{"error":{"message":"The model `+"`gpt-x`"+` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`),
			want:    ErrModelNotFound, status: 404,
			inMsg: []string{"does not exist", "check the model name"},
		},
		{
			name:    "Ollama /v1 model not found",
			handler: status(404, `{"error":{"message":"model \"gpt-x\" not found, try pulling it first","type":"api_error","param":null,"code":null}}`),
			want:    ErrModelNotFound, status: 404,
		},
		{
			name:    "invalid key, echoed by the server",
			handler: status(401, `{"error":{"message":"Incorrect API key provided: `+key+`.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			want:    ErrAuth, status: 401,
			inMsg: []string{"check $MY_KEY", "[redacted]"},
		},
		{name: "forbidden", handler: status(403, `{"error":{"message":"nope","type":"x"}}`), want: ErrAuth, status: 403},
		{name: "429", handler: status(429, `{"error":{"message":"Rate limit reached","type":"requests"}}`, "Retry-After", "2"), want: ErrRateLimited, status: 429},
		{name: "500 with a non-JSON body", handler: status(500, `upstream exploded`), want: ErrServer, status: 500, inMsg: []string{"upstream exploded"}},
		{name: "502 with an empty body", handler: status(502, ``), want: ErrServer, status: 502},
		{name: "body cut mid-JSON", handler: cutBody(`{"id":"x","choices":[{"index":0,"message":{"role":"assis`), want: ErrBadResponse},
		{name: "invalid JSON", handler: status(200, `{"choices": [}`), want: ErrBadResponse},
		{name: "no choices", handler: status(200, `{"id":"x","choices":[]}`), want: ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, tt.handler)
			o, _ := NewOpenAI(ModelConfig{Model: "gpt-x", Endpoint: srv.URL + "/v1", APIKeyEnv: "MY_KEY"}, nil, key)
			_, err := o.Generate(context.Background(), Request{Messages: []Message{{"user", "hi"}}})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want one wrapping %v", err, tt.want)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error %q contains the API key", err)
			}
			for _, s := range tt.inMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			var se *StatusError
			if got := errors.As(err, &se); got != (tt.status != 0) {
				t.Errorf("errors.As(*StatusError) = %v, want %v", got, tt.status != 0)
			} else if got {
				if se.StatusCode != tt.status {
					t.Errorf("status = %d, want %d", se.StatusCode, tt.status)
				}
				if se.Endpoint != srv.URL+"/v1" || se.Model != "gpt-x" {
					t.Errorf("StatusError names %q %q", se.Endpoint, se.Model)
				}
			}
		})
	}
}

func TestOpenAIRetryAfterRecorded(t *testing.T) {
	srv := newScripted(t, status(429, `{"error":{"message":"slow down","type":"requests"}}`, "Retry-After", "7"))
	o, _ := NewOpenAI(ModelConfig{Model: "gpt-x", Endpoint: srv.URL}, nil, "k")
	_, err := o.Generate(context.Background(), Request{Prompt: "x"})
	var se *StatusError
	if !errors.As(err, &se) || se.RetryAfter.Seconds() != 7 {
		t.Fatalf("err = %v, want a StatusError with RetryAfter 7s", err)
	}
}

func TestOpenAIMissingKey(t *testing.T) {
	clk := newFakeClock()
	cfg := Config{Models: Models{
		{Name: "hosted", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "gpt-x", APIKeyEnv: "ACME_KEY", Endpoint: "https://api.acme.example/v1"}},
		{Name: "local", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "llama", Endpoint: "http://127.0.0.1:1/v1"}},
	}}
	p, err := NewPool(cfg, WithGetenv(func(string) string { return "" }), WithClock(clk.Now, clk.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Do(context.Background(), "hosted", Request{Prompt: "x"}, 0)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "ACME_KEY is not set") {
		t.Errorf("err = %v, want ErrAuth naming ACME_KEY", err)
	}
	if st := p.Stats()["hosted"]; st.Requests != 1 || st.Retries != 0 {
		t.Errorf("missing key was retried: %+v", st)
	}
	// A local server needs no key: the call goes out (and finds nobody).
	_, err = p.Do(context.Background(), "local", Request{Prompt: "x"}, 0)
	if errors.Is(err, ErrAuth) || !errors.Is(err, ErrUnreachable) {
		t.Errorf("local: err = %v, want ErrUnreachable", err)
	}
}
