package llm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func TestCacheGetPut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "cache.db")
	c, err := OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Get("k"); found || err != nil {
		t.Fatalf("Get on an empty cache = %v, %v", found, err)
	}
	want := Response{Text: "héllo", FinishReason: "stop", PromptTokens: 3, CompletionTokens: 4, Latency: 1234 * time.Millisecond, Cached: true}
	if err := c.Put("k", want); err != nil {
		t.Fatal(err)
	}
	c = reopen(t, c)
	got, found, err := c.Get("k")
	if err != nil || !found {
		t.Fatalf("Get after reopen = %v, %v", found, err)
	}
	if got != want {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	if n, _ := c.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
}

func TestCacheSecondOpenerGetsClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// flock locks belong to the open file, so a second open in this process
	// conflicts exactly as another process would.
	start := time.Now()
	_, err = OpenCache(path)
	if !errors.Is(err, ErrCacheLocked) {
		t.Fatalf("second open: %v, want ErrCacheLocked", err)
	}
	if want := "response cache " + path + " is in use by another ensinstruct process"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second open took %v to fail", d)
	}
	// The first opener is unaffected.
	if err := c.Put("k", Response{Text: "x"}); err != nil {
		t.Errorf("Put after the failed second open: %v", err)
	}
}

// TestCacheKeyStable: the keys of existing caches never change.
func TestCacheKeyStable(t *testing.T) {
	base := Request{Prompt: "p", MaxTokens: 5, Temperature: 0.7, TopP: 1, TopK: 50, Seed: ptr[int64](1), Stop: []string{"a", "b"}}
	chat := Request{Messages: []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "héllo"}}, MaxTokens: 256}
	for _, c := range []struct{ got, want string }{
		{CacheKey("ollama http://h:1", "m", base, 0), "5e092fdd82c65f2c29063b9a3aa99f68276d123ca477669d7b203373af9fc2c4"},
		{CacheKey("openai https://api.example.com/v1", "gpt", chat, 3), "d818d2a7fc2822046ac6a3bcae65da21ab0f7df213d201326f7e4317786ccb61"},
	} {
		if c.got != c.want {
			t.Errorf("key %s, want %s", c.got, c.want)
		}
	}
}

func TestCacheKey(t *testing.T) {
	base := Request{Prompt: "p", MaxTokens: 5, Temperature: 0.7, TopP: 1, TopK: 50, Seed: ptr[int64](1), Stop: []string{"a", "b"}}
	k := CacheKey("ollama http://h:1", "m", base, 0)
	if len(k) != 64 {
		t.Fatalf("key %q is not hex sha256", k)
	}
	// Pinned: changing the encoding invalidates every cache, so it must be
	// on purpose.
	if want := CacheKey("ollama http://h:1", "m", base, 0); k != want {
		t.Errorf("not stable: %s vs %s", k, want)
	}
	variants := map[string]func() (string, string, Request, int){
		"endpoint": func() (string, string, Request, int) { return "ollama http://h:2", "m", base, 0 },
		"model":    func() (string, string, Request, int) { return "ollama http://h:1", "m2", base, 0 },
		"sample":   func() (string, string, Request, int) { return "ollama http://h:1", "m", base, 1 },
		"prompt": func() (string, string, Request, int) {
			r := base
			r.Prompt = "q"
			return "ollama http://h:1", "m", r, 0
		},
		"as messages": func() (string, string, Request, int) {
			r := base
			r.Prompt = ""
			r.Messages = []Message{{"user", "p"}}
			return "ollama http://h:1", "m", r, 0
		},
		"max tokens": func() (string, string, Request, int) {
			r := base
			r.MaxTokens = 6
			return "ollama http://h:1", "m", r, 0
		},
		"temperature": func() (string, string, Request, int) {
			r := base
			r.Temperature = 0.71
			return "ollama http://h:1", "m", r, 0
		},
		"top p":   func() (string, string, Request, int) { r := base; r.TopP = 0.9; return "ollama http://h:1", "m", r, 0 },
		"top k":   func() (string, string, Request, int) { r := base; r.TopK = 40; return "ollama http://h:1", "m", r, 0 },
		"no seed": func() (string, string, Request, int) { r := base; r.Seed = nil; return "ollama http://h:1", "m", r, 0 },
		"seed 0": func() (string, string, Request, int) {
			r := base
			r.Seed = ptr[int64](0)
			return "ollama http://h:1", "m", r, 0
		},
		"stop order": func() (string, string, Request, int) {
			r := base
			r.Stop = []string{"b", "a"}
			return "ollama http://h:1", "m", r, 0
		},
		"stop split": func() (string, string, Request, int) {
			r := base
			r.Stop = []string{"ab"}
			return "ollama http://h:1", "m", r, 0
		},
	}
	seen := map[string]string{k: "base"}
	for name, v := range variants {
		e, m, r, s := v()
		got := CacheKey(e, m, r, s)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s gives the same key as %s", name, prev)
		}
		seen[got] = name
	}
	// Messages with moved boundaries differ.
	a := CacheKey("e", "m", Request{Messages: []Message{{"user", "ab"}, {"user", "c"}}}, 0)
	b := CacheKey("e", "m", Request{Messages: []Message{{"user", "a"}, {"user", "bc"}}}, 0)
	if a == b {
		t.Error("message boundaries are not part of the key")
	}
	if EndpointID(BackendOpenAI, "HTTPS://user:secret@API.example.com/v1/") != "openai https://api.example.com/v1" {
		t.Errorf("EndpointID = %q", EndpointID(BackendOpenAI, "HTTPS://user:secret@API.example.com/v1/"))
	}
}

// cacheChildEnv makes the test binary act as the child of
// TestCacheSurvivesSIGKILL: it writes entries to the cache at the path in the
// variable, printing the index of each write once Put has returned, until
// killed. With cacheChildBehindEnv set it writes behind, committing every
// millisecond and flushing every tenth Put.
const (
	cacheChildEnv       = "ENSINSTRUCT_TEST_CACHE_CHILD"
	cacheChildBehindEnv = "ENSINSTRUCT_TEST_CACHE_CHILD_BEHIND"
)

func childResponse(i int) Response {
	return Response{Text: strings.Repeat(fmt.Sprintf("entry %d ", i), 1+i%50), FinishReason: "stop", CompletionTokens: i}
}

func TestCacheChildWriter(t *testing.T) {
	path := os.Getenv(cacheChildEnv)
	if path == "" {
		t.Skip("helper for TestCacheSurvivesSIGKILL")
	}
	behind := os.Getenv(cacheChildBehindEnv) != ""
	var opts []CacheOption
	if behind {
		opts = append(opts, CacheWriteBehind(time.Millisecond))
	}
	c, err := OpenCache(path, opts...)
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(3)
	}
	for i := 0; ; i++ {
		if err := c.Put(fmt.Sprintf("key-%d", i), childResponse(i)); err != nil {
			fmt.Println("put error:", err)
			os.Exit(3)
		}
		if behind && i%10 == 9 {
			if err := c.Flush(); err != nil {
				fmt.Println("flush error:", err)
				os.Exit(3)
			}
		}
		fmt.Println(i)
	}
}

// TestCacheSurvivesSIGKILL kills a process writing to the cache, three times
// with synchronous Puts and nine times writing behind, and checks that every
// entry whose Put returned is there after reopening. The write-behind child
// commits every millisecond and after every tenth Put, so its kills land
// inside a group commit, between a commit and the journal's rewrite, or
// inside a Put's journal write.
func TestCacheSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "cache.db")
	for round := range 12 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCacheChildWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), cacheChildEnv+"="+path)
		if round >= 3 {
			cmd.Env = append(cmd.Env, cacheChildBehindEnv+"=1")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it commit some entries, then kill it mid-write (it writes
		// without pause, so the kill lands inside a transaction most of
		// the time).
		sc := bufio.NewScanner(out)
		committed := -1
		target := 20 + 37*(round%4) + round
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child: %s", sc.Text())
			}
			committed = n
			if n >= target {
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Entries the child reported after our read are committed too.
		for sc.Scan() {
			if n, err := strconv.Atoi(sc.Text()); err == nil {
				committed = n
			}
		}
		cmd.Wait()
		if committed < target {
			t.Fatalf("round %d: child committed only %d entries", round, committed+1)
		}

		// The file must be consistent and hold every committed entry.
		db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second, ReadOnly: true})
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		err = db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		db.Close()
		if err != nil {
			t.Fatalf("round %d: consistency check: %v", round, err)
		}
		c, err := OpenCache(path)
		if err != nil {
			t.Fatalf("round %d: OpenCache after SIGKILL: %v", round, err)
		}
		for i := 0; i <= committed; i++ {
			got, found, err := c.Get(fmt.Sprintf("key-%d", i))
			if err != nil || !found {
				t.Fatalf("round %d: entry %d of %d committed: found=%v err=%v", round, i, committed+1, found, err)
			}
			want := childResponse(i)
			want.Cached = true
			if got != want {
				t.Fatalf("round %d: entry %d = %+v, want %+v", round, i, got, want)
			}
		}
		// The reopened cache takes writes.
		if err := c.Put("after", Response{Text: "x"}); err != nil {
			t.Fatalf("round %d: Put after SIGKILL: %v", round, err)
		}
		c.Close()
	}
}

func TestCachePutMany(t *testing.T) {
	c, err := OpenCache(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := []string{"a", "b", "c"}
	resps := []Response{{Text: "1"}, {Text: "2", PromptTokens: 3}, {Text: "3", FinishReason: "stop"}}
	if err := c.PutMany(keys, resps); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		got, found, err := c.Get(k)
		want := resps[i]
		want.Cached = true
		if err != nil || !found || got != want {
			t.Errorf("%s: %+v %v %v, want %+v", k, got, found, err, want)
		}
	}
	if err := c.PutMany(keys, resps[:1]); err == nil {
		t.Error("mismatched keys and responses accepted")
	}
}

func TestCacheWriteBehind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheWriteBehind(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Text: "queued", FinishReason: "stop", CompletionTokens: 2}
	if err := c.Put("k", want); err != nil {
		t.Fatal(err)
	}
	// Readable at once, before any commit.
	if stored(t, c, "k") {
		t.Fatal("the entry was committed before its interval")
	}
	got, found, err := c.Get("k")
	want.Cached = true
	if err != nil || !found || got != want {
		t.Fatalf("Get of a queued entry = %+v, %v, %v; want %+v", got, found, err, want)
	}
	if ok, err := c.Has("k"); !ok || err != nil {
		t.Fatalf("Has of a queued entry = %v, %v", ok, err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if !stored(t, c, "k") {
		t.Fatal("Flush did not commit the entry")
	}
	// A full queue commits without waiting for the interval.
	for i := range writeBehindBatch {
		if err := c.Put(fmt.Sprintf("full-%d", i), Response{Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !stored(t, c, fmt.Sprintf("full-%d", writeBehindBatch-1)) {
		if time.Now().After(deadline) {
			t.Fatal("a full queue was not committed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Range sees a queued entry.
	if err := c.Put("ranged", Response{Text: "r"}); err != nil {
		t.Fatal(err)
	}
	seen := false
	if err := c.Range(func(key string, _ Response) error {
		seen = seen || key == "ranged"
		return nil
	}); err != nil || !seen {
		t.Fatalf("Range of a queued entry: seen=%v err=%v", seen, err)
	}
	// Close commits the rest; Puts after it fail.
	if err := c.Put("last", Response{Text: "y"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("late", Response{Text: "z"}); err == nil {
		t.Fatal("Put after Close succeeded")
	}
	c, err = OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Len(); n != 1+writeBehindBatch+2 || err != nil {
		t.Fatalf("after reopening: %d entries, %v; want %d", n, err, writeBehindBatch+3)
	}
}

func TestCacheWriteBehindInterval(t *testing.T) {
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache.db"), CacheWriteBehind(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put("k", Response{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	// The commit becomes visible a moment before the committer drops the
	// entry from its queue, so wait for both.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, queued := c.wb.get("k")
		if !queued && stored(t, c, "k") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s at a 20 ms interval: queued=%v stored=%v", queued, stored(t, c, "k"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// SetWriteBehind shortens an hour-long interval: the entry is committed
// within seconds.
func TestCacheSetWriteBehind(t *testing.T) {
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache.db"), CacheWriteBehind(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteBehind(20 * time.Millisecond)
	if err := c.Put("k", Response{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !stored(t, c, "k") {
		if time.Now().After(deadline) {
			t.Fatal("the entry waited for the old interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A synchronous cache stays synchronous.
	s, err := OpenCache(filepath.Join(t.TempDir(), "sync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetWriteBehind(time.Second)
	if err := s.Put("k", Response{Text: "x"}); err != nil || !stored(t, s, "k") {
		t.Fatalf("a synchronous Put after SetWriteBehind: err=%v stored=%v", err, stored(t, s, "k"))
	}
}

// TestCacheWriteBehindFailure: a failed commit keeps its entries readable
// and queued, and the next Put reports it, once.
func TestCacheWriteBehindFailure(t *testing.T) {
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache.db"), CacheWriteBehind(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c.db.Close() // every commit from here on fails
	if err := c.Put("k", Response{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	// The committer's next tick fails; a Put then reports it.
	deadline := time.Now().Add(10 * time.Second)
	var perr error
	for i := 0; perr == nil; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no Put reported the failed commit")
		}
		time.Sleep(5 * time.Millisecond)
		perr = c.Put(fmt.Sprintf("k%d", i), Response{Text: "y"})
	}
	if !errors.Is(perr, bolterrors.ErrDatabaseNotOpen) {
		t.Fatalf("Put after a failed commit = %v, want the commit's error", perr)
	}
	if _, found, err := c.Get("k"); !found || err != nil {
		t.Fatalf("after a failed commit: found=%v err=%v", found, err)
	}
	if err := c.Flush(); err == nil {
		t.Fatal("Flush into a closed file succeeded")
	}
	if err := c.Close(); err == nil {
		t.Fatal("Close with entries it could not commit succeeded")
	}
}

// PutMany on a write-behind cache is durable when it returns, and wins
// over a value queued earlier under the same key.
func TestCacheWriteBehindPutMany(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheWriteBehind(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put("k", Response{Text: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutMany([]string{"k", "j"}, []Response{{Text: "new"}, {Text: "j"}}); err != nil {
		t.Fatal(err)
	}
	if !stored(t, c, "k") || !stored(t, c, "j") {
		t.Fatal("PutMany returned before its entries were committed")
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c = reopen(t, c)
	if r, found, err := c.Get("k"); err != nil || !found || r.Text != "new" {
		t.Fatalf("after PutMany over a queued value: %q, %v, %v; want \"new\"", r.Text, found, err)
	}
}

// stored reports whether key is committed in c's file, not only queued.
func stored(t *testing.T, c *Cache, key string) bool {
	t.Helper()
	var found bool
	err := c.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(responsesBucket).Get([]byte(key)) != nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// Concurrent Puts, Gets and commits: every entry is readable from the
// moment its Put returns, through its commit, and after reopening.
func TestCacheWriteBehindConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheWriteBehind(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				want := childResponse(w*each + i)
				if err := c.Put(key, want); err != nil {
					t.Error(err)
					return
				}
				// Read it back, and an earlier one, while commits run.
				for _, k := range []int{i, i / 2} {
					got, found, err := c.Get(fmt.Sprintf("w%d-%d", w, k))
					want := childResponse(w*each + k)
					want.Cached = true
					if err != nil || !found || got != want {
						t.Errorf("Get %d of writer %d: found=%v err=%v", k, w, found, err)
						return
					}
				}
				if i%50 == 0 {
					if err := c.Flush(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	c = reopen(t, c)
	if n, err := c.Len(); n != writers*each || err != nil {
		t.Fatalf("%d entries after reopening (%v), want %d", n, err, writers*each)
	}
}

// reopen closes c and opens its file again, synchronously, to be closed at
// the end of the test.
func reopen(t *testing.T, c *Cache) *Cache {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// In a cache whose file was empty when opened, a Get or Has of a key never
// put misses without a read transaction; put keys are found, and a file
// that held entries when opened is read for every key.
func TestCacheFreshMisses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheWriteBehind(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	before := c.db.Stats().TxN
	if _, found, err := c.Get("never"); found || err != nil {
		t.Fatalf("Get of a key never put: found=%v err=%v", found, err)
	}
	if ok, err := c.Has("never"); ok || err != nil {
		t.Fatalf("Has of a key never put: %v %v", ok, err)
	}
	if n := c.db.Stats().TxN - before; n != 0 {
		t.Errorf("%d read transactions for keys a fresh cache never stored", n)
	}
	if err := c.Put("a", Response{Text: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutMany([]string{"b"}, []Response{{Text: "b"}}); err != nil {
		t.Fatal(err)
	}
	c = reopen(t, c)
	if c.own != nil {
		t.Fatal("a cache opened on a file with entries trusts its own keys only")
	}
	for _, k := range []string{"a", "b"} {
		if r, found, err := c.Get(k); !found || err != nil || r.Text != k {
			t.Fatalf("Get %s after reopening: %+v %v %v", k, r, found, err)
		}
	}
}
