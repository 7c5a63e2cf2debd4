package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ensinstruct/ensinstruct/pipeline"
	"golang.org/x/term"
)

// progress reports a run on stderr while it goes: a bar per type redrawn
// in place when stderr is a terminal, a JSON log line every interval
// otherwise. It owns one goroutine between start and stop.
type progress struct {
	w        io.Writer
	mode     string // bar, log or none
	interval time.Duration
	run      *pipeline.Run
	log      *slog.Logger

	done  chan struct{}
	wg    sync.WaitGroup
	drawn int // lines of the last bar frame
}

func newProgress(w io.Writer, mode string, interval time.Duration, run *pipeline.Run, log *slog.Logger) *progress {
	if mode == "auto" {
		mode = "log"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	pr := &progress{w: w, mode: mode, interval: interval, run: run, log: log, done: make(chan struct{})}
	if mode == "bar" {
		pr.interval = 250 * time.Millisecond
	}
	return pr
}

func (p *progress) start() {
	if p.mode == "none" {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				if p.mode == "bar" {
					p.bar()
				}
				return
			case <-t.C:
				if p.mode == "bar" {
					p.bar()
				} else {
					p.logLine()
				}
			}
		}
	}()
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

func (p *progress) logLine() {
	counts := p.run.Progress()
	tot := pipeline.SumStats(p.run.Stats())
	attrs := []any{"elapsed_s", int(time.Since(p.run.Started()).Seconds())}
	for _, typ := range []string{"A", "B"} {
		c := counts[typ]
		if c.Target == 0 {
			continue
		}
		attrs = append(attrs, slog.Group("type_"+strings.ToLower(typ),
			"target", c.Target, "kept", c.Kept, "instructions", c.InstructionsAccepted,
			"calls", c.InstructionRequests+c.InstanceRequests+c.EnsembleCalls))
	}
	attrs = append(attrs, "calls", tot.Calls, "cache_hits", tot.CacheHits,
		"tokens", tot.PromptTokens+tot.CompletionTokens, "cost_usd", tot.CostUSD)
	var jobs []any
	for _, b := range p.run.Batches() {
		if b.Live {
			jobs = append(jobs, slog.Group(b.Local, "id", b.ID, "model", b.Model, "status", b.Status,
				"requests", b.Requests, "completed", b.Completed, "failed", b.Failed))
		}
	}
	if len(jobs) > 0 {
		attrs = append(attrs, slog.Group("batches", jobs...))
	}
	p.log.Info("progress", attrs...)
}

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

// bar redraws one line per type and a totals line, in place.
func (p *progress) bar() {
	counts := p.run.Progress()
	tot := pipeline.SumStats(p.run.Stats())
	elapsed := time.Since(p.run.Started())
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	lines := 0
	for _, typ := range []string{"A", "B"} {
		c := counts[typ]
		if c.Target == 0 {
			continue
		}
		const width = 24
		filled := min(width, c.Kept*width/c.Target)
		eta := "-"
		if c.Kept > 0 && c.Kept < c.Target {
			eta = (elapsed * time.Duration(c.Target-c.Kept) / time.Duration(c.Kept)).Round(time.Second).String()
		} else if c.Kept >= c.Target {
			eta = "done"
		}
		fmt.Fprintf(&b, "\x1b[2K%s %s%s %d/%d kept · %d instructions · %d calls · ETA %s\n",
			typ, strings.Repeat("█", filled), strings.Repeat("░", width-filled),
			c.Kept, c.Target, c.InstructionsAccepted,
			c.InstructionRequests+c.InstanceRequests+c.EnsembleCalls, eta)
		lines++
	}
	fmt.Fprintf(&b, "\x1b[2K  %d calls (%d cached) · %s tokens · $%.2f · %s\n",
		tot.Calls, tot.CacheHits, humanCount(tot.PromptTokens+tot.CompletionTokens), tot.CostUSD,
		elapsed.Round(time.Second))
	lines++
	for _, j := range p.run.Batches() {
		if j.Live {
			fmt.Fprintf(&b, "\x1b[2K  batch %s %s: %s · %d/%d done · %d failed\n", j.Model, j.ID, j.Status, j.Completed, j.Requests, j.Failed)
			lines++
		}
	}
	p.drawn = lines
	io.WriteString(p.w, b.String())
}

func humanCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// writeSummary prints the end-of-run table on stderr: per type what each
// stage let through and why the rest was dropped, then per model the calls,
// tokens, latency and cost.
func writeSummary(w io.Writer, m pipeline.Manifest, manifestPath string) {
	fmt.Fprintf(w, "\nensinstruct: %s in %s: %d records to %s (manifest %s)\n",
		m.Status, time.Duration(m.Seconds*float64(time.Second)).Round(time.Millisecond),
		m.Output.Records, outName(m.Output.Path), manifestPath)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\ttarget\tinstr. requests\taccepted\tinstances\tvalid\tdecided\tkept\tstop\t")
	for _, typ := range []string{"A", "B"} {
		c := m.Counts[typ]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", typ, c.Target, c.InstructionRequests,
			c.InstructionsAccepted, c.InstanceRequests, c.InstancesValid, c.Decided, c.Kept, c.Stop)
	}
	tw.Flush()
	var drops []string
	for _, typ := range []string{"A", "B"} {
		for reason, n := range m.Counts[typ].Dropped {
			drops = append(drops, fmt.Sprintf("  %s %-40s %d", typ, reason, n))
		}
	}
	if len(drops) > 0 {
		slices.Sort(drops)
		fmt.Fprintln(w, "dropped:")
		fmt.Fprintln(w, strings.Join(drops, "\n"))
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tcalls\tcached\tretries\tfailures\tprompt tok\tcompl. tok\tp50 ms\tcost $\t")
	for _, mi := range m.Models {
		s := m.Calls[mi.Name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.4f\t\n", mi.Name, s.Calls, s.CacheHits,
			s.Retries, s.Failures, s.PromptTokens, s.CompletionTokens, s.LatencyP50Ms, s.CostUSD)
	}
	t := m.Totals
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t\t%.4f\t\n", t.Calls, t.CacheHits, t.Retries, t.Failures,
		t.PromptTokens, t.CompletionTokens, t.CostUSD)
	tw.Flush()
	if len(m.Batches) == 0 {
		return
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch job\tmodel\tstatus\trequests\tcompleted\tfailed\tcost $\t")
	for _, b := range m.Batches {
		id := b.ID
		if id == "" {
			id = b.Local
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.4f\t\n", id, b.Model, b.Status, b.Requests, b.Completed, b.Failed, b.CostUSD)
	}
	tw.Flush()
}

func outName(p string) string {
	if p == "-" {
		return "stdout"
	}
	return p
}
