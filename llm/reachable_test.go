package llm

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckReachable(t *testing.T) {
	srv := httptest.NewServer(nil)
	defer srv.Close()
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	var cfg Config
	cfg.Models.Set("up", ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: srv.URL})
	cfg.Models.Set("also-up", ModelConfig{Backend: BackendOpenAI, Model: "m", Endpoint: srv.URL + "/v1"})
	cfg.Models.Set("down", ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: dead})
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.CheckReachable(context.Background(), 2*time.Second)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, dead) || !strings.Contains(msg, "ollama serve") || strings.Contains(msg, srv.URL+" ") {
		t.Errorf("message %q should name only the dead endpoint and say how to start Ollama", msg)
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("want one line for one dead endpoint, got %q", msg)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("preflight took %v", d)
	}

	var ok Config
	ok.Models.Set("up", ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: srv.URL})
	p, err = NewPool(ok)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckReachable(context.Background(), time.Second); err != nil {
		t.Errorf("reachable pool: %v", err)
	}
}
