package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// JournalFile is the name of the write-ahead journal in the run directory.
const JournalFile = "batches.jsonl"

// The journal's operations, in the order a job goes through them.
const (
	opIntent  = "intent"  // the job's requests, before anything is uploaded
	opFile    = "file"    // its input file was uploaded
	opBatch   = "batch"   // the job was created
	opDone    = "done"    // it ended and every result was read
	opAbandon = "abandon" // it was never created; its requests are free
)

// entry is one line of the journal. Lines are appended and synced to disk
// one at a time; a process killed mid-line leaves a torn last line, which
// the next open drops (the step it recorded had not happened yet as far
// as the run is concerned).
type entry struct {
	Op    string    `json:"op"`
	Local string    `json:"local"`
	At    time.Time `json:"at"`

	// intent
	Model        string   `json:"model,omitempty"`         // the pool's name
	BackendModel string   `json:"backend_model,omitempty"` // the server's name
	Endpoint     string   `json:"endpoint,omitempty"`      // the base URL, without credentials
	URL          string   `json:"url,omitempty"`           // the API the lines call
	Keys         []string `json:"keys,omitempty"`

	FileID  string `json:"file_id,omitempty"`  // file
	BatchID string `json:"batch_id,omitempty"` // batch

	// done
	Status    string  `json:"status,omitempty"`
	Completed int     `json:"completed,omitempty"`
	Failed    int     `json:"failed,omitempty"`
	CostUSD   float64 `json:"cost_usd,omitempty"`
	// abandon
	Reason string `json:"reason,omitempty"`
}

// journal is the append-only, fsynced log of the run directory's jobs. It
// is safe for concurrent use.
type journal struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openJournal opens (creating it if needed) the journal in dir and
// returns its entries. A torn last line is cut off; any other line that
// is not an entry is an error naming the file and line.
func openJournal(dir string) (*journal, []entry, error) {
	path := filepath.Join(dir, JournalFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("batch journal: %w", err)
	}
	entries, good, err := readJournal(f, path)
	if err == nil {
		err = cutTail(f, good)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &journal{path: path, f: f}, entries, nil
}

// readJournal decodes the entries and returns the length of the intact
// prefix.
func readJournal(f *os.File, path string) ([]entry, int64, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var entries []entry
	var good int64
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A last line without its newline was being written when
			// the process died.
			return entries, good, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("batch journal %s: %w", path, err)
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil || e.Op == "" || e.Local == "" {
			if _, peekErr := r.Peek(1); errors.Is(peekErr, io.EOF) && err != nil {
				return entries, good, nil // a torn last line that happens to end in a newline
			}
			return nil, 0, fmt.Errorf("batch journal %s:%d: not a journal entry (remove the file only if no batch job of this run can still be live)", path, line)
		}
		entries = append(entries, e)
		good += int64(len(b))
	}
}

// cutTail truncates f to its intact prefix and positions it for appends.
func cutTail(f *os.File, good int64) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	if st.Size() != good {
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("batch journal: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("batch journal: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	return nil
}

// syncDir makes a newly created file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("batch journal: syncing %s: %w", dir, err)
	}
	return nil
}

// append writes e as one line and syncs it to disk before returning.
func (j *journal) append(e entry) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("batch journal: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("batch journal %s: closed", j.path)
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("batch journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("batch journal %s: %w", j.path, err)
	}
	return nil
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// hasLive reports whether the journal in dir records a job that was not
// known to be over.
func hasLive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil {
		return false
	}
	over := map[string]bool{}
	var locals []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e entry
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		switch e.Op {
		case opIntent:
			locals = append(locals, e.Local)
		case opDone, opAbandon:
			over[e.Local] = true
		}
	}
	for _, l := range locals {
		if !over[l] {
			return true
		}
	}
	return false
}
