package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

// BenchmarkGenerateThroughput runs the whole pipeline through a real
// llm.Pool, over HTTP, against a fake endpoint that takes exactly L per
// call and is allowed C calls at once. The bound is C/L calls per second;
// the benchmark reports the share of it the pipeline achieves (goal ≥ 95%)
// over the whole run, ramp-up and tail included, and the share of time the
// pipeline had at least C calls waiting or running ("offered"): when that
// is ~100%, what is missing from the bound is the per-call cost of HTTP on
// loopback, not the pipeline. L is a realistic model latency; at a few
// milliseconds the loopback round trip itself (about 2 ms on a loaded
// 2-core machine) dominates.
func BenchmarkGenerateThroughput(b *testing.B) {
	for _, tc := range []struct {
		c int
		l time.Duration
	}{{8, 50 * time.Millisecond}, {16, 100 * time.Millisecond}} {
		b.Run(fmt.Sprintf("C=%d/L=%v", tc.c, tc.l), func(b *testing.B) {
			srv := llmtest.NewServer(func(c llmtest.Call) string {
				r := pipelinetest.Request{Model: c.Model, Prompt: c.Prompt, Temperature: c.Temperature, Seed: c.Seed}
				return pipelinetest.Reply(r)
			})
			srv.SetLatency(tc.l)
			defer srv.Close()
			var cfg llm.Config
			for _, m := range []struct {
				name  string
				roles []llm.Role
			}{
				{"gen", []llm.Role{llm.RoleInstructions, llm.RoleInstances}},
				{"e1", []llm.Role{llm.RoleEnsemble}},
				{"e2", []llm.Role{llm.RoleEnsemble}},
			} {
				cfg.Models.Set(m.name, llm.ModelConfig{Backend: llm.BackendOllama, Model: m.name, Endpoint: srv.URL, Roles: m.roles})
			}
			cfg.Endpoints = map[string]llm.EndpointConfig{srv.URL: {MaxConcurrent: tc.c}}
			var calls int64
			var elapsed time.Duration
			var samples, offered int64
			for i := 0; b.Loop(); i++ {
				pool, err := llm.NewPool(cfg)
				if err != nil {
					b.Fatal(err)
				}
				opts := Options{
					Seeds: pipelinetest.Seeds(), Seed: int64(i), TargetA: 150, TargetB: 75,
					DemosA: 6, DemosB: 4, Window: 32,
				}
				for _, m := range pool.All() {
					opts.Models = append(opts.Models, llm.ModelInfo{Name: m.Name, Roles: m.Roles, Style: m.Style})
				}
				ce := &countingExec{inner: pool}
				r, err := New(ce, opts)
				if err != nil {
					b.Fatal(err)
				}
				stop := make(chan struct{})
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					t := time.NewTicker(time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							samples++
							if ce.outstanding.Load() >= int64(tc.c) {
								offered++
							}
						}
					}
				}()
				start := time.Now()
				_, err = r.Run(context.Background(), func(output.Record) error { return nil })
				elapsed += time.Since(start)
				close(stop)
				<-sampled
				if err != nil {
					b.Fatal(err)
				}
				calls += SumStats(pool.Stats()).Calls
			}
			perSec := float64(calls) / elapsed.Seconds()
			bound := float64(tc.c) / tc.l.Seconds()
			b.ReportMetric(perSec, "calls/s")
			b.ReportMetric(100*perSec/bound, "%-of-C/L")
			b.ReportMetric(100*float64(offered)/float64(samples), "%-time-offered>=C")
		})
	}
}

// countingExec counts the calls the pipeline has outstanding at its
// executor.
type countingExec struct {
	inner       Executor
	outstanding atomic.Int64
}

func (c *countingExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	c.outstanding.Add(1)
	defer c.outstanding.Add(-1)
	return c.inner.Do(ctx, model, req, sample)
}

// BenchmarkRunnerOverhead is the pipeline's own CPU per model call: the
// whole Runner (prompts, parsing, novelty, ensemble, consensus, evidence
// left out) against an executor that answers at once in process, with no
// HTTP and no cache. The "reply" sub-benchmark is the fake's own cost of
// composing the same replies, to subtract.
func BenchmarkRunnerOverhead(b *testing.B) {
	models := []llm.ModelInfo{
		{Name: "gen", Roles: []llm.Role{llm.RoleInstructions, llm.RoleInstances}, Style: "completion"},
		{Name: "e1", Roles: []llm.Role{llm.RoleEnsemble}, Style: "completion"},
		{Name: "e2", Roles: []llm.Role{llm.RoleEnsemble}, Style: "completion"},
	}
	run := func(exec Executor) {
		r, err := New(exec, Options{Seeds: pipelinetest.Seeds(), Seed: 1, TargetA: 200, TargetB: 100, Models: models})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Run(context.Background(), func(output.Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	// The calls of one run, for the reply sub-benchmark.
	var reqs []fakeCall
	run(&recordingExec{inner: newFakeExec(1, 0), calls: &reqs})
	b.Run("pipeline", func(b *testing.B) {
		var calls int64
		for b.Loop() {
			fe := newFakeExec(1, 0)
			run(fe)
			calls += fe.calls.Load()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(calls), "ns/call")
	})
	b.Run("reply", func(b *testing.B) {
		for b.Loop() {
			for _, c := range reqs {
				fakeReply(c.model, c.req, c.sample)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reqs)), "ns/call")
	})
}

type fakeCall struct {
	model  string
	req    llm.Request
	sample int
}

// recordingExec records the calls it passes on.
type recordingExec struct {
	inner Executor
	mu    sync.Mutex
	calls *[]fakeCall
}

func (r *recordingExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	r.mu.Lock()
	*r.calls = append(*r.calls, fakeCall{model, req, sample})
	r.mu.Unlock()
	return r.inner.Do(ctx, model, req, sample)
}
