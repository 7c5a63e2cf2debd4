package batch

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm/batch/batchtest"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// The same config and seed give the same bytes through the Batch API as
// through synchronous calls, with the same evidence; every request that
// reached the server went through a job, none twice, and the calls cost
// the batch price.
func TestBatchOutputIsSyncOutput(t *testing.T) {
	srv := newFake(t, batchtest.Options{})
	dir := t.TempDir()
	var syncOut, batchOut bytes.Buffer
	want, ms, err := runJob(t, testJob(poolConfig(srv.URL, false), filepath.Join(dir, "sync"), &syncOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.Jobs()) != 0 {
		t.Fatalf("the synchronous run created %d batch jobs", len(srv.Jobs()))
	}
	got, mb, err := runJob(t, withBatch(testJob(poolConfig(srv.URL, true), filepath.Join(dir, "batch"), &batchOut), fastSettings, false))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || bytes.Count(got, []byte("\n")) != 12 {
		t.Fatalf("batch output differs from the synchronous output:\n%s\n---\n%s", got, want)
	}
	if ms.ConfigHash != mb.ConfigHash || mb.Status != pipeline.StatusComplete {
		t.Errorf("identity %s vs %s, status %s", ms.ConfigHash[:12], mb.ConfigHash[:12], mb.Status)
	}
	for _, f := range []string{pipeline.KeptFile, pipeline.RejectedFile} {
		sameFile(t, filepath.Join(dir, "sync"), filepath.Join(dir, "batch"), f)
	}
	checkNoDoublePay(t, srv)

	// Every request the batch run made went through a job, once.
	submitted := 0
	for _, n := range srv.Submitted() {
		submitted += n
	}
	var requests int64
	var syncCost float64
	for name, s := range mb.Calls {
		requests += s.Requests
		syncCost += (float64(s.PromptTokens)*testPrice.PromptPerMillion + float64(s.CompletionTokens)*testPrice.CompletionPerMillion) / 1e6
		if s.Requests == 0 {
			t.Errorf("model %s: no requests", name)
		}
	}
	if int64(submitted) != requests || len(srv.Submitted()) != submitted {
		t.Errorf("the fake saw %d submissions of %d requests; the manifest counts %d", submitted, len(srv.Submitted()), requests)
	}
	if c := mb.Totals.CostUSD; c <= 0 || !near(c*2, syncCost) {
		t.Errorf("batch cost $%.6f; the same tokens cost $%.6f synchronously", c, syncCost)
	}
	jobCost := 0.0
	for _, b := range mb.Batches {
		jobCost += b.CostUSD
		if b.ID == "" || b.Requests == 0 {
			t.Errorf("manifest batch %+v", b)
		}
	}
	// A result read between the two snapshots of the manifest (the
	// models', then the jobs') can only add to the jobs' side.
	if len(mb.Batches) != len(srv.Jobs()) || jobCost < mb.Totals.CostUSD-1e-9 || jobCost > mb.Totals.CostUSD*1.2 {
		t.Errorf("manifest lists %d jobs costing $%.6f; the fake has %d, the totals say $%.6f",
			len(mb.Batches), jobCost, len(srv.Jobs()), mb.Totals.CostUSD)
	}
	t.Logf("synchronous: %d calls, %d requests, $%.6f; batch: %d calls, %d requests in %d jobs, $%.6f (the same tokens synchronously: $%.6f)",
		ms.Totals.Calls, sumRequests(ms), ms.Totals.CostUSD, mb.Totals.Calls, requests, len(mb.Batches), mb.Totals.CostUSD, syncCost)
}

func sumRequests(m pipeline.Manifest) int64 {
	var n int64
	for _, s := range m.Calls {
		n += s.Requests
	}
	return n
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
