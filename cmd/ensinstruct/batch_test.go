package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm/batch/batchtest"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// fakeBatchAPI starts a fake server with the Batch API whose synchronous
// replies are pipelinetest.Reply's.
func fakeBatchAPI(t *testing.T) *batchtest.Server {
	t.Helper()
	models := newFakeModelServer(0)
	srv := batchtest.NewServer(models, batchtest.Options{})
	t.Cleanup(func() { srv.Close(); models.Close() })
	return srv
}

// batchConfig writes a config whose "gen" (completion style) and "e2"
// (chat) models send their calls through the Batch API of srv, and whose
// "e1" is an Ollama model on the same fake; the window is explicit, so
// that the synchronous run (batch off) is the same run.
func batchConfig(t *testing.T, dir, url string) string {
	t.Helper()
	cfg := fmt.Sprintf(`models:
  gen:
    backend: openai
    model: gen
    endpoint: %[1]s/v1
    style: completion
    roles: [instructions, instances]
    batch: true
    price: {prompt_per_million: 0.15, completion_per_million: 0.60}
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
    batch: true
    price: {prompt_per_million: 0.15, completion_per_million: 0.60}
retry: {max_attempts: 3, initial_backoff: 1ms, max_backoff: 5ms}
generation: {demos_a: 6, demos_b: 4, window: 8}
batch: {settle: 15ms, poll_interval: 3ms, flush_idle: 1s}
seed: 7
n: 12
progress: none
`, url)
	p := filepath.Join(dir, "batch.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// synchronousReference runs the config with batch off.
func synchronousReference(t *testing.T, cfg, seedsFile string) string {
	t.Helper()
	out, stderr, code := runCLI(t, "generate", "-c", cfg, "--seeds", seedsFile, "--meta",
		"--set", "models.gen.batch=false", "--set", "models.e2.batch=false", "--run-dir", filepath.Join(t.TempDir(), "sync"))
	if code != 0 || strings.Count(out, "\n") != 12 {
		t.Fatalf("synchronous run: exit %d, %d records\n%s", code, strings.Count(out, "\n"), stderr)
	}
	return out
}

// TestGenerateBatchSIGKILL kills a real generate process with SIGKILL
// while it uploads a job's file, right after the server created a job
// (before the process learned its ID), and while it polls a live job,
// running the same command again after each kill. No request is ever put
// in a job while another live job holds it, none is submitted again once
// answered, and the output is the synchronous run's.
func TestGenerateBatchSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills child processes")
	}
	bin := ensinstructBinary(t)
	dir := t.TempDir()
	srv := fakeBatchAPI(t)
	cfg := batchConfig(t, dir, srv.URL)
	seedsFile := writeTestSeeds(t, dir)
	want := synchronousReference(t, cfg, seedsFile)
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"generate", "-c", cfg, "--seeds", seedsFile, "--meta", "--run-dir", filepath.Join(dir, "run"), "-o", out}

	// killAt starts the command, waits for the moment, kills the process.
	killAt := func(what string, moment func(cmd *exec.Cmd) bool) {
		t.Helper()
		cmd, stderr := startGenerate(t, bin, args...)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(20 * time.Second)
		for !moment(cmd) {
			select {
			case err := <-done:
				t.Fatalf("%s: the run ended before the kill: %v\n%s", what, err, stderr)
			case <-deadline:
				cmd.Process.Kill()
				<-done
				t.Fatalf("%s: the moment never came\n%s", what, stderr)
			case <-time.After(time.Millisecond):
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		uploads, creates, polls := srv.Counts()
		t.Logf("killed %s: %d uploads, %d jobs created, %d polls so far", what, uploads, creates, polls)
	}
	blocked := func(kind string) func(*exec.Cmd) bool {
		return func(*exec.Cmd) bool {
			select {
			case k := <-srv.Blocked():
				return k == kind
			default:
				return false
			}
		}
	}

	srv.BlockUploads(true)
	killAt("during an upload", blocked("upload"))
	srv.BlockUploads(false)

	srv.BlockCreates(true)
	killAt("after a job was created", blocked("create"))
	srv.BlockCreates(false)
	createdUnseen := srv.Jobs()[len(srv.Jobs())-1]

	srv.Hold()
	var pollsAtStart int
	killAt("while polling", func(*exec.Cmd) bool {
		_, _, polls := srv.Counts()
		if pollsAtStart == 0 {
			pollsAtStart = polls + 1
		}
		return polls >= pollsAtStart+5
	})
	srv.Release()

	cmd, stderr := startGenerate(t, bin, args...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the run after the kills: %v\n%s", err, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("output after the kills differs from the synchronous run's:\n%s\n---\n%s", got, want)
	}
	if o := srv.Overlaps(); len(o) > 0 {
		t.Errorf("%d requests were put in a job while another live job held them", len(o))
	}
	if r := srv.Repaid(); len(r) > 0 {
		t.Errorf("%d requests were submitted again after a job had answered them", len(r))
	}
	// The job whose creation the killed process never heard of was
	// re-attached, not made again.
	for _, j := range srv.Jobs() {
		if j.ID != createdUnseen.ID && j.InputFileID == createdUnseen.InputFileID {
			t.Errorf("a second job %s was created on file %s", j.ID, j.InputFileID)
		}
	}
	submissions, twice := 0, 0
	for _, n := range srv.Submitted() {
		submissions += n
		if n > 1 {
			twice++
		}
	}
	m := readManifest(t, out+".manifest.json")
	t.Logf("%d jobs; %d submissions of %d distinct requests (%d submitted again after a job that never ran them), %d overlaps, %d repaid; manifest: %d jobs, $%.6f",
		len(srv.Jobs()), submissions, len(srv.Submitted()), twice, len(srv.Overlaps()), len(srv.Repaid()), len(m.Batches), m.Totals.CostUSD)
	if m.Status != pipeline.StatusComplete || len(m.Batches) == 0 {
		t.Errorf("manifest: status %s, %d jobs", m.Status, len(m.Batches))
	}
}

// --detach exits 75 while jobs are live, and the same command collects
// them the next time, going on to the next stage, until the run is done
// with the synchronous run's output.
func TestGenerateDetach(t *testing.T) {
	dir := t.TempDir()
	srv := fakeBatchAPI(t)
	cfg := batchConfig(t, dir, srv.URL)
	seedsFile := writeTestSeeds(t, dir)
	want := synchronousReference(t, cfg, seedsFile)
	out := filepath.Join(dir, "night.jsonl")
	args := []string{"generate", "-c", cfg, "--seeds", seedsFile, "--meta", "--run-dir", filepath.Join(dir, "run"), "-o", out, "--detach"}
	srv.Hold() // the provider takes its time
	runs := 0
	for {
		runs++
		if runs > 40 {
			t.Fatal("not done after 40 runs")
		}
		_, stderr, code := runCLI(t, args...)
		if code == 0 {
			break
		}
		if code != 75 || !strings.Contains(stderr, "batch jobs pending; run the same command again") {
			t.Fatalf("run %d: exit %d, want 75\n%s", runs, code, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("run %d: a detached run committed its output", runs)
		}
		m := readManifest(t, out+".manifest.json")
		if m.Status != pipeline.StatusPending || livePending(m.Batches) == 0 {
			t.Fatalf("run %d: manifest status %s with %d live jobs", runs, m.Status, livePending(m.Batches))
		}
		srv.Finish() // overnight
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("output after %d runs differs from the synchronous run's", runs)
	}
	if runs < 3 {
		t.Errorf("done after %d runs: the stages did not wait for their jobs", runs)
	}
	t.Logf("done after %d runs, %d jobs", runs, len(srv.Jobs()))
	if o := srv.Overlaps(); len(o) > 0 {
		t.Errorf("%d requests submitted twice while live", len(o))
	}
	if b := bytes.Count(got, []byte("\n")); b != 12 {
		t.Errorf("%d records", b)
	}
}
