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

// BenchmarkAutoConcurrency drives a server of capacity K that queues
// beyond K (queueServer: L = 25 ms ±20% a call, a 504 for a call not
// answered within 4L) with 8K+16 callers through a Pool, with fixed limits
// 1, 2, K/2, K, 2K and 4K and with max_concurrent: auto (its default
// ceiling, 64). Each op is a run of 8 s from a cold pool, the ramp of the
// adaptive limit included. Metrics: calls/s (served), the share of the
// server's best (K/L), the server's 504s, calls that failed after every
// retry, and for auto the limit at the end and its backoffs.
//
//	go test -run '^$' -bench AutoConcurrency -benchtime 1x -count 3 ./llm/
func BenchmarkAutoConcurrency(b *testing.B) {
	const (
		L   = 25 * time.Millisecond
		run = 8 * time.Second
	)
	for _, k := range []int{4, 16} {
		var settings []int
		for _, c := range []int{1, 2, k / 2, k, 2 * k, 4 * k} {
			if !slices.Contains(settings, c) {
				settings = append(settings, c)
			}
		}
		settings = append(settings, 0) // auto
		for _, c := range settings {
			name := fmt.Sprintf("K=%d/fixed=%d", k, c)
			ep := EndpointConfig{MaxConcurrent: c}
			if c == 0 {
				name, ep = fmt.Sprintf("K=%d/auto", k), EndpointConfig{AutoConcurrency: true}
			}
			ep.Timeout = 10 * L // the server's 504 at 4L comes first
			b.Run(name, func(b *testing.B) {
				var served, timeouts, failed int64
				var elapsed time.Duration
				var last EndpointStats
				for b.Loop() {
					r := runAgainstQueue(b, k, L, 4*L, ep, 8*k+16, run)
					served += r.served
					timeouts += r.timeouts
					failed += r.failed
					elapsed += r.elapsed
					last = r.endpoint
				}
				perSec := float64(served) / elapsed.Seconds()
				b.ReportMetric(perSec, "calls/s")
				b.ReportMetric(100*perSec/(float64(k)/L.Seconds()), "pct_of_K/L")
				b.ReportMetric(float64(timeouts)/float64(b.N), "timeouts/op")
				b.ReportMetric(float64(failed)/float64(b.N), "failed/op")
				if last.Auto {
					b.ReportMetric(float64(last.Limit), "final_limit")
					b.ReportMetric(float64(last.Backoffs), "backoffs")
				}
			})
		}
	}
}

type queueRun struct {
	served, timeouts, failed int64
	elapsed                  time.Duration
	endpoint                 EndpointStats
}

// runAgainstQueue runs callers against a fresh queueServer and pool for d.
func runAgainstQueue(b *testing.B, k int, latency, timeout time.Duration, ep EndpointConfig, callers int, d time.Duration) queueRun {
	srv := newQueueServer(k, latency, timeout, 0.2)
	defer srv.Close()
	url := srv.URL + "/v1"
	p, err := NewPool(Config{
		Models:    Models{{Name: "m", ModelConfig: ModelConfig{Backend: BackendOpenAI, Model: "m", Endpoint: url, Style: StyleCompletion}}},
		Endpoints: map[string]EndpointConfig{url: ep},
		Retry:     RetryConfig{InitialBackoff: 4 * latency, MaxBackoff: 40 * latency},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range callers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, err := p.Do(ctx, "m", Request{Prompt: fmt.Sprint(w, " ", i), MaxTokens: 1}, 0)
				if err != nil && ctx.Err() == nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	return queueRun{
		served: srv.served.Load(), timeouts: srv.timedOut.Load(), failed: failed.Load(),
		elapsed: elapsed, endpoint: p.EndpointStats()[0],
	}
}
