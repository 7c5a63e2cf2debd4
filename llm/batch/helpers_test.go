package batch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/batch/batchtest"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

// newFake starts a fake Batch API server with synchronous replies.
func newFake(t *testing.T, o batchtest.Options) *batchtest.Server {
	t.Helper()
	models := llmtest.NewServer(pipelinetest.ReplyTo)
	srv := batchtest.NewServer(models, o)
	t.Cleanup(func() { srv.Close(); models.Close() })
	return srv
}

// testPrice is the synchronous price of every test model.
var testPrice = llm.Price{PromptPerMillion: 0.15, CompletionPerMillion: 0.6}

// poolConfig is a pool of three OpenAI-compatible models on url: "gen"
// (completion style) writes instructions and instances, "e1" and "e2"
// (chat) answer for the vote; batch sets batch on all three.
func poolConfig(url string, batch bool) llm.Config {
	var c llm.Config
	ep := url + "/v1"
	c.Models.Set("gen", llm.ModelConfig{Backend: llm.BackendOpenAI, Model: "gen", Endpoint: ep, Style: llm.StyleCompletion,
		Roles: []llm.Role{llm.RoleInstructions, llm.RoleInstances}, Price: testPrice, Batch: batch})
	c.Models.Set("e1", llm.ModelConfig{Backend: llm.BackendOpenAI, Model: "e1", Endpoint: ep,
		Roles: []llm.Role{llm.RoleEnsemble}, Price: testPrice, Batch: batch})
	c.Models.Set("e2", llm.ModelConfig{Backend: llm.BackendOpenAI, Model: "e2", Endpoint: ep,
		Roles: []llm.Role{llm.RoleEnsemble}, Price: testPrice, Batch: batch})
	c.Endpoints = map[string]llm.EndpointConfig{ep: {MaxConcurrent: 4}}
	c.Retry = llm.RetryConfig{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	return c
}

// fastSettings poll and flush in milliseconds.
var fastSettings = Settings{Settle: 15 * time.Millisecond, PollInterval: 3 * time.Millisecond, FlushIdle: time.Second}

// testJob is a small generate run on cfg: 8 type-A and 4 type-B
// examples, with an explicit window (so that the synchronous and batch
// runs are the same run).
func testJob(cfg llm.Config, runDir string, out *bytes.Buffer) pipeline.Job {
	return pipeline.Job{
		Options: pipeline.Options{Seeds: pipelinetest.Seeds(), Seed: 7, TargetA: 8, TargetB: 4,
			DemosA: 6, DemosB: 4, Window: 8},
		Pool:             cfg,
		RunDir:           runDir,
		Output:           pipeline.Output{Writer: out, Options: output.Options{Format: output.FormatAlpaca, Meta: true}},
		PreflightTimeout: -1,
		Getenv:           func(string) string { return "" },
	}
}

// withBatch makes j run its calls through a batch executor; built, it is
// stored in *ex when ex is not nil.
func withBatch(j pipeline.Job, set Settings, detach bool, ex ...**Executor) pipeline.Job {
	j.Executor = func(ctx context.Context, local *llm.Pool, runDir string) (pipeline.Executor, error) {
		e, err := New(ctx, Options{Local: local, Config: j.Pool, RunDir: runDir, Settings: set, Detach: detach, Getenv: j.Getenv})
		if err == nil && len(ex) > 0 {
			*ex[0] = e
		}
		return e, err
	}
	return j
}

// settle waits until every job of e is over and its results read.
func settle(t *testing.T, e *Executor) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		live := e.liveJobs()
		e.mu.Unlock()
		if live == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still live", live)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runJob runs j and returns its output and manifest; before the run is
// closed, it calls each of before.
func runJob(t *testing.T, j pipeline.Job, before ...func()) ([]byte, pipeline.Manifest, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := j.Start(ctx)
	if err != nil {
		return nil, pipeline.Manifest{}, err
	}
	m, err := run.Wait(ctx)
	for _, f := range before {
		f()
	}
	if cerr := run.Close(); cerr != nil {
		t.Errorf("close: %v", cerr)
	}
	return j.Output.Writer.(*bytes.Buffer).Bytes(), m, err
}

// reference holds the output of the synchronous run of testJob, which
// depends on neither the server's URL nor its batch behaviour: computed
// once, by the first test that needs it.
var reference struct {
	sync.Mutex
	out []byte
}

// syncOutput is the output of the synchronous run of testJob.
func syncOutput(t *testing.T) []byte {
	t.Helper()
	reference.Lock()
	defer reference.Unlock()
	if reference.out != nil {
		return reference.out
	}
	srv := newFake(t, batchtest.Options{})
	var out bytes.Buffer
	got, _, err := runJob(t, testJob(poolConfig(srv.URL, false), filepath.Join(t.TempDir(), "sync"), &out))
	if err != nil {
		t.Fatalf("synchronous run: %v", err)
	}
	if len(srv.Jobs()) != 0 {
		t.Fatalf("the synchronous run created %d batch jobs", len(srv.Jobs()))
	}
	reference.out = got
	return got
}

// sameFile compares a file of two run directories.
func sameFile(t *testing.T, dirA, dirB, name string) {
	t.Helper()
	a, errA := os.ReadFile(filepath.Join(dirA, name))
	b, errB := os.ReadFile(filepath.Join(dirB, name))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("%s differs between %s and %s (%v, %v)", name, dirA, dirB, errA, errB)
	}
}

// checkNoDoublePay fails the test if the fake saw a request submitted
// while a live job held it, or after a job had answered it.
func checkNoDoublePay(t *testing.T, srv *batchtest.Server) {
	t.Helper()
	if o := srv.Overlaps(); len(o) > 0 {
		t.Errorf("%d requests were put in a job while another live job held them: %.12v", len(o), o)
	}
	if r := srv.Repaid(); len(r) > 0 {
		t.Errorf("%d requests were submitted again after a job had answered them: %.12v", len(r), r)
	}
}
