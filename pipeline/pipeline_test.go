package pipeline

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
)

func testOptions() Options {
	return Options{
		Seeds:   testSeeds(),
		Models:  testModels(),
		Seed:    42,
		RunID:   "test",
		TargetA: 24,
		TargetB: 8,
		DemosA:  6,
		DemosB:  4,
		Window:  4,
	}
}

// runToBytes runs the pipeline and returns its output as alpaca JSONL with
// provenance.
func runToBytes(t *testing.T, exec Executor, opts Options) ([]byte, map[string]Counts, error) {
	t.Helper()
	r, err := New(exec, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := output.NewWriter(&buf, output.FormatAlpaca, true)
	counts, err := r.Run(context.Background(), w.Write)
	return buf.Bytes(), counts, err
}

func TestRunReachesTargets(t *testing.T) {
	out, counts, err := runToBytes(t, newFakeExec(1, time.Millisecond), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 32 {
		t.Fatalf("got %d records, want 24 + 8", len(lines))
	}
	for typ, want := range map[string]int{"A": 24, "B": 8} {
		c := counts[typ]
		if c.Kept != want || c.Stop != StopTarget {
			t.Errorf("type %s: kept %d stop %q, want %d and %q", typ, c.Kept, c.Stop, want, StopTarget)
		}
		dropped := 0
		for _, n := range c.Dropped {
			dropped += n
		}
		if c.InstructionRequests < c.InstructionsAccepted || c.Decided != c.Kept+dropped-countStage(c, StageInstruction) ||
			c.Decided > c.InstructionsAccepted || c.InstructionRequests < c.InstructionsAccepted+countStage(c, StageInstruction) {
			t.Errorf("type %s: inconsistent counts %+v", typ, c)
		}
	}
	// The fake makes every kind of drop happen.
	a := counts["A"]
	for _, reason := range []string{"instance/unparsable", "consensus/dropped-low-agreement"} {
		if a.Dropped[reason] == 0 {
			t.Errorf("no %s drops in %+v", reason, a.Dropped)
		}
	}
	// Types interleave in proportion to the targets: 3 A per B.
	var types []byte
	for _, l := range lines {
		if strings.Contains(l, `"type":"A"`) {
			types = append(types, 'A')
		} else {
			types = append(types, 'B')
		}
	}
	if got, want := string(types), strings.Repeat("AAAB", 8); got != want {
		t.Errorf("type order %s, want %s", got, want)
	}
}

func countStage(c Counts, stage string) int {
	n := 0
	for k, v := range c.Dropped {
		if strings.HasPrefix(k, stage+"/") {
			n += v
		}
	}
	return n
}

// TestRunDeterministic runs the same configuration twice with different
// call latencies, so that calls complete in different orders, and expects
// byte-identical output.
func TestRunDeterministic(t *testing.T) {
	first, _, err := runToBytes(t, newFakeExec(1, 2*time.Millisecond), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(2); seed < 5; seed++ {
		again, _, err := runToBytes(t, newFakeExec(seed, 2*time.Millisecond), testOptions())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("jitter seed %d: output differs:\n%s\n---\n%s", seed, first, again)
		}
	}
	// A different run seed gives different data.
	opts := testOptions()
	opts.Seed = 7
	other, _, err := runToBytes(t, newFakeExec(1, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, other) {
		t.Error("a different seed produced the same output")
	}
}

// countingBudget is spent after n calls.
type countingBudget struct {
	exec *fakeExec
	n    int64
}

func (b countingBudget) Exhausted() bool { return b.exec.calls.Load() >= b.n }

func TestRunBudget(t *testing.T) {
	// Targets that the calls a spent budget still lets finish (below)
	// cannot reach, however the calls are scheduled.
	opts := testOptions()
	opts.TargetA, opts.TargetB = 100, 100
	full, _, err := runToBytes(t, newFakeExec(1, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	exec := newFakeExec(1, time.Millisecond)
	opts.Budget = countingBudget{exec, 40}
	part, counts, err := runToBytes(t, exec, opts)
	if err != nil {
		t.Fatalf("a spent budget is a clean stop, got %v", err)
	}
	for _, typ := range []string{"A", "B"} {
		if counts[typ].Stop != StopBudget {
			t.Errorf("type %s stopped with %q, want %q", typ, counts[typ].Stop, StopBudget)
		}
	}
	if calls := exec.calls.Load(); calls > 40+2*int64(opts.Window)+3*DefaultMaxPending {
		t.Errorf("%d calls with a budget of 40", calls)
	}
	// Each type's records are a prefix of its records in the full run.
	for _, typ := range []string{`"type":"A"`, `"type":"B"`} {
		f, p := linesWith(full, typ), linesWith(part, typ)
		t.Logf("%s: %d of %d records, %d calls", typ, len(p), len(f), exec.calls.Load())
		if len(p) >= len(f) {
			t.Errorf("%s: budgeted run kept %d records, full run %d", typ, len(p), len(f))
		}
		for i := range p {
			if p[i] != f[i] {
				t.Fatalf("%s: record %d differs from the full run", typ, i)
			}
		}
	}
}

func linesWith(b []byte, s string) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func TestRunFailure(t *testing.T) {
	exec := newFakeExec(1, time.Millisecond)
	exec.failAt = 30
	_, _, err := runToBytes(t, exec, testOptions())
	if !errors.Is(err, errFake) {
		t.Fatalf("err = %v, want the executor's error", err)
	}
}

func TestRunCancel(t *testing.T) {
	exec := newFakeExec(1, 5*time.Millisecond)
	r, err := New(exec, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	start := time.Now()
	counts, err := r.Run(ctx, func(output.Record) error {
		if n.Add(1) == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
	if counts["A"].Stop != StopInterrupted {
		t.Errorf("stop = %q, want %q", counts["A"].Stop, StopInterrupted)
	}
}

func TestRunSinkError(t *testing.T) {
	r, err := New(newFakeExec(1, 0), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	_, err = r.Run(context.Background(), func(output.Record) error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "writing output") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunStalls(t *testing.T) {
	exec := newFakeExec(1, 0)
	exec.reply = func(string, llm.Request, int) string { return "No." }
	opts := testOptions()
	opts.StallLimit = 25
	out, counts, err := runToBytes(t, exec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 {
		t.Errorf("output %q, want none", out)
	}
	for _, typ := range []string{"A", "B"} {
		c := counts[typ]
		if c.Stop != StopStalled || c.InstructionRequests < 25 || c.Dropped["instruction/too-short"] < 25 {
			t.Errorf("type %s: %+v, want a stall after 25 too-short instructions", typ, c)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no targets", func(o *Options) { o.TargetA, o.TargetB = 0, 0 }, "both targets are 0"},
		{"no ensemble", func(o *Options) { o.Models = o.Models[:1] }, "no model has the ensemble role"},
		{"A target without A seeds", func(o *Options) { o.Seeds = o.Seeds[12:] }, "type-A target needs type-A seeds"},
		{"bad style", func(o *Options) { o.Models[1].Style = "poem" }, `style "poem"`},
		{"bad threshold", func(o *Options) { o.NoveltyThreshold = ptr(2.0) }, "outside [0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions()
			tt.mutate(&o)
			_, err := New(newFakeExec(1, 0), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestFewDemos runs with fewer demonstrations per prompt than the number of
// machine instructions a prompt may show.
func TestFewDemos(t *testing.T) {
	opts := testOptions()
	opts.DemosA, opts.DemosB, opts.MachineDemos = 2, 1, 4
	opts.Window = 2
	_, counts, err := runToBytes(t, newFakeExec(1, 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	if counts["A"].Kept != opts.TargetA || counts["B"].Kept != opts.TargetB {
		t.Errorf("counts %+v", counts)
	}
}

func TestRNGSample(t *testing.T) {
	r := newRNG(1, "A", "x", 0)
	for _, tc := range []struct{ n, k, want int }{{5, 3, 3}, {5, 9, 5}, {5, 0, 0}, {5, -1, 0}, {0, 2, 0}} {
		got := r.sample(tc.n, tc.k)
		if len(got) != tc.want {
			t.Errorf("sample(%d, %d) has %d elements, want %d", tc.n, tc.k, len(got), tc.want)
		}
		seen := map[int]bool{}
		for _, i := range got {
			if i < 0 || i >= tc.n || seen[i] {
				t.Errorf("sample(%d, %d) = %v", tc.n, tc.k, got)
			}
			seen[i] = true
		}
	}
}

// slowInstanceExec fails one instruction call at once while instance calls
// take a long time.
type slowInstanceExec struct {
	*fakeExec
	slow time.Duration
}

func (e slowInstanceExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	if req.MaxTokens == DefaultInstanceSampling().MaxTokens {
		select {
		case <-time.After(e.slow):
		case <-ctx.Done():
			return llm.Response{}, ctx.Err()
		}
	}
	return e.fakeExec.Do(ctx, model, req, sample)
}

// TestRunFailsPromptly checks that a failed call ends the run at once,
// with that call's error, even while other calls are in flight.
func TestRunFailsPromptly(t *testing.T) {
	exec := newFakeExec(1, 0)
	exec.failAt = 12 // an instruction call, after some jobs have started
	r, err := New(slowInstanceExec{exec, time.Minute}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Run(context.Background(), func(output.Record) error { return nil })
	if !errors.Is(err, errFake) {
		t.Fatalf("err = %v, want the failed call's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run took %v to fail; jobs in flight were waited for", d)
	}
}

// TestWeightsSpreadARole checks that a role's requests are spread over its
// models in proportion to their weights.
func TestWeightsSpreadARole(t *testing.T) {
	opts := testOptions()
	opts.TargetA, opts.TargetB = 60, 0
	opts.Models = []llm.ModelInfo{
		{Name: "heavy", Roles: []llm.Role{llm.RoleInstructions, llm.RoleInstances}, Weight: 3, Style: llm.StyleCompletion},
		{Name: "light", Roles: []llm.Role{llm.RoleInstructions, llm.RoleInstances}, Weight: 1, Style: llm.StyleCompletion},
		{Name: "e1", Roles: []llm.Role{llm.RoleEnsemble}, Style: llm.StyleCompletion},
		{Name: "e2", Roles: []llm.Role{llm.RoleEnsemble}, Style: llm.StyleCompletion},
	}
	exec := newFakeExec(1, 0)
	var mu sync.Mutex
	calls := map[string]int{}
	exec.reply = func(model string, req llm.Request, sample int) string {
		mu.Lock()
		calls[model]++
		mu.Unlock()
		return fakeReply(model, req, sample)
	}
	if _, _, err := runToBytes(t, exec, opts); err != nil {
		t.Fatal(err)
	}
	heavy, light := calls["heavy"], calls["light"]
	if ratio := float64(heavy) / float64(light); light == 0 || ratio < 2 || ratio > 4.5 {
		t.Errorf("heavy %d calls, light %d: ratio %.2f, want about 3", heavy, light, ratio)
	}
}

// TestWantMoreMargin: near the target, the coordinator keeps issuing
// until the examples in flight reach it even two standard deviations
// short of the expected count, not just on average, and stops once they
// do; at a low yield it stops at twice the expected count needed. A batch
// run issues for the expected count only.
func TestWantMoreMargin(t *testing.T) {
	run := func(kept, need, pending int) bool {
		// kept of 98 decided (yield (kept+1)/100), every instruction so
		// far accepted.
		tr := &typeRun{opts: &Options{MaxPending: 1000}, target: kept + need, kept: kept, decided: 98,
			accepted: make([]string, 98+pending), consumed: 98 + pending, pending: pending}
		return tr.wantMore(0)
	}
	// 22 in flight are expected to give 10.8 kept: enough on average,
	// not with the margin (10.8 - 2·sqrt(10.8·0.51) = 6.1).
	if !run(48, 10, 22) {
		t.Error("22 examples in flight for 10 needed at yield 0.49: want another request")
	}
	// 40 give 19.6, and 13.3 two deviations short: enough.
	if run(48, 10, 40) {
		t.Error("40 examples in flight for 10 needed at yield 0.49: want no more requests")
	}
	// At yield 0.05, 30 in flight give 1.5 for 1 needed: another; 45
	// give 2.25, twice what is needed, though two deviations short of it
	// is below zero: no more.
	if !run(4, 1, 30) {
		t.Error("30 examples in flight for 1 needed at yield 0.05: want another request")
	}
	if run(4, 1, 45) {
		t.Error("45 examples in flight for 1 needed at yield 0.05: want no more requests")
	}
	// A batch run goes without the margin: 22 in flight are enough.
	tr := &typeRun{opts: &Options{MaxPending: 1000, Models: []llm.ModelInfo{{Name: "gen", Batch: true}}}, target: 58, kept: 48, decided: 98,
		accepted: make([]string, 120), consumed: 120, pending: 22}
	if tr.wantMore(0) {
		t.Error("batch run, 22 examples in flight for 10 needed at yield 0.49: want no more requests")
	}
}
