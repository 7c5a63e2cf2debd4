package llm

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// A pool keeps as many idle connections to a host as its endpoints there
// may have calls in flight: a second wave of 160 concurrent calls dials
// nothing new.
func TestPoolKeepsConnectionsForItsConcurrency(t *testing.T) {
	const c = 160
	var conns atomic.Int32
	var arrived atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == c {
			close(release)
		}
		<-release // every call of the first wave holds its connection
		ollamaOK("ok", false)(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	cfg := Config{
		Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: srv.URL}}},
		Endpoints: map[string]EndpointConfig{srv.URL: {MaxConcurrent: c}},
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wave := func(i int) {
		var wg sync.WaitGroup
		for j := range c {
			wg.Go(func() {
				if _, err := p.Do(context.Background(), "m", Request{Prompt: fmt.Sprint(i, j)}, 0); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	wave(0)
	if n := conns.Load(); n != c {
		t.Fatalf("the first wave opened %d connections, want %d", n, c)
	}
	wave(1)
	if n := conns.Load(); n != c {
		t.Errorf("the second wave dialled %d new connections, want 0", n-c)
	}
}
