package workers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGoReusesWorkers runs 1,000 functions one after another, each once
// the one before has ended and its worker has had a moment to wait for
// the next: they share a handful of workers, not one each.
func TestGoReusesWorkers(t *testing.T) {
	done := make(chan struct{})
	before := started.Load()
	for range 1000 {
		Go(func() { done <- struct{}{} })
		<-done
		time.Sleep(100 * time.Microsecond)
	}
	if n := started.Load() - before; n > 20 {
		t.Errorf("1,000 sequential functions started %d workers, want a handful: workers are not reused", n)
	}
}

// TestGoNeverBlocks starts more functions than there are idle workers,
// all of which wait for each other: each needs a goroutine of its own.
func TestGoNeverBlocks(t *testing.T) {
	const n = 200
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Add(n)
	for range n {
		Go(func() { wg.Done(); <-release })
	}
	ok := make(chan struct{})
	go func() { wg.Wait(); close(ok) }()
	select {
	case <-ok:
	case <-time.After(10 * time.Second):
		t.Fatal("not every function started: Go waited for a busy worker")
	}
	close(release)
}

func TestGroupFirstErrorCancels(t *testing.T) {
	g, ctx := WithContext(context.Background())
	first := errors.New("first")
	var later atomic.Int64
	g.Go(func() error { return first })
	for range 10 {
		g.Go(func() error {
			<-ctx.Done()
			later.Add(1)
			return errors.New("after the cancel")
		})
	}
	if err := g.Wait(); err != first {
		t.Fatalf("Wait = %v, want the first error", err)
	}
	if later.Load() != 10 {
		t.Fatalf("Wait returned before %d of 10 functions ended", 10-later.Load())
	}
	if context.Cause(ctx) != first {
		t.Errorf("context cause %v, want the first error", context.Cause(ctx))
	}
}

func TestGroupWaitCancelsContext(t *testing.T) {
	g, ctx := WithContext(context.Background())
	g.Go(func() error { return nil })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Error("the group's context is live after Wait")
	}
}

// deep uses about n KB of stack.
//
//go:noinline
func deep(n int) int {
	var pad [1000]byte
	pad[n%1000] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%1000])
}

// BenchmarkDeepCall compares a go statement with Go for a function that
// needs 32 KB of stack, as a model call through the HTTP client does.
func BenchmarkDeepCall(b *testing.B) {
	for _, bc := range []struct {
		name string
		run  func(func())
	}{
		{"go", func(f func()) { go f() }},
		{"workers", Go},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var wg sync.WaitGroup
			b.ReportAllocs()
			for b.Loop() {
				wg.Add(8)
				for range 8 {
					bc.run(func() { deep(32); wg.Done() })
				}
				wg.Wait()
			}
		})
	}
}
