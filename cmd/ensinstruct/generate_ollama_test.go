package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/internal/testenv"
	"github.com/ensinstruct/ensinstruct/llm"

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
	path := mixedPool(t, url, dir, "")
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

// mixedPool writes the config of TestGenerateMixedPool, with extra model
// entries, and returns its path.
func mixedPool(t *testing.T, url, dir, extra string) string {
	t.Helper()
	fake := fakeModels(t, 0)
	cfg := fmt.Sprintf(`models:
  gen:
    backend: ollama
    model: gen
    endpoint: %s
    roles: [instructions, instances]
`, fake.URL) + tinyModel("tiny-a", url, "ensemble") + tinyModelOpts("tiny-b", url, "ensemble", "repeat_penalty: 1.8") + extra + tinyGeneration
	path := filepath.Join(dir, "mixed.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGenerateJudgeOllama runs the mixed pool with a real model as an
// answering judge (--select judge --judge-mode answer): the judge is asked
// once per example with a usable candidate, its calls are counted (calls
// still in flight when the target is reached are cancelled, so the model
// may have been called more often), every kept record has its grades, and
// the run's manifest records the mode.
func TestGenerateJudgeOllama(t *testing.T) {
	url := testOllama(t)
	dir := t.TempDir()
	path := mixedPool(t, url, dir, tinyModel("tiny-chat", url, "judge"))
	out := filepath.Join(dir, "data.jsonl")
	_, stderr, code := runCLI(t, "generate", "-c", path, "--seeds", writeTestSeeds(t, dir),
		"-n", "4", "--stall-limit", "3", "--run-dir", filepath.Join(dir, "run"), "-o", out, "--meta",
		"--select", "judge", "--judge-mode", "answer")
	m := readManifest(t, out+".manifest.json")
	t.Logf("exit %d, status %s, counts %+v", code, m.Status, m.Counts)
	if !(code == 0 && m.Status == pipeline.StatusComplete) && !(code == 1 && m.Status == pipeline.StatusStalled) {
		t.Fatalf("exit %d with status %q\n%s", code, m.Status, stderr)
	}
	judged := 0
	for _, c := range m.Counts {
		judged += c.JudgeCalls
	}
	if m.JudgeMode != "answer" || m.ConsensusRule != "judge" || judged == 0 || m.Calls["tiny-chat"].Calls < int64(judged) || m.Calls["tiny-chat"].Failures != 0 {
		t.Errorf("judge mode %q, rule %q, %d judge calls counted, the judge model's calls %+v", m.JudgeMode, m.ConsensusRule, judged, m.Calls["tiny-chat"])
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"judge":[`); n != m.Output.Records || n != countLines(b) {
		t.Errorf("%d of %d records (manifest: %d) have the judge's grades:\n%s", n, countLines(b), m.Output.Records, b)
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

// ollamaAPI posts body to the test server's path.
func ollamaAPI(t *testing.T, url, path, body string) {
	t.Helper()
	resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s: %s: %s", path, resp.Status, b)
	}
}

// With no models named, generate uses the real server's: a base-model
// writer, chat style for the chat-template model, the pool printed and
// recorded in the manifest, the same pool for the same models, and a new
// model that the choice takes changes the run identity.
func TestGenerateAutoPoolOllama(t *testing.T) {
	url := testOllama(t)
	dir := t.TempDir()
	env := map[string]string{"OLLAMA_HOST": url}
	args := func(run string) []string {
		return []string{"generate", "-n", "2", "--max-requests", "3", "--progress", "none",
			"--set", "generation.demos_a=2", "--set", "generation.demos_b=2",
			"--set", "generation.instructions.max_tokens=16", "--run-dir", filepath.Join(dir, run)}
	}
	run := func(name string) pipeline.Manifest {
		t.Helper()
		_, stderr, code := runCLIEnv(t, env, args(name)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "no models given; the pool from "+url) {
			t.Errorf("the pool was not printed:\n%s", stderr)
		}
		return readManifest(t, filepath.Join(dir, name, "manifest.json"))
	}
	m1 := run("one")
	if len(m1.Models) != 4 || len(m1.Discovered) < 5 {
		t.Fatalf("pool %v from %d installed models", m1.Models, len(m1.Discovered))
	}
	writer := m1.Models[0]
	if writer.Style != llm.StyleCompletion || !writer.HasRole(llm.RoleInstructions) {
		t.Errorf("writer %+v, want a base model in completion style", writer)
	}
	for _, m := range m1.Discovered {
		if m.Name == "tiny-chat:latest" && m.Template == "" && m.Capabilities == nil {
			t.Errorf("tiny-chat was not described: %+v", m)
		}
	}
	for _, m := range m1.Models {
		if strings.HasPrefix(m.Name, "tiny-chat") && m.Style != llm.StyleChat {
			t.Errorf("%s: style %s, want chat", m.Name, m.Style)
		}
	}
	if m2 := run("two"); m2.ConfigHash != m1.ConfigHash {
		t.Errorf("the same installed models gave another identity")
	}
	// A larger base model becomes the writer.
	const big = "tiny-zz-writer"
	ollamaAPI(t, url, "/api/create", `{"model": "`+big+`", "from": "tiny", "system": "`+strings.Repeat("a much longer system prompt ", 40)+`"}`)
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, url+"/api/delete", strings.NewReader(`{"model": "`+big+`"}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	m3 := run("three")
	if m3.ConfigHash == m1.ConfigHash || !strings.HasPrefix(m3.Models[0].Name, big) {
		t.Errorf("after adding %s: writer %s, identity changed %v", big, m3.Models[0].Name, m3.ConfigHash != m1.ConfigHash)
	}
}
