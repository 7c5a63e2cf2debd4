package llm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"os"
	"path/filepath"
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

var (
	responsesBucket = []byte("responses.v1")
	metaBucket      = []byte("meta")
)

// Cache is the on-disk response cache: a bbolt file mapping CacheKey hashes
// to Responses. Every Put is a committed transaction, so a response stored
// before a crash is there after it. The zero value is not usable; open one
// with OpenCache. It is safe for concurrent use; one process at a time may
// open a file.
type Cache struct {
	db   *bolt.DB
	path string
}

// OpenCache opens (creating it and its directory if needed) the cache at
// path. If another process has it open, it fails within a fraction of a
// second with an error that wraps ErrCacheLocked and says so.
func OpenCache(path string) (*Cache, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("response cache %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: cacheLockWait})
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
	return &Cache{db: db, path: path}, nil
}

// Path returns the file the cache lives in.
func (c *Cache) Path() string { return c.path }

// Get returns the response stored under key, with Cached set.
func (c *Cache) Get(key string) (Response, bool, error) {
	var r Response
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
// Puts share a commit. The Cached flag is not stored.
func (c *Cache) Put(key string, r Response) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("response cache: encoding: %w", err)
	}
	put := func(tx *bolt.Tx) error {
		return tx.Bucket(responsesBucket).Put([]byte(key), v)
	}
	// Every Put joins a group commit: one transaction (one fsync) for the
	// Puts of the next few milliseconds, each returning once its write is
	// durable. A model call takes far longer than the wait, and a crash
	// loses only the calls whose Put had not returned: those in flight.
	err = c.db.Batch(put)
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
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("response cache: encoding: %w", err)
		}
		vals[i] = v
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

// Len returns the number of stored responses.
func (c *Cache) Len() (int, error) {
	var n int
	err := c.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(responsesBucket).Stats().KeyN
		return nil
	})
	return n, err
}

// Close releases the file and its lock.
func (c *Cache) Close() error {
	return c.db.Close()
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
	h := sha256.New()
	w := keyWriter{h: h}
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
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// EndpointID is the endpoint identity CacheKey expects: the backend and the
// normalized URL without credentials.
func EndpointID(backend Backend, endpoint string) string {
	if u, err := normalizeURL(endpoint); err == nil {
		endpoint = u
	}
	return string(backend) + " " + redactURL(endpoint)
}

// keyWriter writes tagged, length-prefixed fields into a hash.
type keyWriter struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64 + 1]byte
}

func (w *keyWriter) num(tag byte, v uint64) {
	w.buf[0] = tag
	n := binary.PutUvarint(w.buf[1:], v)
	w.h.Write(w.buf[:1+n])
}

func (w *keyWriter) str(tag byte, s string) {
	w.num(tag, uint64(len(s)))
	w.h.Write([]byte(s))
}

func (w *keyWriter) float(tag byte, f float64) {
	if f == 0 {
		f = 0 // one zero: -0 and +0 mean the same setting
	}
	w.num(tag, math.Float64bits(f))
}
