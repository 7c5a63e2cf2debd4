package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// summaryColumns is the most columns the end-of-run summary takes: it is
// read in a terminal of any size, and pasted into issues and chats.
const summaryColumns = 80

// writeSummary prints the end of a run on stderr: how it ended and where
// its records and manifest are; per type, what each stage let through
// and why the rest was dropped; per model, the calls, tokens, latency and
// cost. It fits summaryColumns, or the terminal if that is narrower;
// only a path longer than that is never cut (nor are huge counts).
func writeSummary(w io.Writer, m pipeline.Manifest, manifestPath string) {
	width := summaryColumns
	if c := terminalColumns(w); c > 0 {
		width = min(width, c)
	}
	io.WriteString(w, strings.Join(summaryLines(m, manifestPath, width), "\n")+"\n")
}

// summaryLines are the summary's lines at a width.
func summaryLines(m pipeline.Manifest, manifestPath string, width int) []string {
	lines := append([]string{""}, wrapWords("ensinstruct: "+headline(m), width, "  ")...)
	lines = append(lines, wrapWords("manifest: "+manifestPath, width, "  ")...)
	if t, ok := funnelTable(m.Counts); ok {
		lines = append(lines, "")
		lines = append(lines, t.lines(width)...)
	}
	if len(m.Models) > 0 {
		lines = append(lines, "")
		lines = append(lines, modelTable(m).lines(width)...)
	}
	if m.Reliability != nil && m.Reliability.Rows > 0 {
		lines = append(lines, "")
		lines = append(lines, reliabilityLines(*m.Reliability, width)...)
	}
	return lines
}

// reliabilityLines show each ensemble member's record in the run — how
// often it won, answered empty, failed or was rejected, its weight, with a
// judge the mean grade of its outputs — and
// the members' mean pairwise agreement, in width columns.
func reliabilityLines(r filter.ReliabilitySummary, width int) []string {
	stats := "  won% empty  fail   rej weight"
	judged := r.Judged()
	if judged {
		stats += " judge"
	}
	nameW := max(8, min(32, width-len(stats)-3))
	lines := []string{fmt.Sprintf("%-*s%s", nameW+3, "member", stats)}
	weakest, low := -1, 0.0
	for i, mr := range r.Members {
		won := 0.0
		if mr.Rows > 0 {
			won = 100 * float64(mr.Won) / float64(mr.Rows)
		}
		l := fmt.Sprintf("%2d %-*s %5.0f %5d %5d %5d %6.3f", i+1, nameW, truncateMiddle(mr.Name, nameW),
			won, mr.Empty, mr.Failed, mr.Rejected, mr.Weight)
		switch {
		case judged && mr.Judged > 0:
			l += fmt.Sprintf(" %5.1f", mr.JudgeMean)
		case judged:
			l += fmt.Sprintf(" %5s", "-")
		}
		lines = append(lines, l)
		if weakest < 0 || mr.Weight < low {
			weakest, low = i, mr.Weight
		}
	}
	if n := len(r.Agreement); n > 1 && 3+6*n <= width {
		lines = append(lines, "mean agreement (Rouge-L), members by number:")
		head := "   "
		for j := range n {
			head += fmt.Sprintf("%6d", j+1)
		}
		lines = append(lines, head)
		for i, row := range r.Agreement {
			l := fmt.Sprintf("%2d ", i+1)
			for _, v := range row {
				l += fmt.Sprintf("%6.2f", v)
			}
			lines = append(lines, l)
		}
	}
	if weakest >= 0 && len(r.Members) > 2 {
		lines = append(lines, wrapWords(fmt.Sprintf("least reliable: %s (weight %.3f)", r.Members[weakest].Name, low), width, "  ")...)
	}
	return lines
}

// wrapWords breaks s at spaces into lines of at most width columns, the
// ones after the first indented. A word longer than that (a path) is
// never cut.
func wrapWords(s string, width int, indent string) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case textWidth(line)+1+textWidth(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = indent + word
		}
	}
	return append(lines, line)
}

// headline says how the run ended and where the records went.
func headline(m pipeline.Manifest) string {
	d := shortDuration(time.Duration(m.Seconds * float64(time.Second)))
	var how string
	switch m.Status {
	case pipeline.StatusComplete:
		how = "complete in " + d
	case pipeline.StatusBudget:
		how = "stopped by the budget after " + d
	case pipeline.StatusStalled:
		how = stalledTypes(m.Counts) + " stalled after " + d
	default: // interrupted, failed
		how = m.Status + " after " + d
	}
	dest := outName(m.Output.Path)
	if m.Status == pipeline.StatusInterrupted || m.Status == pipeline.StatusFailed {
		// The output was not committed.
		if m.Output.Records == 0 {
			return how + ": no records written"
		}
		if m.Output.Path != "-" {
			dest += output.PartialSuffix
		}
	}
	return fmt.Sprintf("%s: %s to %s", how, plural(m.Output.Records, "record"), dest)
}

// stalledTypes names the types that stalled: "type A", "types A and B".
func stalledTypes(counts map[string]pipeline.Counts) string {
	var names []string
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		if counts[typ].Stop == pipeline.StopStalled {
			names = append(names, typ)
		}
	}
	switch len(names) {
	case 0:
		return "a type"
	case 1:
		return "type " + names[0]
	}
	return "types " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func outName(p string) string {
	if p == "-" || p == "" {
		return "stdout"
	}
	return p
}

// funnelTable shows, per type, what each stage let through, why and how
// often the rest was dropped, and why the type stopped. Types are
// columns, so it fits a narrow terminal however many drop reasons there
// are. It reports false when no type has counts.
func funnelTable(counts map[string]pipeline.Counts) (table, bool) {
	var types []string
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		if counts[typ].Target > 0 {
			types = append(types, typ)
		}
	}
	if len(types) == 0 {
		return table{}, false
	}
	t := table{head: []string{""}, minFirst: 12}
	for _, typ := range types {
		t.head = append(t.head, "type "+typ)
	}
	row := func(label string, value func(pipeline.Counts) string) {
		r := []string{label}
		for _, typ := range types {
			r = append(r, value(counts[typ]))
		}
		t.rows = append(t.rows, r)
	}
	num := func(f func(pipeline.Counts) int) func(pipeline.Counts) string {
		return func(c pipeline.Counts) string { return fmt.Sprint(f(c)) }
	}
	row("target", num(func(c pipeline.Counts) int { return c.Target }))
	row("instruction requests", num(func(c pipeline.Counts) int { return c.InstructionRequests }))
	row("instructions accepted", num(func(c pipeline.Counts) int { return c.InstructionsAccepted }))
	row("instance requests", num(func(c pipeline.Counts) int { return c.InstanceRequests }))
	row("instances valid", num(func(c pipeline.Counts) int { return c.InstancesValid }))
	row("ensemble calls", num(func(c pipeline.Counts) int { return c.EnsembleCalls }))
	row("decided", num(func(c pipeline.Counts) int { return c.Decided }))
	row("kept", num(func(c pipeline.Counts) int { return c.Kept }))
	row("stop", func(c pipeline.Counts) string { return cmp.Or(c.Stop, "-") })
	reasons := dropReasons(counts, types)
	if len(reasons) > 0 {
		t.rows = append(t.rows, []string{"dropped:"})
	}
	for _, r := range reasons {
		row("  "+r, func(c pipeline.Counts) string { return fmt.Sprint(c.Dropped[r]) })
	}
	return t, true
}

// dropReasons lists the drop reasons of types in pipeline order (the
// instruction stage, the instance stage, the consensus), the most
// frequent first within a stage.
func dropReasons(counts map[string]pipeline.Counts, types []string) []string {
	total := map[string]int{}
	for _, typ := range types {
		for r, n := range counts[typ].Dropped {
			total[r] += n
		}
	}
	stage := func(r string) int {
		s, _, _ := strings.Cut(r, "/")
		return slices.Index([]string{pipeline.StageInstruction, pipeline.StageInstance, pipeline.StageConsensus}, s) + 1
	}
	reasons := slices.Collect(maps.Keys(total))
	slices.SortFunc(reasons, func(a, b string) int {
		return cmp.Or(cmp.Compare(stage(a), stage(b)), cmp.Compare(total[b], total[a]), strings.Compare(a, b))
	})
	return reasons
}

// modelTable shows per model the calls, cache hits, retries, failures,
// tokens, median latency and cost, and their totals.
func modelTable(m pipeline.Manifest) table {
	t := table{
		head:     []string{"model", "calls", "cached", "retry", "fail", "tok in", "tok out", "p50 ms", "cost $"},
		softMin:  16,
		minFirst: 8,
		drop:     []int{7, 2, 5, 3},
	}
	for _, mi := range m.Models {
		s := m.Calls[mi.Name]
		t.rows = append(t.rows, []string{mi.Name, fmt.Sprint(s.Calls), fmt.Sprint(s.CacheHits), fmt.Sprint(s.Retries),
			fmt.Sprint(s.Failures), humanCount(s.PromptTokens), humanCount(s.CompletionTokens),
			fmt.Sprintf("%.0f", s.LatencyP50Ms), usd(s.CostUSD)})
	}
	tot := m.Totals
	t.rows = append(t.rows, []string{"total", fmt.Sprint(tot.Calls), fmt.Sprint(tot.CacheHits), fmt.Sprint(tot.Retries),
		fmt.Sprint(tot.Failures), humanCount(tot.PromptTokens), humanCount(tot.CompletionTokens), "", usd(tot.CostUSD)})
	return t
}

// table is a summary table: a left-aligned first column, the others
// right-aligned, two spaces apart. Too wide for its width, it shortens
// the first column (an ellipsis in the middle) to softMin, leaves out
// the columns in drop in that order, then shortens the first column to
// minFirst.
type table struct {
	head     []string
	rows     [][]string // a short row leaves the rest of its cells empty
	softMin  int        // 0: minFirst
	minFirst int
	drop     []int // column indices
}

func (t table) lines(width int) []string {
	cols := make([]int, len(t.head))
	w := make([]int, len(t.head))
	for i := range t.head {
		cols[i] = i
		w[i] = textWidth(t.head[i])
		for _, r := range t.rows {
			if i < len(r) {
				w[i] = max(w[i], textWidth(r[i]))
			}
		}
	}
	total := func() int {
		n := 0
		for _, c := range cols {
			n += w[c]
		}
		return n + 2*(len(cols)-1)
	}
	shrink := func(floor int) {
		if over := total() - width; over > 0 && w[0] > floor {
			w[0] = max(floor, w[0]-over)
		}
	}
	shrink(max(t.softMin, t.minFirst))
	for _, d := range t.drop {
		if total() <= width {
			break
		}
		cols = slices.DeleteFunc(cols, func(c int) bool { return c == d })
	}
	shrink(t.minFirst)

	var out []string
	for _, r := range append([][]string{t.head}, t.rows...) {
		var b strings.Builder
		for k, c := range cols {
			cell := ""
			if c < len(r) {
				cell = r[c]
			}
			if k == 0 {
				b.WriteString(padRight(truncateMiddle(cell, w[c]), w[c]))
				continue
			}
			b.WriteString("  ")
			b.WriteString(padLeft(cell, w[c]))
		}
		out = append(out, truncate(strings.TrimRight(b.String(), " "), width))
	}
	return out
}
