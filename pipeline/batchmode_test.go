package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
)

// In batch mode the window defaults to a batch-sized round; the window,
// not the mode, is what the run identity holds.
func TestBatchWindow(t *testing.T) {
	syncOpts := testOptions()
	syncOpts.Window = 0
	batch := syncOpts
	batch.Models = append([]llm.ModelInfo(nil), syncOpts.Models...)
	batch.Models[2].Batch = true
	if o := syncOpts.withDefaults(); o.Window != DefaultWindow || o.MaxPending != DefaultMaxPending {
		t.Errorf("synchronous defaults: window %d, max pending %d", o.Window, o.MaxPending)
	}
	if o := batch.withDefaults(); o.Window != DefaultBatchWindow || o.MaxPending != DefaultBatchWindow {
		t.Errorf("batch defaults: window %d, max pending %d", o.Window, o.MaxPending)
	}
	idSync, _ := Identity(syncOpts, "s")
	idBatch, _ := Identity(batch, "s")
	if idSync == idBatch {
		t.Error("the batch window did not change the run identity")
	}
	batch.Window = DefaultWindow
	if id, _ := Identity(batch, "s"); id != idSync {
		t.Error("the same window in batch mode gives another identity")
	}
	syncOpts.Window = DefaultBatchWindow
	if id, _ := Identity(syncOpts, "s"); id != idBatch {
		t.Error("the batch window spelled out synchronously gives another identity")
	}
}

// The gate charges a batch model's calls at the batch price.
func TestGateChargesBatchPrice(t *testing.T) {
	price := llm.Price{PromptPerMillion: 1000, CompletionPerMillion: 2000}
	req := llm.Request{Prompt: "x", MaxTokens: 100}
	spent := func(batch bool) float64 {
		exec := &pricedExec{prompt: 250, completion: 50}
		g := NewGate(exec, []llm.ModelInfo{{Name: "m", Price: price, Batch: batch}}, Limits{MaxCostUSD: 100})
		if _, err := g.Do(context.Background(), "m", req, 0); err != nil {
			t.Fatal(err)
		}
		_, c := g.Spent()
		return c
	}
	if s, b := spent(false), spent(true); s != 0.35 || b != 0.175 {
		t.Errorf("spent %v synchronously, %v in a batch; want 0.35 and 0.175", s, b)
	}
}

// detachExec answers nothing: its calls wait until the run lets them go,
// and it detaches once calls arrived, as a batch executor does when
// everything the run waits for is in batch jobs.
type detachExec struct {
	after    int64
	calls    atomic.Int64
	detached chan struct{}
	once     sync.Once
	closed   atomic.Bool
}

func (d *detachExec) Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error) {
	if d.calls.Add(1) >= d.after {
		d.once.Do(func() { close(d.detached) })
	}
	<-ctx.Done()
	return llm.Response{}, ctx.Err()
}

func (d *detachExec) Detached() <-chan struct{} { return d.detached }
func (d *detachExec) Batches() []BatchInfo {
	return []BatchInfo{{ID: "batch_1", Model: "gen", Status: "in_progress", Requests: int(d.calls.Load())}}
}
func (d *detachExec) Close() error { d.closed.Store(true); return nil }

func testJob(t *testing.T, dir string) Job {
	t.Helper()
	var pool llm.Config
	for _, m := range testModels() {
		pool.Models.Set(m.Name, llm.ModelConfig{Backend: llm.BackendOllama, Model: m.Name, Endpoint: "http://127.0.0.1:9", Roles: m.Roles, Style: m.Style})
	}
	opts := testOptions()
	opts.Models = nil
	return Job{Options: opts, Pool: pool, RunDir: filepath.Join(dir, "run"),
		Output: Output{Path: filepath.Join(dir, "out.jsonl"), Options: output.Options{Format: output.FormatAlpaca}}, PreflightTimeout: -1}
}

// A run whose executor detaches stops with ErrDetached: the output stays
// unfinished, the manifest says pending and lists the batch jobs, and
// Close closes the executor.
func TestJobDetach(t *testing.T) {
	dir := t.TempDir()
	j := testJob(t, dir)
	exec := &detachExec{after: 3, detached: make(chan struct{})}
	j.Executor = func(context.Context, *llm.Pool, string) (Executor, error) { return exec, nil }
	run, err := j.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := run.Wait(context.Background())
	if !errors.Is(err, ErrDetached) || m.Status != StatusPending || m.Error != "" {
		t.Fatalf("wait: %v, status %q, error %q", err, m.Status, m.Error)
	}
	if len(m.Batches) != 1 || m.Batches[0].ID != "batch_1" || m.Batches[0].Requests < 3 {
		t.Errorf("manifest batches %+v", m.Batches)
	}
	if _, err := os.Stat(j.Output.Path); !os.IsNotExist(err) {
		t.Errorf("the output of a detached run was committed: %v", err)
	}
	if _, err := os.Stat(j.Output.Path + ".partial"); err != nil {
		t.Errorf("no partial output: %v", err)
	}
	if err := run.Close(); err != nil || !exec.closed.Load() {
		t.Errorf("close: %v, executor closed %v", err, exec.closed.Load())
	}
}

func TestJobBatchModelNeedsAnExecutor(t *testing.T) {
	j := testJob(t, t.TempDir())
	mc, _ := j.Pool.Models.Get("e2")
	mc.Backend, mc.Endpoint, mc.Batch = llm.BackendOpenAI, "http://127.0.0.1:9/v1", true
	j.Pool.Models.Set("e2", mc)
	_, err := j.Start(context.Background())
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "models.e2.batch") {
		t.Errorf("start: %v, want an input error naming models.e2.batch", err)
	}
}
