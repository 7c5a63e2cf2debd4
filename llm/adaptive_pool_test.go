package llm

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// An adaptive endpoint over real HTTP, shared by two models: the server
// never holds more than the ceiling, the limit grows past its start, and
// the model with few callers is served in turn with the one with many.
func TestPoolAutoConcurrency(t *testing.T) {
	srv := newQueueServer(3, 20*time.Millisecond, 10*time.Second, 0.1)
	defer srv.Close()
	url := srv.URL + "/v1"
	p, err := NewPool(Config{
		Models: Models{
			{Name: "busy", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "m1", Endpoint: url, Style: StyleCompletion}},
			{Name: "light", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "m2", Endpoint: url, Style: StyleCompletion}},
		},
		Endpoints: map[string]EndpointConfig{url: {MaxConcurrent: 8, AutoConcurrency: true, Timeout: 5 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lightDone atomic.Int64
	var busyAtLight60 atomic.Int64
	var wg sync.WaitGroup
	call := func(model string, w, i int) bool {
		_, err := p.Do(ctx, model, Request{Prompt: fmt.Sprintf("%s %d %d", model, w, i), MaxTokens: 1}, 0)
		if err != nil && ctx.Err() == nil {
			t.Errorf("%s: %v", model, err)
		}
		return err == nil
	}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if call("light", w, i) && lightDone.Add(1) == 60 {
					busyAtLight60.Store(int64(p.Stats()["busy"].Requests))
					cancel()
				}
			}
		})
	}
	for w := range 40 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				call("busy", w, i)
			}
		})
	}
	wg.Wait()

	if busy := busyAtLight60.Load(); busy > 3*60 {
		t.Errorf("40 callers of busy got %d calls while 4 of light got 60: not served in turn", busy)
	}
	if peak := srv.maxHeld(); peak > 8 || peak < 4 {
		t.Errorf("server held at most %d requests at once, want 4..8 (grown past the start, never past the ceiling)", peak)
	}
	es := p.EndpointStats()
	if len(es) != 1 {
		t.Fatalf("EndpointStats = %+v, want one endpoint", es)
	}
	e := es[0]
	if e.URL != url || !slices.Equal(e.Models, []string{"busy", "light"}) || !e.Auto || e.Max != 8 ||
		e.Limit < 1 || e.Limit > 8 || e.BaselineMs < 15 || e.LatencyMs < e.BaselineMs {
		t.Errorf("EndpointStats = %+v", e)
	}
}

// The limit is no part of what a call returns or of its cache key.
func TestAutoConcurrencyLeavesCallsAlone(t *testing.T) {
	srv := newQueueServer(2, 20*time.Millisecond, 10*time.Second, 0)
	defer srv.Close()
	url := srv.URL + "/v1"
	pool := func(ep EndpointConfig) *Pool {
		p, err := NewPool(Config{
			Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "m", Endpoint: url, Style: StyleCompletion}}},
			Endpoints: map[string]EndpointConfig{url: ep},
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fixed, auto := pool(EndpointConfig{MaxConcurrent: 3}), pool(EndpointConfig{AutoConcurrency: true})
	req := Request{Prompt: "p", MaxTokens: 1}
	kf, _ := fixed.CacheKey("m", req, 0)
	ka, _ := auto.CacheKey("m", req, 0)
	if kf != ka {
		t.Errorf("cache keys differ: %s (fixed) vs %s (auto)", kf, ka)
	}
	rf, err := fixed.Do(context.Background(), "m", req, 0)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := auto.Do(context.Background(), "m", req, 0)
	if err != nil {
		t.Fatal(err)
	}
	rf.Latency, ra.Latency = 0, 0
	if fmt.Sprint(rf) != fmt.Sprint(ra) {
		t.Errorf("responses differ:\nfixed %+v\nauto  %+v", rf, ra)
	}
	if e := auto.EndpointStats()[0]; !e.Auto || e.Max != DefaultOpenAIAutoCeiling || e.Limit != autoStart {
		t.Errorf("auto endpoint = %+v, want ceiling %d and the start limit", e, DefaultOpenAIAutoCeiling)
	}
	if e := fixed.EndpointStats()[0]; e.Auto || e.Max != 3 || e.Limit != 3 || e.InFlight != 0 {
		t.Errorf("fixed endpoint = %+v", e)
	}
}

// A semaphore whose limit changes: a higher limit hands the new slots to
// the waiters at once, in turn across models; a lower one grants nothing
// until fewer than the new limit are held.
func TestFairSemSetLimit(t *testing.T) {
	s := newFairSem(1, 2)
	ctx := context.Background()
	if err := s.acquire(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, q := range []int{0, 0, 0, 1, 1} {
		wg.Go(func() {
			if err := s.acquire(ctx, q); err != nil {
				t.Error(err)
			}
		})
		waitFor(t, func() bool { _, _, w := s.state(); return w == i+1 })
	}
	queued := func() [2]int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return [2]int{len(s.queues[0]), len(s.queues[1])}
	}
	s.setLimit(4) // three more slots: to queues 0, 1, 0
	if got := queued(); got != [2]int{1, 1} {
		t.Errorf("after raising the limit to 4, waiting per queue = %v, want [1 1]", got)
	}
	s.setLimit(2) // 4 held: the next two releases grant nothing
	s.release()
	s.release()
	if limit, used, waiting := s.state(); limit != 2 || used != 2 || waiting != 2 {
		t.Errorf("after lowering to 2 and two releases: limit %d, used %d, waiting %d; want 2, 2, 2", limit, used, waiting)
	}
	s.release() // below the limit: the slot goes to queue 1, whose turn it is
	if got := queued(); got != [2]int{1, 0} {
		t.Errorf("after a release below the limit, waiting per queue = %v, want [1 0]", got)
	}
	s.release()
	wg.Wait()
	if _, used, waiting := s.state(); used != 2 || waiting != 0 {
		t.Errorf("used %d, waiting %d at the end; want 2, 0", used, waiting)
	}
}

// waitFor polls cond until it holds (or fails the test after 5 s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// A call that fails because its caller gave up (a run's deadline, a
// cancelled run) tells the adaptive limit nothing; a timeout of the
// endpoint's own halves it.
func TestAutoConcurrencyIgnoresCallersDeadline(t *testing.T) {
	hang := ModelFunc(func(ctx context.Context, _ Request) (Response, error) {
		<-ctx.Done()
		return Response{}, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	})
	for _, tc := range []struct {
		name     string
		timeout  time.Duration // the endpoint's
		deadline time.Duration // the caller's
		backoffs int64
	}{
		{"caller's deadline", time.Minute, 20 * time.Millisecond, 0},
		{"endpoint timeout", 20 * time.Millisecond, time.Minute, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(Config{
				Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: "http://e:1"}}},
				Endpoints: map[string]EndpointConfig{"http://e:1": {MaxConcurrent: 8, AutoConcurrency: true, Timeout: tc.timeout}},
				Retry:     RetryConfig{MaxAttempts: 1},
			}, WithBackend("m", hang))
			if err != nil {
				t.Fatal(err)
			}
			// Grow the limit first, so that a halving shows.
			a := p.models[0].ep.auto
			a.mu.Lock()
			a.set(4)
			a.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			if _, err := p.Do(ctx, "m", Request{Prompt: "x"}, 0); err == nil {
				t.Fatal("Do succeeded")
			}
			if e := p.EndpointStats()[0]; e.Backoffs != tc.backoffs {
				t.Errorf("backoffs = %d (limit %d), want %d", e.Backoffs, e.Limit, tc.backoffs)
			}
		})
	}
}
