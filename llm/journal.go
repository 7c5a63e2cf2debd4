package llm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// The journal of a write-behind cache is an append-only file beside it
// (cache.db-journal) that holds every entry put since the last commit,
// written before Put returns. A killed process therefore loses no entry
// whose Put returned, however long the commits are apart; the next
// OpenCache commits what the journal holds and removes it.
//
// A record is
//
//	u32 little-endian  payload length
//	u32 little-endian  CRC-32C of the payload
//	payload            uvarint key length, key, value
//
// Replay stops at the first record that is short or fails its checksum:
// the tail a crash tore. Records later in the file win over earlier ones,
// as later Puts do.
const journalSuffix = "-journal"

// maxJournalRecord bounds the payload length replay believes: a larger
// one is a torn or foreign header, not an entry.
const maxJournalRecord = 256 << 20

var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// journal is the open journal of a write-behind cache. Its methods are
// called with the writeBehind's mu held, so it has no lock of its own.
type journal struct {
	path  string
	f     *os.File
	buf   []byte // the record being encoded
	dirty bool   // written since the last sync
}

func openJournal(cachePath string) (*journal, error) {
	path := cachePath + journalSuffix
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &journal{path: path, f: f}, nil
}

// appendRecord encodes one record onto b.
func appendRecord(b []byte, key string, val []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, 8)...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = append(b, val...)
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, journalCRC))
	return b
}

// append writes one record with a single write: a process killed after
// it returns has the record in the file.
func (j *journal) append(key string, val []byte) error {
	j.buf = appendRecord(j.buf[:0], key, val)
	if cap(j.buf) > 1<<20 {
		defer func() { j.buf = nil }() // do not keep a huge entry's buffer
	}
	j.dirty = true
	_, err := j.f.Write(j.buf)
	return err
}

// sync makes what was written durable against power loss.
func (j *journal) sync() error {
	if !j.dirty {
		return nil
	}
	j.dirty = false
	return j.f.Sync()
}

// rewrite replaces the journal by one holding only the entries that
// remain queued after a commit, through a new file renamed over the old
// one, so that a crash at any moment leaves one whole journal or the
// other.
func (j *journal) rewrite(queued map[string]queuedEntry) error {
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for k, e := range queued {
		j.buf = appendRecord(j.buf[:0], k, e.val)
		if _, err := w.Write(j.buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := os.Rename(tmp, j.path); err != nil {
		f.Close()
		return err
	}
	j.f.Close()
	j.f = f
	j.dirty = len(queued) > 0
	return nil
}

// remove closes the journal and deletes it: every entry is committed.
func (j *journal) remove() error {
	j.f.Close()
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// replayJournal commits the entries of the journal beside the cache at
// cachePath into db, in one transaction, and removes the journal. It
// returns how many records it applied.
func replayJournal(db *bolt.DB, cachePath string) (int, error) {
	path := cachePath + journalSuffix
	os.Remove(path + ".tmp") // a rewrite the crash interrupted: the journal is whole
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(responsesBucket)
		var head [8]byte
		var payload []byte
		for {
			if _, err := io.ReadFull(r, head[:]); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return nil // the end, or a header the crash tore
				}
				return err
			}
			size := binary.LittleEndian.Uint32(head[:4])
			if size > maxJournalRecord {
				return nil
			}
			if cap(payload) < int(size) {
				payload = make([]byte, size)
			}
			payload = payload[:size]
			if _, err := io.ReadFull(r, payload); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return nil
				}
				return err
			}
			if crc32.Checksum(payload, journalCRC) != binary.LittleEndian.Uint32(head[4:]) {
				return nil
			}
			klen, w := binary.Uvarint(payload)
			if w <= 0 || klen > uint64(len(payload)-w) {
				return nil
			}
			if klen == 0 {
				continue // bbolt holds no empty key; a Put of one never commits either
			}
			key := payload[w : w+int(klen)]
			// bbolt keeps the slices until the commit: copy them.
			if err := b.Put(append([]byte(nil), key...), append([]byte(nil), payload[w+int(klen):]...)); err != nil {
				return err
			}
			n++
		}
	})
	if err != nil {
		return 0, fmt.Errorf("replaying %s: %w", path, err)
	}
	f.Close()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return n, err
	}
	return n, nil
}
