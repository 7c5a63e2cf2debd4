package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/batch/batchtest"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

func TestJournalTornTail(t *testing.T) {
	dir := t.TempDir()
	j, entries, err := openJournal(dir)
	if err != nil || len(entries) != 0 {
		t.Fatal(err, entries)
	}
	for _, e := range []entry{{Op: opIntent, Local: "b000001", Keys: []string{"k1"}}, {Op: opFile, Local: "b000001", FileID: "f1"}} {
		if err := j.append(e); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	path := filepath.Join(dir, JournalFile)
	good, _ := os.ReadFile(path)
	// A process killed in the middle of a line leaves it torn.
	os.WriteFile(path, append(bytes.Clone(good), `{"op":"batch","local":"b000001","batch_`...), 0o644)
	j, entries, err = openJournal(dir)
	if err != nil || len(entries) != 2 || entries[1].FileID != "f1" {
		t.Fatalf("after a torn line: %v %+v", err, entries)
	}
	if err := j.append(entry{Op: opBatch, Local: "b000001", BatchID: "batch_1"}); err != nil {
		t.Fatal(err)
	}
	j.close()
	if _, entries, err = openJournal(dir); err != nil || len(entries) != 3 || entries[2].BatchID != "batch_1" {
		t.Fatalf("the torn line was not cut off: %v %+v", err, entries)
	}
	if !hasLive(dir) {
		t.Error("a created job that is not done is not live")
	}
	// Damage before the last line is not a crash's: refuse it.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("garbage\n"), b...), 0o644)
	if _, _, err := openJournal(dir); err == nil || !strings.Contains(err.Error(), JournalFile+":1:") {
		t.Errorf("corrupt journal: %v, want an error naming line 1", err)
	}
}

// recoverEnv is an executor's pool and run directory, for tests that
// stage what a killed process left behind.
type recoverEnv struct {
	srv   *batchtest.Server
	cfg   llm.Config
	local *llm.Pool
	cache *llm.Cache
	dir   string
	req   llm.Request
	key   string
	api   *client
}

func newRecoverEnv(t *testing.T) *recoverEnv {
	t.Helper()
	r := &recoverEnv{srv: newFake(t, batchtest.Options{}), dir: t.TempDir()}
	r.cfg = poolConfig(r.srv.URL, true)
	var err error
	if r.cache, err = llm.OpenCache(filepath.Join(r.dir, "cache.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cache.Close() })
	if r.local, err = llm.NewPool(r.cfg, llm.WithCache(r.cache)); err != nil {
		t.Fatal(err)
	}
	r.req = llm.Request{Messages: []llm.Message{{Role: "user", Content: "Name a colour.\n\n"}}, MaxTokens: 32}
	r.key, _ = r.local.CacheKey("e1", r.req, 0)
	mc, _ := r.cfg.Models.Get("e1")
	access, err := llm.NewOpenAIAccess(mc, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	r.api = &client{access: access, http: http.DefaultClient, model: "e1"}
	return r
}

// journal writes the entries of a job of the request, as a killed
// process would have left them.
func (r *recoverEnv) journal(t *testing.T, entries ...entry) {
	t.Helper()
	j, _, err := openJournal(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	for _, e := range entries {
		if err := j.append(e); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *recoverEnv) intent() entry {
	return entry{Op: opIntent, Local: "b000001", At: time.Now().UTC(), Model: "e1", BackendModel: "e1",
		Endpoint: r.srv.URL + "/v1", URL: llm.BatchChatURL, Keys: []string{r.key}}
}

// upload puts the request's input file on the server.
func (r *recoverEnv) upload(t *testing.T) string {
	t.Helper()
	url, body, err := llm.OpenAIBatchRequest("e1", r.req)
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.api.upload(context.Background(), "staged.jsonl", inputLine(r.key, url, body))
	if err != nil {
		t.Fatal(err)
	}
	return f.ID
}

// do starts an executor on the staged run directory and makes the call.
func (r *recoverEnv) do(t *testing.T) (*Executor, error) {
	t.Helper()
	e, err := New(context.Background(), Options{Local: r.local, Config: r.cfg, RunDir: r.dir, Settings: fastSettings})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.Do(ctx, "e1", r.req, 0)
	if err == nil && !strings.HasPrefix(resp.Text, "The answer is") {
		t.Errorf("reply %q", resp.Text)
	}
	return e, err
}

func lastOp(t *testing.T, dir, local string) entry {
	t.Helper()
	_, entries, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	var last entry
	for _, e := range entries {
		if e.Local == local {
			last = e
		}
	}
	return last
}

// Killed after the job was created but before its ID was journaled: the
// next process finds the job by its file and waits for it; nothing is
// submitted again.
func TestRecoverCreatedJob(t *testing.T) {
	r := newRecoverEnv(t)
	file := r.upload(t)
	if _, err := r.api.create(context.Background(), file, llm.BatchChatURL, nil); err != nil {
		t.Fatal(err)
	}
	r.journal(t, r.intent(), entry{Op: opFile, Local: "b000001", FileID: file})
	e, err := r.do(t)
	if err != nil {
		t.Fatal(err)
	}
	if jobs := r.srv.Jobs(); len(jobs) != 1 || r.srv.Submitted()[r.key] != 1 {
		t.Errorf("%d jobs, the request submitted %d times; want the staged job alone", len(jobs), r.srv.Submitted()[r.key])
	}
	settle(t, e)
	e.Close()
	if op := lastOp(t, r.dir, "b000001"); op.Op != opDone {
		t.Errorf("the re-attached job ends with %+v, want done", op)
	}
}

// Killed after the upload was journaled but before the job was created:
// the job is abandoned and the request goes into a new one.
func TestRecoverUploadedNotCreated(t *testing.T) {
	r := newRecoverEnv(t)
	file := r.upload(t)
	r.journal(t, r.intent(), entry{Op: opFile, Local: "b000001", FileID: file})
	e, err := r.do(t)
	if err != nil {
		t.Fatal(err)
	}
	if jobs := r.srv.Jobs(); len(jobs) != 1 || jobs[0].InputFileID == file || r.srv.Submitted()[r.key] != 1 {
		t.Errorf("jobs %+v; want one new job", jobs)
	}
	if bs := e.Batches(); len(bs) != 2 || bs[0].Status != statusAbandoned || bs[1].Local != "b000002" {
		t.Errorf("jobs of the run %+v", bs)
	}
	if op := lastOp(t, r.dir, "b000001"); op.Op != opAbandon {
		t.Errorf("the staged job ends with %+v, want abandoned", op)
	}
}

// Killed during the upload (before its file was journaled): no job can
// exist; nothing is looked up.
func TestRecoverIntentOnly(t *testing.T) {
	r := newRecoverEnv(t)
	r.upload(t) // the server may have the file; the client never learned its ID
	r.journal(t, r.intent())
	if _, err := r.do(t); err != nil {
		t.Fatal(err)
	}
	if jobs := r.srv.Jobs(); len(jobs) != 1 || r.srv.Submitted()[r.key] != 1 {
		t.Errorf("jobs %+v", jobs)
	}
	if _, _, polls := r.srv.Counts(); polls == 0 {
		t.Error("the new job was never read")
	}
}

// A live job whose model is gone from the configuration is not
// resubmitted under another: the executor refuses to start.
func TestRecoverUnknownModel(t *testing.T) {
	r := newRecoverEnv(t)
	in := r.intent()
	in.BackendModel = "retired"
	r.journal(t, in, entry{Op: opFile, Local: "b000001", FileID: "file_1"}, entry{Op: opBatch, Local: "b000001", BatchID: "batch_1"})
	_, err := New(context.Background(), Options{Local: r.local, Config: r.cfg, RunDir: r.dir, Settings: fastSettings})
	if err == nil || !strings.Contains(err.Error(), "may be live") {
		t.Errorf("New: %v", err)
	}
}

// A run whose models no longer go through the Batch API still collects
// the live jobs of an earlier run rather than pay for their requests
// again.
func TestSynchronousRunCollectsLiveJobs(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(fmt.Sprintf("expired=%v", expire), func(t *testing.T) { synchronousCollects(t, expire) })
	}
}

// synchronousCollects stages a live job for a synchronous run; when the
// job expires without running the request, the run calls the model.
func synchronousCollects(t *testing.T, expire bool) {
	r := newRecoverEnv(t)
	if expire {
		r.srv.ExpireNext(0)
	}
	file := r.upload(t)
	obj, err := r.api.create(context.Background(), file, llm.BatchChatURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.journal(t, r.intent(), entry{Op: opFile, Local: "b000001", FileID: file}, entry{Op: opBatch, Local: "b000001", BatchID: obj.ID})
	r.cfg = poolConfig(r.srv.URL, false)
	var err2 error
	if r.local, err2 = llm.NewPool(r.cfg, llm.WithCache(r.cache)); err2 != nil {
		t.Fatal(err2)
	}
	if !Wanted(r.local, r.dir) {
		t.Fatal("a run directory with a live job does not want the batch executor")
	}
	e, err := r.do(t)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.srv.Submitted()[r.key]; n != 1 {
		t.Errorf("the request was submitted %d times", n)
	}
	stats := e.Stats()["e1"]
	if expire && (stats.Errors["batch_expired"] != 1 || stats.Requests != 1 || stats.Calls != 1) {
		t.Errorf("expired job: the synchronous call was not made: %+v", stats)
	}
	if !expire && (stats.Requests != 0 || stats.Calls != 1) {
		t.Errorf("the job's result was paid for again: %+v", stats)
	}
	settle(t, e) // the job is journaled done after its last result
	if Wanted(r.local, r.dir) {
		t.Error("still wanted once the job is collected")
	}
}

// Detached runs exit while their jobs are live; the same job started
// again collects the results, goes on, and finally gives the output of
// an uninterrupted synchronous run.
func TestDetachAndCollect(t *testing.T) {
	want := syncOutput(t)
	srv := newFake(t, batchtest.Options{})
	srv.Hold()
	runDir := filepath.Join(t.TempDir(), "run")
	var got []byte
	for n := 1; ; n++ {
		if n > 40 {
			t.Fatal("not done after 40 runs")
		}
		var out bytes.Buffer
		o, m, err := runJob(t, withBatch(testJob(poolConfig(srv.URL, true), runDir, &out), fastSettings, true))
		if err == nil {
			if m.Status != pipeline.StatusComplete {
				t.Fatalf("run %d: status %s", n, m.Status)
			}
			got = o
			t.Logf("complete after %d runs, %d jobs", n, len(srv.Jobs()))
			break
		}
		if !errors.Is(err, pipeline.ErrDetached) || m.Status != pipeline.StatusPending {
			t.Fatalf("run %d: %v (status %s), want detached", n, err, m.Status)
		}
		live := 0
		for _, b := range m.Batches {
			if b.Live {
				live++
			}
		}
		if live == 0 {
			t.Fatalf("run %d detached with no live job: %+v", n, m.Batches)
		}
		srv.Finish() // overnight
	}
	// A detached run writes what it has decided so far; the last run
	// replays those records from the cache.
	if !bytes.Equal(got, want) {
		t.Fatalf("output after detaching differs from the synchronous run's:\n%s\n---\n%s", got, want)
	}
	checkNoDoublePay(t, srv)
}

// The fake validates input lines as the API does: a job whose file has a
// duplicate custom_id, another method, another URL or a body that is not
// a request fails validation, with the lines named.
func TestFakeValidatesLines(t *testing.T) {
	r := newRecoverEnv(t)
	url, body, _ := llm.OpenAIBatchRequest("e1", r.req)
	good := string(inputLine(r.key, url, body))
	bad := good + good + // a duplicate
		`{"custom_id":"m","method":"GET","url":"/v1/chat/completions","body":{"model":"e1"}}` + "\n" +
		`{"custom_id":"u","method":"POST","url":"/v1/completions","body":{"model":"e1"}}` + "\n" +
		`{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":"hi"}` + "\n"
	f, err := r.api.upload(context.Background(), "bad.jsonl", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := r.api.create(context.Background(), f.ID, llm.BatchChatURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for !terminal(obj.Status) {
		if obj, err = r.api.get(context.Background(), obj.ID); err != nil {
			t.Fatal(err)
		}
	}
	msg := obj.Errors.String()
	for _, want := range []string{"line 2: duplicate_custom_id", "line 3: invalid_method", "line 4: mismatched_url", "line 5: invalid_body"} {
		if obj.Status != statusFailed || !strings.Contains(msg, want) {
			t.Errorf("status %s, errors %q: want %q", obj.Status, msg, want)
		}
	}
}

// The API key goes to the Files and Batches APIs and nowhere else: not
// into the journal, the manifest or an error, even when the server echoes
// it.
func TestBatchKeepsTheKey(t *testing.T) {
	const key = "sk-batch-DO-NOT-LEAK-4321"
	models := llmtest.NewServer(pipelinetest.ReplyTo)
	defer models.Close()
	srv := batchtest.NewServer(models, batchtest.Options{Key: key})
	defer srv.Close()
	cfg := poolConfig(srv.URL, true)
	for i := range cfg.Models {
		cfg.Models[i].APIKeyEnv = "MY_KEY"
	}
	dir := filepath.Join(t.TempDir(), "run")
	var out bytes.Buffer
	j := testJob(cfg, dir, &out)
	j.Getenv = func(k string) string { return map[string]string{"MY_KEY": key}[k] }
	_, m, err := runJob(t, withBatch(j, fastSettings, false))
	if err != nil || len(srv.Jobs()) == 0 {
		t.Fatalf("run: %v, %d jobs", err, len(srv.Jobs()))
	}
	journal, _ := os.ReadFile(filepath.Join(dir, JournalFile))
	manifest, _ := json.Marshal(m)
	for name, b := range map[string][]byte{"journal": journal, "manifest": manifest} {
		if len(b) == 0 || bytes.Contains(b, []byte(key)) {
			t.Errorf("%s: %d bytes, holds the key: %v", name, len(b), bytes.Contains(b, []byte(key)))
		}
	}
	// A wrong key: the server's 401 echoes what it got; the error does not.
	j.Getenv = func(k string) string { return map[string]string{"MY_KEY": key + "-wrong"}[k] }
	j.RunDir = filepath.Join(t.TempDir(), "fresh")
	out.Reset()
	_, _, err = runJob(t, withBatch(j, fastSettings, false))
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), key) {
		t.Errorf("wrong key: %v", err)
	}
}
