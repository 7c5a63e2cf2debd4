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
				Consensus:  &ConsensusMeta{Reason: "agreement", Pick: 1, Pairwise: []float64{0.5, 0.25, 1}, Scores: []float64{0.75, 1.5, 1.25}, MinPair: 0.25},
				NoveltyMax: &nov,
			},
		},
		{Instruction: "Translate to French: ünïcödé “quotes”", Input: "line one\nline two", Output: "ligne\tun"},
	}
}

func TestWriterGolden(t *testing.T) {
	for _, f := range Formats() {
		for _, meta := range []bool{false, true} {
			name := string(f)
			if meta {
				name += "-meta"
			}
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				w := NewWriter(&buf, f, meta)
				for _, r := range sampleRecords() {
					if err := w.Write(r); err != nil {
						t.Fatal(err)
					}
				}
				if w.Count() != 3 {
					t.Errorf("Count() = %d, want 3", w.Count())
				}
				golden := filepath.Join("testdata", name+".golden.jsonl")
				if *update {
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./output -update to create it)", err)
				}
				if got := buf.String(); got != string(want) {
					t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
				}
			})
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
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, f, true)
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
				} else if got.Instruction != want.UserTurn() || got.Input != "" || got.Output != want.Output {
					t.Errorf("record %d = %+v, want instruction %q output %q", i, got, want.UserTurn(), want.Output)
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
	if _, err := ParseFormat("csv"); err == nil || !strings.Contains(err.Error(), "alpaca, openai or sharegpt") {
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
