// Package gcfloor keeps the garbage collector from running often while
// the live heap is small.
//
// With the default GOGC of 100 the collector runs whenever the heap has
// grown by as much as is live, and at least every 4 MiB. A generate run
// keeps only a few MiB live (the novelty index, the queues, the
// connections' buffers) while it allocates about 16 KiB a call for
// requests, replies and cache entries, so at a few hundred calls a
// second it collects every second or two. Each cycle costs more than its
// marking: the stacks of idle workers are shrunk and grow back by
// copying, spans are swept, allocations assist. On the bench endpoint
// (C = 64, L = 200 ms) GOGC=1000 cut the CPU per call by 14%.
//
// Start sets the GC percentage after every cycle so that the next one
// starts when the heap has grown by max(live, floor): as GOGC=100 once
// the live heap is above the floor, and never more than floor bytes above
// what GOGC=100 would allow. It does nothing when GOGC is set in the
// environment: the user's setting wins. A GOMEMLIMIT still caps the heap.
//
// It follows the Go compiler's own starting-heap adjustment: a sentinel
// object whose cleanup runs after each collection re-reads the live heap
// from runtime/metrics and re-arms itself.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultFloor is the headroom the command keeps: 64 MiB, which at a few
// hundred calls a second is a collection every ten seconds or so.
const DefaultFloor = 64 << 20

// minHeap is what the runtime assumes is live before its first cycle.
const minHeap = 4 << 20

var (
	mu    sync.Mutex
	state *tuner
)

type tuner struct {
	floor   uint64
	percent int
	sample  []metrics.Sample
}

// Start keeps the collector's headroom at least floor bytes, for the life
// of the process, unless GOGC is set in the environment. It reports
// whether it did; starting again changes the floor.
func Start(floor uint64) bool {
	if _, set := os.LookupEnv("GOGC"); set || floor == 0 {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	if state != nil {
		state.floor = floor
		state.adjustLocked()
		return true
	}
	state = &tuner{floor: floor, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	state.adjustLocked()
	arm()
	return true
}

// sentinel is the object whose cleanup marks the end of a collection. It
// holds a pointer so that it is not placed in a tiny-allocator block,
// whose cleanups may never run.
type sentinel struct{ _ *sentinel }

func arm() {
	runtime.AddCleanup(new(sentinel), func(struct{}) {
		mu.Lock()
		state.adjustLocked()
		mu.Unlock()
		arm()
	}, struct{}{})
}

// adjustLocked sets the percentage for the live heap now.
func (t *tuner) adjustLocked() {
	metrics.Read(t.sample)
	var live uint64
	if s := t.sample[0]; s.Value.Kind() == metrics.KindUint64 {
		live = s.Value.Uint64()
	}
	p := Percent(live, t.floor)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

// Percent is the GC percentage that makes the next collection start when
// a heap of live bytes has grown by max(live, floor). The runtime's own
// minimum goal, 4 MiB scaled by the percentage, decides below 4 MiB live:
// there the percentage is that of 4 MiB live, and the goal is floor.
func Percent(live, floor uint64) int {
	live = max(live, minHeap)
	if live >= floor {
		return 100
	}
	// Round up: the headroom is at least floor.
	p := (floor*100 + live - 1) / live
	return int(p)
}
