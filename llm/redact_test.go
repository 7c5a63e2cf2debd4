package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

// echoServer answers every request with status, its body listing every
// request header with its value, as a careless proxy does.
func echoServer(t *testing.T, status int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var keys []string
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %s; ", k, strings.Join(r.Header[k], ","))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error": {"message": %q, "type": "proxy"}}`, "request headers were "+b.String())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// No secret — the API key, or a header value expanded from the
// environment — appears in an error, a StatusError's body or a log line,
// whatever the server echoes back, for every backend.
func TestSecretsNeverEchoed(t *testing.T) {
	const key, token, org = "sk-live-KEY-1234567890", "tok-SECRET-abcdef", "org-SECRET-99"
	env := map[string]string{"MY_KEY": key, "MY_TOKEN": token, "MY_ORG": org}
	for _, status := range []int{401, 500} {
		srv := echoServer(t, status)
		for _, backend := range []Backend{BackendOllama, BackendOpenAI} {
			t.Run(fmt.Sprintf("%s/%d", backend, status), func(t *testing.T) {
				mc := ModelConfig{Backend: backend, Model: "m", Endpoint: srv.URL,
					Headers: map[string]string{"X-Api-Token": "${MY_TOKEN}", "X-Org": "org ${MY_ORG}"}}
				if backend == BackendOpenAI {
					mc.Endpoint, mc.APIKeyEnv = srv.URL+"/v1", "MY_KEY"
				}
				var logs bytes.Buffer
				pool, err := NewPool(Config{Models: Models{{Name: "m", ModelConfig: mc}},
					Retry: RetryConfig{MaxAttempts: 2, InitialBackoff: time.Millisecond}},
					WithGetenv(func(k string) string { return env[k] }),
					WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
				if err != nil {
					t.Fatal(err)
				}
				_, err = pool.Do(context.Background(), "m", Request{Prompt: "hi", MaxTokens: 2}, 0)
				if err == nil {
					t.Fatal("no error")
				}
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != status {
					t.Fatalf("err = %v, want HTTP %d", err, status)
				}
				if !strings.Contains(se.Body, "X-Api-Token: [redacted]") {
					t.Errorf("the echo did not come back: %q", se.Body)
				}
				for _, secret := range []string{key, token, org} {
					for what, text := range map[string]string{"error": err.Error(), "body": se.Body, "logs": logs.String()} {
						if strings.Contains(text, secret) {
							t.Errorf("%s holds the secret %q: %s", what, secret, text)
						}
					}
				}
			})
		}
	}
}
