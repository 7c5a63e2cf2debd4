package curate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ensinstruct/ensinstruct/output"
)

// RecordSource is a stream of instruction records, read in order.
// *output.Reader implements it. Read returns the next record, io.EOF after
// the last one, or an error; an error that matches output.ErrInvalidLine
// (errors.Is) reports a malformed record at this position, and reading may
// continue after it. Any other error ends the stream.
//
// A source that also has the methods Name() string and Line() int (as
// *output.Reader does) lets Run locate records as "NAME:LINE".
type RecordSource interface {
	Read() (output.Record, error)
}

// locator is implemented by sources that can name the position of
// the record last read.
type locator interface {
	Name() string
	Line() int
}

// JoinSources returns a RecordSource that reads each of srcs to its end in
// turn. It locates records in whichever source they came from when that
// source can (see RecordSource). It is not safe for concurrent use.
func JoinSources(srcs ...RecordSource) RecordSource {
	return &joined{srcs: srcs}
}

type joined struct {
	srcs []RecordSource
	i    int
}

func (j *joined) Read() (output.Record, error) {
	for j.i < len(j.srcs) {
		rec, err := j.srcs[j.i].Read()
		if err == io.EOF {
			j.i++
			continue
		}
		return rec, err
	}
	return output.Record{}, io.EOF
}

func (j *joined) current() locator {
	if j.i < len(j.srcs) {
		if l, ok := j.srcs[j.i].(locator); ok {
			return l
		}
	}
	return nil
}

// Name returns the name of the source being read, or "" if it has none.
func (j *joined) Name() string {
	if l := j.current(); l != nil {
		return l.Name()
	}
	return ""
}

// Line returns the line of the record last read in the current source.
func (j *joined) Line() int {
	if l := j.current(); l != nil {
		return l.Line()
	}
	return 0
}

// CandidateSource supplies one extra candidate output per input record for
// the offline consensus step: the Output of its i-th record is a candidate
// for the i-th record of the input (malformed lines count as records;
// blank lines, which sources skip, do not).
type CandidateSource struct {
	// Name names the source in errors and in the Ensemble list of a
	// record's provenance (for a file, its name).
	Name string
	// Records are the candidates, aligned with the input.
	Records RecordSource
}

// CandidateCountError reports candidates that are not aligned with the
// input: the two streams hold different numbers of records.
type CandidateCountError struct {
	Input      string // the input's name
	InputCount int    // records in the input, malformed ones included
	File       string // the candidate source's name
	Count      int    // records in the candidate source
}

// Error names both sources and their counts.
func (e *CandidateCountError) Error() string {
	return fmt.Sprintf("candidates %s have %d records but the input %s has %d: candidate files must be line-aligned with the input",
		e.File, e.Count, e.Input, e.InputCount)
}

// readResult is what the reader reports when it ends.
type readResult struct {
	err             error
	misaligned      int
	firstMisaligned string
}

// read reads the input and the candidate sources in step and sends one
// item per input position.
//
// It closes out only at the end of a complete, aligned input: on a failure
// the stages after it must not take the records still in flight for the
// whole input, so they stop when the failure cancels them.
func (f *state) read(ctx context.Context, src RecordSource, out chan<- item) (res readResult) {
	defer func() {
		if res.err == nil {
			close(out)
		}
	}()
	loc, _ := src.(locator)
	cands := f.opts.Candidates
	for seq := 0; ; seq++ {
		if err := ctx.Err(); err != nil {
			res.err = err
			return res
		}
		rec, err := src.Read()
		if err == io.EOF {
			res.err = f.candidatesEnd(seq, cands)
			return res
		}
		it := item{seq: seq}
		if loc != nil {
			it.name, it.line = loc.Name(), loc.Line()
		}
		if err != nil {
			if !errors.Is(err, output.ErrInvalidLine) || !f.opts.SkipInvalid {
				res.err = err
				return res
			}
			it.invalid = err
		} else {
			it.rec, it.orig = rec, rec
		}
		if len(cands) > 0 {
			it.cands = make([]string, len(cands))
		}
		for j, c := range cands {
			crec, cerr := c.Records.Read()
			switch {
			case cerr == io.EOF:
				n, err := countRest(src)
				if err == nil {
					err = &CandidateCountError{Input: f.inputName(), InputCount: seq + 1 + n, File: c.Name, Count: seq}
				}
				res.err = err
				return res
			case cerr != nil:
				if !errors.Is(cerr, output.ErrInvalidLine) || !f.opts.SkipInvalid {
					res.err = cerr
					return res
				}
				if it.invalid == nil {
					it.invalid = cerr
				}
			default:
				it.cands[j] = crec.Output
				if it.invalid == nil && misalignedWith(rec, crec) {
					if res.misaligned == 0 {
						res.firstMisaligned = locate(c.Records, c.Name)
					}
					res.misaligned++
				}
			}
		}
		select {
		case out <- it:
		case <-ctx.Done():
			res.err = ctx.Err()
			return res
		}
	}
}

func (f *state) inputName() string {
	if f.opts.InputName == "" {
		return "input"
	}
	return f.opts.InputName
}

// candidatesEnd checks, once the input has ended after n records, that
// every candidate source has ended too.
func (f *state) candidatesEnd(n int, cands []CandidateSource) error {
	for _, c := range cands {
		_, err := c.Records.Read()
		if err == io.EOF {
			continue
		}
		if err != nil && !errors.Is(err, output.ErrInvalidLine) {
			return err
		}
		rest, err := countRest(c.Records)
		if err != nil {
			return err
		}
		return &CandidateCountError{Input: f.inputName(), InputCount: n, File: c.Name, Count: n + 1 + rest}
	}
	return nil
}

// countRest reads src to its end and returns the number of records left,
// malformed ones included.
func countRest(src RecordSource) (int, error) {
	n := 0
	for {
		_, err := src.Read()
		if err == io.EOF {
			return n, nil
		}
		if err != nil && !errors.Is(err, output.ErrInvalidLine) {
			return n, err
		}
		n++
	}
}

// misalignedWith reports whether candidate record c visibly belongs to
// another input record than rec: it has an instruction, and its
// instruction and input are not rec's, whether compared field by field,
// as the user turn of a chat format (which holds both), or, when c has no
// input, as the instruction alone.
func misalignedWith(rec, c output.Record) bool {
	ci, ri := strings.TrimSpace(c.Instruction), strings.TrimSpace(rec.Instruction)
	if ci == "" {
		return false
	}
	cin, rin := strings.TrimSpace(c.Input), strings.TrimSpace(rec.Input)
	if ci == ri && (cin == rin || cin == "") {
		return false
	}
	// A chat record's user turn holds instruction and input joined by
	// the writer's rule: today's ("\n") or the one of earlier versions
	// ("\n\n").
	for _, join := range []string{output.DefaultJoin, "\n\n"} {
		if userTurn(ci, cin, join) == userTurn(ri, rin, join) {
			return false
		}
	}
	return true
}

// userTurn is the user turn of a chat format holding instruction and
// input (see output.Record.UserTurn).
func userTurn(instruction, input, join string) string {
	if input == "" {
		return instruction
	}
	return instruction + join + input
}

// locate names the position of the record last read from src.
func locate(src RecordSource, name string) string {
	if l, ok := src.(locator); ok {
		return l.Name() + ":" + strconv.Itoa(l.Line())
	}
	return name
}
