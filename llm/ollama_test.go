package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOllamaGenerateRequestShape(t *testing.T) {
	srv := newScripted(t, ollamaOK(" there was a cat", false))
	ka := 90 * time.Second
	o, err := NewOllama(ModelConfig{
		Model: "tiny", Endpoint: srv.URL + "/", Headers: map[string]string{"X-Org": "abc"},
		Options: map[string]any{"num_thread": 1, "num_ctx": 512, "temperature": 0.9}, KeepAlive: &ka,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := o.Generate(context.Background(), Request{
		Prompt: "Once upon a time", MaxTokens: 20, Temperature: 0, TopP: 0.9, TopK: 50,
		Seed: ptr[int64](7), Stop: []string{"|EoS|"},
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	want := Response{Text: " there was a cat", FinishReason: "stop", PromptTokens: 7, CompletionTokens: 3}
	got := resp
	got.Latency = 0
	if got != want {
		t.Errorf("response = %+v, want %+v", got, want)
	}
	if resp.Latency <= 0 {
		t.Errorf("latency = %v, want > 0", resp.Latency)
	}
	if p := srv.Path(0); p != "/api/generate" {
		t.Errorf("path = %q, want /api/generate", p)
	}
	b := srv.Body(0)
	if b["raw"] != true || b["stream"] != false || b["prompt"] != "Once upon a time" || b["model"] != "tiny" {
		t.Errorf("body = %v, want raw, not streamed, the prompt and the model", b)
	}
	if b["keep_alive"] == nil {
		t.Errorf("keep_alive not sent: %v", b)
	}
	opts, _ := b["options"].(map[string]any)
	wantOpts := map[string]any{
		"temperature": 0.0, "top_p": 0.9, "top_k": 50.0, "seed": 7.0, "num_predict": 20.0,
		"stop": []any{"|EoS|"}, "num_thread": 1.0, "num_ctx": 512.0,
	}
	if !reflect.DeepEqual(opts, wantOpts) {
		t.Errorf("options = %v, want %v (the request's temperature wins over the configured one)", opts, wantOpts)
	}
	if h := srv.Header(0).Get("X-Org"); h != "abc" {
		t.Errorf("X-Org header = %q, want abc", h)
	}
}

func TestOllamaChat(t *testing.T) {
	srv := newScripted(t, ollamaOK("Hello!", true))
	o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: srv.URL}, nil)
	resp, err := o.Generate(context.Background(), Request{Messages: []Message{{"system", "Be brief."}, {"user", "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Hello!" || resp.PromptTokens != 7 {
		t.Errorf("response = %+v", resp)
	}
	if p := srv.Path(0); p != "/api/chat" {
		t.Errorf("path = %q, want /api/chat", p)
	}
	msgs, _ := srv.Body(0)["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("messages = %v", srv.Body(0)["messages"])
	}
	if m := msgs[1].(map[string]any); m["role"] != "user" || m["content"] != "hi" {
		t.Errorf("message 1 = %v", m)
	}
}

func TestOllamaStreamedReply(t *testing.T) {
	chunks := []string{
		`{"response":"Once","done":false}`,
		`{"response":" upon","done":false}`,
		`{"response":" a time","done":false}`,
		`{"response":"","done":true,"done_reason":"length","prompt_eval_count":2,"eval_count":3}`,
	}
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, c := range chunks {
			io.WriteString(w, c+"\n")
			w.(http.Flusher).Flush()
		}
	})
	o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: srv.URL}, nil)
	resp, err := o.Generate(context.Background(), Request{Prompt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Once upon a time" || resp.FinishReason != "length" || resp.CompletionTokens != 3 {
		t.Errorf("response = %+v", resp)
	}
}

func TestOllamaErrors(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		want     error
		inMsg    []string
		wantCode int
	}{
		{
			name:     "model not found (generate body)",
			handler:  status(404, `{"error":"model 'tiny' not found"}`),
			want:     ErrModelNotFound,
			inMsg:    []string{"ollama pull tiny", "HTTP 404", "model 'tiny' not found"},
			wantCode: 404,
		},
		{
			name:     "model not found (chat body)",
			handler:  status(404, `{"error":"model \"tiny\" not found, try pulling it first"}`),
			want:     ErrModelNotFound,
			inMsg:    []string{"ollama pull tiny"},
			wantCode: 404,
		},
		{
			name:     "wrong path",
			handler:  status(404, `404 page not found`),
			want:     ErrBadRequest,
			inMsg:    []string{"check the endpoint URL"},
			wantCode: 404,
		},
		{name: "unauthorized", handler: status(401, `{"error":"unauthorized"}`), want: ErrAuth, wantCode: 401},
		{name: "bad request", handler: status(400, `{"error":"invalid options"}`), want: ErrBadRequest, wantCode: 400},
		{name: "busy", handler: status(503, `{"error":"server busy, please try again. maximum pending requests exceeded"}`), want: ErrServer, wantCode: 503},
		{name: "rate limited", handler: status(429, `{"error":"slow down"}`), want: ErrRateLimited, wantCode: 429},
		{name: "body cut mid-JSON", handler: cutBody(`{"model":"tiny","response":"Once up`), want: ErrBadResponse},
		{name: "invalid JSON", handler: status(200, `{"model":"tiny","response":}`), want: ErrBadResponse},
		{name: "empty body", handler: status(200, ``), want: ErrBadResponse},
		{
			name: "stream ends early",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"response":"Once","done":false}`+"\n"+`{"response":" upon","done":false}`+"\n")
			},
			want:  ErrBadResponse,
			inMsg: []string{"ended before its final chunk"},
		},
		{
			name: "stream cut mid-chunk",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"response":"Once","done":false}`+"\n"+`{"response":" up`)
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			},
			want: ErrBadResponse,
		},
		{
			name: "error mid-stream",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"response":"Once","done":false}`+"\n"+`{"error":"an error was encountered while running the model"}`+"\n")
			},
			want:  ErrServer,
			inMsg: []string{"running the model"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, tt.handler)
			o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: srv.URL}, nil)
			_, err := o.Generate(context.Background(), Request{Prompt: "x"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want one wrapping %v", err, tt.want)
			}
			for _, s := range tt.inMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q does not name the endpoint", err)
			}
			var se *StatusError
			if got := errors.As(err, &se); got != (tt.wantCode != 0) {
				t.Errorf("errors.As(*StatusError) = %v, want %v", got, tt.wantCode != 0)
			} else if got && se.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", se.StatusCode, tt.wantCode)
			}
		})
	}
}

func TestOllamaUnreachable(t *testing.T) {
	srv := newScripted(t, ollamaOK("x", false))
	url := srv.URL
	srv.Close()
	o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: url}, nil)
	_, err := o.Generate(context.Background(), Request{Prompt: "x"})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	want := fmt.Sprintf("ollama at %s is not reachable; start it with `ollama serve`", url)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
}

func TestOllamaTimeoutAndCancel(t *testing.T) {
	srv := newScripted(t, hang)
	o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: srv.URL}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := o.Generate(ctx, Request{Prompt: "x"})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("deadline: err = %v, want ErrTimeout", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err = o.Generate(ctx, Request{Prompt: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestOllamaInvalidRequest(t *testing.T) {
	o, _ := NewOllama(ModelConfig{Model: "tiny", Endpoint: "http://127.0.0.1:1"}, nil)
	for _, req := range []Request{
		{},
		{Prompt: "x", Messages: []Message{{"user", "y"}}},
		{Messages: []Message{{"robot", "y"}}},
		{Prompt: "x", TopP: 2},
	} {
		if _, err := o.Generate(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Generate(%+v) err = %v, want ErrBadRequest", req, err)
		}
	}
}

// TestOllamaRequestHeaders sends concurrent requests to an endpoint with
// credentials in its URL: each carries the configured headers, the fixed
// ones (a configured Content-Type loses) and the basic credentials, and the
// headers the requests share are left as they were (the race detector
// watches them too).
func TestOllamaRequestHeaders(t *testing.T) {
	srv := newScripted(t, ollamaOK("ok", false))
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("ann", "pw")
	o, err := NewOllama(ModelConfig{Model: "tiny", Endpoint: u.String(),
		Headers: map[string]string{"X-Org": "abc", "Content-Type": "text/plain"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := o.reqHeader.Clone()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := o.Generate(context.Background(), Request{Prompt: "x"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 8 {
		h := srv.Header(i)
		if h.Get("X-Org") != "abc" || h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != userAgent {
			t.Errorf("request %d headers = %v", i, h)
		}
		if user, pass, ok := (&http.Request{Header: h}).BasicAuth(); !ok || user != "ann" || pass != "pw" {
			t.Errorf("request %d: basic credentials %q %q %v, want ann pw", i, user, pass, ok)
		}
	}
	if !reflect.DeepEqual(o.reqHeader, want) {
		t.Errorf("shared headers changed: %v, want %v", o.reqHeader, want)
	}
}
