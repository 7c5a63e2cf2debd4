package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/pipeline"
)

// runningA is a type-A figure in the middle of a run, with two drop
// reasons.
var runningA = typeFigures{
	name: "A",
	counts: pipeline.Counts{Target: 16, Kept: 8, InstructionsAccepted: 12,
		Dropped: map[string]int{"instruction/not-novel": 9, "instance/unparsable": 2, "consensus/dropped-low-agreement": 2}},
	keptPerMin: 12, eta: 40 * time.Second, idle: 3 * time.Second,
}

func TestTypeLineFits(t *testing.T) {
	quiet := runningA
	quiet.quiet, quiet.eta, quiet.idle = true, 0, 83*time.Second
	stalled := runningA
	stalled.counts.Stop = pipeline.StopStalled
	done := runningA
	done.counts.Kept, done.counts.Stop = 16, pipeline.StopTarget
	for _, tc := range []struct {
		name  string
		tf    typeFigures
		width int
		want  string
	}{
		{"wide: everything, a full gauge", runningA, 120,
			"A ████████████░░░░░░░░░░░░ 8/16 kept · ETA 40s · 12 kept/min · drops: not-novel 9, low-agreement 2 · 12 instructions"},
		{"80 columns: the instruction count and the second reason go first", runningA, 79,
			"A ███████████░░░░░░░░░░░ 8/16 kept · ETA 40s · 12 kept/min · drops: not-novel 9"},
		{"60 columns: the drops go before the rate", runningA, 59,
			"A ███████████░░░░░░░░░░░░ 8/16 kept · ETA 40s · 12 kept/min"},
		{"40 columns: the rate shortened", runningA, 39,
			"A ████░░░░ 8/16 kept · ETA 40s · 12/min"},
		{"20 columns: the gauge takes what the ETA cannot use", runningA, 20,
			"A ████░░░░ 8/16 kept"},
		{"too narrow for the core: cut", runningA, 8,
			"A 8/16 …"},
		{"quiet: a stalled marker in place of the ETA, the drops kept", quiet, 79,
			"A ███░░░░ 8/16 kept · STALLED? 1m23s idle · drops: not-novel 9, low-agreement 2"},
		{"quiet, narrow: the marker stays, shortened", quiet, 39,
			"A ████████░░░░░░░░ 8/16 kept · STALLED?"},
		{"stopped as stalled: the drops before the gauge", stalled, 59,
			"A 8/16 kept · STALLED · drops: not-novel 9, low-agreement 2"},
		{"done", done, 59,
			"A ██████████████████ 16/16 kept · done · drops: not-novel 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := typeLine(tc.tf).fit(tc.width)
			if got != tc.want {
				t.Errorf("fit(%d):\n got %q (%d columns)\nwant %q", tc.width, got, textWidth(got), tc.want)
			}
			if w := textWidth(got); w > tc.width {
				t.Errorf("fit(%d) is %d columns", tc.width, w)
			}
		})
	}
}

func TestTotalsLine(t *testing.T) {
	f := figures{elapsed: 83 * time.Second, callsPerSec: 3.24,
		totals: pipeline.Totals{Calls: 412, CacheHits: 40, Retries: 1, Failures: 0, PromptTokens: 40_000, CompletionTokens: 5_600, CostUSD: 0.0123}}
	for _, tc := range []struct {
		width int
		want  string
	}{
		{120, "  412 calls · 3.2 calls/s · 40 cached · 1 retry · 45.6k tokens · $0.0123 · 1m23s"},
		{59, "  412 calls · 3.2 calls/s · 1 retry · $0.0123 · 1m23s"},
		{39, "  412 calls · 3.2 calls/s · 1m23s"},
		{20, "  412 calls · 1m23s"},
	} {
		if got := totalsLine(f).fit(tc.width); got != tc.want {
			t.Errorf("fit(%d):\n got %q\nwant %q", tc.width, got, tc.want)
		}
	}
	one := figures{totals: pipeline.Totals{Calls: 1}}
	if got := totalsLine(one).fit(79); !strings.HasPrefix(got, "  1 call · ") {
		t.Errorf("one call: %q", got)
	}
}

// TestBarLinesFitEveryWidth draws a busy bar at every width from 1 to
// 200 columns: no line is ever wider.
func TestBarLinesFitEveryWidth(t *testing.T) {
	b := runningA
	b.name, b.quiet, b.idle = "B", true, 10*time.Minute
	f := figures{elapsed: 3 * time.Hour, callsPerSec: 1234.5, types: []typeFigures{runningA, b},
		totals: pipeline.Totals{Calls: 1_234_567, CacheHits: 99_999, Retries: 12_345, Failures: 3, PromptTokens: 9e9, CostUSD: 1234.5}}
	for width := 1; width <= 200; width++ {
		lines := barLines(f, width)
		if len(lines) != 3 {
			t.Fatalf("%d lines, want 3", len(lines))
		}
		for _, l := range lines {
			if w := textWidth(l); w > width {
				t.Errorf("width %d: a line of %d columns: %q", width, w, l)
			}
			if width >= 40 && !strings.Contains(l, "kept") && !strings.Contains(l, "calls") {
				t.Errorf("width %d: the core is cut: %q", width, l)
			}
		}
	}
}

func TestShortReason(t *testing.T) {
	for in, want := range map[string]string{
		"instruction/not-novel":           "not-novel",
		"consensus/dropped-low-agreement": "low-agreement",
		"unparsable":                      "unparsable",
	} {
		if got := shortReason(in); got != want {
			t.Errorf("shortReason(%q) = %q, want %q", in, got, want)
		}
	}
}
