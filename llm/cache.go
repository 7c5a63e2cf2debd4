package llm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCacheLocked is returned by OpenCache when another process holds the
// cache file.
var ErrCacheLocked = errors.New("response cache is locked")

// cacheLockWait is how long OpenCache waits for the file lock.
const cacheLockWait = 250 * time.Millisecond

// cacheBatchDelay is how long a Put waits for other Puts to share its
// commit: short next to a model call, long enough to group the writes of
// calls that finish together.
const cacheBatchDelay = 10 * time.Millisecond

// cacheInitialMmap is how much of the cache file bbolt maps when it
// opens. On Windows bbolt grows the file to what it maps, so there it maps
// what the file holds, as by default.
var cacheInitialMmap = func() int {
	if runtime.GOOS == "windows" {
		return 0
	}
	return 64 << 20
}()

var (
	responsesBucket = []byte("responses.v1")
	metaBucket      = []byte("meta")
)

// WriteBehind is the commit interval of the caches generate and filter
// keep (see CacheWriteBehind). Their entries are journalled as they are
// put, so a killed run pays again only the calls in flight, however long
// the interval; a long one lets each commit share its pages among more
// entries (with a commit every 32 Puts an entry costs about 25 µs of CPU,
// with one every 1,500 about 11: BenchmarkCache/put-behind).
const WriteBehind = 5 * time.Second

// writeBehindBatch is how many waiting entries make a write-behind cache
// commit before its interval is up.
const writeBehindBatch = 4096

// journalSync is how often a write-behind cache makes its journal durable
// against power loss (fsync), when something was written since. Against a
// killed process a journalled entry is safe once Put returns.
const journalSync = time.Second

// Cache is the on-disk response cache: a bbolt file mapping CacheKey hashes
// to Responses. By default every Put is a committed transaction before it
// returns, so a response stored before a crash is there after it; with
// CacheWriteBehind, Puts are journalled at once and committed together
// later. The zero value is not usable; open one with OpenCache. It is safe
// for concurrent use; one process at a time may open a file.
type Cache struct {
	db   *bolt.DB
	path string
	wb   *writeBehind // nil: every Put commits before it returns

	// own is set when the file held no response at OpenCache: every key
	// stored since was put through this Cache, and own holds their
	// fingerprints, so that a Get or Has of another key (every new call
	// of a fresh run) misses without a read transaction.
	ownMu sync.Mutex
	own   map[uint64]struct{}
}

// ownSeed seeds the fingerprints of Cache.own.
var ownSeed = maphash.MakeSeed()

// putOwn records that key is stored, or about to be.
func (c *Cache) putOwn(key string) {
	if c.own == nil {
		return
	}
	h := maphash.String(ownSeed, key)
	c.ownMu.Lock()
	c.own[h] = struct{}{}
	c.ownMu.Unlock()
}

// absent reports whether key is certainly not stored.
func (c *Cache) absent(key string) bool {
	if c.own == nil {
		return false
	}
	h := maphash.String(ownSeed, key)
	c.ownMu.Lock()
	_, ok := c.own[h]
	c.ownMu.Unlock()
	return !ok
}

// A CacheOption changes how OpenCache opens a cache.
type CacheOption func(*Cache)

// CacheWriteBehind makes Put append the entry to a journal beside the file
// (its path with "-journal" added) and return: Get and Has see it at once,
// and the queue is committed into the file in one transaction every
// interval (sooner once 4,096 entries wait), by Flush, and by Close, which
// removes the journal. A process killed at any moment, inside a commit or
// not, loses no entry whose Put returned: the next OpenCache commits what
// the journal holds. The journal is made durable against power loss once
// a second, so a power cut loses the last second's entries at most. A Put
// costs one write to the journal instead of its share of a commit (two
// fdatasyncs, and the pages its entry dirties: a hash key dirties a leaf of
// its own once the file holds a few hundred entries). interval ≤ 0 leaves
// every Put synchronous.
func CacheWriteBehind(interval time.Duration) CacheOption {
	return func(c *Cache) {
		if interval > 0 {
			c.wb = new(writeBehind)
			c.wb.interval.Store(int64(interval))
		}
	}
}

// SetWriteBehind changes the commit interval of a write-behind cache, from
// its next tick on. The interval decides how the commits' cost is spread,
// not what a crash loses (the journal holds every entry). It does nothing
// to a synchronous cache or for interval ≤ 0.
func (c *Cache) SetWriteBehind(interval time.Duration) {
	if c == nil || c.wb == nil || interval <= 0 {
		return
	}
	c.wb.interval.Store(int64(interval))
	select {
	case c.wb.reset <- struct{}{}:
	default: // a change is already signalled; it reads the latest interval
	}
}

// OpenCache opens (creating it and its directory if needed) the cache at
// path. If another process has it open, it fails within a fraction of a
// second with an error that wraps ErrCacheLocked and says so.
func OpenCache(path string, opts ...CacheOption) (*Cache, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("response cache %s: %w", path, err)
		}
	}
	// The initial mapping is address space, not memory: mapped at 64 MiB
	// from the start, a growing cache is not remapped (each remap copies
	// every key and value the open transaction holds to the heap) until
	// it is past that.
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: cacheLockWait, InitialMmapSize: cacheInitialMmap})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("response cache %s is in use by another ensinstruct process: %w", path, ErrCacheLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening response cache %s: %w", path, err)
	}
	db.MaxBatchDelay = cacheBatchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(responsesBucket); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		if meta.Get([]byte("format")) == nil {
			return meta.Put([]byte("format"), []byte("ensinstruct response cache v1"))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening response cache %s: %w", path, err)
	}
	// Entries a killed write-behind process journalled but did not commit.
	if _, err := replayJournal(db, path); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening response cache %s: %w", path, err)
	}
	c := &Cache{db: db, path: path}
	err = db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(responsesBucket).Cursor().First(); k == nil {
			c.own = make(map[uint64]struct{})
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening response cache %s: %w", path, err)
	}
	for _, o := range opts {
		o(c)
	}
	if c.wb != nil {
		if err := c.wb.start(c); err != nil {
			db.Close()
			return nil, fmt.Errorf("opening response cache %s: journal: %w", path, err)
		}
	}
	return c, nil
}

// Path returns the file the cache lives in.
func (c *Cache) Path() string { return c.path }

// Get returns the response stored under key, with Cached set.
func (c *Cache) Get(key string) (Response, bool, error) {
	var r Response
	if c.absent(key) {
		return r, false, nil
	}
	if v, ok := c.wb.get(key); ok {
		if err := json.Unmarshal(v, &r); err != nil {
			return Response{}, false, fmt.Errorf("response cache %s: reading %s: %w", c.path, key, err)
		}
		r.Cached = true
		return r, true, nil
	}
	var found bool
	err := c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(responsesBucket).Get([]byte(key))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return Response{}, false, fmt.Errorf("response cache %s: reading %s: %w", c.path, key, err)
	}
	r.Cached = found
	return r, found, nil
}

// Has reports whether a response is stored under key.
func (c *Cache) Has(key string) (bool, error) {
	if c.absent(key) {
		return false, nil
	}
	if _, ok := c.wb.get(key); ok {
		return true, nil
	}
	var found bool
	err := c.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(responsesBucket).Get([]byte(key)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("response cache %s: reading %s: %w", c.path, key, err)
	}
	return found, nil
}

// Put stores r under key and commits (fsync) before it returns; concurrent
// Puts share a commit. With CacheWriteBehind it queues the entry and
// returns at once, with the error of the last failed commit if there was
// one since the last Put (the failed entries stay queued and are tried
// again). The Cached flag is not stored.
func (c *Cache) Put(key string, r Response) error {
	v := appendResponse(make([]byte, 0, len(r.Text)+128), r)
	c.putOwn(key)
	if c.wb != nil {
		if err := c.wb.put(key, v); err != nil {
			return fmt.Errorf("response cache %s: writing: %w", c.path, err)
		}
		return nil
	}
	put := func(tx *bolt.Tx) error {
		return tx.Bucket(responsesBucket).Put([]byte(key), v)
	}
	// Every Put joins a group commit: one transaction (one fsync) for the
	// Puts of the next few milliseconds, each returning once its write is
	// durable. A model call takes far longer than the wait, and a crash
	// loses only the calls whose Put had not returned: those in flight.
	err := c.db.Batch(put)
	if err != nil {
		return fmt.Errorf("response cache %s: writing: %w", c.path, err)
	}
	return nil
}

// PutMany stores every response under its key in one transaction, one
// commit (fsync) for all, before it returns: for results that arrive
// together, such as a batch job's. keys and resps pair up by index.
func (c *Cache) PutMany(keys []string, resps []Response) error {
	if len(keys) != len(resps) {
		return fmt.Errorf("response cache: %d keys for %d responses", len(keys), len(resps))
	}
	vals := make([][]byte, len(resps))
	for i, r := range resps {
		vals[i] = appendResponse(nil, r)
		c.putOwn(keys[i])
	}
	if c.wb != nil {
		// Through the queue, so that a value queued earlier under one of
		// the keys cannot be committed over the new one later.
		for i, k := range keys {
			if err := c.wb.put(k, vals[i]); err != nil {
				return fmt.Errorf("response cache %s: writing: %w", c.path, err)
			}
		}
		return c.Flush()
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(responsesBucket)
		for i, k := range keys {
			if err := b.Put([]byte(k), vals[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("response cache %s: writing: %w", c.path, err)
	}
	return nil
}

// Flush commits the entries a write-behind cache holds queued, and returns
// once they are durable. It does nothing for a synchronous cache.
func (c *Cache) Flush() error {
	if c == nil || c.wb == nil {
		return nil
	}
	if err := c.wb.flush(); err != nil {
		return fmt.Errorf("response cache %s: writing: %w", c.path, err)
	}
	return nil
}

// Len returns the number of stored responses, after committing any queued.
func (c *Cache) Len() (int, error) {
	if err := c.Flush(); err != nil {
		return 0, err
	}
	var n int
	err := c.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(responsesBucket).Stats().KeyN
		return nil
	})
	return n, err
}

// Close commits any queued entries and releases the file and its lock.
func (c *Cache) Close() error {
	var err error
	if c.wb != nil {
		err = c.wb.stop()
	}
	if cerr := c.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("response cache %s: %w", c.path, err)
	}
	return nil
}

// CacheKey returns the cache key of a call: the hex SHA-256 of a canonical,
// length-prefixed encoding of the endpoint identity, the model, every field
// of the request, and the sample index (so that one prompt can be asked for
// several distinct samples). The same inputs give the same key in every
// process and version of this format.
//
// endpointID identifies the server and API (EndpointID builds it); it must
// not contain secrets. model is the backend's model name, extended by the
// Pool with any configured Ollama options that change the output.
func CacheKey(endpointID, model string, req Request, sample int) string {
	bp := keyBufs.Get().(*[]byte)
	w := keyWriter{b: (*bp)[:0]}
	w.str('V', "ensinstruct cache key v1")
	w.str('E', endpointID)
	w.str('M', model)
	if req.Chat() {
		w.num('m', uint64(len(req.Messages)))
		for _, m := range req.Messages {
			w.str('r', m.Role)
			w.str('c', m.Content)
		}
	} else {
		w.str('p', req.Prompt)
	}
	w.num('n', uint64(req.MaxTokens))
	w.float('t', req.Temperature)
	w.float('P', req.TopP)
	w.num('k', uint64(req.TopK))
	if req.Seed != nil {
		w.num('s', uint64(*req.Seed))
	}
	w.num('S', uint64(len(req.Stop)))
	for _, s := range req.Stop {
		w.str('x', s)
	}
	w.num('i', uint64(sample))
	sum := sha256.Sum256(w.b)
	*bp = w.b[:0]
	keyBufs.Put(bp)
	return hex.EncodeToString(sum[:])
}

// EndpointID is the endpoint identity CacheKey expects: the backend and the
// normalized URL without credentials.
func EndpointID(backend Backend, endpoint string) string {
	if u, err := normalizeURL(endpoint); err == nil {
		endpoint = u
	}
	return string(backend) + " " + redactURL(endpoint)
}

// keyBufs holds the buffers CacheKey encodes into: a prompt is kilobytes.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// keyWriter appends tagged, length-prefixed fields to the bytes a key
// hashes.
type keyWriter struct {
	b []byte
}

func (w *keyWriter) num(tag byte, v uint64) {
	w.b = binary.AppendUvarint(append(w.b, tag), v)
}

func (w *keyWriter) str(tag byte, s string) {
	w.num(tag, uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *keyWriter) float(tag byte, f float64) {
	if f == 0 {
		f = 0 // one zero: -0 and +0 mean the same setting
	}
	w.num(tag, math.Float64bits(f))
}
