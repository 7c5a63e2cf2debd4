package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PartialSuffix is appended to the name of an output file while it is being
// written.
const PartialSuffix = ".partial"

// AtomicFile is an output file written under a visible temporary name,
// PATH.partial, and renamed to PATH by Commit once it is complete. A reader
// of PATH therefore sees either nothing or the whole file. If the process
// dies or Close is called without Commit, PATH.partial stays behind with
// the complete records written so far. Not safe for concurrent use.
type AtomicFile struct {
	*os.File
	path string
	done bool
}

// CreateAtomic creates (or truncates) PATH.partial for writing.
func CreateAtomic(path string) (*AtomicFile, error) {
	f, err := os.OpenFile(path+PartialSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &AtomicFile{File: f, path: path}, nil
}

// Path returns the final path of the file.
func (f *AtomicFile) Path() string { return f.path }

// Commit syncs the file, closes it and renames it to its final path.
func (f *AtomicFile) Commit() error {
	if f.done {
		return errors.New("output file already closed")
	}
	f.done = true
	if err := f.File.Sync(); err != nil {
		f.File.Close()
		return fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	if err := f.File.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.path+PartialSuffix, f.path); err != nil {
		return err
	}
	syncDir(filepath.Dir(f.path))
	return nil
}

// Close closes the file without renaming it, leaving PATH.partial. It is a
// no-op after Commit.
func (f *AtomicFile) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	return f.File.Close()
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so that path always holds a complete file.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, 0o644)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable. Errors are ignored: not every file system
// supports syncing a directory, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// WriteJSONFile writes v as indented JSON to path atomically (see
// WriteFileAtomic). The run manifest is written this way, so a crash never
// leaves a half-written manifest.
func WriteJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'))
}
