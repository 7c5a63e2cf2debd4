package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/internal/testdata"
	"github.com/ensinstruct/ensinstruct/llm/batch"
)

// batch.hosted (the command line's --batch) sends the hosted models
// through the Batch API and leaves local servers alone; the batch
// settings are checked with the line they are on.
func TestBatchSection(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(`models:
  gen: {backend: ollama, model: llama3.1, roles: [instructions, instances]}
  hosted: {backend: openai, model: gpt-4o-mini, roles: [ensemble]}
  vllm: {backend: openai, model: qwen, endpoint: "http://127.0.0.1:8000/v1", roles: [ensemble]}
batch:
  poll_interval: 5s
`), 0o644)
	f, err := Load(path, []string{"batch.hosted=true"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Batch.PollInterval != 5*time.Second || !f.Batch.Hosted {
		t.Errorf("batch settings %+v", f.Batch)
	}
	j, err := f.Job()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range j.Pool.Models {
		if want := m.Name == "hosted"; m.Batch != want {
			t.Errorf("model %s: batch %v, want %v", m.Name, m.Batch, want)
		}
	}
	if mc, _ := f.Pool.Models.Get("hosted"); mc.Batch {
		t.Error("the file's own models were changed")
	}

	f, err = Load(path, []string{"batch.flush_size=-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Job(); err == nil || !strings.Contains(err.Error(), "batch.flush_size: must not be negative") {
		t.Errorf("negative flush size: %v", err)
	}
}

// docs/example.yaml documents the batch executor's defaults.
func TestExampleBatchDefaults(t *testing.T) {
	c, err := Load(testdata.Root(t)+"/../docs/example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := batch.Settings{FlushSize: batch.DefaultFlushSize, FlushIdle: batch.DefaultFlushIdle, Settle: batch.DefaultSettle,
		PollInterval: batch.DefaultPollInterval, MaxFileRequests: batch.MaxFileRequests, MaxFileBytes: batch.MaxFileBytes}
	if c.Batch != want {
		t.Errorf("batch section %+v, defaults %+v", c.Batch, want)
	}
}
