package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

// Spelling a default out changes nothing a run is identified by: the run
// directory, the cache it reuses and the record IDs all derive from the
// identity of the resolved options.
func TestIdentityOfSpelledOutDefaults(t *testing.T) {
	base := testOptions()
	base.Window = 0
	want, err := Identity(base, "seeds")
	if err != nil {
		t.Fatal(err)
	}
	spelled := []struct {
		name string
		set  func(*Options)
	}{
		{"window", func(o *Options) { o.Window = DefaultWindow }},
		{"novelty threshold", func(o *Options) { o.NoveltyThreshold = ptr(DefaultNoveltyThreshold) }},
		{"demos", func(o *Options) { o.DemosA, o.DemosB = 6, 4 }},
		{"machine demos", func(o *Options) { o.MachineDemos = DefaultMachineDemos }},
		{"sampling", func(o *Options) { o.InstructionSampling = DefaultInstructionSampling() }},
		{"checks", func(o *Options) { o.Checks = filter.DefaultInstructionChecks() }},
		{"weight", func(o *Options) { o.Models[0].Weight = 1 }},
		{"consensus", func(o *Options) { o.Consensus.Metric = filter.MetricRougeL }},
		{"targets", func(o *Options) { o.TargetA = 1000 }},
	}
	for _, s := range spelled {
		o := testOptions()
		o.Window = 0
		o.Models = append([]llm.ModelInfo(nil), o.Models...)
		s.set(&o)
		got, err := Identity(o, "seeds")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s spelled out: identity %s, want %s", s.name, got[:12], want[:12])
		}
	}
	for _, c := range []struct {
		name string
		set  func(*Options)
	}{
		{"window", func(o *Options) { o.Window = 32 }},
		{"novelty 0", func(o *Options) { o.NoveltyThreshold = ptr(0.0) }},
		{"seed", func(o *Options) { o.Seed++ }},
		{"no machine demos", func(o *Options) { o.MachineDemos = -1 }},
	} {
		o := testOptions()
		o.Window = 0
		c.set(&o)
		if got, _ := Identity(o, "seeds"); got == want {
			t.Errorf("%s changed: the identity did not", c.name)
		}
	}
}

// A novelty threshold of 0 is a threshold, not "the default": any
// instruction that shares a token with the pool is rejected.
func TestNoveltyThresholdZero(t *testing.T) {
	run := func(threshold *float64) map[string]Counts {
		opts := testOptions()
		opts.NoveltyThreshold = threshold
		opts.TargetA, opts.TargetB = 4, 0
		opts.StallLimit = 40
		_, counts, err := runToBytes(t, newFakeExec(1, 0), opts)
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	def := run(nil)["A"]
	zero := run(ptr(0.0))["A"]
	if def.Dropped["instruction/not-novel"] >= def.InstructionRequests/2 || def.InstructionsAccepted == 0 {
		t.Fatalf("default threshold: %+v", def)
	}
	// The fake's instructions all share "Please" and the seeds' words.
	// Requests still in flight when the type stalls are not consumed.
	if zero.InstructionsAccepted != 0 || zero.Dropped["instruction/not-novel"] != 40 || zero.Stop != StopStalled {
		t.Errorf("threshold 0: %+v, want every instruction rejected as not novel", zero)
	}
}

// pricedExec is an executor that reports fixed token counts and counts
// the calls in flight.
type pricedExec struct {
	prompt, completion int
	latency            time.Duration
	calls, inFlight    atomic.Int64
	maxInFlight        atomic.Int64
}

func (p *pricedExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	p.calls.Add(1)
	n := p.inFlight.Add(1)
	for {
		m := p.maxInFlight.Load()
		if n <= m || p.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	defer p.inFlight.Add(-1)
	select {
	case <-time.After(p.latency):
	case <-ctx.Done():
		return llm.Response{}, ctx.Err()
	}
	return llm.Response{Text: fakeReply(model, req, sample), PromptTokens: p.prompt, CompletionTokens: p.completion}, nil
}

// The gate never lets more calls start than the request limit, counting
// those in flight, and never lets the cost pass the cost limit, reserving
// each call's worst case before it starts.
func TestGateIsAHardCap(t *testing.T) {
	models := []llm.ModelInfo{{Name: "m", Price: llm.Price{PromptPerMillion: 1000, CompletionPerMillion: 2000}}}
	req := llm.Request{Prompt: strings.Repeat("x", 1000), MaxTokens: 100}
	for _, limit := range []int64{1, 3, 10} {
		exec := &pricedExec{prompt: 250, completion: 50, latency: 5 * time.Millisecond}
		g := NewGate(exec, models, Limits{MaxRequests: limit})
		var wg sync.WaitGroup
		var refused atomic.Int64
		for range 40 {
			wg.Go(func() {
				if _, err := g.Do(context.Background(), "m", req, 0); err == ErrBudget {
					refused.Add(1)
				}
			})
		}
		wg.Wait()
		if got := exec.calls.Load(); got != limit || refused.Load() != 40-limit || !g.Exhausted() {
			t.Errorf("max_requests %d: %d calls made, %d refused", limit, got, refused.Load())
		}
	}
	// Worst case of one call: (1000+32 prompt tokens)·$1000/M + 100·$2000/M
	// = $1.232; its real cost is 250·$1000/M + 50·$2000/M = $0.35.
	for _, limit := range []float64{1.0, 1.3, 2.0, 5.0} {
		exec := &pricedExec{prompt: 250, completion: 50, latency: 2 * time.Millisecond}
		g := NewGate(exec, models, Limits{MaxCostUSD: limit})
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() { g.Do(context.Background(), "m", req, 0) })
		}
		wg.Wait()
		_, spent := g.Spent()
		if spent > limit {
			t.Errorf("max_cost %v: spent %v", limit, spent)
		}
		if limit < 1.232 && exec.calls.Load() != 0 {
			t.Errorf("max_cost %v: a call whose worst case is $1.232 started", limit)
		}
		if limit >= 2 && spent == 0 {
			t.Errorf("max_cost %v: nothing spent", limit)
		}
	}
}

// With a gate in front, a run stops cleanly at its request budget and
// never makes more calls than the budget.
func TestRunStopsAtRequestBudget(t *testing.T) {
	for _, limit := range []int64{3, 10, 40} {
		exec := &pricedExec{latency: time.Millisecond}
		opts := testOptions()
		opts.Models = testModels()
		g := NewGate(exec, opts.Models, Limits{MaxRequests: limit})
		opts.Budget = g
		r, err := New(g, opts)
		if err != nil {
			t.Fatal(err)
		}
		w := output.NewWriter(&strings.Builder{}, output.FormatAlpaca, false)
		counts, err := r.Run(context.Background(), w.Write)
		if err != nil {
			t.Fatal(err)
		}
		if got := exec.calls.Load(); got > limit {
			t.Errorf("max_requests %d: %d calls", limit, got)
		}
		for typ, c := range counts {
			if c.Stop != StopBudget && c.Stop != StopTarget {
				t.Errorf("max_requests %d, type %s: stop %q", limit, typ, c.Stop)
			}
		}
	}
}

// Whatever call fails, what a failed run wrote is a prefix of what the
// uninterrupted run writes: a type that fails never lets the other type's
// records overtake its own.
func TestFailedRunWritesAPrefix(t *testing.T) {
	ref, _, err := runToBytes(t, newFakeExec(1, 0), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	total := newFakeExec(1, 0)
	if _, _, err := runToBytes(t, total, testOptions()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	failures := 0
	for i := range 60 {
		exec := newFakeExec(uint64(i), 300*time.Microsecond)
		exec.failAt = 1 + rng.Int64N(total.calls.Load())
		out, _, err := runToBytes(t, exec, testOptions())
		if err == nil {
			continue // the failing call was one the run no longer needed
		}
		failures++
		if !bytes.HasPrefix(ref, out) {
			t.Fatalf("call %d failed: the output is not a prefix of the full run's\nfull:\n%s\ngot:\n%s", exec.failAt, ref, out)
		}
	}
	if failures < 30 {
		t.Errorf("only %d of 60 runs failed", failures)
	}
}

// startJob starts a Job against the fake model server with the endpoint's
// max_concurrent set to c.
func startJob(t *testing.T, url string, c int, mutate func(*Job)) *Run {
	t.Helper()
	models := llm.Models{}
	for _, m := range testModels() {
		models = append(models, llm.NamedModel{Name: m.Name, ModelConfig: llm.ModelConfig{
			Backend: llm.BackendOllama, Model: m.Name, Endpoint: url, Roles: m.Roles, Style: m.Style}})
	}
	j := Job{
		Options: testOptions(),
		Pool:    llm.Config{Models: models, Endpoints: map[string]llm.EndpointConfig{url: {MaxConcurrent: c}}},
		RunDir:  t.TempDir(),
		Output:  Output{Writer: io.Discard},
	}
	j.Options.Window = 0
	if mutate != nil {
		mutate(&j)
	}
	r, err := j.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The default window follows the capacity of the instruction endpoints,
// resolved from the configuration before the identity: max_concurrent
// changes the identity only where it changes the window.
func TestJobWindowFollowsCapacity(t *testing.T) {
	srv := llmtest.NewServer(func(c llmtest.Call) string {
		return pipelinetest.Reply(pipelinetest.Request{Model: c.Model, Prompt: c.Prompt})
	})
	defer srv.Close()
	ids := map[int]string{}
	for _, c := range []int{2, 8, 16, 64, 256} {
		r := startJob(t, srv.URL, c, nil)
		want := max(DefaultWindow, c)
		if r.opts.Window != want || r.opts.MaxPending != max(DefaultMaxPending, 2*want) {
			t.Errorf("max_concurrent %d: window %d, max pending %d; want %d", c, r.opts.Window, r.opts.MaxPending, want)
		}
		ids[c] = r.ID()
	}
	if ids[2] != ids[8] || ids[8] != ids[16] {
		t.Errorf("capacities under the default window changed the identity")
	}
	if ids[16] == ids[64] || ids[64] == ids[256] {
		t.Errorf("a larger window kept the identity")
	}
	// An explicit window wins.
	if r := startJob(t, srv.URL, 64, func(j *Job) { j.Options.Window = 5 }); r.opts.Window != 5 {
		t.Errorf("explicit window: %d", r.opts.Window)
	}
	// A batch model makes the round a batch job's worth, whatever the
	// endpoint's max_concurrent.
	r := startJob(t, srv.URL, 64, func(j *Job) {
		m := j.Pool.Models[0]
		m.Backend, m.Endpoint, m.Batch = llm.BackendOpenAI, srv.URL+"/v1", true
		j.Pool.Models.Set(m.Name, m.ModelConfig)
		j.Executor = func(_ context.Context, local *llm.Pool, _ string) (Executor, error) { return local, nil }
	})
	if r.opts.Window != DefaultBatchWindow || r.opts.MaxPending != DefaultBatchWindow {
		t.Errorf("batch model: window %d, max pending %d; want %d", r.opts.Window, r.opts.MaxPending, DefaultBatchWindow)
	}
}

// The ensemble step applies the rule it is given: the weighted rule with
// the weights learned so far, the reference rule with none.
func TestEnsembleSelectRule(t *testing.T) {
	models := []llm.ModelInfo{{Name: "e1"}, {Name: "e2"}}
	for _, rule := range []filter.Rule{"", filter.RuleReference, filter.RuleWeighted} {
		e := Ensemble{Models: models, Consensus: filter.ConsensusOptions{Rule: rule}}
		var rel filter.Reliability
		var d filter.Decision
		for i := range 5 {
			a := e.Measure("the cat sat on the mat", []string{"the cat sat on a mat", fmt.Sprintf("dogs bark %d", i)})
			d = e.Select(a, &rel, nil)
		}
		want := rule
		if want == "" {
			want = filter.RuleReference
		}
		if d.Rule != want || (rule == filter.RuleWeighted) != (d.Weights != nil) {
			t.Errorf("rule %q: decided by %q with weights %v", rule, d.Rule, d.Weights)
		}
		if s := rel.Summary(); s.Rows != 5 || len(s.Members) != 3 {
			t.Errorf("rule %q: reliability %+v", rule, s)
		}
	}
}
