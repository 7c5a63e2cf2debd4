package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"
)

var (
	_ pipeline.Executor      = (*Executor)(nil)
	_ pipeline.CacheChecker  = (*Executor)(nil)
	_ pipeline.StatsReporter = (*Executor)(nil)
)

// TestRoundTrip sends calls through the queue to two workers and checks
// that every response equals the local pool's, that each request reached
// the model server once, that results land in both caches, and that a
// second pass is answered without the server.
func TestRoundTrip(t *testing.T) {
	s := startServer(t, "")
	srv := echoServer(t, 5*time.Millisecond)
	cfg := poolConfig(srv.URL, 3)
	env := map[string]string{"MY_KEY": "sk-worker-secret"}
	cache, err := llm.OpenCache(t.TempDir()+"/cache.db", llm.CacheWriteBehind(llm.WriteBehind))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	local := newPool(t, cfg, cache, nil) // the coordinator has no key
	e := newExecutor(t, connect(t, s, ""), local, Options{AckWait: time.Second})
	for range 2 {
		runWorker(t, connect(t, s, ""), newPool(t, cfg, nil, env), time.Second)
	}
	direct := newPool(t, cfg, nil, env)

	const n = 40
	got := make([]llm.Response, 2*n)
	var g errgroup.Group
	for i := range 2 * n {
		g.Go(func() error {
			var err error
			got[i], err = e.Do(context.Background(), []string{"a", "b"}[i%2], req(i/2), 0)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		want, err := direct.Do(context.Background(), []string{"a", "b"}[i%2], req(i/2), 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Text != want.Text || r.Cached || r.CompletionTokens != want.CompletionTokens {
			t.Errorf("call %d: got %+v, want %+v", i, r, want)
		}
	}
	srv.WaitIdle() // a reply can reach the client before its handler returns
	for d, c := range srv.Counts() {
		if c != 2 { // once through the queue, once directly
			t.Errorf("request %s served %d times, want 2", d, c)
		}
	}
	// The local cache holds every result too (Len commits what is queued).
	deadline := time.Now().Add(10 * time.Second)
	for stored, _ := cache.Len(); stored != 2*n; stored, _ = cache.Len() {
		if time.Now().After(deadline) {
			t.Fatalf("local cache holds %d responses after 10 s, want %d", stored, 2*n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := e.Stats()
	if st["a"].Calls != n || st["a"].Requests != n || st["a"].CacheHits != 0 || st["a"].CompletionTokens == 0 || st["b"].LatencyP50Ms < 5 {
		t.Errorf("stats %+v", st)
	}

	// A second coordinator with an empty local cache: the bucket answers.
	served := srv.Served()
	e2 := newExecutor(t, connect(t, s, ""), newPool(t, cfg, nil, nil), Options{})
	for i := range n {
		if !e2.Cached("a", req(i), 0) {
			t.Fatalf("call %d not reported as cached", i)
		}
		r, err := e2.Do(context.Background(), "a", req(i), 0)
		if err != nil || !r.Cached || r.Text != got[2*i].Text {
			t.Fatalf("replay %d: %+v, %v", i, r, err)
		}
	}
	if srv.Served() != served || e2.Stats()["a"].CacheHits != n {
		t.Errorf("replay reached the server %d times; stats %+v", srv.Served()-served, e2.Stats()["a"])
	}
	if e2.Cached("a", req(n+1), 0) {
		t.Error("an unknown call is reported as cached")
	}
}

// TestGlobalLimit runs four workers, each allowed 6 calls at once by its
// own configuration, against an endpoint whose max_concurrent is 6: the
// shared consumer's MaxAckPending keeps the server at 6 calls in flight
// at most, and the workers together do reach it.
func TestGlobalLimit(t *testing.T) {
	s := startServer(t, "")
	srv := echoServer(t, 40*time.Millisecond)
	cfg := poolConfig(srv.URL, 6)
	cfg.Models = cfg.Models[:1]
	delete(cfg.Endpoints, srv.URL+"/v1")
	e := newExecutor(t, connect(t, s, ""), newPool(t, cfg, nil, nil), Options{})
	workers := make([]*Worker, 4)
	for i := range workers {
		workers[i], _ = runWorker(t, connect(t, s, ""), newPool(t, cfg, nil, nil), time.Second)
	}
	var g errgroup.Group
	for i := range 120 {
		g.Go(func() error {
			_, err := e.Do(context.Background(), "a", req(i), 0)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if m := srv.MaxInFlight(); m > 6 || m < 5 {
		t.Errorf("the server saw %d calls in flight at most, want 6 (at least 5)", m)
	}
	busy := 0
	for _, w := range workers {
		if w.Served() > 0 {
			busy++
		}
	}
	t.Logf("max in flight %d; served per worker %d %d %d %d", srv.MaxInFlight(),
		workers[0].Served(), workers[1].Served(), workers[2].Served(), workers[3].Served())
	if busy < 2 {
		t.Errorf("only %d of 4 workers served calls", busy)
	}
}

// TestSlowCall makes a call last three times the AckWait: the worker's
// InProgress keeps it, so no other worker starts it again.
func TestSlowCall(t *testing.T) {
	s := startServer(t, "")
	srv := echoServer(t, 900*time.Millisecond)
	cfg := poolConfig(srv.URL, 4)
	cfg.Endpoints[srv.URL] = llm.EndpointConfig{MaxConcurrent: 4, Timeout: 5 * time.Second}
	e := newExecutor(t, connect(t, s, ""), newPool(t, cfg, nil, nil), Options{AckWait: 300 * time.Millisecond})
	for range 3 {
		runWorker(t, connect(t, s, ""), newPool(t, cfg, nil, nil), time.Second)
	}
	var g errgroup.Group
	for i := range 6 {
		g.Go(func() error {
			_, err := e.Do(context.Background(), "a", req(i), 0)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	srv.WaitIdle() // a reply can reach the client before its handler returns
	for d, c := range srv.Counts() {
		if c != 1 {
			t.Errorf("request %s served %d times", d, c)
		}
	}
	if srv.Served() != 6 {
		t.Errorf("served %d, want 6", srv.Served())
	}
}

// TestFailsAfterMaxDeliver has a server that always fails with a
// transient error: the call is handed to the workers MaxDeliver times,
// then fails for good and the coordinator returns the error.
func TestFailsAfterMaxDeliver(t *testing.T) {
	s := startServer(t, "")
	bad, hits := failingServer(t, 503)
	cfg := poolConfig(bad.URL, 2)
	cfg.Models = cfg.Models[:1]
	delete(cfg.Endpoints, bad.URL+"/v1")
	cfg.Retry = llm.RetryConfig{MaxAttempts: 1}
	e := newExecutor(t, connect(t, s, ""), newPool(t, cfg, nil, nil), Options{MaxDeliver: 3})
	for range 2 {
		runWorker(t, connect(t, s, ""), newPool(t, cfg, nil, nil), time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.Do(ctx, "a", req(1), 0)
	var re *RemoteError
	if !errors.As(err, &re) || !errors.Is(err, llm.ErrServer) || re.Deliveries != 3 {
		t.Fatalf("error %v (%T), want a RemoteError after 3 deliveries wrapping ErrServer", err, err)
	}
	if hits.Load() != 3 {
		t.Errorf("the server was called %d times, want 3", hits.Load())
	}
	if st := e.Stats()["a"]; st.Failures != 1 {
		t.Errorf("stats %+v", st)
	}

	// The same call again (a resumed run) is retried, not answered from
	// the old failure.
	_, err = e.Do(ctx, "a", req(1), 0)
	if !errors.As(err, &re) || hits.Load() != 6 {
		t.Errorf("retry: %v after %d server calls, want a new failure after 6", err, hits.Load())
	}

	// A failure that retrying cannot fix is not retried.
	unauth, hits401 := failingServer(t, 401)
	cfg.Models[0].Endpoint = unauth.URL
	cfg.Endpoints = nil
	e = newExecutor(t, connect(t, s, ""), newPool(t, cfg, nil, nil), Options{MaxDeliver: 3})
	runWorker(t, connect(t, s, ""), newPool(t, cfg, nil, nil), time.Second)
	if _, err := e.Do(ctx, "a", req(1), 0); !errors.Is(err, llm.ErrAuth) || hits401.Load() != 1 {
		t.Errorf("401: %v after %d calls, want ErrAuth after 1", err, hits401.Load())
	}
}

// TestTooLarge checks that a request over the server's max payload fails
// at once with an error that says so.
func TestTooLarge(t *testing.T) {
	s := startServer(t, "")
	srv := echoServer(t, 0)
	cfg := poolConfig(srv.URL, 2)
	nc := connect(t, s, "")
	e := newExecutor(t, nc, newPool(t, cfg, nil, nil), Options{})
	big := llm.Request{Prompt: strings.Repeat("x", int(nc.MaxPayload()))}
	_, err := e.Do(context.Background(), "a", big, 0)
	if !errors.Is(err, llm.ErrBadRequest) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("error %v, want ErrBadRequest naming max_payload", err)
	}
}

// TestSecurity checks that a client without the token cannot connect,
// that the embedded server refuses to listen beyond loopback without
// one, and that no API key travels over NATS: every message the server
// carries (calls, bucket writes, acks) is captured and searched.
func TestSecurity(t *testing.T) {
	if _, err := StartServer(ServerConfig{Host: "0.0.0.0", Port: -1, StoreDir: t.TempDir()}); !errors.Is(err, ErrInsecureListen) {
		t.Errorf("non-loopback without a token: %v, want ErrInsecureListen", err)
	}
	const token = "nats-token-DO-NOT-LEAK"
	s := startServer(t, token)
	if nc, err := Connect(context.Background(), s.ClientURL(), ConnectOptions{}); err == nil {
		nc.Close()
		t.Fatal("a client without the token connected")
	} else if !strings.Contains(err.Error(), TokenEnv) || strings.Contains(err.Error(), token) {
		t.Errorf("error without the token: %v", err)
	}
	if nc, err := Connect(context.Background(), s.ClientURL(), ConnectOptions{Auth: Auth{Token: "wrong"}}); err == nil {
		nc.Close()
		t.Fatal("a client with a wrong token connected")
	}

	spy := connect(t, s, token)
	var mu sync.Mutex
	var seen []string
	sub, err := spy.Subscribe(">", func(m *nats.Msg) {
		mu.Lock()
		seen = append(seen, m.Subject+" "+string(m.Data)+" "+fmt.Sprint(m.Header))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	spy.Flush()

	const key = "sk-worker-DO-NOT-LEAK"
	srv := echoServer(t, 0)
	cfg := poolConfig(srv.URL, 2)
	cfg.Models[1].Headers = map[string]string{"X-Secret": "${MY_HEADER}"}
	env := map[string]string{"MY_KEY": key, "MY_HEADER": "hdr-DO-NOT-LEAK"}
	e := newExecutor(t, connect(t, s, token), newPool(t, cfg, nil, map[string]string{"MY_HEADER": "coordinator-hdr"}), Options{})
	runWorker(t, connect(t, s, token), newPool(t, cfg, nil, env), time.Second)
	for i := range 4 {
		if _, err := e.Do(context.Background(), "b", req(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if h := srv.LastHeader(); h.Get("Authorization") != "Bearer "+key || h.Get("X-Secret") != "hdr-DO-NOT-LEAK" {
		t.Fatalf("the worker did not use its own key and header: %v", h)
	}
	spy.Flush()
	mu.Lock()
	defer mu.Unlock()
	calls := 0
	for _, m := range seen {
		if strings.HasPrefix(m, SubjectPrefix) {
			calls++
		}
		for _, secret := range []string{key, "hdr-DO-NOT-LEAK", "coordinator-hdr", token} {
			if strings.Contains(m, secret) {
				t.Errorf("a secret travels over NATS: %.200s", m)
			}
		}
	}
	if calls < 4 {
		t.Errorf("captured %d call messages, want at least 4 (the spy sees nothing?)", calls)
	}
}
