package curate

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// CheckCounts compares the record counts of the inputs and of the
// candidate files before anything is read, as far as they can be counted
// without consuming them (regular files; a nil file, or a pipe, is left
// out), so that misaligned candidates fail before a record is written. Two
// candidate files of different lengths cannot both match the input,
// whatever its length. A mismatch is an *pipeline.InputError (holding a
// *CandidateCountError where the input's count is known); the offsets of
// the files are left where they were.
func CheckCounts(inputName string, inputs, candidates []*os.File) error {
	total, known := 0, true
	for _, f := range inputs {
		n, ok, err := CountRecords(f)
		if err != nil {
			return fmt.Errorf("counting the records of %s: %w", f.Name(), err)
		}
		total += n
		known = known && ok
	}
	first, firstN := "", -1
	for _, f := range candidates {
		n, ok, err := CountRecords(f)
		if err != nil {
			return fmt.Errorf("counting the records of %s: %w", f.Name(), err)
		}
		if !ok {
			continue
		}
		if known && n != total {
			return &pipeline.InputError{Err: &CandidateCountError{Input: inputName, InputCount: total, File: f.Name(), Count: n}}
		}
		if firstN >= 0 && n != firstN {
			return &pipeline.InputError{Err: fmt.Errorf("candidates %s have %d records but candidates %s have %d: each candidate file must be line-aligned with the input", f.Name(), n, first, firstN)}
		}
		if firstN < 0 {
			first, firstN = f.Name(), n
		}
	}
	return nil
}

// CountRecords counts the records of f from its current offset the way
// output.Reader sees them (non-blank lines, malformed or not) and
// restores the offset. ok is false when f is nil, cannot be counted
// without consuming it (not a regular file), or has a line too long to
// read.
func CountRecords(f *os.File) (n int, ok bool, err error) {
	if f == nil {
		return 0, false, nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return 0, false, nil
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, false, nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), output.MaxLineBytes)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	ok = sc.Err() == nil
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return 0, false, err
	}
	return n, ok, nil
}
