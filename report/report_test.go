package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// textTemplate escapes a string as the report's template does.
var textTemplate = template.Must(template.New("text").Parse("{{.}}"))

var update = flag.Bool("update", false, "rewrite the golden figures in testdata/golden")

// fixtures are the report inputs under testdata: a small run directory
// written to the run-directory schema, and the filter command's real
// output on the reference implementation's sample (see testdata/README.md).
var fixtures = []struct {
	name, path, rejected string
}{
	{"run", "testdata/run", ""},
	{"run-kept", "testdata/run/kept.jsonl", ""},
	{"run-rejected", "testdata/run/rejected.jsonl", ""},
	{"filter", "testdata/filter/data.jsonl", "testdata/filter/rejected.jsonl"},
}

func build(t *testing.T, path, rejected string) *Figures {
	t.Helper()
	src, err := Resolve(path, rejected)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Build(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGoldenFigures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			got, err := json.MarshalIndent(build(t, fx.path, fx.rejected), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", fx.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("figures differ from %s (go test -update rewrites it); got:\n%s", golden, got)
			}
		})
	}
}

// TestRunFigures pins the run fixture's figures by hand, independently
// of the golden file: the fixture was written so that each is easy to
// count.
func TestRunFigures(t *testing.T) {
	f := build(t, "testdata/run", "")

	if got, want := stageCounts(f.Funnels[0]), []int{10, 8, 7, 5, 3}; !slices.Equal(got, want) {
		t.Errorf("funnel A counts = %v, want %v", got, want)
	}
	if got, want := stageCounts(f.Funnels[1]), []int{6, 5, 5, 4, 2}; !slices.Equal(got, want) {
		t.Errorf("funnel B counts = %v, want %v", got, want)
	}
	a := f.Funnels[0].Stages
	if got := a[1].Drops; len(got) != 2 || sum(got) != 2 || a[1].Unfinished != 0 {
		t.Errorf("A passed checks: drops %v unfinished %d, want unparsable and too-short, none unfinished", got, a[1].Unfinished)
	}
	if got := a[2].Drops; len(got) != 1 || got[0] != (Count{"instruction/not-novel", 1}) {
		t.Errorf("A novel drops = %v", got)
	}
	// 7 novel: 2 instance drops, 5 valid, so none unfinished; 5 valid: 1
	// consensus drop, 3 kept, 1 unfinished.
	if a[3].Unfinished != 0 || a[4].Unfinished != 1 {
		t.Errorf("A unfinished = %d, %d, want 0, 1", a[3].Unfinished, a[4].Unfinished)
	}

	// Novelty: 5 kept + 5 rejected after the novelty check, 1 not novel.
	if got := sumInts(f.Novelty.Accepted); got != 10 {
		t.Errorf("accepted novelty scores = %d, want 10", got)
	}
	if got := f.Novelty.Rejected[16]; got != 1 || sumInts(f.Novelty.Rejected) != 1 {
		t.Errorf("not-novel bins = %v, want one in bin 16 (0.82)", f.Novelty.Rejected)
	}
	if f.Novelty.Threshold == nil || *f.Novelty.Threshold != 0.7 {
		t.Errorf("threshold = %v, want 0.7", f.Novelty.Threshold)
	}

	// Members: 8 decisions (5 kept, 3 consensus drops). gen's own output
	// won 4 (tweet, translate, primes, photosynthesis), e1 1 (summary);
	// the empty-pick drop is no win.
	wantMembers := []struct {
		name            string
		votes, wins     int
		seen, empty     int
		calls, failures int64
	}{
		{"gen (instance)", 8, 4, 3, 0, 28, 0},
		{"e1", 8, 1, 3, 1, 9, 0},
		{"e2", 8, 0, 3, 2, 9, 1},
	}
	if len(f.Members) != len(wantMembers) {
		t.Fatalf("members = %+v", f.Members)
	}
	for i, w := range wantMembers {
		m := f.Members[i]
		if m.Name != w.name || m.Votes != w.votes || m.Wins != w.wins || m.Seen != w.seen || m.Empty != w.empty || m.Calls != w.calls || m.Failures != w.failures {
			t.Errorf("member %d = %+v, want %+v", i, m, w)
		}
	}
	// Agreement of gen and e1: the first pairwise score of each decision.
	wantGenE1 := (1 + 0.823529411764706 + 0.75 + 0.8571428571428571 + 0.6153846153846154 + 0 + 0.5714285714285715 + 0) / 8
	if got := f.Agreement.Mean[0][1]; got == nil || !near(*got, wantGenE1) || f.Agreement.N[0][1] != 8 {
		t.Errorf("agreement gen/e1 = %v over %d, want %v over 8", got, f.Agreement.N[0][1], wantGenE1)
	}
	if f.Agreement.Mean[1][1] != nil {
		t.Errorf("diagonal = %v, want nil", *f.Agreement.Mean[1][1])
	}

	// Verbs: classify, summarize, translate, give, explain ("Can you" skipped).
	got := map[string]int{}
	for _, c := range f.Verbs.Top {
		got[c.Name] = c.Count
	}
	for _, v := range []string{"classify", "summarize", "translate", "give", "explain"} {
		if got[v] != 1 {
			t.Errorf("verb %q counted %d times, want 1 (top: %v)", v, got[v], f.Verbs.Top)
		}
	}
	if f.Verbs.Instructions != 5 || f.Verbs.TopShare != 1 {
		t.Errorf("verbs: %d instructions, top share %v, want 5 and 1", f.Verbs.Instructions, f.Verbs.TopShare)
	}

	// Lengths: the outputs have 1, 8, 5, 3 and 5 words.
	out := f.Lengths[2]
	if out.N != 5 || out.Max != 8 || out.Median != 5 || !near(out.Mean, 4.4) {
		t.Errorf("output lengths = %+v", out)
	}

	if len(f.Timeline) != 4 || len(f.Calls) != 3 || f.Totals == nil || f.Totals.Calls != 46 {
		t.Errorf("timeline %d points, %d models, totals %+v", len(f.Timeline), len(f.Calls), f.Totals)
	}
	// Every example is shown: 5 kept, and the 9 rejected in 8 groups.
	if len(f.Examples) != 14 || len(f.Groups) != 9 || f.Groups[0] != (Group{Name: GroupKept, Total: 5, Shown: 5, IsKept: true}) {
		t.Errorf("%d examples, groups %+v", len(f.Examples), f.Groups)
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func stageCounts(f Funnel) []int {
	var n []int
	for _, s := range f.Stages {
		n = append(n, s.Count)
	}
	return n
}

// TestDatasetFunnel checks the funnel of a dataset with a filter
// --rejected file: every record read, then each step's drops.
func TestDatasetFunnel(t *testing.T) {
	f := build(t, "testdata/filter/data.jsonl", "testdata/filter/rejected.jsonl")
	var names []string
	var counts []int
	for _, fn := range f.Funnels {
		names = append(names, fn.Type)
	}
	all := map[string]int{}
	for _, fn := range f.Funnels {
		for _, s := range fn.Stages {
			all[s.Name] += s.Count
		}
		counts = append(counts, fn.Stages[0].Count)
	}
	if !slices.Equal(names, []string{"A", "B"}) || counts[0]+counts[1] != 153 || all["kept"] != 103 {
		t.Errorf("funnels %v read %v kept %d, want A and B reading 153 and keeping 103", names, counts, all["kept"])
	}
	// The second candidate file is named in the members.
	if len(f.Members) != 3 || f.Members[2].Name != "flan-ul2_output.jsonl" || f.Members[0].Name != "original (instance)" {
		t.Errorf("members = %+v", f.Members)
	}
}

// TestRunInProgress: a run directory whose manifest is not written yet
// still reports its evidence.
func TestRunInProgress(t *testing.T) {
	dir := copyRun(t)
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	f := build(t, dir, "")
	if f.Run != nil || len(f.Funnels) != 2 || f.Funnels[0].Stages[0].Count != 9 || len(f.Examples) != 14 {
		t.Errorf("run without manifest: run %v, %d funnels, first %+v, %d examples", f.Run, len(f.Funnels), f.Funnels[0].Stages[0], len(f.Examples))
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		path, rejected string
		want           Source
		err            string
	}{
		{path: "testdata/run", want: Source{Manifest: "testdata/run/manifest.json", Data: "testdata/run/kept.jsonl", Rejected: "testdata/run/rejected.jsonl"}},
		{path: "testdata/run/rejected.jsonl", want: Source{Rejected: "testdata/run/rejected.jsonl"}},
		{path: "testdata/filter/data.jsonl", rejected: "testdata/filter/rejected.jsonl", want: Source{Data: "testdata/filter/data.jsonl", Rejected: "testdata/filter/rejected.jsonl"}},
		{path: "testdata", err: "not a run directory"},
		{path: "testdata/missing.jsonl", err: "no such file"},
		{path: "testdata/run/rejected.jsonl", rejected: "testdata/filter/rejected.jsonl", err: "is a rejected file already"},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.path, tt.rejected)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInput) {
				t.Errorf("Resolve(%q, %q) error = %v, want one containing %q", tt.path, tt.rejected, err, tt.err)
			}
		case err != nil:
			t.Errorf("Resolve(%q, %q): %v", tt.path, tt.rejected, err)
		case got != tt.want:
			t.Errorf("Resolve(%q, %q) = %+v, want %+v", tt.path, tt.rejected, got, tt.want)
		}
	}
}

// TestBadInput: a malformed file is an ErrInput error naming the file,
// the line and the field.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"json", "data.jsonl", "{\"instruction\":\"a\",\"output\":\"b\"}\n{\"instruction\":\n", "data.jsonl:2: invalid JSON"},
		{"meta field", "data.jsonl", "{\"instruction\":\"a\",\"output\":\"b\"}\n\n{\"instruction\":\"a\",\"output\":\"b\",\"meta\":{\"consensus\":{\"pick\":\"x\"}}}\n", "data.jsonl:3: meta.consensus.pick: want int"},
		{"record", "data.jsonl", "{\"instruction\":\"a\"}\n", "data.jsonl:1: output: missing"},
		{"rejected field", "rej.jsonl", "{\"reason\":\"x/y\"}\n{\"reason\":\"x/y\",\"candidates\":\"no\"}\n", "rej.jsonl:2: candidates: want []string"},
		{"rejected reason", "rej.jsonl", "{\"reason\":\"x/y\"}\n{\"reason\":null,\"instruction\":\"a\"}\n", "rej.jsonl:2: reason: missing"},
		{"manifest", "manifest.json", "{\"counts\":{\"A\":{\"kept\":\"many\"}}}", "manifest.json: counts.kept: want int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var src Source
			switch tt.file {
			case "manifest.json":
				src.Manifest = path
			case "rej.jsonl":
				src.Rejected = path
			default:
				src.Data = path
			}
			_, err := Build(src, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInput) {
				t.Errorf("error = %v, want an ErrInput containing %q", err, tt.want)
			}
		})
	}
}

func TestLeadingVerb(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Write a poem about the sea.", "write"},
		{"Please summarize the text below.", "summarize"},
		{"Can you explain what a black hole is?", "explain"},
		{"Given a list of numbers, find the largest one.", "find"},
		{"Given the following sentence, please classify it.", "classify"},
		{"I want you to act as a translator and translate the text.", "act"},
		{"Your task is to identify the verbs.", "identify"},
		{"Now briefly describe your morning.", "describe"},
		{"What is the capital of France?", VerbQuestion},
		{"How do airplanes fly?", VerbQuestion},
		{"The quick brown fox.", VerbNone},
		{"", VerbNone},
		{"   ", VerbNone},
		{"SORT THE LIST", "sort"},
		{"In one sentence, rewrite the paragraph.", "rewrite"},
		{"Carefully read the passage and answer.", "read"},
	}
	for _, tt := range tests {
		if got := LeadingVerb(tt.in); got != tt.want {
			t.Errorf("LeadingVerb(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "localhost:0", "[::1]:9000", "127.1.2.3:80"} {
		if err := CheckLoopback(addr); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", addr, err)
		}
	}
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:80", "192.168.1.4:80", "example.com:80", "8080"} {
		if err := CheckLoopback(addr); err == nil {
			t.Errorf("CheckLoopback(%q) = nil, want an error", addr)
		}
	}
}

// TestCut: a cut text never exceeds MaxExampleText bytes once escaped,
// and keeps whole runes.
func TestCut(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 600), strings.Repeat(`"<&>'+`, 200), strings.Repeat("日本語", 300), "short"} {
		c := cut(s)
		var b bytes.Buffer
		if err := textTemplate.Execute(&b, c.S); err != nil {
			t.Fatal(err)
		}
		if b.Len() > MaxExampleText {
			t.Errorf("cut(%.10q…) escapes to %d bytes, want at most %d", s, b.Len(), MaxExampleText)
		}
		if c.S+s[len(c.S):] != s || c.Cut != len(s)-len(c.S) {
			t.Errorf("cut(%.10q…) = %d bytes + %d cut, want a prefix of %d", s, len(c.S), c.Cut, len(s))
		}
	}
}
