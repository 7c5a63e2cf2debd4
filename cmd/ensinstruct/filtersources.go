package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/ensinstruct/ensinstruct/curate"
	"github.com/ensinstruct/ensinstruct/output"
)

// filterInput is one open input file.
type filterInput struct {
	name string
	r    io.Reader
	file *os.File // nil for a reader that is not a file
}

// twoPassCandidatesOnly says what --two-pass works on.
const twoPassCandidatesOnly = "--two-pass takes --candidates files; with --ensemble the weights are learned in input order"

// filterFirstPass is the first pass of --two-pass: it learns the member
// weights from every record of the opened sources, then opens the inputs
// and candidate files again for the second pass and returns them, with
// opts set to decide by those weights.
func (a *app) filterFirstPass(ctx context.Context, o filterFlags, args []string, inFormat output.Format, first filterSources, opts *curate.Options, closers *[]io.Closer) (filterSources, error) {
	if len(opts.Ensemble) > 0 {
		return first, usagef("%s", twoPassCandidatesOnly)
	}
	for _, in := range first.inputs {
		if fi, err := in.file.Stat(); err != nil || !fi.Mode().IsRegular() {
			return first, usagef("--two-pass reads the input twice: %s is not a regular file", in.name)
		}
	}
	for i, fh := range first.candFiles {
		if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
			return first, usagef("--two-pass reads the candidates twice: %s is not a regular file", first.cands[i].Name)
		}
	}
	weights, err := curate.Estimate(ctx, curate.JoinSources(first.srcs...), *opts)
	if err != nil {
		return first, a.filterError(err, curate.Stats{}, o)
	}
	// The files were counted before the first pass; they are the same
	// files now.
	second, err := a.filterOpenSources(o, args, inFormat, closers)
	if err != nil {
		return first, err
	}
	opts.Candidates, opts.Weights = second.cands, weights
	return second, nil
}

// filterSources are the opened inputs and candidate files of a filter run.
type filterSources struct {
	inputs    []filterInput
	srcs      []curate.RecordSource // the inputs' records
	cands     []curate.CandidateSource
	candFiles []*os.File
}

// filterOpenSources opens the inputs (args) and the --candidates files,
// adding them to closers.
func (a *app) filterOpenSources(o filterFlags, args []string, inFormat output.Format, closers *[]io.Closer) (filterSources, error) {
	var s filterSources
	var err error
	if s.inputs, err = a.filterOpenInputs(args, closers); err != nil {
		return s, err
	}
	for _, in := range s.inputs {
		r := output.NewReader(in.r, in.name)
		if inFormat != "" {
			r.SetFormat(inFormat)
		}
		s.srcs = append(s.srcs, r)
	}
	for _, name := range o.candidates {
		if name == "-" {
			return s, usagef("--candidates: a candidate file cannot be stdin")
		}
		fh, err := os.Open(name)
		if err != nil {
			return s, badInput(fmt.Errorf("--candidates: %w", err))
		}
		*closers = append(*closers, fh)
		s.candFiles = append(s.candFiles, fh)
		s.cands = append(s.cands, curate.CandidateSource{Name: name, Records: output.NewReader(fh, name)})
	}
	return s, nil
}

// filterOpenInputs opens the input files; none, or "-", is stdin.
func (a *app) filterOpenInputs(args []string, closers *[]io.Closer) ([]filterInput, error) {
	if len(args) == 0 {
		args = []string{"-"}
	}
	stdin := false
	var inputs []filterInput
	for _, name := range args {
		if name == "-" {
			if stdin {
				return nil, usagef("stdin (\"-\") is given twice")
			}
			stdin = true
			in := filterInput{name: "stdin", r: a.stdin}
			in.file, _ = a.stdin.(*os.File)
			inputs = append(inputs, in)
			continue
		}
		fh, err := os.Open(name)
		if err != nil {
			if _, perr := strconv.ParseFloat(name, 64); perr == nil && errors.Is(err, os.ErrNotExist) {
				return nil, usagef("%v (to give --dedup a threshold, write --dedup=%s)", err, name)
			}
			return nil, badInput(err)
		}
		*closers = append(*closers, fh)
		inputs = append(inputs, filterInput{name: name, r: fh, file: fh})
	}
	return inputs, nil
}
