package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/ensinstruct/ensinstruct/pipeline"
)

// barLines renders figures as the bar: a line per type and a totals
// line, none wider than width.
func barLines(f figures, width int) []string {
	var lines []string
	for _, tf := range f.types {
		lines = append(lines, typeLine(tf).fit(width))
	}
	lines = append(lines, totalsLine(f).fit(width))
	for _, b := range f.batches {
		lines = append(lines, truncate(fmt.Sprintf("  batch %s %s: %s · %d/%d done · %d failed",
			b.Model, b.ID, b.Status, b.Completed, b.Requests, b.Failed), width))
	}
	return lines
}

// typeLine is a type's line:
//
//	A ██████████░░░░░░ 8/16 kept · ETA 40s · 12 kept/min · drops: not-novel 9, unparsable 2 · 10 instructions
//
// with a marker in place of the ETA when the type stopped or looks stalled.
func typeLine(tf typeFigures) barLine {
	c := tf.counts
	l := barLine{head: tf.name + " ", gauge: float64(c.Kept) / float64(c.Target), hasGauge: true,
		core: fmt.Sprintf("%d/%d kept", c.Kept, c.Target)}
	switch {
	case c.Stop != "":
		l.add(90, true, stopWord(c.Stop))
	case tf.quiet:
		idle := shortDuration(tf.idle.Round(time.Second))
		l.add(50, true, "STALLED? "+idle+" idle", "STALLED?")
	case tf.eta > 0:
		l.add(50, false, "ETA "+shortDuration(max(tf.eta.Round(time.Second), time.Second)))
	}
	if c.Stop == "" && !tf.quiet {
		l.add(40, false, rate(tf.keptPerMin)+" kept/min", rate(tf.keptPerMin)+"/min")
	}
	if ds := topDrops(c.Dropped, 2); len(ds) > 0 {
		var alts []string
		for i := len(ds); i > 0; i-- {
			parts := make([]string, i)
			for j, d := range ds[:i] {
				parts[j] = fmt.Sprintf("%s %d", shortReason(d.reason), d.n)
			}
			alts = append(alts, "drops: "+strings.Join(parts, ", "))
		}
		prio := 30
		if tf.stalled() {
			prio = 60 // what a stalled type drops is the thing to read
		}
		l.add(prio, false, alts...)
	}
	l.add(10, false, plural(c.InstructionsAccepted, "instruction"))
	return l
}

// totalsLine is the line of the whole run:
//
//	412 calls · 3.2 calls/s · 40 cached · 2 retries · 45.6k tokens · $0.0123 · 1m23s
func totalsLine(f figures) barLine {
	t := f.totals
	l := barLine{head: "  ", core: plural(int(t.Calls), "call")}
	l.add(50, false, rate(f.callsPerSec)+" calls/s", rate(f.callsPerSec)+"/s")
	if t.CacheHits > 0 {
		l.add(20, false, fmt.Sprintf("%d cached", t.CacheHits))
	}
	switch {
	case t.Retries == 1:
		l.add(40, false, "1 retry")
	case t.Retries > 1:
		l.add(40, false, fmt.Sprintf("%d retries", t.Retries))
	}
	if t.Failures > 0 {
		l.add(60, false, fmt.Sprintf("%d failed", t.Failures))
	}
	l.add(10, false, humanCount(t.PromptTokens+t.CompletionTokens)+" tokens")
	if t.CostUSD > 0 {
		l.add(30, false, "$"+usd(t.CostUSD))
	}
	l.add(90, true, shortDuration(f.elapsed.Round(time.Second)))
	return l
}

// stopWord says why a type stopped, on the bar.
func stopWord(stop string) string {
	switch stop {
	case pipeline.StopTarget:
		return "done"
	case pipeline.StopBudget:
		return "budget spent"
	case pipeline.StopStalled:
		return "STALLED"
	}
	return stop // interrupted, failed
}

// shortReason is a drop reason without its stage ("instruction/not-novel"
// is "not-novel") and without "dropped-".
func shortReason(r string) string {
	if i := strings.LastIndexByte(r, '/'); i >= 0 {
		r = r[i+1:]
	}
	return strings.TrimPrefix(r, "dropped-")
}

// barLine is one line of the bar: a head, a gauge (optional), the core
// text, then segments joined by " · ". It fits a width by shortening and
// leaving out segments, least important first, the gauge among them
// (see gaugePrio); the gauge then takes the room left, and what still
// does not fit is cut.
type barLine struct {
	head     string
	gauge    float64 // the fraction done, when hasGauge
	hasGauge bool
	core     string
	segs     []segment
}

// segment is a part of a barLine that can be shortened or left out.
type segment struct {
	alts []string // its renderings, longest first
	prio int      // the lower, the sooner it is shortened or left out
	must bool     // never left out (its shortest rendering stays)
}

// The gauge is gaugeMax columns wide when there is room, and is left out
// rather than made narrower than gaugeMin.
const gaugeMin, gaugeMax = 6, 24

func (l *barLine) add(prio int, must bool, alts ...string) {
	l.segs = append(l.segs, segment{alts: alts, prio: prio, must: must})
}

// gaugePrio is the gauge's place among the segments: it goes after the
// rate and before the ETA.
const gaugePrio = 45

// fit renders the line in at most width columns.
func (l barLine) fit(width int) string {
	pick := make([]int, len(l.segs)) // index into alts; len(alts): left out
	render := func(gauge int) string {
		var b strings.Builder
		b.WriteString(l.head)
		if gauge > 0 {
			b.WriteString(gaugeText(l.gauge, gauge))
			b.WriteByte(' ')
		}
		b.WriteString(l.core)
		for i, s := range l.segs {
			if pick[i] < len(s.alts) {
				b.WriteString(" · ")
				b.WriteString(s.alts[pick[i]])
			}
		}
		return b.String()
	}
	g := 0
	if l.hasGauge {
		g = gaugeMin
	}
	for textWidth(render(g)) > width {
		i := l.next(pick)
		if g > 0 && (i < 0 || l.segs[i].prio > gaugePrio) {
			g = 0
			continue
		}
		if i < 0 {
			break
		}
		pick[i]++
	}
	// The gauge takes the room left, or comes back if there is enough.
	if room := width - textWidth(render(0)); l.hasGauge && room > gaugeMin {
		g = min(gaugeMax, room-1)
	}
	return truncate(render(g), width)
}

// next returns the segment to shorten next: of those that can be, the
// least important (the last of equals); -1 if none can.
func (l barLine) next(pick []int) int {
	best := -1
	for i, s := range l.segs {
		limit := len(s.alts)
		if s.must {
			limit--
		}
		if pick[i] < limit && (best < 0 || s.prio <= l.segs[best].prio) {
			best = i
		}
	}
	return best
}

// gaugeText draws frac of n columns filled.
func gaugeText(frac float64, n int) string {
	filled := min(n, max(0, int(frac*float64(n))))
	return strings.Repeat("█", filled) + strings.Repeat("░", n-filled)
}
