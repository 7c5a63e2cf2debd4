package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestTrackerRates(t *testing.T) {
	tr := tracker{started: t0}
	at := func(d time.Duration, calls int64, keptA, keptB int, stopB string) figures {
		return tr.observe(t0.Add(d), map[string]pipeline.Counts{
			"A": {Target: 60, Kept: keptA},
			"B": {Target: 10, Kept: keptB, Stop: stopB},
		}, pipeline.Totals{Calls: calls})
	}

	f := at(time.Second, 10, 0, 0, "")
	if !approx(f.callsPerSec, 10) || f.elapsed != time.Second {
		t.Errorf("at 1s: %v calls/s, elapsed %v; want 10, 1s", f.callsPerSec, f.elapsed)
	}
	if len(f.types) != 2 || f.types[0].name != "A" || f.types[1].name != "B" {
		t.Fatalf("types: %+v", f.types)
	}
	if a := f.types[0]; a.keptPerMin != 0 || a.eta != 0 || a.quiet {
		t.Errorf("at 1s, nothing kept: %+v", a)
	}

	// Fewer than three kept in the window: the run's mean.
	f = at(5*time.Second, 50, 2, 1, "")
	if a := f.types[0]; !approx(a.keptPerMin, 24) || a.eta != 145*time.Second {
		t.Errorf("at 5s: %v kept/min, ETA %v; want 24, 2m25s", a.keptPerMin, a.eta)
	}
	// The call rate is over the last callWindow: from the sample at 5s.
	f = at(20*time.Second, 250, 2, 1, "")
	if !approx(f.callsPerSec, 200.0/15) {
		t.Errorf("at 20s: %v calls/s, want %v", f.callsPerSec, 200.0/15)
	}
	// Thirty kept in the last keptWindow: the window's rate.
	f = at(30*time.Second, 300, 32, 10, pipeline.StopTarget)
	if a := f.types[0]; !approx(a.keptPerMin, 64) || a.eta != 26250*time.Millisecond {
		t.Errorf("at 30s: %v kept/min, ETA %v; want 64, 26.25s", a.keptPerMin, a.eta)
	}
	if b := f.types[1]; b.eta != 0 || b.quiet || b.stalled() {
		t.Errorf("a type that reached its target: %+v", b)
	}
	// Kept nothing for a minute: marked as stalled, no ETA.
	f = at(89*time.Second, 400, 32, 10, pipeline.StopTarget)
	if a := f.types[0]; a.quiet || a.idle != 59*time.Second {
		t.Errorf("idle 59s: quiet %v, idle %v", a.quiet, a.idle)
	}
	f = at(91*time.Second, 400, 32, 10, pipeline.StopTarget)
	if a := f.types[0]; !a.quiet || !a.stalled() || a.eta != 0 || a.idle != 61*time.Second {
		t.Errorf("idle 61s: %+v", a)
	}
	// Samples older than the longest window are let go.
	for i := range 1000 {
		at(time.Duration(100+i)*time.Second, 400, 32, 10, pipeline.StopTarget)
	}
	if n := len(tr.samples); n > 62 {
		t.Errorf("%d samples kept for a one-minute window at one a second", n)
	}
}

func TestTrackerSlowPoolIsNotStalled(t *testing.T) {
	tr := tracker{started: t0}
	counts := func(kept int) map[string]pipeline.Counts {
		return map[string]pipeline.Counts{"A": {Target: 100, Kept: kept}}
	}
	tr.observe(t0.Add(10*time.Minute), counts(5), pipeline.Totals{})
	// Two minutes per example; five times that is ten minutes.
	if a := tr.observe(t0.Add(19*time.Minute), counts(5), pipeline.Totals{}).types[0]; a.quiet {
		t.Errorf("idle 9m at 2m per example: marked as stalled")
	}
	if a := tr.observe(t0.Add(25*time.Minute), counts(5), pipeline.Totals{}).types[0]; !a.quiet {
		t.Errorf("idle 15m at 2m per example: not marked as stalled")
	}
	stalled := tr.observe(t0.Add(26*time.Minute), map[string]pipeline.Counts{"A": {Target: 100, Kept: 5, Stop: pipeline.StopStalled}}, pipeline.Totals{})
	if a := stalled.types[0]; a.quiet || !a.stalled() {
		t.Errorf("a type stopped as stalled: quiet %v, stalled %v", a.quiet, a.stalled())
	}
}

func TestTopDrops(t *testing.T) {
	got := topDrops(map[string]int{"a/x": 2, "a/y": 9, "b/z": 2, "c/w": 0, "c/v": 1}, 3)
	want := []drop{{"a/y", 9}, {"a/x", 2}, {"b/z", 2}}
	if len(got) != len(want) {
		t.Fatalf("topDrops = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("topDrops[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if got := topDrops(nil, 2); len(got) != 0 {
		t.Errorf("topDrops(nil) = %v", got)
	}
}

// fakeRun is a run whose figures a test sets.
type fakeRun struct {
	started time.Time // zero: t0

	mu     sync.Mutex
	counts map[string]pipeline.Counts
	stats  map[string]llm.ModelStats
}

func (r *fakeRun) Progress() map[string]pipeline.Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

func (r *fakeRun) Stats() map[string]llm.ModelStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.stats)
}

func (r *fakeRun) Batches() []pipeline.BatchInfo { return nil }

func (r *fakeRun) Started() time.Time {
	if r.started.IsZero() {
		return t0
	}
	return r.started
}

func (r *fakeRun) set(keptA int, calls int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts = map[string]pipeline.Counts{
		"A": {Target: 16, Kept: keptA, InstructionsAccepted: keptA + 3, InstructionRequests: 20,
			Dropped: map[string]int{"instruction/not-novel": 4, "consensus/dropped-low-agreement": 1}},
		"B": {Target: 8, Kept: 8, Stop: pipeline.StopTarget},
	}
	r.stats = map[string]llm.ModelStats{"gen": {Calls: calls, CacheHits: 2, PromptTokens: 1000}}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressLogMode(t *testing.T) {
	var buf syncBuffer
	scr := newScreen(&buf)
	log := slog.New(scr.handler(slog.NewJSONHandler(&buf, nil)))
	run := &fakeRun{}
	p := newProgress(scr, "auto", time.Hour, run, log)
	if p.mode != "log" || p.interval != time.Hour {
		t.Fatalf("auto on a buffer: mode %s, interval %v; want log, 1h", p.mode, p.interval)
	}
	clock := t0
	p.now = func() time.Time { return clock }
	for i := range 3 {
		clock = clock.Add(10 * time.Second)
		run.set(2*(i+1), int64(100*(i+1)))
		p.report()
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	var rec struct {
		Msg      string  `json:"msg"`
		Elapsed  int     `json:"elapsed_s"`
		Calls    int64   `json:"calls"`
		PerSec   float64 `json:"calls_per_s"`
		Cached   int64   `json:"cache_hits"`
		Tokens   int64   `json:"tokens"`
		TypeA    map[string]any
		TypeARaw json.RawMessage `json:"type_a"`
		TypeB    struct {
			Stop    string `json:"stop"`
			Stalled bool   `json:"stalled"`
		} `json:"type_b"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &rec); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.TypeARaw, &rec.TypeA); err != nil {
		t.Fatal(err)
	}
	if rec.Msg != "progress" || rec.Elapsed != 30 || rec.Calls != 300 || rec.PerSec != 10 || rec.Cached != 2 || rec.Tokens != 1000 {
		t.Errorf("record: %+v", rec)
	}
	wantA := map[string]any{"target": 16.0, "kept": 6.0, "instructions": 9.0, "calls": 20.0,
		"kept_per_min": 12.0, "eta_s": 50.0, "idle_s": 0.0, "stalled": false,
		"top_drops": map[string]any{"instruction/not-novel": 4.0, "consensus/dropped-low-agreement": 1.0}}
	for k, v := range wantA {
		if got, _ := json.Marshal(rec.TypeA[k]); string(got) != mustJSON(v) {
			t.Errorf("type_a.%s = %s, want %s", k, got, mustJSON(v))
		}
	}
	if rec.TypeB.Stop != pipeline.StopTarget || rec.TypeB.Stalled {
		t.Errorf("type_b: %+v", rec.TypeB)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestProgressBarMode runs the bar's goroutine on a 60-column screen:
// one frame at the end, the final counts, nothing wider than 59 columns.
func TestProgressBarMode(t *testing.T) {
	var buf syncBuffer
	scr := &screen{w: &buf, width: func() int { return 60 }}
	run := &fakeRun{started: time.Now()}
	run.set(0, 0)
	p := newProgress(scr, "bar", 0, run, slog.New(scr.handler(slog.NewTextHandler(&buf, nil))))
	if p.interval != barInterval {
		t.Errorf("bar interval %v, want %v", p.interval, barInterval)
	}
	p.start()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(buf.String(), "\x1b[3A") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	run.set(16, 500)
	p.stop()
	v := newVT(60, 10)
	v.feedTTY(buf.String())
	if v.err != nil {
		t.Fatal(v.err)
	}
	rows := v.text()
	if len(rows) != 3 {
		t.Fatalf("%d rows on screen, want the bar's 3: %+v", len(rows), rows)
	}
	if !strings.HasPrefix(rows[0].text, "A ") || !strings.Contains(rows[0].text, "16/16 kept") ||
		!strings.Contains(rows[1].text, "8/8 kept · done") || !strings.HasPrefix(rows[2].text, "  500 calls · ") {
		t.Errorf("final frame: %+v", rows)
	}
	for _, r := range rows {
		if r.wrapped || textWidth(r.text) > 59 {
			t.Errorf("row wider than 59 columns: %q", r.text)
		}
	}
}
