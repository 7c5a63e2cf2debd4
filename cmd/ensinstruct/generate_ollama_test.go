package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testenv"

	"github.com/ensinstruct/ensinstruct/pipeline"
)

// testOllama returns the test Ollama server's base URL; see testenv.Ollama.
func testOllama(t *testing.T) string {
	t.Helper()
	return testenv.Ollama(t)
}

// tinyModel is a config entry for one of the test server's models. A small
// context keeps the few-shot prompts fast on a CPU (the tiny model's
// tokenizer makes them thousands of tokens long).
func tinyModel(name, url, roles string) string {
	return tinyModelOpts(name, url, roles, "")
}

// tinyModelOpts is tinyModel with extra Ollama options ("key: value, ...").
func tinyModelOpts(name, url, roles, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`  %[1]s:
    backend: ollama
    model: %[1]s
    endpoint: %[2]s
    roles: [%[3]s]
    options: {num_ctx: 512, num_thread: 1%[4]s}
`, name, url, roles, extra)
}

const tinyGeneration = `generation:
  demos_a: 4
  demos_b: 3
  window: 4
  instructions: {max_tokens: 48}
  instances: {max_tokens: 64}
  ensemble: {max_tokens: 32}
progress: none
`

// TestGenerateOllama runs generate against the real Ollama test server with
// a pool of four model names made from the tiny story model. It writes
// stories, not tasks, so nearly everything is dropped: the test checks the
// pipeline's counts and reasons, not quality.
func TestGenerateOllama(t *testing.T) {
	url := testOllama(t)
	dir := t.TempDir()
	cfg := "models:\n" + tinyModel("tiny", url, "instructions, instances") +
		tinyModel("tiny-a", url, "ensemble") + tinyModel("tiny-b", url, "ensemble") +
		tinyModel("tiny-c", url, "ensemble") + tinyGeneration
	path := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "data.jsonl")
	_, stderr, code := runCLI(t, "generate", "-c", path, "-n", "10", "--max-requests", "24",
		"--run-dir", filepath.Join(dir, "run"), "-o", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	m := readManifest(t, out+".manifest.json")
	if m.Status != pipeline.StatusBudget {
		t.Errorf("status %q, want %q", m.Status, pipeline.StatusBudget)
	}
	if m.Totals.Calls < 24 || m.Totals.Failures != 0 || m.Calls["tiny"].Calls == 0 || m.Calls["tiny"].CompletionTokens == 0 {
		t.Errorf("calls: %+v", m.Calls)
	}
	var consumed, requests int
	for _, typ := range []string{"A", "B"} {
		c := m.Counts[typ]
		requests += c.InstructionRequests
		for reason, n := range c.Dropped {
			if n <= 0 || reason == "" {
				t.Errorf("type %s: bad drop count %q=%d", typ, reason, n)
			}
			if len(reason) > len(pipeline.StageInstruction) && reason[:len(pipeline.StageInstruction)] == pipeline.StageInstruction {
				consumed += n
			}
		}
		consumed += c.InstructionsAccepted
		if c.Decided != c.Kept+countDrops(c, pipeline.StageInstance)+countDrops(c, pipeline.StageConsensus) {
			t.Errorf("type %s: counts do not add up: %+v", typ, c)
		}
	}
	if requests == 0 || consumed == 0 || consumed > requests {
		t.Errorf("%d instruction requests, %d results accounted for", requests, consumed)
	}
	// The tiny model writes stories: some of its instructions pass the
	// checks, and its instances have no labels.
	if m.Counts["A"].InstanceRequests+m.Counts["B"].InstanceRequests == 0 {
		t.Errorf("no instance requests within the budget: %+v", m.Counts)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("a budget stop still writes the output file: %v", err)
	}
	if n := m.Output.Records; n != countLines(b) {
		t.Errorf("manifest says %d records, the file has %d", n, countLines(b))
	}
	t.Logf("counts: %+v", m.Counts)
}

// TestGenerateMixedPool sends the instruction and instance calls to a fake
// server that writes well-formed tasks and the ensemble calls to the real
// Ollama server, so that real models take part in the vote: a
// heterogeneous pool across two servers. The two ensemble models share the
// tiny weights and decode greedily, so a repeat penalty on one keeps their
// answers apart; their stories seldom agree with the fake's answers, and
// the consensus rule drops those examples.
func TestGenerateMixedPool(t *testing.T) {
	url := testOllama(t)
	dir := t.TempDir()
	fake := fakeModels(t, 0)
	cfg := fmt.Sprintf(`models:
  gen:
    backend: ollama
    model: gen
    endpoint: %s
    roles: [instructions, instances]
`, fake.URL) + tinyModel("tiny-a", url, "ensemble") + tinyModelOpts("tiny-b", url, "ensemble", "repeat_penalty: 1.8") + tinyGeneration
	path := filepath.Join(dir, "mixed.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "generate", "-c", path, "--seeds", writeTestSeeds(t, dir),
		"-n", "6", "--stall-limit", "3", "--run-dir", filepath.Join(dir, "run"))
	m := readManifest(t, filepath.Join(dir, "run", "manifest.json"))
	t.Logf("exit %d, status %s, counts %+v", code, m.Status, m.Counts)
	if m.Calls["tiny-a"].Calls == 0 || m.Calls["tiny-b"].Calls == 0 || m.Totals.Failures != 0 {
		t.Fatalf("the real ensemble models were not called cleanly: %+v\n%s", m.Calls, stderr)
	}
	var ensemble, consensusDrops int
	for _, c := range m.Counts {
		ensemble += c.EnsembleCalls
		consensusDrops += countDrops(c, pipeline.StageConsensus)
	}
	if ensemble == 0 || consensusDrops == 0 {
		t.Errorf("%d ensemble calls, %d consensus drops; want both", ensemble, consensusDrops)
	}
	// Either enough examples were kept (exit 0) or the run stalled (exit 1).
	if !(code == 0 && m.Status == pipeline.StatusComplete) && !(code == 1 && m.Status == pipeline.StatusStalled) {
		t.Errorf("exit %d with status %q\n%s", code, m.Status, stderr)
	}
}

func countDrops(c pipeline.Counts, stage string) int {
	n := 0
	for k, v := range c.Dropped {
		if len(k) > len(stage) && k[:len(stage)+1] == stage+"/" {
			n += v
		}
	}
	return n
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
