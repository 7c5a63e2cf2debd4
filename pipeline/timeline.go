package pipeline

import (
	"sync"
	"time"
)

// timelineCap bounds the points a timeline keeps: when it is full, every
// other point is dropped and the interval doubles, so a run of any length
// keeps between half and all of timelineCap points, evenly spaced.
const timelineCap = 512

// timeline samples a run's progress for the manifest. Its zero value is
// ready to use; it is safe for concurrent use.
type timeline struct {
	mu    sync.Mutex
	pts   []TimePoint
	every time.Duration
}

// start samples r every interval (one second at first) until the
// returned function is called; that function takes a last sample and
// waits for the sampler to end.
func (tl *timeline) start(r *Run) (stop func()) {
	tl.mu.Lock()
	tl.every = time.Second
	tl.mu.Unlock()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			tl.mu.Lock()
			d := tl.every
			tl.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-done:
				t.Stop()
				tl.sample(r)
				return
			case <-t.C:
				tl.sample(r)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func (tl *timeline) sample(r *Run) {
	p := TimePoint{Seconds: time.Since(r.started).Seconds()}
	for _, c := range r.Progress() {
		p.Kept += c.Kept
	}
	t := SumStats(r.Stats())
	p.Calls, p.CostUSD = t.Calls-t.CacheHits, t.CostUSD
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.pts = append(tl.pts, p)
	if len(tl.pts) >= timelineCap {
		kept := tl.pts[:0]
		for i := 1; i < len(tl.pts); i += 2 {
			kept = append(kept, tl.pts[i])
		}
		tl.pts = kept
		tl.every *= 2
	}
}

// points returns a copy of the samples so far.
func (tl *timeline) points() []TimePoint {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]TimePoint{}, tl.pts...)
}
