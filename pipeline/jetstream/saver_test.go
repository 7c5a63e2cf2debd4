package jetstream

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
)

// TestSaverWritesOnStop checks that what is queued when the executor
// closes reaches the local cache, and that a full queue is written before
// the next tick.
func TestSaverWritesOnStop(t *testing.T) {
	cache, err := llm.OpenCache(t.TempDir() + "/cache.db")
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	s := newSaver(cache, slog.New(slog.DiscardHandler))
	s.lag = time.Hour // only a full queue or the stop writes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	for i := range localBatch {
		s.add(fmt.Sprint("k", i), llm.Response{Text: fmt.Sprint("r", i)})
	}
	// The queue is full: run writes it without waiting for the tick
	// (an hour away); what comes after it waits for the stop.
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := cache.Len(); n < localBatch; n, _ = cache.Len() {
		if time.Now().After(deadline) {
			t.Fatalf("a full queue was not written: the cache holds %d", n)
		}
		time.Sleep(time.Millisecond)
	}
	s.add("last", llm.Response{Text: "last"})
	cancel()
	<-done
	if n, _ := cache.Len(); n != localBatch+1 {
		t.Fatalf("cache holds %d after the stop, want %d", n, localBatch+1)
	}
	if r, ok, err := cache.Get("last"); !ok || err != nil || r.Text != "last" {
		t.Fatalf("Get(last) = %+v, %v, %v", r, ok, err)
	}
}
