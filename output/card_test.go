package output

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func generateCard() Card {
	seed := int64(42)
	return Card{
		DataFile: "/runs/night/data.parquet", Container: ContainerParquet,
		Options: Options{Format: FormatPromptCompletion, Meta: true, System: "Answer | briefly."},
		Rows:    1234, Command: "generate", Version: "v0.3.0", ConfigHash: "sha256:abc", Status: "completed", Seed: &seed,
		Models: []CardModel{
			{Name: "gen", Backend: "ollama", Model: "llama3.1", Roles: []string{"instruction", "instance"}, Weight: 1, Style: "completion"},
			{Name: "e1", Backend: "openai", Model: "gpt-4o-mini", Roles: []string{"ensemble"}, Weight: 0.5, Style: "chat"},
		},
		Types: []CardTypeCounts{
			{Type: "A", Target: 700, InstructionRequests: 900, InstructionsAccepted: 800, InstanceRequests: 800, InstancesValid: 760, EnsembleCalls: 1520, Decided: 760, Kept: 700,
				Dropped: map[string]int{"instruction/not-novel": 80, "consensus/dropped-low-agreement": 60}},
			{Type: "B", Target: 534, InstructionRequests: 600, InstructionsAccepted: 560, InstanceRequests: 560, InstancesValid: 550, EnsembleCalls: 1100, Decided: 550, Kept: 534,
				Dropped: map[string]int{"instance/invalid": 10, "consensus/dropped-low-agreement": 16}},
		},
		Thresholds: []CardSetting{{"novelty threshold (Rouge-L F)", "0.7"}, {"min agreement", "0.01"}, {"metric", "rougeL"}},
		Totals:     &CardTotals{Calls: 5000, CacheHits: 120, PromptTokens: 1_200_000, CompletionTokens: 300_000, CostUSD: 1.23456},
	}
}

func filterCard() Card {
	return Card{
		DataFile: "kept.jsonl", Options: Options{Format: FormatAlpaca}, Rows: 105, Command: "filter", Version: "v0.3.0",
		Filter:     &CardFilterCounts{Read: 153, Kept: 105, Dropped: map[string]int{"consensus/dropped-low-agreement": 48}},
		Thresholds: []CardSetting{{"min agreement", "0.01"}},
	}
}

func TestCardGolden(t *testing.T) {
	for name, c := range map[string]Card{"generate": generateCard(), "filter": filterCard(), "empty": {DataFile: "x.jsonl"}} {
		t.Run(name, func(t *testing.T) {
			got := c.Markdown()
			if !bytes.Equal(got, c.Markdown()) {
				t.Fatal("two renderings of the same card differ")
			}
			checkGolden(t, "card-"+name+".golden.md", got)
		})
	}
}

// TestCardFrontMatter parses the front matter as YAML and checks the
// fields the Hugging Face Hub reads.
func TestCardFrontMatter(t *testing.T) {
	for _, tt := range []struct {
		c          Card
		path, size string
	}{
		{generateCard(), "data.parquet", "1K<n<10K"},
		{filterCard(), "kept.jsonl", "n<1K"},
		{Card{DataFile: `odd "name": x.jsonl`, Rows: 2_000_000}, `odd "name": x.jsonl`, "1M<n<10M"},
	} {
		md := string(tt.c.Markdown())
		rest, ok := strings.CutPrefix(md, "---\n")
		front, _, ok2 := strings.Cut(rest, "\n---\n")
		if !ok || !ok2 {
			t.Fatalf("no front matter in:\n%s", md)
		}
		var fm struct {
			License        string   `yaml:"license"`
			TaskCategories []string `yaml:"task_categories"`
			SizeCategories []string `yaml:"size_categories"`
			Configs        []struct {
				ConfigName string `yaml:"config_name"`
				DataFiles  []struct {
					Split string `yaml:"split"`
					Path  string `yaml:"path"`
				} `yaml:"data_files"`
			} `yaml:"configs"`
		}
		if err := yaml.Unmarshal([]byte(front), &fm); err != nil {
			t.Fatalf("front matter is not YAML: %v\n%s", err, front)
		}
		if fm.License != "unknown" || len(fm.TaskCategories) != 1 || fm.TaskCategories[0] != "text-generation" {
			t.Errorf("front matter %+v", fm)
		}
		if len(fm.SizeCategories) != 1 || fm.SizeCategories[0] != tt.size {
			t.Errorf("size_categories %v, want %s", fm.SizeCategories, tt.size)
		}
		if len(fm.Configs) != 1 || fm.Configs[0].ConfigName != "default" || len(fm.Configs[0].DataFiles) != 1 ||
			fm.Configs[0].DataFiles[0].Path != tt.path || fm.Configs[0].DataFiles[0].Split != "train" {
			t.Errorf("configs %+v, want one train split at %q", fm.Configs, tt.path)
		}
	}
}

func TestSizeCategory(t *testing.T) {
	for n, want := range map[int]string{0: "n<1K", 999: "n<1K", 1000: "1K<n<10K", 99_999: "10K<n<100K", 1_000_000: "1M<n<10M", 2e9: "n>1B"} {
		if got := SizeCategory(n); got != want {
			t.Errorf("SizeCategory(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWriteCard(t *testing.T) {
	dir := t.TempDir()
	c := filterCard()
	c.DataFile = filepath.Join(dir, "kept.jsonl")
	if err := WriteCard(c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "kept.jsonl.README.md"))
	if err != nil || !bytes.Equal(b, c.Markdown()) {
		t.Fatalf("card file: %v\n%s", err, b)
	}
	if CardPath(c.DataFile) != c.DataFile+".README.md" {
		t.Errorf("CardPath = %q", CardPath(c.DataFile))
	}
}
