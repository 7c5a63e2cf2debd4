package llm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testRetry = RetryConfig{MaxAttempts: 6, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}

func TestPoolRetriesThenSucceeds(t *testing.T) {
	tests := []struct {
		name      string
		steps     []http.HandlerFunc
		wantSleep []time.Duration // with jitter fixed at 0.5: b/2 + b/4
		wantKinds map[string]int64
	}{
		{
			name:      "429 with Retry-After seconds",
			steps:     []http.HandlerFunc{status(429, `{"error":"slow down"}`, "Retry-After", "3"), ollamaOK("ok", false)},
			wantSleep: []time.Duration{3 * time.Second},
			wantKinds: map[string]int64{"rate_limited": 1},
		},
		{
			name:      "429 with a short Retry-After: the backoff is longer",
			steps:     []http.HandlerFunc{status(429, `{"error":"slow down"}`, "Retry-After", "0"), ollamaOK("ok", false)},
			wantSleep: []time.Duration{75 * time.Millisecond},
			wantKinds: map[string]int64{"rate_limited": 1},
		},
		{
			name: "burst of 500s",
			steps: []http.HandlerFunc{
				status(500, `{"error":"boom"}`), status(502, ``), status(503, `{"error":"busy"}`), status(500, `x`),
				ollamaOK("ok", false),
			},
			// b = 100ms, 200ms, 400ms, 800ms; wait = 0.75 b
			wantSleep: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond},
			wantKinds: map[string]int64{"server": 4},
		},
		{
			name:      "body cut mid-JSON",
			steps:     []http.HandlerFunc{cutBody(`{"response":"o`), ollamaOK("ok", false)},
			wantSleep: []time.Duration{75 * time.Millisecond},
			wantKinds: map[string]int64{"bad_response": 1},
		},
		{
			name: "stream ends early",
			steps: []http.HandlerFunc{
				func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"response":"o","done":false}`) },
				ollamaOK("ok", false),
			},
			wantSleep: []time.Duration{75 * time.Millisecond},
			wantKinds: map[string]int64{"bad_response": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, tt.steps...)
			clk := newFakeClock()
			p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{}, testRetry, clk)
			resp, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.Text != "ok" {
				t.Errorf("text = %q", resp.Text)
			}
			if got, want := srv.Requests(), len(tt.steps); got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
			// Every sleep is a backoff here (no rate limits), except the
			// endpoint pause after a Retry-After, which the retry itself
			// already waited out.
			var sleeps []time.Duration
			for _, d := range clk.Sleeps() {
				if d > 0 {
					sleeps = append(sleeps, d)
				}
			}
			if !slices.Equal(sleeps, tt.wantSleep) {
				t.Errorf("sleeps = %v, want %v", sleeps, tt.wantSleep)
			}
			st := p.Stats()["m"]
			if st.Retries != int64(len(tt.steps)-1) || st.Requests != int64(len(tt.steps)) || st.Calls != 1 || st.Failures != 0 {
				t.Errorf("stats = %+v", st)
			}
			for k, v := range tt.wantKinds {
				if st.Errors[k] != v {
					t.Errorf("errors[%s] = %d, want %d (all: %v)", k, st.Errors[k], v, st.Errors)
				}
			}
		})
	}
}

func TestPoolRetryAfterHTTPDate(t *testing.T) {
	// The backend reads an HTTP-date Retry-After against the real clock.
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		status(429, `{"error":"x"}`, "Retry-After", time.Now().Add(42*time.Second).Format(http.TimeFormat))(w, r)
	}, ollamaOK("ok", false))
	clk := newFakeClock()
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{}, testRetry, clk)
	if _, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	sleeps := clk.Sleeps()
	if len(sleeps) != 1 || sleeps[0] < 40*time.Second || sleeps[0] > 42*time.Second {
		t.Errorf("sleeps = %v, want one wait of about 42s (the date has 1s resolution)", sleeps)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"-3", 0},
		{"junk", 0},
		{"99999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPoolBackoffBounds(t *testing.T) {
	p := &Pool{retry: RetryConfig{MaxAttempts: 10, InitialBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second}}
	for _, j := range []float64{0, 0.999999} {
		p.jitter = func() float64 { return j }
		for attempt := 1; attempt <= 80; attempt++ {
			b := min(500*time.Millisecond<<min(attempt-1, 20), 30*time.Second)
			got := p.backoff(attempt, 0)
			if got < b/2 || got > b {
				t.Errorf("jitter %v, attempt %d: backoff %v outside [%v, %v]", j, attempt, got, b/2, b)
			}
		}
	}
	if got := p.backoff(1, time.Minute); got != time.Minute {
		t.Errorf("Retry-After longer than the backoff: got %v, want 1m", got)
	}
}

func TestPoolGivesUp(t *testing.T) {
	srv := newScripted(t, status(500, `{"error":"boom"}`))
	clk := newFakeClock()
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{}, RetryConfig{MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: 2 * time.Second}, clk)
	_, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0)
	if !errors.Is(err, ErrServer) || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 {
		t.Errorf("errors.As(*StatusError) failed: %v", err)
	}
	if srv.Requests() != 3 {
		t.Errorf("requests = %d, want 3", srv.Requests())
	}
	if got, want := clk.Sleeps(), []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	st := p.Stats()["m"]
	if st.Failures != 1 || st.Errors["server"] != 3 || st.Retries != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPoolPermanentErrorsFailAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
		want error
	}{
		{"400", status(400, `{"error":"bad"}`), ErrBadRequest},
		{"401", status(401, `{"error":"unauthorized"}`), ErrAuth},
		{"403", status(403, `{"error":"forbidden"}`), ErrAuth},
		{"404", status(404, `{"error":"model 'tiny' not found"}`), ErrModelNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScripted(t, tt.h)
			clk := newFakeClock()
			p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{}, testRetry, clk)
			_, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if srv.Requests() != 1 || len(clk.Sleeps()) != 0 {
				t.Errorf("requests = %d, sleeps = %v; want one request and no wait", srv.Requests(), clk.Sleeps())
			}
			if !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), `"tiny"`) {
				t.Errorf("error %q does not name the endpoint and the model", err)
			}
		})
	}
}

func TestPoolTimeoutIsRetried(t *testing.T) {
	srv := newScripted(t, hang, ollamaOK("ok", false))
	clk := newFakeClock()
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{Timeout: 30 * time.Millisecond}, testRetry, clk)
	resp, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0)
	if err != nil || resp.Text != "ok" {
		t.Fatalf("Do = %+v, %v", resp, err)
	}
	if st := p.Stats()["m"]; st.Errors["timeout"] != 1 || st.Retries != 1 {
		t.Errorf("stats = %+v", st)
	}

	// Every attempt too slow: the error says timeout.
	srv2 := newScripted(t, hang)
	p2 := poolFor(t, BackendOllama, srv2.URL, EndpointConfig{Timeout: 20 * time.Millisecond}, RetryConfig{MaxAttempts: 2}, clk)
	_, err = p2.Do(context.Background(), "m", Request{Prompt: "x"}, 0)
	if !errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
}

// slowModel is a Model that takes d (real time) and counts calls in flight.
type slowModel struct {
	d        time.Duration
	inFlight *atomic.Int32
	maxSeen  *atomic.Int32
	calls    atomic.Int32
	fail     func(n int32) error
}

func (m *slowModel) Generate(ctx context.Context, req Request) (Response, error) {
	n := m.calls.Add(1)
	if m.inFlight != nil {
		cur := m.inFlight.Add(1)
		defer m.inFlight.Add(-1)
		for {
			old := m.maxSeen.Load()
			if cur <= old || m.maxSeen.CompareAndSwap(old, cur) {
				break
			}
		}
	}
	if m.fail != nil {
		if err := m.fail(n); err != nil {
			return Response{}, err
		}
	}
	select {
	case <-time.After(m.d):
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	return Response{Text: "ok", Latency: m.d, PromptTokens: 1, CompletionTokens: 1}, nil
}

func TestPoolConcurrencyLimitAtTheServer(t *testing.T) {
	var inFlight, maxSeen atomic.Int32
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			old := maxSeen.Load()
			if cur <= old || maxSeen.CompareAndSwap(old, cur) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		ollamaOK("ok", false)(w, r)
	})
	// Two models on the same endpoint share its limit of 3.
	cfg := Config{
		Models: Models{
			{Name: "a", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "tiny", Endpoint: srv.URL}},
			{Name: "b", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "tiny-b", Endpoint: srv.URL + "/"}},
		},
		Endpoints: map[string]EndpointConfig{srv.URL: {MaxConcurrent: 3}},
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			_, err := p.Do(context.Background(), []string{"a", "b"}[i%2], Request{Prompt: fmt.Sprint(i)}, 0)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := maxSeen.Load(); got != 3 {
		t.Errorf("max requests in flight at the server = %d, want 3", got)
	}
}

func TestPoolSlotNotHeldDuringBackoff(t *testing.T) {
	// One slot. Model a fails once with a 500 and then sleeps a long
	// (real) backoff; model b must get the slot meanwhile.
	cfg := Config{
		Models: Models{
			{Name: "a", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "a", Endpoint: "http://e:1"}},
			{Name: "b", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "b", Endpoint: "http://e:1"}},
		},
		Endpoints: map[string]EndpointConfig{"http://e:1": {MaxConcurrent: 1}},
		Retry:     RetryConfig{MaxAttempts: 2, InitialBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second},
	}
	a := &slowModel{d: 0, fail: func(n int32) error {
		if n == 1 {
			return &StatusError{Backend: BackendOllama, StatusCode: 500}
		}
		return nil
	}}
	b := &slowModel{d: 0}
	backoffStarted := make(chan struct{})
	sleep := func(ctx context.Context, d time.Duration) error {
		close(backoffStarted)
		<-ctx.Done()
		return ctx.Err()
	}
	p, err := NewPool(cfg, WithBackend("a", a), WithBackend("b", b), WithClock(time.Now, sleep))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Do(ctx, "a", Request{Prompt: "x"}, 0)
		done <- err
	}()
	<-backoffStarted
	bctx, bcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer bcancel()
	if _, err := p.Do(bctx, "b", Request{Prompt: "y"}, 0); err != nil {
		t.Errorf("b while a is backing off: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a after cancel: %v, want context.Canceled", err)
	}
}

func TestPoolRPMSpacesCalls(t *testing.T) {
	srv := newScripted(t, ollamaOK("ok", false))
	clk := newFakeClock()
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{RequestsPerMinute: 120}, testRetry, clk)
	for i := range 4 {
		if _, err := p.Do(context.Background(), "m", Request{Prompt: fmt.Sprint(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// 120/min = one every 500ms; the first goes at once.
	want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond}
	if got := clk.Sleeps(); !slices.Equal(got, want) {
		t.Errorf("rate waits = %v, want %v", got, want)
	}
}

func TestPoolTPMLimits(t *testing.T) {
	srv := newScripted(t, ollamaOK("ok", false)) // reports 7+3 tokens
	clk := newFakeClock()
	// 600 tokens/min = 10 a second, bucket of 600.
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{TokensPerMinute: 600}, testRetry, clk)
	req := Request{Prompt: strings.Repeat("abcd", 100), MaxTokens: 200} // 100 + 200 = 300 tokens
	for i := range 3 {
		req.Prompt = fmt.Sprint(i) + req.Prompt[1:]
		if _, err := p.Do(context.Background(), "m", req, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Two fit in the bucket; the third waits for 300 tokens = 30s.
	if got, want := clk.Sleeps(), []time.Duration{30 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("token waits = %v, want %v", got, want)
	}
}

func TestPoolCancelStopsWaits(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	cfg := Config{
		Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: "http://e:1"}}},
		Endpoints: map[string]EndpointConfig{"http://e:1": {MaxConcurrent: 1}},
	}
	m := &slowModel{d: time.Minute}
	p, err := NewPool(cfg, WithBackend("m", m))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() { _, errs[i] = p.Do(ctx, "m", Request{Prompt: fmt.Sprint(i)}, 0) })
	}
	time.Sleep(20 * time.Millisecond) // one in flight, four waiting for the slot
	start := time.Now()
	cancel()
	wg.Wait()
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancel took %v", d)
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call %d: err = %v, want context.Canceled", i, err)
		}
	}
	// Abandoned calls are not the model's failures.
	if st := p.Stats()["m"]; st.Canceled != 5 || st.Failures != 0 {
		t.Errorf("stats after cancel: %d canceled, %d failures; want 5 and 0", st.Canceled, st.Failures)
	}
	// The slot was released: a new call gets through.
	m.d = 0
	if _, err := p.Do(context.Background(), "m", Request{Prompt: "after"}, 0); err != nil {
		t.Errorf("after cancel: %v", err)
	}
}

func TestFairSemRoundRobin(t *testing.T) {
	s := newFairSem(1, 3)
	ctx := context.Background()
	if err := s.acquire(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Queue 0 has a deep backlog; 1 and 2 one waiter each.
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	queued := 0
	enqueue := func(q int) {
		queued++
		wg.Go(func() {
			if err := s.acquire(ctx, q); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, q)
			mu.Unlock()
			s.release()
		})
		// Wait until it is queued, so the order of arrival is known.
		for {
			s.mu.Lock()
			n := s.waiting
			s.mu.Unlock()
			if n == queued {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	for range 4 {
		enqueue(0)
	}
	enqueue(1)
	enqueue(2)
	s.release()
	wg.Wait()
	// Served in turn: 0, 1, 2, then the rest of 0 (the cursor starts at 0).
	if want := []int{0, 1, 2, 0, 0, 0}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
}

func TestFairSemCancelledWaiter(t *testing.T) {
	s := newFairSem(1, 2)
	if err := s.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.acquire(ctx, 1) }()
	for {
		s.mu.Lock()
		n := s.waiting
		s.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	s.release()
	// The slot is free again, not handed to the departed waiter.
	tctx, tcancel := context.WithTimeout(context.Background(), time.Second)
	defer tcancel()
	if err := s.acquire(tctx, 0); err != nil {
		t.Errorf("acquire after the waiter left: %v", err)
	}
}

func TestPoolFastEndpointNotStarved(t *testing.T) {
	// A slow endpoint (1 slot, 200ms per call) with a deep backlog must not
	// delay a fast one (2 slots, 1ms per call).
	cfg := Config{
		Models: Models{
			{Name: "slow", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "big", Endpoint: "http://slow:1/v1"}},
			{Name: "fast", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "small", Endpoint: "http://fast:1"}},
		},
		Endpoints: map[string]EndpointConfig{"http://slow:1/v1": {MaxConcurrent: 1}, "http://fast:1": {MaxConcurrent: 2}},
	}
	slow := &slowModel{d: 200 * time.Millisecond}
	fast := &slowModel{d: time.Millisecond}
	p, err := NewPool(cfg, WithBackend("slow", slow), WithBackend("fast", fast))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { p.Do(ctx, "slow", Request{Prompt: fmt.Sprint(i)}, 0) })
	}
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	for i := range 20 {
		if _, err := p.Do(context.Background(), "fast", Request{Prompt: fmt.Sprint(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if elapsed > 150*time.Millisecond {
		t.Errorf("20 fast calls took %v behind a slow backlog, want ≈ 20ms", elapsed)
	}
}

func TestPoolCache(t *testing.T) {
	srv := newScripted(t, status(500, `{"error":"boom"}`), ollamaOK("first", false), ollamaOK("second", false))
	clk := newFakeClock()
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{}, RetryConfig{MaxAttempts: 1}, clk, WithCache(c))
	req := Request{Prompt: "Once", MaxTokens: 5, Seed: ptr[int64](1)}

	// A failure is not cached.
	if _, err := p.Do(context.Background(), "m", req, 0); !errors.Is(err, ErrServer) {
		t.Fatalf("first call: %v, want the 500", err)
	}
	r1, err := p.Do(context.Background(), "m", req, 0)
	if err != nil || r1.Text != "first" || r1.Cached {
		t.Fatalf("second call = %+v, %v; want a fresh 'first'", r1, err)
	}
	// Same request: served from the cache, no network call.
	r2, err := p.Do(context.Background(), "m", req, 0)
	if err != nil || r2.Text != "first" || !r2.Cached {
		t.Fatalf("cached call = %+v, %v", r2, err)
	}
	r2.Cached = false
	if r2 != r1 {
		t.Errorf("cached response %+v differs from the original %+v", r2, r1)
	}
	if srv.Requests() != 2 {
		t.Errorf("requests = %d, want 2", srv.Requests())
	}
	// Another sample index is another call.
	r3, err := p.Do(context.Background(), "m", req, 1)
	if err != nil || r3.Text != "second" || r3.Cached {
		t.Fatalf("sample 1 = %+v, %v", r3, err)
	}
	st := p.Stats()["m"]
	if st.Calls != 4 || st.CacheHits != 1 || st.Requests != 3 || st.Failures != 1 {
		t.Errorf("stats = %+v", st)
	}
	if key, _ := p.CacheKey("m", req, 0); key != CacheKey(EndpointID(BackendOllama, srv.URL), "tiny", req, 0) {
		t.Errorf("Pool.CacheKey = %s, want the documented CacheKey", key)
	}
}

func TestPoolStatsAndCost(t *testing.T) {
	cfg := Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{
		Backend: BackendOllama, Model: "m", Endpoint: "http://e:1",
		Price: Price{PromptPerMillion: 2, CompletionPerMillion: 10},
	}}}}
	var n atomic.Int64
	model := ModelFunc(func(ctx context.Context, req Request) (Response, error) {
		i := n.Add(1)
		return Response{Text: "x", PromptTokens: 100, CompletionTokens: 50, Latency: time.Duration(i) * time.Millisecond}, nil
	})
	p, err := NewPool(cfg, WithBackend("m", model))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := p.Do(context.Background(), "m", Request{Prompt: fmt.Sprint(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	st := p.Stats()["m"]
	want := ModelStats{
		Calls: 100, Requests: 100, PromptTokens: 10000, CompletionTokens: 5000,
		LatencyP50Ms: 50, LatencyP90Ms: 90, LatencyP99Ms: 99,
		CostUSD: (10000*2 + 5000*10) / 1e6,
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("stats = %+v\nwant    %+v", st, want)
	}
}

func TestPoolModelsAndInfo(t *testing.T) {
	cfg := Config{Models: Models{
		{Name: "falcon", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "falcon:40b", Roles: []Role{RoleInstructions, RoleInstances}}},
		{Name: "t5", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "flan-t5", Endpoint: "http://user:pw@gpu2:8000/v1", Roles: []Role{RoleEnsemble}, Weight: 2}},
		{Name: "ul2", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "flan-ul2", Endpoint: "http://gpu3:8000/v1", Roles: []Role{RoleEnsemble}}},
	}}
	p, err := NewPool(cfg, WithGetenv(func(k string) string {
		if k == "OLLAMA_HOST" {
			return "gpu1"
		}
		return ""
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Models(RoleEnsemble); !slices.Equal(got, []string{"t5", "ul2"}) {
		t.Errorf("Models(ensemble) = %v", got)
	}
	if got := p.Models(RoleInstructions); !slices.Equal(got, []string{"falcon"}) {
		t.Errorf("Models(instructions) = %v", got)
	}
	if got := p.Models(""); !slices.Equal(got, []string{"falcon", "t5", "ul2"}) {
		t.Errorf("Models(\"\") = %v", got)
	}
	f, _ := p.Info("falcon")
	if f.Endpoint != "http://gpu1:11434" || f.Style != StyleCompletion || f.Weight != 1 {
		t.Errorf("falcon = %+v (OLLAMA_HOST=gpu1 means http://gpu1:11434)", f)
	}
	t5, _ := p.Info("t5")
	if t5.Endpoint != "http://gpu2:8000/v1" || t5.Style != StyleChat || t5.Weight != 2 {
		t.Errorf("t5 = %+v (credentials must not show)", t5)
	}
	if _, err := p.Do(context.Background(), "nope", Request{Prompt: "x"}, 0); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "falcon, t5, ul2") {
		t.Errorf("unknown model: %v", err)
	}
}

func TestNewPoolErrors(t *testing.T) {
	one := Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: "http://a:1"}}}
	tests := []struct {
		name string
		cfg  Config
		env  map[string]string
		want string
	}{
		{"no models", Config{}, nil, "models: no models configured"},
		{"unused endpoint", Config{Models: one, Endpoints: map[string]EndpointConfig{"http://b:1": {}}}, nil, "endpoints.http://b:1: no model uses this endpoint"},
		{
			"header variable unset",
			Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Headers: map[string]string{"Authorization": "Bearer ${HF_TOKEN}"}}}}},
			nil, "models.m.headers.Authorization: environment variable HF_TOKEN is not set",
		},
		{"invalid", Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{Backend: "x", Model: "m"}}}}, nil, `models.m.backend: unknown backend "x" (want ollama or openai)`},
		{"bad OLLAMA_HOST", Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m"}}}}, map[string]string{"OLLAMA_HOST": "ftp://x"}, "models.m.endpoint: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPool(tt.cfg, WithGetenv(func(k string) string { return tt.env[k] }))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestHeadersExpandedFromEnv(t *testing.T) {
	srv := newScripted(t, ollamaOK("ok", false))
	cfg := Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{
		Backend: BackendOllama, Model: "m", Endpoint: srv.URL, Headers: map[string]string{"Authorization": "Bearer ${TOK}"},
	}}}}
	p, err := NewPool(cfg, WithGetenv(func(k string) string { return map[string]string{"TOK": "s3cret"}[k] }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	if got := srv.Header(0).Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	if s := cfg.String(); strings.Contains(s, "TOK") || !strings.Contains(s, "[redacted]") {
		t.Errorf("Config.String shows header values:\n%s", s)
	}
}

// ModelFunc adapts a function to Model, for tests.
type ModelFunc func(ctx context.Context, req Request) (Response, error)

func (f ModelFunc) Generate(ctx context.Context, req Request) (Response, error) { return f(ctx, req) }

func TestPoolUnreachableThenRecovers(t *testing.T) {
	// Reserve a port, then free it: the first attempt is refused, and the
	// server comes up during the backoff.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := &http.Server{Handler: ollamaOK("back", false)}
	t.Cleanup(func() { srv.Close() })
	clk := newFakeClock()
	started := false
	sleep := func(ctx context.Context, d time.Duration) error {
		if !started {
			started = true
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			go srv.Serve(l)
		}
		return clk.Sleep(ctx, d)
	}
	p := poolFor(t, BackendOllama, "http://"+addr, EndpointConfig{}, testRetry, clk, WithClock(clk.Now, sleep))
	resp, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0)
	if err != nil || resp.Text != "back" {
		t.Fatalf("Do = %+v, %v", resp, err)
	}
	if st := p.Stats()["m"]; st.Errors["unreachable"] != 1 || st.Retries != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPoolConnectionResetIsRetried(t *testing.T) {
	reset := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		conn.Close()
	}
	srv := newScripted(t, reset, ollamaOK("ok", false))
	clk := newFakeClock()
	p := poolFor(t, BackendOllama, srv.URL, EndpointConfig{}, testRetry, clk)
	if _, err := p.Do(context.Background(), "m", Request{Prompt: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats()["m"]; st.Retries != 1 || st.Errors["bad_response"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPoolRetryAfterPausesTheEndpoint(t *testing.T) {
	// Model a gets a 429 with Retry-After: 5; model b on the same endpoint
	// then waits out the pause before its own request.
	var calls atomic.Int32
	srv := newScripted(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			status(429, `{"error":"slow down"}`, "Retry-After", "5")(w, r)
			return
		}
		ollamaOK("ok", false)(w, r)
	})
	clk := newFakeClock()
	cfg := Config{
		Models: Models{
			{Name: "a", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "a", Endpoint: srv.URL}},
			{Name: "b", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "b", Endpoint: srv.URL}},
		},
		Retry: RetryConfig{MaxAttempts: 1},
	}
	p, err := NewPool(cfg, WithClock(clk.Now, clk.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Do(context.Background(), "a", Request{Prompt: "x"}, 0); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("a: %v, want ErrRateLimited (one attempt)", err)
	}
	if _, err := p.Do(context.Background(), "b", Request{Prompt: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	if got := clk.Sleeps(); !slices.Equal(got, []time.Duration{5 * time.Second}) {
		t.Errorf("b waited %v, want the 5s pause", got)
	}
}

func TestSameModel(t *testing.T) {
	ollama := func(name, model, endpoint string) ModelInfo {
		return ModelInfo{Name: name, Backend: BackendOllama, Model: model, Endpoint: endpoint}
	}
	const h = "http://h:11434"
	for _, tc := range []struct {
		x, y ModelInfo
		same bool
	}{
		{ollama("judge", "qwen2.5:7b", h), ModelInfo{Name: "judge"}, true},
		{ollama("judge", "qwen2.5:7b", h), ollama("e1", "qwen2.5:7b", h), true},
		{ollama("judge", "qwen2.5:7b", h), ollama("e1", "qwen2.5:7b", "http://other:11434"), false},
		{ollama("judge", "qwen2.5:7b", h), ModelInfo{Name: "e1", Backend: BackendOpenAI, Model: "qwen2.5:7b", Endpoint: h}, false},
		{ollama("judge", "qwen2.5:7b", h), ollama("e1", "llama3", h), false},
		// Ollama's untagged name is its :latest; a registry port is not a tag.
		{ollama("j", "tiny-chat", h), ollama("e", "tiny-chat:latest", h), true},
		{ollama("j", "tiny-chat", h), ollama("e", "tiny-chat:8b", h), false},
		{ollama("j", "host:5000/lib/m", h), ollama("e", "host:5000/lib/m:latest", h), true},
		{ModelInfo{Name: "j", Backend: BackendOpenAI, Model: "m", Endpoint: h}, ModelInfo{Name: "e", Backend: BackendOpenAI, Model: "m:latest", Endpoint: h}, false},
	} {
		if got := tc.x.SameModel(tc.y); got != tc.same {
			t.Errorf("%+v.SameModel(%+v) = %v, want %v", tc.x, tc.y, got, tc.same)
		}
	}
}
