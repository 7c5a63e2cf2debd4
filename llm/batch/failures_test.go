package batch

import (
	"bytes"

	"hash/fnv"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/batch/batchtest"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

// batchRun runs testJob through the Batch API against srv.
func batchRun(t *testing.T, srv *batchtest.Server, set Settings) ([]byte, pipeline.Manifest, error) {
	t.Helper()
	var out bytes.Buffer
	return runJob(t, withBatch(testJob(poolConfig(srv.URL, true), filepath.Join(t.TempDir(), "batch"), &out), set, false))
}

// later returns how many times each custom_id of ids appears in the
// jobs after the i-th.
func later(jobs []batchtest.Job, i int, ids []string) map[string]int {
	n := map[string]int{}
	for _, j := range jobs[i+1:] {
		for _, id := range j.CustomIDs {
			if contains(ids, id) {
				n[id]++
			}
		}
	}
	return n
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// stopped checks a job that ended before running all its requests (the
// first n): only the others were resubmitted, each once, and the output
// is still the synchronous one.
func stopped(t *testing.T, srv *batchtest.Server, status string, n int, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from the synchronous run's:\n%s\n---\n%s", got, want)
	}
	jobs := srv.Jobs()
	found := false
	for i, j := range jobs {
		if j.Status != status {
			continue
		}
		found = true
		ran, unfinished := j.CustomIDs[:n], j.CustomIDs[n:]
		if again := later(jobs, i, ran); len(again) > 0 {
			t.Errorf("%s job %s: %d requests it had answered were submitted again", status, j.ID, len(again))
		}
		again := later(jobs, i, unfinished)
		for id, k := range again {
			if k != 1 {
				t.Errorf("%s job %s: request %.12s resubmitted %d times", status, j.ID, id, k)
			}
		}
		if len(again) == 0 {
			t.Errorf("%s job %s: none of its %d unfinished requests was resubmitted", status, j.ID, len(unfinished))
		}
		t.Logf("%s job %s: %d of %d requests ran; %d of the others were resubmitted", status, j.ID, n, len(j.CustomIDs), len(again))
	}
	if !found {
		t.Fatalf("no job ended %s", status)
	}
	checkNoDoublePay(t, srv)
}

// An expired job: only its unfinished requests are resubmitted.
func TestExpiredJob(t *testing.T) {
	srv := newFake(t, batchtest.Options{})
	want := syncOutput(t)
	srv.ExpireNext(3)
	got, m, err := batchRun(t, srv, fastSettings)
	if err != nil {
		t.Fatal(err)
	}
	stopped(t, srv, "expired", 3, got, want)
	if n := m.Totals.Retries; n == 0 {
		t.Errorf("manifest counts no retries")
	}
	expired := int64(0)
	for _, s := range m.Calls {
		expired += s.Errors["batch_expired"]
	}
	if expired == 0 {
		t.Errorf("manifest counts no batch_expired requests: %+v", m.Calls)
	}
}

// A job its owner cancelled: the same.
func TestCancelledJob(t *testing.T) {
	srv := newFake(t, batchtest.Options{})
	want := syncOutput(t)
	srv.CancelNext(2)
	got, _, err := batchRun(t, srv, fastSettings)
	if err != nil {
		t.Fatal(err)
	}
	stopped(t, srv, "cancelled", 2, got, want)
}

func hash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Requests that come back with an error are retried under the retry
// policy and counted, never dropped: transient errors are resubmitted
// (alone) and the output is unchanged; a request that keeps failing, or
// fails for good, ends the run with an error naming it.
func TestLineErrors(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		srv := newFake(t, batchtest.Options{})
		want := syncOutput(t)
		injected := 0
		srv.FailLines(func(id string, run int) int {
			if run == 0 && hash(id)%3 == 0 {
				injected++ // under the fake's lock
				return 500
			}
			return 0
		})
		var ex *Executor
		var out bytes.Buffer
		j := withBatch(testJob(poolConfig(srv.URL, true), filepath.Join(t.TempDir(), "batch"), &out), fastSettings, false, &ex)
		var final map[string]llm.ModelStats
		got, _, err := runJob(t, j, func() {
			// The jobs still live when the run ended are read too.
			settle(t, ex)
			final = ex.Stats()
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("output differs from the synchronous run's")
		}
		var server, retries int64
		for _, s := range final {
			server += s.Errors["server"]
			retries += s.Retries
		}
		// Requests failed in a job whose results the run no longer
		// needed are counted but not retried.
		srv.FailLines(nil)
		if server != int64(injected) || injected == 0 || retries == 0 || retries > server {
			t.Errorf("%d failures injected; the manifest counts %d server errors and %d retries", injected, server, retries)
		}
		checkNoDoublePay(t, srv)
	})
	t.Run("for good", func(t *testing.T) {
		srv := newFake(t, batchtest.Options{})
		srv.FailLines(func(id string, run int) int { return 400 })
		_, m, err := batchRun(t, srv, fastSettings)
		if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "batch job batch_") {
			t.Fatalf("run: %v, want the request's HTTP 400 from its batch job", err)
		}
		if m.Status != pipeline.StatusFailed || m.Totals.Failures == 0 {
			t.Errorf("manifest: status %s, %d failures", m.Status, m.Totals.Failures)
		}
	})
	t.Run("retries spent", func(t *testing.T) {
		srv := newFake(t, batchtest.Options{})
		srv.FailLines(func(id string, run int) int { return 503 })
		_, _, err := batchRun(t, srv, fastSettings)
		if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), "HTTP 503") {
			t.Fatalf("run: %v, want it to give up after 3 attempts", err)
		}
	})
}

// Queues over the file limits are split; every file the fake receives is
// within them, and the output is unchanged. The fake does enforce the
// limits: without the split, its jobs fail validation.
func TestSplitOverLimits(t *testing.T) {
	limits := batchtest.Options{MaxRequests: 5, MaxBytes: 6000}
	srv := newFake(t, limits)
	want := syncOutput(t)
	set := fastSettings
	set.MaxFileRequests, set.MaxFileBytes = 5, 6000
	got, _, err := batchRun(t, srv, set)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from the synchronous run's")
	}
	jobs := srv.Jobs()
	bySize := map[int]int{}
	for _, j := range jobs {
		bySize[len(j.CustomIDs)]++
		if j.Status == "failed" || len(j.CustomIDs) > 5 {
			t.Errorf("job %s: %s with %d requests", j.ID, j.Status, len(j.CustomIDs))
		}
	}
	if bySize[5] == 0 {
		t.Errorf("no job was filled to the limit: sizes %v", bySize)
	}
	checkNoDoublePay(t, srv)

	unsplit := newFake(t, limits)
	_, _, err = batchRun(t, unsplit, fastSettings)
	if err == nil || !strings.Contains(err.Error(), "too_many_requests") {
		t.Errorf("without splitting: %v, want the jobs to fail validation", err)
	}
}

// A failed upload is retried; one refused for good fails the run, and
// the journal says the job was never created.
func TestUploadFailures(t *testing.T) {
	srv := newFake(t, batchtest.Options{})
	want := syncOutput(t)
	srv.FailUploads(500, 503)
	got, _, err := batchRun(t, srv, fastSettings)
	if err != nil {
		t.Fatal(err)
	}
	uploads, creates, _ := srv.Counts()
	if !bytes.Equal(got, want) || uploads != creates+2 {
		t.Errorf("same output %v; %d uploads for %d jobs, want 2 retried", bytes.Equal(got, want), uploads, creates)
	}
	checkNoDoublePay(t, srv)

	srv = newFake(t, batchtest.Options{})
	srv.FailUploads(400)
	var out bytes.Buffer
	dir := filepath.Join(t.TempDir(), "run")
	_, m, err := runJob(t, withBatch(testJob(poolConfig(srv.URL, true), dir, &out), fastSettings, false))
	if err == nil || !strings.Contains(err.Error(), "uploading its input file") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("run: %v, want the refused upload", err)
	}
	abandoned := false
	for _, b := range m.Batches {
		abandoned = abandoned || b.Status == statusAbandoned
	}
	_, entries, jerr := openJournal(dir)
	if jerr != nil || !abandoned || !hasOp(entries, opAbandon) {
		t.Errorf("journal %v: %+v; manifest %+v", jerr, entries, m.Batches)
	}
}

func hasOp(entries []entry, op string) bool {
	for _, e := range entries {
		if e.Op == op {
			return true
		}
	}
	return false
}

// A server without the Batch API: the run fails at once, saying so, with
// the first upload's 404.
func TestServerWithoutBatchAPI(t *testing.T) {
	plain := llmtest.NewServer(pipelinetest.ReplyTo)
	defer plain.Close()
	var out bytes.Buffer
	_, _, err := runJob(t, withBatch(testJob(poolConfig(plain.URL, true), filepath.Join(t.TempDir(), "run"), &out), fastSettings, false))
	if err == nil || !strings.Contains(err.Error(), "uploading its input file") || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("run: %v, want the upload's 404", err)
	}
}

// A result file whose download fails, or breaks off half way, is read
// again; no result is stored or paid for twice.
func TestDownloadFailures(t *testing.T) {
	srv := newFake(t, batchtest.Options{})
	want := syncOutput(t)
	srv.FailDownloads(502, -1, -1)
	var ex *Executor
	var out bytes.Buffer
	j := withBatch(testJob(poolConfig(srv.URL, true), filepath.Join(t.TempDir(), "batch"), &out), fastSettings, false, &ex)
	var final map[string]llm.ModelStats
	var jobsCost float64
	got, _, err := runJob(t, j, func() {
		settle(t, ex)
		final = ex.Stats()
		for _, b := range ex.Batches() {
			jobsCost += b.CostUSD
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from the synchronous run's")
	}
	var cost float64
	var requests int64
	for _, s := range final {
		cost += s.CostUSD
		requests += s.Requests
	}
	submitted := 0
	for _, n := range srv.Submitted() {
		submitted += n
	}
	if int64(submitted) != requests || !near(cost, jobsCost) {
		t.Errorf("%d submissions, %d requests counted; cost $%.6f by model, $%.6f by job", submitted, requests, cost, jobsCost)
	}
	checkNoDoublePay(t, srv)
}
