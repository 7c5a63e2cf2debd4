package gcfloor

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{8 * mib, 64 * mib, 800},
		{6 * mib, 64 * mib, 1067}, // rounded up: the headroom is at least the floor
		{3 * mib, 64 * mib, 1600}, // below 4 MiB, as at 4 MiB
		{64 * mib, 64 * mib, 100},
		{500 * mib, 64 * mib, 100},
		{1, 64 * mib, 1600},
		{0, 64 * mib, 1600},
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
		if p := Percent(c.live, c.floor); c.live >= minHeap && c.live < c.floor && c.live*uint64(p)/100 < c.floor {
			t.Errorf("Percent(%d, %d) = %d leaves less headroom than the floor", c.live, c.floor, p)
		}
	}
}

// The tests that change the process's GC setting run in a child process,
// so that they neither depend on nor disturb the others.
func TestMain(m *testing.M) {
	if name := os.Getenv("GCFLOOR_CHILD"); name != "" {
		switch name {
		case "follow":
			os.Unsetenv("GOGC")
			childFollow()
		case "gogc":
			childGOGC()
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(t *testing.T, name string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"GCFLOOR_CHILD=" + name}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// heap reads the live heap and the goal of the next collection.
func heap() (live, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// percentNow returns the GC percentage in force.
func percentNow() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// collect runs a collection and waits until the tuner has seen it.
func collect(want func(int) bool) int {
	deadline := time.Now().Add(30 * time.Second) // a loaded machine runs cleanups late
	for {
		runtime.GC()
		p := percentNow()
		if want(p) || time.Now().After(deadline) {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var keep [][]byte

func fail(format string, args ...any) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func childFollow() {
	const floor = 64 << 20
	if !Start(floor) {
		fail("Start did not start with GOGC unset")
	}
	// A small live heap: the goal is about live + floor.
	p := collect(func(p int) bool { return p > 100 })
	live, goal := heap()
	if p <= 100 {
		fail("percent %d with %d bytes live, want > 100", p, live)
	}
	if want := max(live+floor, floor+minHeap); goal < want*9/10 || goal > want*11/10 {
		fail("goal %d with %d bytes live, want about %d", goal, live, want)
	}
	// A live heap above the floor: as GOGC=100.
	for range 12 {
		keep = append(keep, make([]byte, 8<<20)) // live to the collector, touched or not
	}
	p = collect(func(p int) bool { return p == 100 })
	if p != 100 {
		live, _ := heap()
		fail("percent %d with %d bytes live, want 100", p, live)
	}
	// Small again: the floor comes back.
	keep = nil
	p = collect(func(p int) bool { return p > 100 })
	if p <= 100 {
		fail("percent %d after the heap shrank, want > 100", p)
	}
	os.Stdout.WriteString("ok\n")
}

func childGOGC() {
	before := percentNow()
	if Start(64 << 20) {
		fail("Start started with GOGC set")
	}
	runtime.GC()
	if p := percentNow(); p != before {
		fail("percent %d, want the GOGC setting %d", p, before)
	}
	os.Stdout.WriteString("ok\n")
}

func TestFollowsLiveHeap(t *testing.T) {
	if out := runChild(t, "follow"); !strings.Contains(out, "ok") {
		t.Fatal(out)
	}
}

func TestGOGCWins(t *testing.T) {
	if out := runChild(t, "gogc", "GOGC=150"); !strings.Contains(out, "ok") {
		t.Fatal(out)
	}
}
