package output

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleRecords() []Record {
	nov := 0.42
	return []Record{
		{Instruction: "Name the capital of France.", Output: "Paris"},
		{
			Instruction: "Classify the sentiment of the review.",
			Input:       "The soup was cold <and> bland & late.",
			Output:      "negative",
			Meta: &Meta{
				ID: "0f8e5b0e-0000-5000-8000-000000000001", Type: "A",
				InstructionModel: "gen", InstanceModel: "gen", Ensemble: []string{"e1", "e2"},
				Consensus:   &ConsensusMeta{Reason: "agreement", Pick: 1, Pairwise: []float64{0.5, 0.25, 1}, Scores: []float64{0.75, 1.5, 1.25}, MinPair: 0.25},
				NoveltyMax:  &nov,
				MostSimilar: []Similar{{Text: "Classify the review.", Score: 0.42}, {Text: "Rate the soup.", Score: 0}},
			},
		},
		{Instruction: "Translate to French: ünïcödé “quotes”", Input: "line one\nline two", Output: "ligne\tun"},
	}
}

// goldenName names the golden file of a format with meta and a system
// message.
func goldenName(f Format, meta, system bool) string {
	name := string(f)
	if meta {
		name += "-meta"
	}
	if system {
		name += "-system"
	}
	return name
}

// checkGolden compares got with testdata/NAME.golden.EXT, rewriting it
// with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./output -update to create it, then review)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestWriterGolden(t *testing.T) {
	for _, f := range Formats() {
		for _, meta := range []bool{false, true} {
			for _, system := range []bool{false, true} {
				if system && f == FormatAlpaca {
					continue // an error; see TestOptionsValidate
				}
				name := goldenName(f, meta, system)
				t.Run(name, func(t *testing.T) {
					o := Options{Format: f, Meta: meta}
					if system {
						o.System = "You answer in one short paragraph."
					}
					var buf bytes.Buffer
					w, err := NewJSONL(&buf, o)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range sampleRecords() {
						if err := w.Write(r); err != nil {
							t.Fatal(err)
						}
					}
					if w.Count() != 3 {
						t.Errorf("Count() = %d, want 3", w.Count())
					}
					checkGolden(t, name+".golden.jsonl", buf.Bytes())
				})
			}
		}
	}
}

func TestNewWriterIsDefaultOptions(t *testing.T) {
	var a, b bytes.Buffer
	w := NewWriter(&a, FormatOpenAI, true)
	w2, err := NewJSONL(&b, Options{Format: FormatOpenAI, Meta: true, Join: DefaultJoin})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sampleRecords() {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if err := w2.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if a.String() != b.String() {
		t.Errorf("NewWriter:\n%s\nNewJSONL with the defaults:\n%s", a.String(), b.String())
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"zero value", Options{}, ""},
		{"system with openai", Options{Format: FormatOpenAI, System: "s"}, ""},
		{"system with alpaca", Options{Format: FormatAlpaca, System: "s"}, "--system: the alpaca format has no system turn"},
		{"system with default format", Options{System: "s"}, "--system: the alpaca format"},
		{"unknown format", Options{Format: "csv"}, `--format: unknown format "csv" (want alpaca, openai, sharegpt or prompt-completion)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
			if _, jerr := NewJSONL(io.Discard, tt.o); (jerr == nil) != (err == nil) {
				t.Errorf("NewJSONL error %v, Validate %v", jerr, err)
			}
			if _, perr := NewParquet(io.Discard, tt.o); (perr == nil) != (err == nil) {
				t.Errorf("NewParquet error %v, Validate %v", perr, err)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	r := Record{Instruction: "Add the numbers.", Input: "2 3", Output: "5"}
	for _, tt := range []struct{ flag, want string }{
		{`\n`, "Add the numbers.\n2 3"},
		{`\n\n`, "Add the numbers.\n\n2 3"},
		{` `, "Add the numbers. 2 3"},
		{"\n", "Add the numbers.\n2 3"}, // a real newline, as $'\n' passes it
		{`\nInput: `, "Add the numbers.\nInput: 2 3"},
		{`say \"`, `Add the numbers.say "2 3`},
	} {
		join, err := ParseJoin(tt.flag)
		if err != nil {
			t.Fatalf("ParseJoin(%q): %v", tt.flag, err)
		}
		var buf bytes.Buffer
		w, _ := NewJSONL(&buf, Options{Format: FormatOpenAI, Join: join})
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		rec, err := NewReader(&buf, "x").Read()
		if err != nil || rec.Instruction != tt.want {
			t.Errorf("--join %q: user turn %q, %v; want %q", tt.flag, rec.Instruction, err, tt.want)
		}
	}
	if got := r.UserTurn(""); got != "Add the numbers.\n2 3" {
		t.Errorf("default join: %q", got)
	}
	if got := (Record{Instruction: "Say hi.", Input: "  "}).UserTurn(`\n\n`); got != "Say hi." {
		t.Errorf("blank input: %q, want the instruction alone", got)
	}
	for _, bad := range []string{"", `\q`, `a\"b\`, `\`} {
		if _, err := ParseJoin(bad); err == nil || !strings.Contains(err.Error(), "--join") {
			t.Errorf("ParseJoin(%q) error = %v, want a --join error", bad, err)
		}
	}
}

// TestWriterFlushesEachRecord checks that every Write reaches the
// underlying writer as whole lines, so a consumer of a pipe sees records as
// they are decided.
func TestWriterFlushesEachRecord(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, FormatAlpaca, false)
	for i, r := range sampleRecords() {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(buf.String(), "\n"); got != i+1 {
			t.Fatalf("after %d writes the stream holds %d lines", i+1, got)
		}
		if !strings.HasSuffix(buf.String(), "\n") {
			t.Fatalf("after write %d the stream ends mid-line", i+1)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range Formats() {
		for _, system := range []string{"", "Be brief."} {
			if system != "" && f == FormatAlpaca {
				continue
			}
			t.Run(goldenName(f, true, system != ""), func(t *testing.T) {
				var buf bytes.Buffer
				w, err := NewJSONL(&buf, Options{Format: f, Meta: true, System: system})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range sampleRecords() {
					if err := w.Write(r); err != nil {
						t.Fatal(err)
					}
				}
				rd := NewReader(&buf, "in.jsonl")
				for i, want := range sampleRecords() {
					got, err := rd.Read()
					if err != nil {
						t.Fatalf("record %d: %v", i, err)
					}
					if f == FormatAlpaca {
						if got.Instruction != want.Instruction || got.Input != want.Input || got.Output != want.Output {
							t.Errorf("record %d = %+v, want %+v", i, got, want)
						}
					} else if got.Instruction != want.UserTurn("") || got.Input != "" || got.Output != want.Output {
						t.Errorf("record %d = %+v, want instruction %q output %q", i, got, want.UserTurn(""), want.Output)
					}
				}
				if _, err := rd.Read(); err != io.EOF {
					t.Errorf("after the last record: %v, want io.EOF", err)
				}
				if rd.Format() != f {
					t.Errorf("detected %q, want %q", rd.Format(), f)
				}
			})
		}
	}
}

func TestReaderPromptCompletion(t *testing.T) {
	in := `{"prompt": "Sky colour?", "completion": "blue"}
{"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Grass colour?"}], "completion": [{"role": "assistant", "content": "green"}]}
`
	rd := NewReader(strings.NewReader(in), "pc.jsonl")
	for _, want := range []Record{{Instruction: "Sky colour?", Output: "blue"}, {Instruction: "Grass colour?", Output: "green"}} {
		got, err := rd.Read()
		if err != nil || got.Instruction != want.Instruction || got.Output != want.Output {
			t.Errorf("Read() = %+v, %v; want %+v", got, err, want)
		}
	}
	if rd.Format() != FormatPromptCompletion {
		t.Errorf("format %q", rd.Format())
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bad json", "{\"instruction\": \"a\", \"output\": \"b\"}\n\n{oops\n", "in.jsonl:3: invalid JSON"},
		{"unknown shape", `{"prompt": "x"}`, "in.jsonl:1: not an instruction record"},
		{"missing output", `{"instruction": "x"}`, "in.jsonl:1: output: missing"},
		{"format fixed by first line", "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"messages\": []}\n", "in.jsonl:2: instruction: missing"},
		{"two user turns", `{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]}`, "want one user and one assistant turn, got 2 and 1"},
		{"bad role", `{"conversations": [{"from": "bot", "value": "a"}]}`, `conversations[0].from: unknown "bot"`},
		{"prompt without completion", `{"prompt": [{"role": "user", "content": "a"}]}`, "not an instruction record"},
		{"prompt not messages", `{"prompt": 3, "completion": "b"}`, "in.jsonl:1: prompt: want a string or a list of messages"},
		{"assistant in prompt", `{"prompt": [{"role": "assistant", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}]}`, "prompt: an assistant turn belongs in the completion"},
		{"user in completion", `{"prompt": [{"role": "user", "content": "a"}], "completion": [{"role": "user", "content": "b"}]}`, `completion: role "user", want assistant`},
		{"no user turn", `{"prompt": [{"role": "system", "content": "a"}], "completion": [{"role": "assistant", "content": "b"}]}`, "prompt: want one user and one assistant turn, got 0 and 1"},
		{"wrong type", `{"instruction": 3, "output": "b"}`, "in.jsonl:1: invalid record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := NewReader(strings.NewReader(tt.in), "in.jsonl")
			var err error
			for err == nil {
				_, err = rd.Read()
			}
			if err == io.EOF {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidLine) {
				t.Errorf("errors.Is(%v, ErrInvalidLine) = false", err)
			}
		})
	}
}

func TestReaderSystemTurnAndCRLF(t *testing.T) {
	in := "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]}\r\n"
	rd := NewReader(strings.NewReader(in), "x")
	got, err := rd.Read()
	if err != nil || got.Instruction != "hi" || got.Output != "hello" {
		t.Fatalf("Read() = %+v, %v", got, err)
	}
}

func TestAtomicFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	f, err := CreateAtomic(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("line\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("final file exists before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "line\n" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if _, err := os.Stat(path + PartialSuffix); !os.IsNotExist(err) {
		t.Errorf("partial file left after Commit: %v", err)
	}

	// Close without Commit leaves the partial file and no final file.
	path2 := filepath.Join(dir, "cut.jsonl")
	f2, err := CreateAtomic(path2)
	if err != nil {
		t.Fatal(err)
	}
	f2.WriteString("complete record\n")
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path2); !os.IsNotExist(err) {
		t.Errorf("final file exists without Commit")
	}
	if b, _ := os.ReadFile(path2 + PartialSuffix); string(b) != "complete record\n" {
		t.Errorf("partial file holds %q", b)
	}
}

func TestWriteJSONFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	if err := WriteJSONFile(path, map[string]int{"b": 2, "a": 1}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "{\n  \"a\": 1,\n  \"b\": 2\n}\n" {
		t.Errorf("got %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("sharegpt"); err != nil || f != FormatShareGPT {
		t.Errorf("ParseFormat(sharegpt) = %q, %v", f, err)
	}
	if f, err := ParseFormat("prompt-completion"); err != nil || f != FormatPromptCompletion {
		t.Errorf("ParseFormat(prompt-completion) = %q, %v", f, err)
	}
	if _, err := ParseFormat("csv"); err == nil || !strings.Contains(err.Error(), "alpaca, openai, sharegpt or prompt-completion") {
		t.Errorf("ParseFormat(csv) error = %v", err)
	}
}

func TestReadInstructions(t *testing.T) {
	in := `{"id": "s1", "instruction": "Seed task.", "instances": [{"input": "", "output": "x"}]}
{"instruction": "Alpaca task.", "input": "i", "output": "o"}

{"instruction": "No output."}
`
	got, err := ReadInstructions(strings.NewReader(in), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "Seed task.|Alpaca task.|No output." {
		t.Errorf("got %q", got)
	}
	chat := `{"messages": [{"role": "user", "content": "Chat task."}, {"role": "assistant", "content": "a"}]}`
	if got, err := ReadInstructions(strings.NewReader(chat), "c"); err != nil || len(got) != 1 || got[0] != "Chat task." {
		t.Errorf("chat: %q, %v", got, err)
	}
	_, err = ReadInstructions(strings.NewReader("{\"instruction\": \"ok\"}\nnot json\n"), "bad.jsonl")
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2:") {
		t.Errorf("err = %v, want bad.jsonl:2", err)
	}
}
