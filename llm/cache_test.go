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
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
// variable, printing the index of each committed write, until killed.
const cacheChildEnv = "ENSINSTRUCT_TEST_CACHE_CHILD"

func childResponse(i int) Response {
	return Response{Text: strings.Repeat(fmt.Sprintf("entry %d ", i), 1+i%50), FinishReason: "stop", CompletionTokens: i}
}

func TestCacheChildWriter(t *testing.T) {
	path := os.Getenv(cacheChildEnv)
	if path == "" {
		t.Skip("helper for TestCacheSurvivesSIGKILL")
	}
	c, err := OpenCache(path)
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(3)
	}
	for i := 0; ; i++ {
		if err := c.Put(fmt.Sprintf("key-%d", i), childResponse(i)); err != nil {
			fmt.Println("put error:", err)
			os.Exit(3)
		}
		fmt.Println(i)
	}
}

func TestCacheSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "cache.db")
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCacheChildWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), cacheChildEnv+"="+path)
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
		target := 20 + 37*round
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
