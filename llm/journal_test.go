package llm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// abandon leaves c as a killed process would: the file closed without a
// commit, the journal as written.
func abandon(t *testing.T, c *Cache) {
	t.Helper()
	c.wb.mu.Lock()
	c.wb.stopped = true
	c.wb.mu.Unlock()
	close(c.wb.quit)
	<-c.wb.done
	c.wb.journal.f.Close()
	if err := c.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// journalled opens a write-behind cache that will not commit on its own,
// in a new directory, and puts n entries into it.
func journalled(t *testing.T, n int) (string, *Cache) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheWriteBehind(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := c.Put(fmt.Sprintf("k%d", i), childResponse(i)); err != nil {
			t.Fatal(err)
		}
	}
	return path, c
}

// Entries put but never committed come back from the journal, the later
// of two values under one key wins, and the journal is gone afterwards.
func TestJournalReplay(t *testing.T) {
	path, c := journalled(t, 100)
	if err := c.Put("k7", Response{Text: "newer"}); err != nil {
		t.Fatal(err)
	}
	if stored(t, c, "k0") {
		t.Fatal("committed before its interval: the test shows nothing")
	}
	abandon(t, c)

	c, err := OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 100 {
		want := childResponse(i)
		if i == 7 {
			want = Response{Text: "newer"}
		}
		want.Cached = true
		got, found, err := c.Get(fmt.Sprintf("k%d", i))
		if err != nil || !found || got != want {
			t.Fatalf("k%d after replay: %+v %v %v, want %+v", i, got, found, err, want)
		}
		if !stored(t, c, fmt.Sprintf("k%d", i)) {
			t.Fatalf("k%d is not committed after replay", i)
		}
	}
	if _, err := os.Stat(path + journalSuffix); !os.IsNotExist(err) {
		t.Errorf("the journal is still there after replay: %v", err)
	}
}

// A torn last record (a crash inside a write, or a power cut) and a
// corrupted one stop the replay there: the records before it are kept.
func TestJournalTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(b []byte) []byte
	}{
		{"short header", func(b []byte) []byte { return append(b, 1, 2, 3) }},
		{"short payload", func(b []byte) []byte {
			r := appendRecord(nil, "torn", []byte(`{"text":"x"}`))
			return append(b, r[:len(r)-3]...)
		}},
		{"bad checksum", func(b []byte) []byte {
			r := appendRecord(nil, "torn", []byte(`{"text":"x"}`))
			r[len(r)-1] ^= 0xff
			return append(append(b, r...), appendRecord(nil, "after", []byte(`{"text":"y"}`))...)
		}},
		{"huge length", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, c := journalled(t, 3)
			abandon(t, c)
			b, err := os.ReadFile(path + journalSuffix)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+journalSuffix, tc.tear(b), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err = OpenCache(path)
			if err != nil {
				t.Fatalf("OpenCache with a torn journal: %v", err)
			}
			defer c.Close()
			if n, err := c.Len(); n != 3 || err != nil {
				t.Fatalf("%d entries, %v; want the 3 before the tear", n, err)
			}
		})
	}
}

// A commit leaves in the journal only what is still queued; Close removes
// it; a rewrite a crash interrupted (the .tmp file) is ignored.
func TestJournalAfterCommit(t *testing.T) {
	path, c := journalled(t, 50)
	big, err := os.Stat(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("late", Response{Text: "late"}); err != nil {
		t.Fatal(err)
	}
	small, err := os.Stat(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(appendRecord(nil, "late", mustJSON(t, Response{Text: "late"})))); small.Size() != want {
		t.Fatalf("journal after a commit and one Put: %d bytes (before the commit %d), want %d", small.Size(), big.Size(), want)
	}
	if err := os.WriteFile(path+journalSuffix+".tmp", []byte("half a rewrite"), 0o644); err != nil {
		t.Fatal(err)
	}
	abandon(t, c)
	c, err = OpenCache(path, CacheWriteBehind(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Len(); n != 51 || err != nil {
		t.Fatalf("%d entries, %v; want 51", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + journalSuffix, path + journalSuffix + ".tmp"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there after Close: %v", filepath.Base(p), err)
		}
	}
}

func mustJSON(t *testing.T, r Response) []byte {
	t.Helper()
	b, err := json.Marshal(r) // as Put encodes it
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A rewrite keeps the entries still queued, and the records appended
// after it follow them: a crash then replays all of them.
func TestJournalRewriteKeepsQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	val := func(i int) []byte { return mustJSON(t, childResponse(i)) }
	for i := range 3 {
		if err := j.append(fmt.Sprintf("k%d", i), val(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.rewrite(map[string]queuedEntry{"k1": {val: val(1)}, "k2": {val: val(2)}}); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 5; i++ {
		if err := j.append(fmt.Sprintf("k%d", i), val(i)); err != nil {
			t.Fatal(err)
		}
	}
	j.f.Close() // as a killed process leaves it

	c, err := OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Len(); n != 4 || err != nil {
		t.Fatalf("%d entries, %v; want k1 to k4", n, err)
	}
	for i := 1; i < 5; i++ {
		if r, ok, err := c.Get(fmt.Sprintf("k%d", i)); !ok || err != nil || r.Text != childResponse(i).Text {
			t.Errorf("k%d: %v %v %q", i, ok, err, r.Text)
		}
	}
}
