package output

import (
	"errors"
	"fmt"
)

// File is an output file of records: a Sink of the chosen container
// writing into an AtomicFile, so that the final path appears only when
// the file is complete. Not safe for concurrent use.
type File struct {
	Sink
	atomic *AtomicFile
}

// Create creates PATH.partial and returns a File writing records to it
// in container c with options o. Commit completes it; Close abandons it.
func Create(path string, c Container, o Options) (*File, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	a, err := CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	s, err := Open(a, c, o)
	if err != nil {
		a.Close()
		return nil, err
	}
	return &File{Sink: s, atomic: a}, nil
}

// Path returns the final path of the file.
func (f *File) Path() string { return f.atomic.Path() }

// Commit closes the sink (writing what it buffers, and for Parquet the
// footer), syncs the file and renames it to its final path.
func (f *File) Commit() error {
	if err := f.Sink.Close(); err != nil {
		f.atomic.Close()
		return fmt.Errorf("writing %s: %w", f.atomic.Name(), err)
	}
	return f.atomic.Commit()
}

// Close abandons the file: it writes what the sink buffers but does not
// complete it, leaving PATH.partial (for JSONL, the complete records
// written so far; a Parquet file without its footer is not readable). It
// is a no-op after Commit.
func (f *File) Close() error {
	if f.atomic.done {
		return nil
	}
	var err error
	if j, ok := f.Sink.(*Writer); ok {
		err = j.Flush()
	}
	return errors.Join(err, f.atomic.Close())
}
