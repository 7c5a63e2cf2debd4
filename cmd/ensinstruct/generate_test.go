package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/output/outputtest"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

// fakeModels starts a fake model server that answers the pipeline's
// prompts as pipelinetest.Reply does.
func fakeModels(t *testing.T, latency time.Duration) *llmtest.Server {
	t.Helper()
	srv := newFakeModelServer(latency)
	t.Cleanup(srv.Close)
	return srv
}

func newFakeModelServer(latency time.Duration) *llmtest.Server {
	srv := llmtest.NewServer(func(c llmtest.Call) string {
		r := pipelinetest.Request{Model: c.Model, Prompt: c.Prompt, Temperature: c.Temperature, Seed: c.Seed}
		if c.Messages != nil {
			r.Messages = []string{}
			for _, m := range c.Messages {
				r.Messages = append(r.Messages, m.Content)
			}
		}
		return pipelinetest.Reply(r)
	})
	srv.SetLatency(latency)
	return srv
}

// writeTestSeeds writes pipelinetest's seed set as a seed file.
func writeTestSeeds(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, s := range pipelinetest.Seeds() {
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "seeds.jsonl")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeConfig writes a config whose three models live on srv: "gen" writes
// instructions and instances (completion style), "e1" (completion) and
// "e2" (chat, through the OpenAI-compatible API) answer for the vote.
func fakeConfig(t *testing.T, dir, url string, maxConcurrent int) string {
	t.Helper()
	cfg := fmt.Sprintf(`models:
  gen:
    backend: ollama
    model: gen
    endpoint: %[1]s
    roles: [instructions, instances]
  e1:
    backend: ollama
    model: e1
    endpoint: %[1]s
    roles: [ensemble]
  e2:
    backend: openai
    model: e2
    endpoint: %[1]s/v1
    roles: [ensemble]
    style: chat
endpoints:
  %[1]s: {max_concurrent: %[2]d}
  %[1]s/v1: {max_concurrent: %[2]d}
generation:
  demos_a: 6
  demos_b: 4
  window: 4
seed: 7
n: 24
progress: none
`, url, maxConcurrent)
	p := filepath.Join(dir, "gen.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCLI runs the command in process and returns stdout, stderr and the
// exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

// runCLIEnv is runCLI with an environment.
func runCLIEnv(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }}
	code := a.execute(context.Background(), args)
	return stdout.String(), stderr.String(), code
}

func readManifest(t *testing.T, path string) pipeline.Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGenerateAgainstFakeServer runs generate end to end over HTTP against
// a fake server with exact replies and checks the exact output, that a
// second run with a fresh cache gives the same bytes, and that a third run
// with the first run's cache makes no call at all.
func TestGenerateAgainstFakeServer(t *testing.T) {
	dir := t.TempDir()
	srv := fakeModels(t, 0)
	cfg := fakeConfig(t, dir, srv.URL, 4)
	seedsFile := writeTestSeeds(t, dir)
	args := func(runDir string) []string {
		return []string{"generate", "-c", cfg, "--seeds", seedsFile, "--meta", "--run-dir", filepath.Join(dir, runDir)}
	}

	out1, stderr, code := runCLI(t, args("run1")...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	golden := filepath.Join("testdata", "generate_fake.golden.jsonl")
	if *updateScripts {
		if err := os.WriteFile(golden, []byte(out1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/ensinstruct -run TestGenerateAgainstFakeServer -update)", err)
	}
	if out1 != string(want) {
		t.Errorf("output differs from %s:\n%s", golden, out1)
	}
	if n := strings.Count(out1, "\n"); n != 24 {
		t.Errorf("%d records, want 24", n)
	}
	if !strings.Contains(stderr, "complete in") || !strings.Contains(stderr, "consensus/dropped-low-agreement") {
		t.Errorf("summary missing from stderr:\n%s", stderr)
	}
	m := readManifest(t, filepath.Join(dir, "run1", "manifest.json"))
	if m.Status != pipeline.StatusComplete || m.Output.Records != 24 || m.Counts["A"].Kept != 16 || m.Counts["B"].Kept != 8 {
		t.Errorf("manifest: status %s, records %d, counts %+v", m.Status, m.Output.Records, m.Counts)
	}
	// Calls still in flight when the targets were reached are cancelled:
	// started, counted, never served.
	if served := srv.Served(); served > m.Totals.Calls || served < m.Totals.Calls-16 {
		t.Errorf("manifest counts %d calls, the server served %d", m.Totals.Calls, served)
	}

	// (1) The same config and seed with a fresh cache: the same bytes,
	// and the same evidence.
	out2, stderr, code := runCLI(t, args("run2")...)
	if code != 0 || out2 != out1 {
		t.Fatalf("second run (fresh cache): exit %d, same output %v\n%s", code, out2 == out1, stderr)
	}
	sameEvidence(t, filepath.Join(dir, "run1"), filepath.Join(dir, "run2"))
	rejected, _ := os.ReadFile(filepath.Join(dir, "run1", pipeline.RejectedFile))
	for _, reason := range []string{`"reason":"instance/unparsable"`, `"reason":"consensus/dropped-low-agreement"`, `"candidates":[`} {
		if !bytes.Contains(rejected, []byte(reason)) {
			t.Errorf("rejected.jsonl has no %s line", reason)
		}
	}
	// The first run's cache answers every call the output depends on.
	// Calls started after the target was in sight are timing-dependent
	// (a replay runs ahead faster), so a few may be new; they change
	// nothing in the output. Their number is bounded by what the pipeline
	// can hold past the target: per type (2), window (4) requests of at
	// most four calls each (instruction, instance, two ensemble outputs).
	// Under a loaded machine 18 have been seen; without the cache all 146
	// would be new.
	const fresh = 2 * 4 * 4
	srv.WaitIdle()
	served := srv.Served()
	out3, stderr, code := runCLI(t, args("run1")...)
	if code != 0 || out3 != out1 {
		t.Fatalf("replay: exit %d, same output %v\n%s", code, out3 == out1, stderr)
	}
	m = readManifest(t, filepath.Join(dir, "run1", "manifest.json"))
	if n := srv.Served() - served; n > fresh || m.Totals.Calls-m.Totals.CacheHits > fresh || m.Totals.CacheHits == 0 {
		t.Errorf("replay: %d calls reached the server, %d of %d were cache hits", n, m.Totals.CacheHits, m.Totals.Calls)
	}

	// Formats and -o: the file appears whole, with the manifest beside it.
	outFile := filepath.Join(dir, "data.jsonl")
	_, stderr, code = runCLI(t, append(args("run1"), "--format", "openai", "-o", outFile)...)
	if code != 0 {
		t.Fatalf("-o: exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(outFile)
	if err != nil || strings.Count(string(b), `{"messages":[{"role":"user"`) != 24 {
		t.Errorf("-o %s: %v\n%s", outFile, err, b)
	}
	if _, err := os.Stat(outFile + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial file left behind: %v", err)
	}
	if m := readManifest(t, outFile+".manifest.json"); m.Output.Format != "openai" || m.Output.Records != 24 {
		t.Errorf("manifest next to the output: %+v", m.Output)
	}
}

// sameEvidence checks that two run directories hold the same kept and
// rejected candidates, byte for byte, and that kept.jsonl holds every
// record with its provenance.
func sameEvidence(t *testing.T, dirA, dirB string) {
	t.Helper()
	for _, name := range []string{pipeline.KeptFile, pipeline.RejectedFile} {
		a, errA := os.ReadFile(filepath.Join(dirA, name))
		b, errB := os.ReadFile(filepath.Join(dirB, name))
		if errA != nil || errB != nil {
			t.Fatalf("evidence %s: %v, %v", name, errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between %s (%d bytes) and %s (%d bytes)", name, dirA, len(a), dirB, len(b))
		}
		if name == pipeline.KeptFile && (len(a) == 0 || bytes.Count(a, []byte(`"meta":{"id":`)) != bytes.Count(a, []byte("\n"))) {
			t.Errorf("%s: not every kept record has its provenance", name)
		}
	}
}

// ensinstructBinary returns a path that runs this test binary as the
// ensinstruct command (testscript.Main dispatches on the program name).
func ensinstructBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ensinstruct")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestGenerateResumeAfterSIGKILL kills a real generate process with SIGKILL
// at random points, restarts it with the same command each time, and
// checks that the final output is byte-identical to an uninterrupted run's
// and that no model call that had completed was made again.
func TestGenerateResumeAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	bin := ensinstructBinary(t)
	dir := t.TempDir()
	seedsFile := writeTestSeeds(t, dir)

	// The uninterrupted reference run.
	ref := fakeModels(t, 0)
	refCfg := fakeConfig(t, t.TempDir(), ref.URL, 4)
	want, stderr, code := runCLI(t, "generate", "-c", refCfg, "--seeds", seedsFile, "--meta", "-n", "40",
		"--run-dir", filepath.Join(dir, "ref"))
	if code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, stderr)
	}

	// The same command against a slow server, killed and restarted. The
	// model names and replies are the same; only the URL differs, and the
	// output does not depend on it.
	srv := fakeModels(t, 40*time.Millisecond)
	cfg := fakeConfig(t, t.TempDir(), srv.URL, 4)
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"generate", "-c", cfg, "--seeds", seedsFile, "--meta", "-n", "40",
		"--run-dir", filepath.Join(dir, "killed"), "-o", out}
	rng := rand.New(rand.NewPCG(1, 2))
	kills, uncached := 0, 0
	var killTimes []time.Time
	for attempt := 0; ; attempt++ {
		cmd := exec.Command(bin, args...)
		var errBuf bytes.Buffer
		cmd.Stderr = &errBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if attempt < 4 {
			delay := time.Duration(300+rng.IntN(400)) * time.Millisecond
			select {
			case err := <-done:
				t.Logf("run %d finished before the kill at %v: %v", attempt, delay, err)
				if err != nil {
					t.Fatalf("run %d: %v\n%s", attempt, err, errBuf.String())
				}
			case <-time.After(delay):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				kills++
				killTimes = append(killTimes, time.Now())
				// What the dead process had served and had cached: only
				// the difference may be asked for again. A handler still
				// waiting out its latency when the process died may yet
				// log its reply, so let the server settle first.
				srv.WaitIdle()
				distinct := map[string]bool{}
				for _, s := range srv.Log() {
					distinct[s.Digest] = true
				}
				c, err := llm.OpenCache(filepath.Join(dir, "killed", "cache.db"))
				if err != nil {
					t.Fatal(err)
				}
				cached, err := c.Len()
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				uncached += max(0, len(distinct)-cached)
				t.Logf("run %d killed after %v; %d replies served so far", attempt, delay, srv.Served())
				if _, err := os.Stat(out); err == nil {
					// The output is renamed into place only once it is
					// complete: this run finished just before the kill.
					t.Logf("run %d had finished its output when killed", attempt)
					break
				}
				continue
			}
		} else if err := <-done; err != nil {
			t.Fatalf("final run: %v\n%s", err, errBuf.String())
		}
		break
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("output after %d kills differs from the uninterrupted run:\n got %d bytes\nwant %d bytes", kills, len(got), len(want))
	}
	// The evidence of the resumed run is the uninterrupted run's too.
	sameEvidence(t, filepath.Join(dir, "ref"), filepath.Join(dir, "killed"))

	// No call that had completed and been cached was made again: the
	// repeats are at most the replies each killed process had been sent
	// but not yet stored (in flight, or waiting for their commit). Counted
	// exactly from the cache file after each kill, not from timing.
	first := map[string]time.Time{}
	repeats := 0
	for _, s := range srv.Log() {
		if _, seen := first[s.Digest]; seen {
			repeats++
			continue
		}
		first[s.Digest] = s.At
	}
	if repeats > uncached {
		t.Errorf("%d calls were made again, but only %d replies had not reached the cache at the kills", repeats, uncached)
	}
	t.Logf("%d kills, %d replies served, %d distinct, %d repeated, %d uncached at the kills", kills, len(srv.Log()), len(first), repeats, uncached)
	if kills == 0 {
		t.Error("no run was killed; the test did not test resuming")
	}
}

// TestGenerateSIGINT interrupts a real generate process and checks that
// it exits 130 with only complete records written, the partial output file
// left under its .partial name and the manifest saying "interrupted".
func TestGenerateSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	bin := ensinstructBinary(t)
	dir := t.TempDir()
	srv := fakeModels(t, 20*time.Millisecond)
	cfg := fakeConfig(t, dir, srv.URL, 2)
	seedsFile := writeTestSeeds(t, dir)

	for _, toFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("file=%v", toFile), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out-%v.jsonl", toFile))
			args := []string{"generate", "-c", cfg, "--seeds", seedsFile, "-n", "400",
				"--run-dir", filepath.Join(dir, fmt.Sprintf("run-%v", toFile))}
			if toFile {
				args = append(args, "-o", out)
			}
			cmd := exec.Command(bin, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Interrupt once some records are out. Records stream: they
			// appear while the run goes on (400 records would take far
			// longer than the deadline).
			deadline := time.Now().Add(20 * time.Second)
			for {
				time.Sleep(100 * time.Millisecond)
				if toFile {
					if b, _ := os.ReadFile(out + ".partial"); bytes.Count(b, []byte("\n")) >= 3 {
						break
					}
				} else if srv.Served() > 120 {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("no records were written while the run was going")
				}
			}
			cmd.Process.Signal(os.Interrupt)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("exit: %v, want status 130\n%s", err, stderr.String())
			}
			data := stdout.Bytes()
			manifest := filepath.Join(dir, fmt.Sprintf("run-%v", toFile), "manifest.json")
			if toFile {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("interrupted run renamed its output: %v", err)
				}
				if data, err = os.ReadFile(out + ".partial"); err != nil {
					t.Fatal(err)
				}
				manifest = out + ".manifest.json"
			}
			lines := bytes.Split(data, []byte("\n"))
			if len(data) == 0 || len(lines[len(lines)-1]) != 0 {
				t.Fatalf("output does not end with a complete line: %q", data[max(0, len(data)-80):])
			}
			for i, l := range lines[:len(lines)-1] {
				if !json.Valid(l) {
					t.Fatalf("line %d is not a complete record: %q", i+1, l)
				}
			}
			m := readManifest(t, manifest)
			if m.Status != pipeline.StatusInterrupted || m.Output.Records != len(lines)-1 {
				t.Errorf("manifest: status %q, %d records; %d lines written", m.Status, m.Output.Records, len(lines)-1)
			}
		})
	}
}

func TestGenerateUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		// No models named: the local Ollama's, which is not running.
		{"no models", []string{"generate"}, 1, "the local Ollama cannot list its own: ollama at http://127.0.0.1:1 is not reachable; start it with `ollama serve`"},
		{"bad spec", []string{"generate", "--model", "llama"}, 2, "llama"},
		{"bad format", []string{"generate", "--model", "ollama:x", "--ensemble", "ollama:y", "--format", "csv"}, 2, "alpaca, openai, sharegpt or prompt-completion"},
		{"no ensemble", []string{"generate", "--model", "ollama:x", "--run-dir", dir}, 2, "no model has the ensemble role"},
		{"bad set", []string{"generate", "--set", "generation.windw=3", "--model", "ollama:x"}, 2, `unknown field "windw"`},
		{"bad seeds", []string{"generate", "--model", "ollama:x", "--ensemble", "ollama:y", "--seeds", filepath.Join(dir, "none.jsonl")}, 2, "none.jsonl"},
		{"unreachable", []string{"generate", "--model", "ollama:x@http://127.0.0.1:1", "--ensemble", "ollama:y@http://127.0.0.1:1", "--run-dir", dir}, 1, "not reachable; start it with `ollama serve`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLIEnv(t, map[string]string{"OLLAMA_HOST": "127.0.0.1:1"}, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d and %q", code, stderr, stdout, tt.code, tt.want)
			}
		})
	}
}

// TestGenerateKeepsSecrets gives the OpenAI-compatible model an API key and
// a secret header through the environment and checks that neither appears
// in the output, the diagnostics, the manifest or the response cache.
func TestGenerateKeepsSecrets(t *testing.T) {
	dir := t.TempDir()
	srv := fakeModels(t, 0)
	const key, token = "sk-test-DO-NOT-LEAK-1234", "tok-DO-NOT-LEAK-5678"
	cfg := fmt.Sprintf(`models:
  gen:
    backend: openai
    model: gen
    endpoint: %[1]s/v1
    api_key_env: MY_KEY
    headers: {X-Token: "${MY_TOKEN}"}
    roles: [instructions, instances]
    style: completion
  e1: {backend: ollama, model: e1, endpoint: %[1]s, roles: [ensemble]}
  e2: {backend: ollama, model: e2, endpoint: %[1]s, roles: [ensemble]}
n: 6
progress: log
`, srv.URL)
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	runDir := filepath.Join(dir, "run")
	env := map[string]string{"MY_KEY": key, "MY_TOKEN": token}
	// One model per server, so that the last request seen at the
	// OpenAI-compatible one is the key holder's.
	ens := fakeModels(t, 0)
	cfg = strings.ReplaceAll(cfg, "endpoint: "+srv.URL+",", "endpoint: "+ens.URL+",")
	os.WriteFile(path, []byte(cfg), 0o644)
	stdout, stderr, code := runCLIEnv(t, env, "generate", "-c", path, "--seeds", writeTestSeeds(t, dir),
		"--meta", "--run-dir", runDir, "--progress-interval", "1ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	h := srv.LastHeader()
	if h.Get("Authorization") != "Bearer "+key || h.Get("X-Token") != token {
		t.Fatalf("the secrets were not sent: %v", h)
	}
	files := map[string]string{"stdout": stdout, "stderr": stderr}
	for _, name := range []string{"manifest.json", "cache.db"} {
		b, err := os.ReadFile(filepath.Join(runDir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for name, content := range files {
		if strings.Contains(content, key) || strings.Contains(content, token) {
			t.Errorf("a secret appears in %s", name)
		}
	}
}

func TestModelsFromSpecs(t *testing.T) {
	ms, err := modelsFromSpecs(
		[]string{"ollama:llama3.1@http://a:11434"},
		[]string{"ollama:llama3.1@http://a:11434", "ollama:llama3.1@http://b:11434", "openai:gpt-4o-mini"}, nil, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ms.Names(), " "); got != "llama3.1 llama3.1@b:11434 gpt-4o-mini" {
		t.Fatalf("names %q", got)
	}
	m, _ := ms.Get("llama3.1")
	if fmt.Sprint(m.Roles) != "[instructions instances ensemble]" || m.Style != "chat" {
		t.Errorf("merged model: roles %v style %q", m.Roles, m.Style)
	}
	if _, err := modelsFromSpecs([]string{"ollama:x"}, nil, nil, "poem"); err == nil {
		t.Error("bad style accepted")
	}
}

// Spelling defaults out on the command line (or the value the file
// already has) keeps the run identity: the same run directory, a warm
// cache and the same record IDs.
func TestGenerateDefaultsKeepTheRun(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	srv := fakeModels(t, 0)
	cfg := fakeConfig(t, dir, srv.URL, 4) // generation.window: 4
	seedsFile := writeTestSeeds(t, dir)
	base := []string{"generate", "-c", cfg, "--seeds", seedsFile, "--meta", "-n", "6"}
	out1, stderr, code := runCLI(t, base...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	out2, stderr, code := runCLI(t, append(base, "--window", "4", "--novelty-threshold", "0.7",
		"--min-agreement", "0.01", "--metric", "rougeL", "--parser", "robust", "--format", "alpaca")...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if out1 != out2 || !strings.Contains(out1, `"id":"`) {
		t.Errorf("records differ:\n%s\n%s", out1, out2)
	}
	dirs, err := filepath.Glob(filepath.Join(dir, ".ensinstruct", "*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("run directories %v (%v), want one", dirs, err)
	}
	// The cache answered every call the output depends on; only calls
	// started after the target was in sight (timing-dependent, at most a
	// window per type, and the instances and votes they lead to) may be new.
	m := readManifest(t, filepath.Join(dirs[0], "manifest.json"))
	if m.Totals.CacheHits == 0 || m.Totals.Calls-m.Totals.CacheHits > 24 {
		t.Errorf("second run: %d calls, %d from the cache", m.Totals.Calls, m.Totals.CacheHits)
	}
	// A value that does change the calls gets a run of its own.
	if _, stderr, code := runCLI(t, append(base, "--window", "5")...); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if dirs, _ := filepath.Glob(filepath.Join(dir, ".ensinstruct", "*")); len(dirs) != 2 {
		t.Errorf("--window 5: run directories %v, want two", dirs)
	}
}

// startGenerate starts the binary on args and returns the command and its
// stderr.
func startGenerate(t *testing.T, bin string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// SIGTERM is a graceful stop like SIGINT, and a second signal within a
// second (timeout(1) sends two) does not turn it into a kill: the run ends
// with its summary and manifest, exit 130, and no stray error line.
func TestGenerateSIGTERMTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	bin := ensinstructBinary(t)
	dir := t.TempDir()
	srv := fakeModels(t, 20*time.Millisecond)
	cfg := fakeConfig(t, dir, srv.URL, 2)
	seedsFile := writeTestSeeds(t, dir)
	for i := range 3 {
		runDir := filepath.Join(dir, fmt.Sprintf("run%d", i))
		served := srv.Served()
		cmd, stderr := startGenerate(t, bin, "generate", "-c", cfg, "--seeds", seedsFile, "-n", "400", "--run-dir", runDir)
		// Signal once the run is under way (a loaded machine starts the
		// process slowly), at a different point each time.
		for srv.Served() <= served+int64(10*i) {
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(5 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("run %d: %v, want exit status 130\n%s", i, err, stderr)
		}
		if !strings.Contains(stderr.String(), "interrupted after") || strings.Contains(stderr.String(), "context canceled") {
			t.Errorf("run %d: stderr does not end with the summary alone:\n%s", i, stderr)
		}
		if m := readManifest(t, filepath.Join(runDir, "manifest.json")); m.Status != pipeline.StatusInterrupted {
			t.Errorf("run %d: manifest status %q", i, m.Status)
		}
	}
}

// A signal in the first milliseconds, before any call, still leaves an
// interrupted manifest.
func TestGenerateEarlySIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	bin := ensinstructBinary(t)
	dir := t.TempDir()
	srv := fakeModels(t, 20*time.Millisecond)
	cfg := fakeConfig(t, dir, srv.URL, 2)
	seedsFile := writeTestSeeds(t, dir)
	// How long the binary takes to start and exit: the signals below come
	// that long plus a few milliseconds after the start, so that they land
	// in the program's first milliseconds however loaded the machine is.
	start := time.Now()
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	startup := time.Since(start)
	handled := 0
	for i, d := range []time.Duration{0, 2, 5, 10, 20, 40} {
		delay := startup + d*time.Millisecond
		runDir := filepath.Join(dir, fmt.Sprintf("run%d", i))
		cmd, stderr := startGenerate(t, bin, "generate", "-c", cfg, "--seeds", seedsFile, "-n", "400", "--run-dir", runDir)
		time.Sleep(delay)
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			// Killed by the signal itself: it came before the program
			// installed its handler (the runtime was still starting).
			t.Logf("signal after %v arrived before the handler", delay)
			continue
		}
		handled++
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("signal after %v: %v, want exit status 130\n%s", delay, err, stderr)
		}
		m := readManifest(t, filepath.Join(runDir, "manifest.json"))
		if m.Status != pipeline.StatusInterrupted {
			t.Errorf("signal after %v: manifest status %q", delay, m.Status)
		}
	}
	if handled < 3 {
		t.Errorf("only %d of 6 early signals reached the program", handled)
	}
}

// Budgets are caps: the server never serves more calls than
// --max-requests, and the run never spends more than --max-cost (each
// call's worst case is reserved before it starts). Both stop cleanly.
func TestGenerateBudgetsAreCaps(t *testing.T) {
	dir := t.TempDir()
	seedsFile := writeTestSeeds(t, dir)
	for _, limit := range []int{1, 3, 10, 25} {
		srv := fakeModels(t, 0)
		cfg := fakeConfig(t, t.TempDir(), srv.URL, 4)
		_, stderr, code := runCLI(t, "generate", "-c", cfg, "--seeds", seedsFile, "--run-dir", filepath.Join(dir, fmt.Sprint("r", limit)),
			"--max-requests", fmt.Sprint(limit))
		if code != 0 {
			t.Fatalf("--max-requests %d: exit %d\n%s", limit, code, stderr)
		}
		if got := srv.Served(); got != int64(limit) {
			t.Errorf("--max-requests %d: the server served %d calls", limit, got)
		}
		m := readManifest(t, filepath.Join(dir, fmt.Sprint("r", limit), "manifest.json"))
		if m.Status != pipeline.StatusBudget {
			t.Errorf("--max-requests %d: status %q", limit, m.Status)
		}
	}
	// Prices: gen and e1 cost $1 per million prompt and $3 per million
	// completion tokens (the fake reports a token per 4 bytes).
	for _, limit := range []float64{0.001, 0.01, 0.05} {
		srv := fakeModels(t, 0)
		cfgDir := t.TempDir()
		cfg := fakeConfig(t, cfgDir, srv.URL, 4)
		b, _ := os.ReadFile(cfg)
		priced := strings.ReplaceAll(string(b), "    roles: [", "    price: {prompt_per_million: 1, completion_per_million: 3}\n    roles: [")
		if err := os.WriteFile(cfg, []byte(priced), 0o644); err != nil {
			t.Fatal(err)
		}
		runDir := filepath.Join(dir, fmt.Sprint("c", limit))
		_, stderr, code := runCLI(t, "generate", "-c", cfg, "--seeds", seedsFile, "--run-dir", runDir, "-n", "400",
			"--max-cost", fmt.Sprint(limit))
		if code != 0 {
			t.Fatalf("--max-cost %v: exit %d\n%s", limit, code, stderr)
		}
		m := readManifest(t, filepath.Join(runDir, "manifest.json"))
		// $0.001 is less than one call's worst case: nothing starts.
		if m.Totals.CostUSD > limit || (limit > 0.005) != (m.Totals.CostUSD > 0) || m.Status != pipeline.StatusBudget {
			t.Errorf("--max-cost %v: spent %v, status %q", limit, m.Totals.CostUSD, m.Status)
		}
		t.Logf("--max-cost %v: %d calls, $%.5f", limit, srv.Served(), m.Totals.CostUSD)
	}
}

// What generate and filter write loads into a trainer unchanged: every
// line of every format has the same schema (keys, nulls, int apart from
// float), with or without provenance; -o FILE.parquet writes Parquet;
// a dataset card sits next to an output file unless --no-card.
func TestOutputSchemaStable(t *testing.T) {
	dir := t.TempDir()
	srv := fakeModels(t, 0)
	cfg := fakeConfig(t, dir, srv.URL, 4)
	seedsFile := writeTestSeeds(t, dir)
	base := []string{"generate", "-c", cfg, "--seeds", seedsFile, "--run-dir", filepath.Join(dir, "run")}
	for _, format := range output.Formats() {
		for _, extra := range [][]string{nil, {"--meta"}, {"--meta", "--system", "Be brief."}} {
			if format == output.FormatAlpaca && len(extra) > 1 {
				continue // alpaca has no turns for a system message
			}
			out, stderr, code := runCLI(t, append(append(base, "--format", string(format)), extra...)...)
			if code != 0 {
				t.Fatalf("%s %v: exit %d\n%s", format, extra, code, stderr)
			}
			if n, err := outputtest.Check(strings.NewReader(out)); err != nil || n != 24 {
				t.Errorf("generate --format %s %v: %d lines, %v", format, extra, n, err)
			}
			// The same records, filtered with provenance.
			data := filepath.Join(dir, "data.jsonl")
			os.WriteFile(data, []byte(out), 0o644)
			fout, stderr, code := runCLI(t, "filter", "--heuristics", "--dedup", "--meta", "--format", string(format), data)
			if code != 0 {
				t.Fatalf("filter %s: exit %d\n%s", format, code, stderr)
			}
			if _, err := outputtest.Check(strings.NewReader(fout)); err != nil {
				t.Errorf("filter --meta --format %s: %v", format, err)
			}
		}
	}
	pq := filepath.Join(dir, "data.parquet")
	if _, stderr, code := runCLI(t, append(base, "--meta", "--format", "prompt-completion", "-o", pq)...); code != 0 {
		t.Fatalf("-o %s: exit %d\n%s", pq, code, stderr)
	}
	b, err := os.ReadFile(pq)
	if err != nil || !bytes.HasPrefix(b, []byte("PAR1")) || !bytes.HasSuffix(b, []byte("PAR1")) {
		t.Errorf("%s is not a Parquet file (%v)", pq, err)
	}
	card, err := os.ReadFile(pq + output.CardSuffix)
	if err != nil || !bytes.HasPrefix(card, []byte("---\n")) || !bytes.Contains(card, []byte("data.parquet")) {
		t.Errorf("dataset card: %v\n%s", err, card)
	}
	noCard := filepath.Join(dir, "nocard.jsonl")
	if _, stderr, code := runCLI(t, append(base, "--no-card", "-o", noCard)...); code != 0 {
		t.Fatalf("--no-card: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(noCard + output.CardSuffix); !os.IsNotExist(err) {
		t.Errorf("--no-card wrote a card: %v", err)
	}
}
