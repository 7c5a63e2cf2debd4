package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/ensinstruct/ensinstruct/seeds"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// The stages of Filter, in the order they run. A drop reason is counted
// under its stage: "heuristics/too-short", "dedup/not-novel",
// "consensus/dropped-low-agreement" (offline, candidates from files),
// "ensemble/dropped-low-agreement" (online, candidates from models).
const (
	FilterStageInput      = "input"      // malformed input lines skipped with SkipInvalid
	FilterStageHeuristics = "heuristics" // instruction checks and instance validity
	FilterStageDedup      = "dedup"      // near-duplicate instructions
	FilterStageConsensus  = "consensus"  // offline consensus over candidate files
	FilterStageEnsemble   = "ensemble"   // online consensus over ensemble models
)

// FilterReasonInvalid is the reason a malformed input line is counted under
// ("input/invalid") when FilterOptions.SkipInvalid is set.
const FilterReasonInvalid filter.Reason = "invalid"

// DefaultFilterConcurrency is the number of records whose ensemble calls
// are in flight at once in the online consensus step.
const DefaultFilterConcurrency = 16

// filterChunkSize is the most records that travel through the stages
// together: heuristics and consensus run on chunks in parallel, and dedup
// hands a chunk to the novelty index's batch path at once.
const filterChunkSize = 1024

// filterLinger is how long a chunk waits for more input once it has a
// record: a slow producer's records still flow through promptly, a fast
// one's fill whole chunks.
const filterLinger = 5 * time.Millisecond

// RecordSource is a stream of instruction records, read in order.
// *output.Reader implements it. Read returns the next record, io.EOF after
// the last one, or an error; an error that matches output.ErrInvalidLine
// (errors.Is) reports a malformed record at this position, and reading may
// continue after it. Any other error ends the stream.
//
// A source that also has the methods Name() string and Line() int (as
// *output.Reader does) lets Filter locate records as "NAME:LINE".
type RecordSource interface {
	Read() (output.Record, error)
}

// filterLocator is implemented by sources that can name the position of
// the record last read.
type filterLocator interface {
	Name() string
	Line() int
}

// JoinSources returns a RecordSource that reads each of srcs to its end in
// turn. It locates records in whichever source they came from when that
// source can (see RecordSource). It is not safe for concurrent use.
func JoinSources(srcs ...RecordSource) RecordSource {
	return &filterJoined{srcs: srcs}
}

type filterJoined struct {
	srcs []RecordSource
	i    int
}

func (j *filterJoined) Read() (output.Record, error) {
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

func (j *filterJoined) current() filterLocator {
	if j.i < len(j.srcs) {
		if l, ok := j.srcs[j.i].(filterLocator); ok {
			return l
		}
	}
	return nil
}

// Name returns the name of the source being read, or "" if it has none.
func (j *filterJoined) Name() string {
	if l := j.current(); l != nil {
		return l.Name()
	}
	return ""
}

// Line returns the line of the record last read in the current source.
func (j *filterJoined) Line() int {
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

// HeuristicOptions configure the heuristics step: the instruction checks
// and the instance validity rules of the generate pipeline, applied to
// each record as it is. The zero value applies ensinstruct's defaults.
type HeuristicOptions struct {
	// Checks are the instruction checks; nil means the reference's
	// (filter.DefaultInstructionChecks).
	Checks *filter.InstructionChecks
	// Instance selects the instance rules (empty output, an input that
	// echoes the instruction, a looping output). Its AllowEmptyInput is
	// ignored: see RequireInput.
	Instance filter.InstanceRules
	// RequireInput drops records whose input is empty. Without it a
	// record with an empty input is an output-only (type B) task.
	RequireInput bool
}

// FilterOptions select the steps of Filter and configure them. Each step
// runs only when its field is set, in this order: Heuristics, Dedup,
// offline consensus (Candidates), online consensus (Ensemble). The zero
// value runs no step: every record is kept unchanged.
type FilterOptions struct {
	// Heuristics turns on the heuristics step.
	Heuristics *HeuristicOptions

	// Dedup turns on near-duplicate removal at this threshold: a record
	// is dropped when the Rouge-L F (no stemming) of its instruction
	// against an instruction accepted earlier by this step, or against
	// Exclude, is above it (strictly: a score equal to the threshold is
	// kept). DefaultNoveltyThreshold is the method's 0.7.
	Dedup *float64
	// Exclude holds instructions that count as already accepted, such as
	// an earlier dataset's. It requires Dedup.
	Exclude []string

	// Candidates turns on the offline consensus step: the record's own
	// output is candidate 0 and each source supplies one more, in order.
	Candidates []CandidateSource

	// Ensemble turns on the online consensus step: each model answers the
	// record's instruction and input zero-shot with AnswerPrompt in its
	// style, and the record's output (as the earlier steps left it) is
	// candidate 0. Every call goes through Executor.
	Ensemble []ModelRef
	// Executor runs the ensemble calls; required with Ensemble.
	Executor Executor
	// EnsembleSampling is the decoding of the ensemble calls; the zero
	// value means DefaultEnsembleSampling (greedy, 256 tokens). Requests
	// are then the ones generate sends for the same instruction and
	// input, so a response cache shared with generate serves both.
	EnsembleSampling Sampling
	// Concurrency bounds the records whose ensemble calls are in flight
	// at once; 0 means DefaultFilterConcurrency. Per-endpoint limits are
	// the executor's.
	Concurrency int

	// Consensus parameterizes the consensus rule of both consensus steps.
	Consensus filter.ConsensusOptions
	// DropEmptyPick drops a record whose consensus pick is empty. The
	// reference keeps one when two candidates agree on nothing.
	DropEmptyPick bool

	// SkipInvalid counts and skips malformed input (and candidate) lines
	// instead of failing on the first one.
	SkipInvalid bool
	// Meta fills in the provenance (Record.Meta) of kept records: source
	// position, novelty score and consensus decision.
	Meta bool
	// InputName names the input in a CandidateCountError; "" means
	// "input".
	InputName string
	// Workers is the number of goroutines for the CPU-bound steps; 0
	// means GOMAXPROCS.
	Workers int
}

// FilteredRecord is a record Filter keeps.
type FilteredRecord struct {
	// Seq is the record's 0-based position in the input, malformed lines
	// included.
	Seq int
	// Source locates the record ("data.jsonl:12"), when the source can.
	Source string
	// Record is the record as kept: the consensus steps trim the
	// instruction and input and replace the output by their pick. Its
	// Meta is set when FilterOptions.Meta is.
	Record output.Record
}

// Rejected is a record Filter drops, or a malformed line it skips, with
// the reason and the scores that decided it. Its JSON form is one line of
// the command's --rejected file: reason, source, then either the error
// (for a malformed line) or the record with the candidates and scores.
type Rejected struct {
	// Seq is the position in the input (0-based, malformed lines
	// included).
	Seq int `json:"-"`
	// Reason is the stage-qualified reason: "dedup/not-novel", or
	// "input/invalid" for a malformed line.
	Reason string `json:"reason"`
	// Source locates the record ("data.jsonl:12"), when the source can.
	Source string `json:"source,omitempty"`
	// Error describes a malformed line; the other fields are then empty.
	Error string `json:"error,omitempty"`
	// Instruction, Input and Output are the record as read.
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
	// Candidates are the outputs the deciding consensus step compared,
	// candidate 0 first; Meta.Consensus holds its scores.
	Candidates []string `json:"candidates,omitempty"`
	// Meta holds the scores of the steps that ran (novelty_max for
	// dedup, consensus for the consensus steps) and the record's ID and
	// type; its Source is left to the field above.
	Meta *output.Meta `json:"meta,omitempty"`
}

// MarshalJSON encodes r, leaving out the empty record fields of a
// malformed line. It does not escape <, > and & itself, so that an
// encoder with SetEscapeHTML(false) writes them as output.Writer does.
func (r Rejected) MarshalJSON() ([]byte, error) {
	type plain Rejected // without this method
	var v any = plain(r)
	if r.Error != "" {
		v = struct {
			Reason string `json:"reason"`
			Source string `json:"source,omitempty"`
			Error  string `json:"error"`
		}{r.Reason, r.Source, r.Error}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// FilterStats are the counts of a Filter run. Read = Kept + the sum of
// Dropped.
type FilterStats struct {
	// Read is the number of records read (malformed lines excluded).
	Read int `json:"read"`
	// Invalid is the number of malformed lines skipped (SkipInvalid).
	Invalid int `json:"invalid"`
	// Kept is the number of records kept.
	Kept int `json:"kept"`
	// Dropped counts the dropped records by stage-qualified reason.
	Dropped map[string]int `json:"dropped"`
	// EnsembleCalls is the number of calls made to the ensemble models.
	EnsembleCalls int `json:"ensemble_calls"`
	// Misaligned counts candidate records whose instruction is set and
	// differs from their input record's: a sign that a candidate source
	// is not aligned with the input. FirstMisaligned locates the first.
	Misaligned      int    `json:"misaligned,omitempty"`
	FirstMisaligned string `json:"first_misaligned,omitempty"`
}

// validate checks o, with errors that name the setting.
func (o FilterOptions) validate() error {
	var errs []error
	if o.Dedup != nil && (*o.Dedup < 0 || *o.Dedup > 1) {
		errs = append(errs, fmt.Errorf("dedup threshold %v is outside [0, 1]", *o.Dedup))
	}
	if len(o.Exclude) > 0 && o.Dedup == nil {
		errs = append(errs, errors.New("excluded instructions need the dedup step"))
	}
	for i, c := range o.Candidates {
		if c.Records == nil {
			errs = append(errs, fmt.Errorf("candidate source %d (%s) has no records", i, c.Name))
		}
	}
	if len(o.Ensemble) > 0 && o.Executor == nil {
		errs = append(errs, errors.New("ensemble models need an executor"))
	}
	for _, m := range o.Ensemble {
		if m.Name == "" {
			errs = append(errs, errors.New("ensemble model without a name"))
		}
		if m.Style != llm.StyleCompletion && m.Style != llm.StyleChat {
			errs = append(errs, fmt.Errorf("ensemble model %s: style %q (want completion or chat)", m.Name, m.Style))
		}
	}
	switch o.Consensus.Metric {
	case "", filter.MetricRougeL, filter.MetricRouge1:
	default:
		errs = append(errs, fmt.Errorf("consensus metric %q (want rougeL or rouge1)", o.Consensus.Metric))
	}
	if o.Concurrency < 0 || o.Workers < 0 {
		errs = append(errs, errors.New("concurrency and workers must not be negative"))
	}
	return errors.Join(errs...)
}

// Filter reads records from src, runs the steps opts selects and passes
// each record, in input order, to keep when it survives every step or to
// reject (which may be nil) when a step drops it. A record is passed on as
// soon as it and every record before it are decided: Filter streams, and
// holds at most a few chunks of records in memory, however long the input.
//
// keep and reject are called from one goroutine; an error from either
// stops the run and is returned. Dropping a record is not an error: it is
// counted in the returned stats under its stage-qualified reason. The
// novelty score of a dedup rejection is exact: the highest score against
// the instructions accepted before it. Everything passed on depends only
// on the input and opts, not on timing or Workers.
//
// Filter fails on a malformed line (an error matching
// output.ErrInvalidLine that locates it) unless opts.SkipInvalid, on
// candidate sources whose length differs from the input's (a
// *CandidateCountError, reported as soon as it shows: when a candidate
// source runs out, or when the input does), on a failed ensemble call and
// on ctx's cancellation. The stats are returned in every case and count
// what was passed on before the failure.
//
// CPU-bound steps use opts.Workers goroutines on chunks of records whose
// order is restored before they are passed on. If ctx is cancelled while
// src.Read is blocked (on a terminal, say), Filter returns without waiting
// for it; that Read's goroutine ends when the Read returns, without
// reading further.
//
// Calls of Filter may run concurrently as long as they share no source.
func Filter(ctx context.Context, src RecordSource, opts FilterOptions, keep func(FilteredRecord) error, reject func(Rejected) error) (FilterStats, error) {
	if err := opts.validate(); err != nil {
		return FilterStats{}, fmt.Errorf("filter options: %w", err)
	}
	if src == nil {
		return FilterStats{}, errors.New("filter: nil record source")
	}
	f := newFilterRun(opts)
	g, gctx := errgroup.WithContext(ctx)

	// The reader is not a member of g: see the doc comment. A watcher in
	// g carries its outcome.
	items := make(chan filterItem, filterChunkSize)
	readDone := make(chan struct{})
	var rd filterReadResult
	go func() {
		defer close(readDone)
		rd = f.read(gctx, src, items)
	}()
	g.Go(func() error {
		select {
		case <-readDone:
			return rd.err
		case <-gctx.Done():
			return gctx.Err()
		}
	})

	var c <-chan []filterItem
	chunks := make(chan []filterItem, 2)
	g.Go(func() error { return filterBatch(gctx, items, chunks) })
	c = chunks
	stage := func(run func(in <-chan []filterItem, out chan<- []filterItem) error) {
		in, out := c, make(chan []filterItem, 2)
		g.Go(func() error { return run(in, out) })
		c = out
	}
	if opts.Heuristics != nil {
		stage(func(in <-chan []filterItem, out chan<- []filterItem) error {
			return filterOrdered(gctx, in, out, f.workers, f.heuristics)
		})
	}
	if opts.Dedup != nil {
		stage(func(in <-chan []filterItem, out chan<- []filterItem) error { return f.dedup(gctx, in, out) })
	}
	if len(opts.Candidates) > 0 {
		stage(func(in <-chan []filterItem, out chan<- []filterItem) error {
			return filterOrdered(gctx, in, out, f.workers, f.offline)
		})
	}
	if len(opts.Ensemble) > 0 {
		// One record at a time from here, so that a record is written as
		// soon as its own calls are done.
		stage(func(in <-chan []filterItem, out chan<- []filterItem) error { return filterSplit(gctx, in, out) })
		stage(func(in <-chan []filterItem, out chan<- []filterItem) error {
			return filterOrdered(gctx, in, out, f.concurrency, f.online)
		})
	}
	last := c
	g.Go(func() error { return f.write(gctx, last, keep, reject) })

	err := g.Wait()
	st := f.stats
	st.EnsembleCalls = int(f.calls.Load())
	select {
	case <-readDone:
		st.Misaligned, st.FirstMisaligned = rd.misaligned, rd.firstMisaligned
	default:
	}
	return st, err
}

// filterItem is one input position on its way through the steps.
type filterItem struct {
	seq  int
	name string // source name and line, formatted on demand
	line int
	rec  output.Record
	orig output.Record // as read, for Rejected
	// cands are the offline candidates (not counting the record's own
	// output).
	cands []string
	// invalid is the malformed line at this position (SkipInvalid).
	invalid error

	drop       string // stage-qualified reason; "" while alive
	hasNovelty bool
	novelty    float64
	// decision is the last consensus step's, with the candidates and
	// the names of candidates 1… it compared.
	decision *filter.Decision
	compared []string
	names    []string
}

func (it *filterItem) alive() bool { return it.drop == "" && it.invalid == nil }

func (it *filterItem) source() string {
	if it.name == "" && it.line == 0 {
		return ""
	}
	return it.name + ":" + strconv.Itoa(it.line)
}

// filterRun is the state shared by the steps of one Filter call.
type filterRun struct {
	opts        FilterOptions
	workers     int
	concurrency int
	checks      *filter.InstructionChecks
	index       *filter.Index // the dedup step's accepted instructions
	sampling    Sampling
	candNames   []string
	modelNames  []string

	calls atomic.Int64 // ensemble calls started
	stats FilterStats  // written by the writer only
}

func newFilterRun(opts FilterOptions) *filterRun {
	f := &filterRun{opts: opts, workers: opts.Workers, concurrency: opts.Concurrency}
	if f.workers == 0 {
		f.workers = max(1, runtime.GOMAXPROCS(0))
	}
	if f.concurrency == 0 {
		f.concurrency = DefaultFilterConcurrency
	}
	if h := opts.Heuristics; h != nil {
		f.checks = h.Checks
		if f.checks == nil {
			f.checks = filter.DefaultInstructionChecks()
		}
	}
	if opts.Dedup != nil {
		f.index = filter.NewIndex()
		for _, s := range opts.Exclude {
			f.index.Add(s)
		}
	}
	f.sampling = opts.EnsembleSampling
	if f.sampling == (Sampling{}) {
		f.sampling = DefaultEnsembleSampling
	}
	for _, c := range opts.Candidates {
		f.candNames = append(f.candNames, c.Name)
	}
	for _, m := range opts.Ensemble {
		f.modelNames = append(f.modelNames, m.Name)
	}
	f.stats.Dropped = map[string]int{}
	return f
}

// filterReadResult is what the reader reports when it ends.
type filterReadResult struct {
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
func (f *filterRun) read(ctx context.Context, src RecordSource, out chan<- filterItem) (res filterReadResult) {
	defer func() {
		if res.err == nil {
			close(out)
		}
	}()
	loc, _ := src.(filterLocator)
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
		it := filterItem{seq: seq}
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
				n, err := filterCount(src)
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
				if it.invalid == nil && filterMisaligned(rec, crec) {
					if res.misaligned == 0 {
						res.firstMisaligned = filterLocate(c.Records, c.Name)
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

func (f *filterRun) inputName() string {
	if f.opts.InputName == "" {
		return "input"
	}
	return f.opts.InputName
}

// candidatesEnd checks, once the input has ended after n records, that
// every candidate source has ended too.
func (f *filterRun) candidatesEnd(n int, cands []CandidateSource) error {
	for _, c := range cands {
		_, err := c.Records.Read()
		if err == io.EOF {
			continue
		}
		if err != nil && !errors.Is(err, output.ErrInvalidLine) {
			return err
		}
		rest, err := filterCount(c.Records)
		if err != nil {
			return err
		}
		return &CandidateCountError{Input: f.inputName(), InputCount: n, File: c.Name, Count: n + 1 + rest}
	}
	return nil
}

// filterCount reads src to its end and returns the number of records left,
// malformed ones included.
func filterCount(src RecordSource) (int, error) {
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

// filterMisaligned reports whether candidate record c visibly belongs to
// another input record than rec: it has an instruction, and its
// instruction and input are not rec's, whether compared field by field,
// as the user turn of a chat format (which holds both), or, when c has no
// input, as the instruction alone.
func filterMisaligned(rec, c output.Record) bool {
	ci, ri := strings.TrimSpace(c.Instruction), strings.TrimSpace(rec.Instruction)
	if ci == "" {
		return false
	}
	cin, rin := strings.TrimSpace(c.Input), strings.TrimSpace(rec.Input)
	if ci == ri && (cin == rin || cin == "") {
		return false
	}
	return filterTurn(ci, cin) != filterTurn(ri, rin)
}

// filterTurn is the user turn of a chat format holding instruction and
// input (see output.Record.UserTurn).
func filterTurn(instruction, input string) string {
	if input == "" {
		return instruction
	}
	return instruction + "\n\n" + input
}

// filterLocate names the position of the record last read from src.
func filterLocate(src RecordSource, name string) string {
	if l, ok := src.(filterLocator); ok {
		return l.Name() + ":" + strconv.Itoa(l.Line())
	}
	return name
}

// filterBatch groups items into chunks of up to filterChunkSize. A chunk
// is sent when it is full, when the input ends, or filterLinger after its
// first item came. It closes out.
func filterBatch(ctx context.Context, in <-chan filterItem, out chan<- []filterItem) error {
	defer close(out)
	timer := time.NewTimer(filterLinger)
	defer timer.Stop()
	for {
		first, ok, err := filterRecv(ctx, in)
		if !ok {
			return err
		}
		chunk := make([]filterItem, 1, 64)
		chunk[0] = first
		timer.Reset(filterLinger)
		open := true
	fill:
		for len(chunk) < filterChunkSize {
			select {
			case it, ok := <-in:
				if !ok {
					open = false
					break fill
				}
				chunk = append(chunk, it)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := filterSend(ctx, out, chunk); err != nil {
			return err
		}
		if !open {
			return nil
		}
	}
}

// filterSplit passes every item of every chunk on as a chunk of its own.
// It closes out.
func filterSplit(ctx context.Context, in <-chan []filterItem, out chan<- []filterItem) error {
	defer close(out)
	for {
		select {
		case chunk, ok := <-in:
			if !ok {
				return nil
			}
			for i := range chunk {
				select {
				case out <- chunk[i : i+1 : i+1]:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// filterOrdered applies fn to every value from in, running at most n at
// once, and sends the results to out in the order of in. At most 2n
// values are between in and out at any time: a slow value holds back the
// ones after it (the reorder window) but never lets them pile up. It
// closes out and returns fn's first error.
func filterOrdered[T any](ctx context.Context, in <-chan T, out chan<- T, n int, fn func(context.Context, T) (T, error)) error {
	defer close(out)
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan *future[T], n)
	sem := make(chan struct{}, n)
	g.Go(func() error {
		defer close(queue)
		for {
			v, ok, err := filterRecv(gctx, in)
			if !ok {
				return err
			}
			fu := newFuture[T]()
			if err := filterSend(gctx, queue, fu); err != nil {
				return err
			}
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer func() { <-sem }()
				r, err := fn(gctx, v)
				fu.set(r, err)
				return err
			})
		}
	})
	g.Go(func() error {
		for fu := range queue {
			select {
			case <-fu.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if fu.err != nil {
				return fu.err
			}
			if err := filterSend(gctx, out, fu.val); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// heuristics applies the instruction checks and the instance rules.
func (f *filterRun) heuristics(_ context.Context, chunk []filterItem) ([]filterItem, error) {
	h := f.opts.Heuristics
	rules := h.Instance
	rules.AllowEmptyInput = !h.RequireInput
	for i := range chunk {
		it := &chunk[i]
		if !it.alive() {
			continue
		}
		instr := strings.TrimSpace(it.rec.Instruction)
		if r := f.checks.Check(instr); r != "" {
			it.drop = FilterStageHeuristics + "/" + string(r)
			continue
		}
		typ := seeds.TypeB
		if h.RequireInput || len(filter.PyFields(it.rec.Input)) > 0 {
			typ = seeds.TypeA
		}
		if r := filter.CheckInstance(typ, instr, it.rec.Input, it.rec.Output, rules); r != "" {
			it.drop = FilterStageHeuristics + "/" + string(r)
		}
	}
	return chunk, nil
}

// dedup runs the novelty index over each chunk's surviving instructions,
// in order. It closes out.
func (f *filterRun) dedup(ctx context.Context, in <-chan []filterItem, out chan<- []filterItem) error {
	defer close(out)
	threshold := *f.opts.Dedup
	texts := make([]string, 0, filterChunkSize)
	idx := make([]int, 0, filterChunkSize)
	for {
		chunk, ok, err := filterRecv(ctx, in)
		if !ok {
			return err
		}
		texts, idx = texts[:0], idx[:0]
		for i := range chunk {
			if chunk[i].alive() {
				texts = append(texts, chunk[i].rec.Instruction)
				idx = append(idx, i)
			}
		}
		nov := f.index.Dedup(texts, threshold)
		for j, n := range nov {
			it := &chunk[idx[j]]
			it.hasNovelty, it.novelty = true, n.Max
			if !n.Novel {
				it.drop = FilterStageDedup + "/" + string(filter.ReasonNotNovel)
			}
		}
		if err := filterSend(ctx, out, chunk); err != nil {
			return err
		}
	}
}

// offline applies the consensus rule to each record's own output and its
// candidates from the candidate sources.
func (f *filterRun) offline(_ context.Context, chunk []filterItem) ([]filterItem, error) {
	for i := range chunk {
		it := &chunk[i]
		if !it.alive() {
			continue
		}
		cands := make([]string, 0, 1+len(it.cands))
		cands = append(cands, it.rec.Output)
		cands = append(cands, it.cands...)
		f.decide(it, FilterStageConsensus, cands, f.candNames)
	}
	return chunk, nil
}

// online asks every ensemble model for its answer to each record, then
// applies the consensus rule.
func (f *filterRun) online(ctx context.Context, chunk []filterItem) ([]filterItem, error) {
	for i := range chunk {
		it := &chunk[i]
		if !it.alive() {
			continue
		}
		answers := make([]string, len(f.opts.Ensemble))
		g, gctx := errgroup.WithContext(ctx)
		for j, m := range f.opts.Ensemble {
			style := prompts.Style(m.Style)
			req := toRequest(prompts.AnswerPrompt(style, it.rec.Instruction, it.rec.Input), f.sampling,
				newRNG(0, "filter", "ensemble/"+m.Name, it.seq))
			g.Go(func() error {
				f.calls.Add(1)
				resp, err := f.opts.Executor.Do(gctx, m.Name, req, 0)
				if err != nil {
					return err
				}
				answers[j] = prompts.ParseAnswer(resp.Text, style)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			if ctx.Err() != nil {
				return chunk, ctx.Err()
			}
			where := it.source()
			if where == "" {
				where = "record " + strconv.Itoa(it.seq+1)
			}
			return chunk, fmt.Errorf("ensemble step, %s: %w", where, err)
		}
		f.decide(it, FilterStageEnsemble, append([]string{it.rec.Output}, answers...), f.modelNames)
	}
	return chunk, nil
}

// decide applies the consensus rule to the candidates of it in stage.
func (f *filterRun) decide(it *filterItem, stage string, cands, names []string) {
	d := filter.Consensus(cands, f.opts.Consensus)
	it.decision, it.compared, it.names = &d, cands, names
	switch {
	case !d.Kept:
		it.drop = stage + "/" + string(d.Reason)
	case d.Output == "" && f.opts.DropEmptyPick:
		it.drop = stage + "/" + string(filter.ReasonEmptyPick)
	default:
		// The reference strips the instruction and the input.
		it.rec.Instruction = strings.TrimSpace(it.rec.Instruction)
		it.rec.Input = strings.TrimSpace(it.rec.Input)
		it.rec.Output = d.Output
	}
}

// write passes every item on to keep or reject, in order, and counts.
func (f *filterRun) write(ctx context.Context, in <-chan []filterItem, keep func(FilteredRecord) error, reject func(Rejected) error) error {
	for {
		chunk, ok, err := filterRecv(ctx, in)
		if !ok {
			return err
		}
		for i := range chunk {
			it := &chunk[i]
			if it.invalid != nil {
				f.stats.Invalid++
				key := FilterStageInput + "/" + string(FilterReasonInvalid)
				if reject != nil {
					if err := reject(Rejected{Seq: it.seq, Reason: key, Source: it.source(), Error: it.invalid.Error()}); err != nil {
						return err
					}
				}
				continue
			}
			f.stats.Read++
			if it.drop != "" {
				f.stats.Dropped[it.drop]++
				if reject != nil {
					r := Rejected{
						Seq:         it.seq,
						Reason:      it.drop,
						Source:      it.source(),
						Instruction: it.orig.Instruction,
						Input:       it.orig.Input,
						Output:      it.orig.Output,
						Candidates:  it.compared,
						Meta:        f.meta(it, it.orig),
					}
					r.Meta.Source = ""
					if err := reject(r); err != nil {
						return err
					}
				}
				continue
			}
			f.stats.Kept++
			rec := it.rec
			if f.opts.Meta {
				rec.Meta = f.meta(it, rec)
			}
			if err := keep(FilteredRecord{Seq: it.seq, Source: it.source(), Record: rec}); err != nil {
				return err
			}
		}
	}
}

// meta builds the provenance of an item whose record is rec.
func (f *filterRun) meta(it *filterItem, rec output.Record) *output.Meta {
	m := &output.Meta{Source: it.source()}
	m.ID = filterRecordID(rec)
	m.Type = string(seeds.TypeB)
	if strings.TrimSpace(rec.Input) != "" {
		m.Type = string(seeds.TypeA)
	}
	if it.hasNovelty {
		v := it.novelty
		m.NoveltyMax = &v
	}
	if d := it.decision; d != nil {
		m.Ensemble = it.names
		m.Consensus = &output.ConsensusMeta{
			Reason: string(d.Reason), Pick: d.Pick, Pairwise: d.Pairwise,
			Scores: d.Scores, MinPair: d.MinPair,
		}
	}
	return m
}

// filterRecordID derives a record's UUID (version 5) from its content, so
// that filtering the same data again gives the same IDs.
func filterRecordID(r output.Record) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("ensinstruct:filter/"+r.Instruction+"\x00"+r.Input+"\x00"+r.Output)).String()
}

// filterRecv receives from ch. ok is false when ch is closed (err nil) or
// ctx is done first (err is ctx.Err()).
func filterRecv[T any](ctx context.Context, ch <-chan T) (v T, ok bool, err error) {
	select {
	case v, ok = <-ch:
		return v, ok, nil
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// filterSend sends v on ch unless ctx is done first.
func filterSend[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
