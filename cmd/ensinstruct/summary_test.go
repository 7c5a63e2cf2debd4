package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// bigManifest is a long interrupted run with every drop reason, large
// numbers and long model names: the hardest summary to fit.
func bigManifest() pipeline.Manifest {
	reasons := []string{"instruction/too-short", "instruction/too-long", "instruction/blacklisted",
		"instruction/bad-prefix", "instruction/bad-first-char", "instruction/not-novel",
		"instance/empty-output", "instance/empty-input", "instance/unparsable",
		"instance/input-echoes-instruction", "instance/repetitive-output",
		"consensus/dropped-low-agreement", "consensus/dropped-empty"}
	dropped := map[string]int{}
	for i, r := range reasons {
		dropped[r] = 1000 * (i + 1)
	}
	m := pipeline.Manifest{
		Status:  pipeline.StatusInterrupted,
		Seconds: 83.4,
		Output:  pipeline.ManifestOutput{Path: "out.jsonl", Records: 1},
		Counts: map[string]pipeline.Counts{
			"A": {Target: 100_000, InstructionRequests: 1_234_567, InstructionsAccepted: 234_567, InstanceRequests: 234_567,
				InstancesValid: 200_000, EnsembleCalls: 400_000, Decided: 150_000, Kept: 1, Dropped: dropped, Stop: pipeline.StopInterrupted},
			"B": {Target: 40_000, InstructionRequests: 12, Kept: 0, Dropped: map[string]int{"instruction/not-novel": 3}, Stop: pipeline.StopInterrupted},
		},
		Calls: map[string]llm.ModelStats{},
	}
	for _, name := range []string{"qwen2.5-coder:32b-instruct-q4_K_M", "qwen2.5-coder:32b-instruct-q8_0", "llama3.1:8b", "gpt-4o-mini-2024-07-18@openrouter"} {
		m.Models = append(m.Models, llm.ModelInfo{Name: name})
		m.Calls[name] = llm.ModelStats{Calls: 1_234_567, CacheHits: 234_567, Retries: 12_345, Failures: 1234,
			PromptTokens: 987_654_321, CompletionTokens: 12_345_678, LatencyP50Ms: 12345, CostUSD: 1234.5678}
	}
	m.Totals = pipeline.SumStats(m.Calls)
	return m
}

func TestSummaryFits(t *testing.T) {
	m := bigManifest()
	for _, width := range []int{80, 72, 60, 50} {
		lines := summaryLines(m, "out.jsonl.manifest.json", width)
		text := strings.Join(lines, "\n")
		for _, l := range lines {
			if w := textWidth(l); w > width {
				t.Errorf("width %d: a line of %d columns: %q", width, w, l)
			}
		}
		for _, want := range []string{
			"ensinstruct: interrupted after 1m23s: 1 record",
			"out.jsonl.partial",
			"manifest: out.jsonl.manifest.json",
			"stop", "interrupted", "1234567",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("width %d: no %q in\n%s", width, want, text)
			}
		}
		if width >= 72 {
			// Every drop reason is there, whole, beside its counts.
			for r, n := range m.Counts["A"].Dropped {
				if !containsLine(lines, "  "+r, n) {
					t.Errorf("width %d: no row for %s (%d)\n%s", width, r, n, text)
				}
			}
		}
		// Long model names are shortened in the middle: both ends stay.
		for _, part := range []string{"qwen2.5-", "q4_K_M", "q8_0", "llama3.1:8b", "gpt-4o-"} {
			if !strings.Contains(text, part) {
				t.Errorf("width %d: no %q in the model table\n%s", width, part, text)
			}
		}
		if t.Failed() {
			t.Logf("width %d:\n%s", width, text)
		}
	}
	lines := summaryLines(m, "m.json", 80)
	if lines[1] != "ensinstruct: interrupted after 1m23s: 1 record to out.jsonl.partial" {
		t.Errorf("at 80 columns the headline is one line: %q", lines[1])
	}
	if text := strings.Join(lines, "\n"); !strings.Contains(text, "qwen2.5-…-q4_K_M") {
		t.Errorf("at 80 columns the long names should be shortened to 16 columns:\n%s", text)
	}
}

// containsLine reports whether a line starts with prefix and holds the
// count n.
func containsLine(lines []string, prefix string, n int) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix+" ") && strings.Contains(l, " "+strconv.Itoa(n)) {
			return true
		}
	}
	return false
}

func TestSummarySmallRunIsUntouched(t *testing.T) {
	m := pipeline.Manifest{
		Status: pipeline.StatusComplete, Seconds: 11.534,
		Output: pipeline.ManifestOutput{Path: "-", Records: 24},
		Counts: map[string]pipeline.Counts{
			"A": {Target: 16, InstructionRequests: 40, InstructionsAccepted: 20, InstanceRequests: 20, InstancesValid: 18,
				EnsembleCalls: 36, Decided: 18, Kept: 16, Stop: pipeline.StopTarget,
				Dropped: map[string]int{"instance/unparsable": 2, "instruction/not-novel": 20}},
			"B": {Target: 8, InstructionRequests: 9, InstructionsAccepted: 9, InstanceRequests: 9, InstancesValid: 9,
				EnsembleCalls: 18, Decided: 9, Kept: 8, Stop: pipeline.StopTarget,
				Dropped: map[string]int{"consensus/dropped-low-agreement": 1}},
		},
		Models: []llm.ModelInfo{{Name: "gen"}, {Name: "e1"}},
		Calls: map[string]llm.ModelStats{
			"gen": {Calls: 98, PromptTokens: 40_000, CompletionTokens: 1307, LatencyP50Ms: 31},
			"e1":  {Calls: 54, CacheHits: 3, PromptTokens: 405, CompletionTokens: 141, LatencyP50Ms: 29},
		},
	}
	m.Totals = pipeline.SumStats(m.Calls)
	want := `
ensinstruct: complete in 11.5s: 24 records to stdout
manifest: run/manifest.json

                                   type A  type B
target                                 16       8
instruction requests                   40       9
instructions accepted                  20       9
instance requests                      20       9
instances valid                        18       9
ensemble calls                         36      18
decided                                18       9
kept                                   16       8
stop                               target  target
dropped:
  instruction/not-novel                20       0
  instance/unparsable                   2       0
  consensus/dropped-low-agreement       0       1

model  calls  cached  retry  fail  tok in  tok out  p50 ms  cost $
gen       98       0      0     0   40.0k     1307      31  0.0000
e1        54       3      0     0     405      141      29  0.0000
total    152       3      0     0   40.4k     1448          0.0000`
	for _, width := range []int{80, 66} {
		if got := strings.Join(summaryLines(m, "run/manifest.json", width), "\n"); got != want {
			t.Errorf("width %d:\n%s\nwant:\n%s", width, got, want)
		}
	}
}

func TestHeadline(t *testing.T) {
	counts := func(stops ...string) map[string]pipeline.Counts {
		c := map[string]pipeline.Counts{}
		for i, s := range stops {
			c[string(rune('A'+i))] = pipeline.Counts{Target: 1, Stop: s}
		}
		return c
	}
	for _, tc := range []struct {
		name string
		m    pipeline.Manifest
		want string
	}{
		{"complete", pipeline.Manifest{Status: pipeline.StatusComplete, Seconds: 1.234,
			Output: pipeline.ManifestOutput{Path: "-", Records: 1}},
			"complete in 1.2s: 1 record to stdout"},
		{"budget", pipeline.Manifest{Status: pipeline.StatusBudget, Seconds: 11.5,
			Output: pipeline.ManifestOutput{Path: "small.jsonl", Records: 3}},
			"stopped by the budget after 11.5s: 3 records to small.jsonl"},
		{"one type stalled", pipeline.Manifest{Status: pipeline.StatusStalled, Seconds: 75,
			Output: pipeline.ManifestOutput{Path: "-", Records: 0}, Counts: counts(pipeline.StopTarget, pipeline.StopStalled)},
			"type B stalled after 1m15s: 0 records to stdout"},
		{"both stalled", pipeline.Manifest{Status: pipeline.StatusStalled, Seconds: 2,
			Output: pipeline.ManifestOutput{Path: "-", Records: 2}, Counts: counts(pipeline.StopStalled, pipeline.StopStalled)},
			"types A and B stalled after 2s: 2 records to stdout"},
		{"interrupted, to a file", pipeline.Manifest{Status: pipeline.StatusInterrupted, Seconds: 3,
			Output: pipeline.ManifestOutput{Path: "o.jsonl", Records: 5}},
			"interrupted after 3s: 5 records to o.jsonl.partial"},
		{"interrupted before any record", pipeline.Manifest{Status: pipeline.StatusInterrupted, Seconds: 0.2,
			Output: pipeline.ManifestOutput{Path: "o.jsonl"}},
			"interrupted after 200ms: no records written"},
		{"failed, to stdout", pipeline.Manifest{Status: pipeline.StatusFailed, Seconds: 3,
			Output: pipeline.ManifestOutput{Path: "-", Records: 1}},
			"failed after 3s: 1 record to stdout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := headline(tc.m); got != tc.want {
				t.Errorf("headline = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTableDropsColumnsInOrder(t *testing.T) {
	tb := table{head: []string{"name", "a", "bb", "ccc"}, rows: [][]string{{"a-long-name-here", "1", "22", "333"}},
		softMin: 8, minFirst: 4, drop: []int{2, 1}}
	for _, tc := range []struct {
		width int
		want  []string
	}{
		{40, []string{"name              a  bb  ccc", "a-long-name-here  1  22  333"}},
		{22, []string{"name        a  bb  ccc", "a-lon…here  1  22  333"}},
		{17, []string{"name      a  ccc", "a-lo…ere  1  333"}},
		{14, []string{"name      ccc", "a-lo…ere  333"}},
		{9, []string{"name  ccc", "a-…e  333"}},
		{5, []string{"name…", "a-…e…"}}, // the last resort: cut
	} {
		got := tb.lines(tc.width)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("width %d: %q, want %q", tc.width, got, tc.want)
		}
	}
}
