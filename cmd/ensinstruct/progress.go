package main

import (
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// progress reports a run on stderr while it goes: a line per type and a
// totals line, redrawn in place on the screen, when stderr is a terminal;
// a log record every interval otherwise, with the same figures as
// attributes. It owns one goroutine between start and stop.
type progress struct {
	scr      *screen
	mode     string // bar, log or none
	interval time.Duration
	run      runView
	log      *slog.Logger
	now      func() time.Time

	done  chan struct{}
	wg    sync.WaitGroup
	track tracker // the goroutine's
}

// runView is what progress reads from a run (a *pipeline.Run).
type runView interface {
	Progress() map[string]pipeline.Counts
	Stats() map[string]llm.ModelStats
	Started() time.Time
	Batches() []pipeline.BatchInfo
}

// barInterval is how often the bar is redrawn.
const barInterval = 250 * time.Millisecond

// newProgress returns the progress of run in mode auto (bar on a
// terminal, log otherwise), bar, log or none. Log mode logs every
// interval; bar mode redraws every barInterval.
func newProgress(scr *screen, mode string, interval time.Duration, run runView, log *slog.Logger) *progress {
	if mode == "auto" {
		mode = "log"
		if scr.terminal {
			mode = "bar"
		}
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if mode == "bar" {
		interval = barInterval
	}
	return &progress{scr: scr, mode: mode, interval: interval, run: run, log: log, now: time.Now,
		done: make(chan struct{}), track: tracker{started: run.Started()}}
}

// start starts reporting.
func (p *progress) start() {
	if p.mode == "none" {
		return
	}
	p.wg.Go(func() {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				if p.mode == "bar" {
					p.report() // the final counts stay on screen
					p.scr.release()
				}
				return
			case <-t.C:
				p.report()
			}
		}
	})
}

// stop stops reporting and waits for the goroutine. Call it once.
func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// report draws the bar or logs a record with the run's figures now.
func (p *progress) report() {
	f := p.track.observe(p.now(), p.run.Progress(), pipeline.SumStats(p.run.Stats()))
	for _, b := range p.run.Batches() {
		if b.Live {
			f.batches = append(f.batches, b)
		}
	}
	switch p.mode {
	case "bar":
		p.scr.draw(barLines(f, lineWidth(p.scr.columns())))
	case "log":
		p.log.Info("progress", logAttrs(f)...)
	}
}

// Rates are measured over recent windows, so that they follow a run that
// speeds up or slows down.
const (
	callWindow = 10 * time.Second // calls per second
	keptWindow = time.Minute      // examples kept per minute

	// A running type is marked as stalled when it has kept nothing for
	// quietAfter, or for quietFactor times its mean time per kept example
	// (until the last) if that is longer: a slow pool is not a stalled one.
	quietAfter  = time.Minute
	quietFactor = 5
)

// tracker turns successive snapshots of a run into rates. It is not safe
// for concurrent use.
type tracker struct {
	started  time.Time
	samples  []sample // oldest first; the first is the base of the longest window
	lastKeep map[string]time.Time
}

// sample is a run's cumulative figures at one time.
type sample struct {
	at    time.Time
	calls int64
	kept  map[string]int
}

// figures are what the bar and the log record show.
type figures struct {
	elapsed     time.Duration
	types       []typeFigures // types with a target, in name order
	totals      pipeline.Totals
	batches     []pipeline.BatchInfo // the live Batch API jobs
	callsPerSec float64
}

// typeFigures are one type's figures.
type typeFigures struct {
	name       string
	counts     pipeline.Counts
	keptPerMin float64
	eta        time.Duration // 0: unknown, or the type stopped
	idle       time.Duration // since the type last kept an example (while it runs)
	quiet      bool          // running, and idle for long: marked as stalled
}

// stalled reports whether the type stopped as stalled or looks like it.
func (tf typeFigures) stalled() bool { return tf.counts.Stop == pipeline.StopStalled || tf.quiet }

// observe records a snapshot taken at now and returns the figures.
func (t *tracker) observe(now time.Time, counts map[string]pipeline.Counts, tot pipeline.Totals) figures {
	if len(t.samples) == 0 {
		t.samples = []sample{{at: t.started}}
		t.lastKeep = map[string]time.Time{}
	}
	prev := t.samples[len(t.samples)-1]
	cur := sample{at: now, calls: tot.Calls, kept: make(map[string]int, len(counts))}
	for typ, c := range counts {
		cur.kept[typ] = c.Kept
		if c.Kept > prev.kept[typ] {
			t.lastKeep[typ] = now
		}
	}
	t.samples = append(t.samples, cur)
	for len(t.samples) > 2 && !t.samples[1].at.After(now.Add(-keptWindow)) {
		t.samples = t.samples[1:]
	}

	elapsed := now.Sub(t.started)
	f := figures{elapsed: elapsed, totals: tot}
	if cb := t.base(now, callWindow); now.After(cb.at) {
		f.callsPerSec = float64(tot.Calls-cb.calls) / now.Sub(cb.at).Seconds()
	}
	kb := t.base(now, keptWindow)
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		c := counts[typ]
		if c.Target == 0 {
			continue
		}
		tf := typeFigures{name: typ, counts: c}
		// A few examples in the window make a rate; fewer, the run's mean.
		if recent := c.Kept - kb.kept[typ]; recent >= 3 && now.After(kb.at) {
			tf.keptPerMin = float64(recent) / now.Sub(kb.at).Minutes()
		} else if c.Kept > 0 && elapsed > 0 {
			tf.keptPerMin = float64(c.Kept) / elapsed.Minutes()
		}
		if c.Stop == "" {
			last, ok := t.lastKeep[typ]
			if !ok {
				last = t.started
			}
			tf.idle = now.Sub(last)
			limit := quietAfter
			if c.Kept > 0 {
				// The mean time per example up to the last one kept.
				limit = max(limit, quietFactor*last.Sub(t.started)/time.Duration(c.Kept))
			}
			tf.quiet = tf.idle >= limit
			if tf.keptPerMin > 0 && c.Kept < c.Target && !tf.quiet {
				tf.eta = time.Duration(float64(c.Target-c.Kept) / tf.keptPerMin * float64(time.Minute))
			}
		}
		f.types = append(f.types, tf)
	}
	return f
}

// base returns the sample a rate over window w starts from: the latest
// one at least w old, or the oldest kept.
func (t *tracker) base(now time.Time, w time.Duration) sample {
	b := t.samples[0]
	for _, s := range t.samples[:len(t.samples)-1] {
		if s.at.After(now.Add(-w)) {
			break
		}
		b = s
	}
	return b
}

// drop is a drop reason and how often it was given.
type drop struct {
	reason string
	n      int
}

// topDrops returns the n most frequent drop reasons, most frequent first.
func topDrops(dropped map[string]int, n int) []drop {
	var ds []drop
	for r, k := range dropped {
		if k > 0 {
			ds = append(ds, drop{r, k})
		}
	}
	slices.SortFunc(ds, func(a, b drop) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.reason, b.reason)
	})
	return ds[:min(n, len(ds))]
}

// logAttrs are the attributes of a progress log record.
func logAttrs(f figures) []any {
	attrs := []any{"elapsed_s", int(f.elapsed.Seconds())}
	for _, tf := range f.types {
		c := tf.counts
		g := []any{"target", c.Target, "kept", c.Kept, "instructions", c.InstructionsAccepted,
			"calls", c.InstructionRequests + c.InstanceRequests + c.EnsembleCalls,
			"kept_per_min", round1(tf.keptPerMin)}
		if tf.eta > 0 {
			g = append(g, "eta_s", int(tf.eta.Seconds()))
		}
		if c.Stop != "" {
			g = append(g, "stop", c.Stop)
		} else {
			g = append(g, "idle_s", int(tf.idle.Seconds()))
		}
		g = append(g, "stalled", tf.stalled())
		if ds := topDrops(c.Dropped, 3); len(ds) > 0 {
			var top []any
			for _, d := range ds {
				top = append(top, d.reason, d.n)
			}
			g = append(g, slog.Group("top_drops", top...))
		}
		attrs = append(attrs, slog.Group("type_"+strings.ToLower(tf.name), g...))
	}
	t := f.totals
	attrs = append(attrs, "calls", t.Calls, "calls_per_s", round1(f.callsPerSec), "cache_hits", t.CacheHits,
		"retries", t.Retries, "failures", t.Failures,
		"tokens", t.PromptTokens+t.CompletionTokens, "cost_usd", t.CostUSD)
	var jobs []any
	for _, b := range f.batches {
		jobs = append(jobs, slog.Group(b.Local, "id", b.ID, "model", b.Model, "status", b.Status,
			"requests", b.Requests, "completed", b.Completed, "failed", b.Failed))
	}
	if len(jobs) > 0 {
		attrs = append(attrs, slog.Group("batches", jobs...))
	}
	return attrs
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// livePending counts the jobs that may still change.
func livePending(bs []pipeline.BatchInfo) int {
	n := 0
	for _, b := range bs {
		if b.Live {
			n++
		}
	}
	return n
}
