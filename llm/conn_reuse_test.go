package llm

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Replies are read to the end, so connections go back to the pool.
func TestConnectionsAreReused(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		model   func(url string) Model
		req     Request
	}{
		{"ollama", ollamaOK("ok", false), func(u string) Model { return must(NewOllama(ModelConfig{Model: "m", Endpoint: u}, nil)) }, Request{Prompt: "x"}},
		{"ollama, trailing newline", func(w http.ResponseWriter, r *http.Request) { ollamaOK("ok", false)(w, r); w.Write([]byte("\n\n")) },
			func(u string) Model { return must(NewOllama(ModelConfig{Model: "m", Endpoint: u}, nil)) }, Request{Prompt: "x"}},
		{"ollama, large reply", func(w http.ResponseWriter, r *http.Request) {
			ollamaOK(strings.Repeat("long story ", 20000), false)(w, r)
			w.Write([]byte("\n"))
		}, func(u string) Model { return must(NewOllama(ModelConfig{Model: "m", Endpoint: u}, nil)) }, Request{Prompt: "x"}},
		{"openai chat", func(w http.ResponseWriter, r *http.Request) { openaiChatOK("ok")(w, r); w.Write([]byte("\n")) },
			func(u string) Model { return must(NewOpenAI(ModelConfig{Model: "m", Endpoint: u}, nil, "k")) }, Request{Messages: []Message{{"user", "x"}}}},
		{"openai, large reply", func(w http.ResponseWriter, r *http.Request) {
			openaiChatOK(strings.Repeat("long story ", 20000))(w, r)
			w.Write([]byte("\n"))
		}, func(u string) Model { return must(NewOpenAI(ModelConfig{Model: "m", Endpoint: u}, nil, "k")) }, Request{Messages: []Message{{"user", "x"}}}},
		{"error status", status(500, `{"error":"boom"}`),
			func(u string) Model { return must(NewOllama(ModelConfig{Model: "m", Endpoint: u}, nil)) }, Request{Prompt: "x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(tt.handler)
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			m := tt.model(srv.URL)
			for range 10 {
				m.Generate(context.Background(), tt.req)
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("10 sequential calls opened %d connections, want 1", n)
			}
		})
	}
}
