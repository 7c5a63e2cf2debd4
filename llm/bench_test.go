package llm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchRequest is a typical instance-stage request: a ~4 KB few-shot prompt.
var benchRequest = Request{
	Prompt:      strings.Repeat("instruction: Write a haiku about the sea.\noutput: Waves fold into foam |EoS|\n\n", 50),
	MaxTokens:   512,
	Temperature: 0.7,
	TopK:        50,
	Stop:        []string{"|EoS|", "\n\n"},
}

// BenchmarkPoolOverhead measures what Pool.Do adds to a backend call: the
// backend here returns at once, so ns/op is the pool's own CPU cost (lookup,
// validation, slot, rate limiters, timeout context, retry loop, accounting)
// with no HTTP round trip.
func BenchmarkPoolOverhead(b *testing.B) {
	instant := ModelFunc(func(ctx context.Context, req Request) (Response, error) {
		return Response{Text: "ok", PromptTokens: 1000, CompletionTokens: 20, Latency: time.Millisecond}, nil
	})
	for _, bc := range []struct {
		name string
		ep   EndpointConfig
	}{
		{"no-rate-limits", EndpointConfig{MaxConcurrent: 4}},
		{"rpm+tpm", EndpointConfig{MaxConcurrent: 4, RequestsPerMinute: 1e12, TokensPerMinute: 1 << 50}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{
				Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: "http://e:1"}}},
				Endpoints: map[string]EndpointConfig{"http://e:1": bc.ep},
			}
			p, err := NewPool(cfg, WithBackend("m", instant))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Do(ctx, "m", benchRequest, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("cache-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			CacheKey("ollama http://e:1", "m", benchRequest, 0)
		}
	})
}

// zeroLatencyOllama is an Ollama fake that answers at once.
func zeroLatencyOllama(b *testing.B, delay time.Duration) *httptest.Server {
	body := []byte(`{"model":"m","created_at":"2025-01-01T00:00:00Z","response":"ok","done":true,"done_reason":"stop","prompt_eval_count":1000,"eval_count":20}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf [4096]byte
		for {
			if _, err := r.Body.Read(buf[:]); err != nil {
				break
			}
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkPoolVsBackend runs the same calls against a zero-latency HTTP
// fake through the bare Ollama backend and through the pool; the difference
// between the two is the pool's overhead including the HTTP client path.
func BenchmarkPoolVsBackend(b *testing.B) {
	srv := zeroLatencyOllama(b, 0)
	client := newHTTPClient()
	ctx := context.Background()
	b.Run("backend", func(b *testing.B) {
		o, _ := NewOllama(ModelConfig{Model: "m", Endpoint: srv.URL}, client)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := o.Generate(ctx, benchRequest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pool", func(b *testing.B) {
		p, err := NewPool(Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: srv.URL}}}},
			WithHTTPClient(client))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Do(ctx, "m", benchRequest, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// runLoad keeps workers goroutines calling model until stop is closed and
// returns the number of completed calls.
func runLoad(ctx context.Context, p *Pool, model string, workers int, stop <-chan struct{}) (*sync.WaitGroup, *atomic.Int64) {
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := p.Do(ctx, model, Request{Prompt: fmt.Sprint(w, i), MaxTokens: 1}, 0); err != nil {
					return
				}
				done.Add(1)
			}
		})
	}
	return &wg, &done
}

// BenchmarkSaturation: C slots on an endpoint whose every reply takes L.
// The ideal throughput is C/L; pct_of_C/L is what is achieved through real
// HTTP. "pool" has 4C callers queueing on the pool's C slots; "direct" is
// the baseline without the pool: exactly C goroutines calling the backend,
// so the gap between the two is what the pool costs.
func BenchmarkSaturation(b *testing.B) {
	const C, L = 8, 50 * time.Millisecond
	srv := zeroLatencyOllama(b, L)
	p, err := NewPool(Config{
		Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: srv.URL}}},
		Endpoints: map[string]EndpointConfig{srv.URL: {MaxConcurrent: C}},
	})
	if err != nil {
		b.Fatal(err)
	}
	direct, _ := NewOllama(ModelConfig{Model: "m", Endpoint: srv.URL}, nil)
	ctx := context.Background()
	req := Request{Prompt: "x", MaxTokens: 1}
	for _, bc := range []struct {
		name    string
		callers int
		call    func() error
	}{
		{"pool", 4 * C, func() error { _, err := p.Do(ctx, "m", req, 0); return err }},
		{"direct", C, func() error { _, err := direct.Generate(ctx, req); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for range bc.callers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := bc.call(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			got := float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(got, "calls/s")
			b.ReportMetric(100*got/(C/L.Seconds()), "pct_of_C/L")
		})
	}
}

// BenchmarkTwoEndpoints: a fast endpoint (4 slots, 20 ms a call) called by
// 16 callers, alone and next to a slow endpoint (2 slots, 200 ms a call)
// with a backlog of 32 callers. Each op is one fast call. The metrics are
// each endpoint's throughput as a share of its ideal C/L: the fast one must
// be as fast with the slow backlog as without it.
func BenchmarkTwoEndpoints(b *testing.B) {
	const (
		slowC, slowL = 2, 200 * time.Millisecond
		fastC, fastL = 4, 20 * time.Millisecond
	)
	for _, bc := range []struct {
		name        string
		slowWorkers int
	}{{"fast-alone", 0}, {"fast-with-slow-backlog", 32}} {
		b.Run(bc.name, func(b *testing.B) {
			slow := zeroLatencyOllama(b, slowL)
			fast := zeroLatencyOllama(b, fastL)
			p, err := NewPool(Config{
				Models: Models{
					{Name: "slow", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "big", Endpoint: slow.URL}},
					{Name: "fast", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "small", Endpoint: fast.URL}},
				},
				Endpoints: map[string]EndpointConfig{slow.URL: {MaxConcurrent: slowC}, fast.URL: {MaxConcurrent: fastC}},
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := make(chan struct{})
			slowWG, slowDone := runLoad(ctx, p, "slow", bc.slowWorkers, stop)

			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			slowStart := slowDone.Load()
			var wg sync.WaitGroup
			for range 4 * fastC {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := p.Do(ctx, "fast", Request{Prompt: "x", MaxTokens: 1}, 0); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			slowCalls := slowDone.Load() - slowStart
			b.StopTimer()
			close(stop)
			cancel()
			slowWG.Wait()

			fastRate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(100*fastRate/(fastC/fastL.Seconds()), "fast_pct_of_C/L")
			if bc.slowWorkers > 0 {
				b.ReportMetric(100*(float64(slowCalls)/elapsed.Seconds())/(slowC/slowL.Seconds()), "slow_pct_of_C/L")
			}
		})
	}
}

func BenchmarkCache(b *testing.B) {
	resp := Response{Text: strings.Repeat("a generated instance output ", 20), FinishReason: "stop", PromptTokens: 1000, CompletionTokens: 120, Latency: time.Second}
	b.Run("get-hit", func(b *testing.B) {
		c, err := OpenCache(filepath.Join(b.TempDir(), "c.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = CacheKey("e", "m", Request{Prompt: fmt.Sprint(i)}, 0)
			if err := c.Put(keys[i], resp); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok, err := c.Get(keys[i%len(keys)]); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("pool-hit", func(b *testing.B) {
		c, err := OpenCache(filepath.Join(b.TempDir(), "c.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		p, err := NewPool(Config{Models: Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOllama, Model: "m", Endpoint: "http://e:1"}}}},
			WithCache(c), WithBackend("m", ModelFunc(func(context.Context, Request) (Response, error) { return resp, nil })))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if _, err := p.Do(ctx, "m", benchRequest, 0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if r, err := p.Do(ctx, "m", benchRequest, 0); err != nil || !r.Cached {
				b.Fatal(err)
			}
		}
	})
	b.Run("put", func(b *testing.B) {
		c, err := OpenCache(filepath.Join(b.TempDir(), "c.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if err := c.Put(fmt.Sprintf("key-%d", i), resp); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// put-behind: Puts into a write-behind cache, hash keys as a run
	// makes them, each journalled, and a commit every 32 Puts (a run at
	// 320 calls/s committing every 0.1 s) or every 1,500 (at 300 calls/s
	// every 5 s, WriteBehind); cpu-µs/entry is the process's CPU for the
	// Puts and their commits, Close's last one included.
	for _, every := range []int{32, 1500} {
		b.Run(fmt.Sprintf("put-behind/per-commit=%d", every), func(b *testing.B) {
			c, err := OpenCache(filepath.Join(b.TempDir(), "c.db"), CacheWriteBehind(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := processCPU()
			i := 0
			for b.Loop() {
				if err := c.Put(CacheKey("e", "m", Request{Prompt: fmt.Sprint(i)}, 0), resp); err != nil {
					b.Fatal(err)
				}
				if i++; i%every == 0 {
					if err := c.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/entry")
		})
	}
	b.Run("put-parallel", func(b *testing.B) {
		c, err := OpenCache(filepath.Join(b.TempDir(), "c.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var n atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Put(fmt.Sprintf("key-%d", n.Add(1)), resp); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// processCPU is the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTransport compares the Pool's direct transport with the
// standard one: 16 callers post 4 KB bodies to a loopback server that
// answers after a fixed latency, the regime of a busy endpoint where most
// of the process's threads are idle between calls (more so at 10 ms).
// cpu-µs/call is the whole process's CPU, the in-process server's
// included (the same for both).
func BenchmarkTransport(b *testing.B) {
	reply := []byte(`{"model":"m","response":"` + strings.Repeat("word ", 60) + `","done":true,"prompt_eval_count":900,"eval_count":60}`)
	body := []byte(strings.Repeat("x", 4<<10))
	for _, latency := range []time.Duration{time.Millisecond, 10 * time.Millisecond} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			time.Sleep(latency)
			w.Header().Set("Content-Type", "application/json")
			w.Write(reply)
		}))
		direct := newHTTPClientFor(16)
		standard := &http.Client{Transport: newHTTPClientFor(16).Transport.(*h1Transport).std}
		for _, tt := range []struct {
			name   string
			client *http.Client
		}{{"direct", direct}, {"standard", standard}} {
			b.Run(fmt.Sprintf("latency=%v/%s", latency, tt.name), func(b *testing.B) {
				const callers = 16
				var next atomic.Int64
				var wg sync.WaitGroup
				cpu0 := processCPU()
				b.ResetTimer()
				for range callers {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							resp, err := tt.client.Post(srv.URL, "application/json", bytes.NewReader(body))
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/call")
			})
		}
		direct.CloseIdleConnections()
		standard.CloseIdleConnections()
		srv.Close()
	}
}
