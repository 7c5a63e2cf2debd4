package curate

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"golang.org/x/sync/errgroup"
)

// The stages of Run, in the order they run. A drop reason is counted
// under its stage: "heuristics/too-short", "dedup/not-novel",
// "consensus/dropped-low-agreement" (offline, candidates from files),
// "ensemble/dropped-low-agreement" (online, candidates from models).
const (
	StageInput      = "input"      // malformed input lines skipped with SkipInvalid
	StageHeuristics = "heuristics" // instruction checks and instance validity
	StageDedup      = "dedup"      // near-duplicate instructions
	StageConsensus  = "consensus"  // offline consensus over candidate files
	StageEnsemble   = "ensemble"   // online consensus over ensemble models
)

// ReasonInvalid is the reason a malformed input line is counted under
// ("input/invalid") when Options.SkipInvalid is set.
const ReasonInvalid filter.Reason = "invalid"

// DefaultConcurrency is the number of records whose ensemble calls
// are in flight at once in the online consensus step.
const DefaultConcurrency = 16

// chunkSize is the most records that travel through the stages
// together: heuristics and consensus run on chunks in parallel, and dedup
// hands a chunk to the novelty index's batch path at once.
const chunkSize = 1024

// linger is how long a chunk waits for more input once it has a
// record: a slow producer's records still flow through promptly, a fast
// one's fill whole chunks.
const linger = 5 * time.Millisecond

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

// Options select the steps of Run and configure them. Each step
// runs only when its field is set, in this order: Heuristics, Dedup,
// offline consensus (Candidates), online consensus (Ensemble). The zero
// value runs no step: every record is kept unchanged.
type Options struct {
	// Heuristics turns on the heuristics step.
	Heuristics *HeuristicOptions

	// Dedup turns on near-duplicate removal at this threshold: a record
	// is dropped when the Rouge-L F (no stemming) of its instruction
	// against an instruction accepted earlier by this step, or against
	// Exclude, is above it (strictly: a score equal to the threshold is
	// kept). pipeline.DefaultNoveltyThreshold is the method's 0.7.
	Dedup *float64
	// NoveltyMax makes the dedup step score the kept records too, with an
	// index that compares every pair (filter.NewIndex): the same
	// decisions, at several times the cost on large sets. Without it the
	// step looks only at the pairs that could score above the threshold
	// (filter.NewPrefixIndex): a dropped record's novelty score is exact,
	// a kept record's is not computed (its meta.novelty_max is null).
	NoveltyMax bool
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
	Ensemble []llm.ModelInfo
	// Executor runs the ensemble calls; required with Ensemble.
	Executor pipeline.Executor
	// EnsembleSampling is the decoding of the ensemble calls; the zero
	// value means pipeline.DefaultEnsembleSampling (greedy, 256 tokens). Requests
	// are then the ones generate sends for the same instruction and
	// input, so a response cache shared with generate serves both.
	EnsembleSampling pipeline.Sampling
	// Concurrency bounds the records whose ensemble calls are in flight
	// at once; 0 means DefaultConcurrency. Per-endpoint limits are
	// the executor's.
	Concurrency int

	// Consensus parameterizes the consensus rule of both consensus steps;
	// Consensus.Rule chooses it. The weighted and judge rules need
	// exactly one consensus step, and decide in input order, with member
	// weights learned from the records before.
	Consensus filter.ConsensusOptions
	// Weights, when set, gives the weighted and judge rules every record's
	// member weights (filter.Reliability.Weights), instead of the record
	// of the decisions before it: the members' record over a first pass
	// of the same input (Estimate), for a two-pass run. Run does not add
	// to it; Stats.Reliability still records this run's own decisions.
	Weights *filter.Reliability
	// Judge grades the candidates for the judge rule, through Executor.
	Judge *judge.Judge
	// MinJudge drops a record whose pick the judge graded below it (the
	// judge rule only).
	MinJudge *float64
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

// Kept is a record Run keeps.
type Kept struct {
	// Seq is the record's 0-based position in the input, malformed lines
	// included.
	Seq int
	// Source locates the record ("data.jsonl:12"), when the source can.
	Source string
	// Record is the record as kept: the consensus steps trim the
	// instruction and input and replace the output by their pick. Its
	// Meta is set when Options.Meta is.
	Record output.Record
}

// Stats are the counts of a Run run. Read = Kept + the sum of
// Dropped.
type Stats struct {
	// Read is the number of records read (malformed lines excluded).
	Read int `json:"read"`
	// Invalid is the number of malformed lines skipped (SkipInvalid).
	Invalid int `json:"invalid"`
	// Kept is the number of records kept.
	Kept int `json:"kept"`
	// Dropped counts the dropped records by stage-qualified reason.
	Dropped map[string]int `json:"dropped"`
	// EnsembleCalls is the number of calls made to the ensemble models,
	// JudgeCalls to the judge.
	EnsembleCalls int `json:"ensemble_calls"`
	JudgeCalls    int `json:"judge_calls,omitempty"`
	// Reliability is the members' record over the decisions made in
	// input order (the weighted and judge rules, and the reference rule
	// with heuristics); nil when no such decision was made.
	Reliability *filter.ReliabilitySummary `json:"reliability,omitempty"`
	// Misaligned counts candidate records whose instruction is set and
	// differs from their input record's: a sign that a candidate source
	// is not aligned with the input. FirstMisaligned locates the first.
	Misaligned      int    `json:"misaligned,omitempty"`
	FirstMisaligned string `json:"first_misaligned,omitempty"`
}

// validate checks o, with errors that name the setting.
func (o Options) validate() error {
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
	if r := o.Consensus.Rule; r != "" {
		if _, err := filter.ParseRule(string(r)); err != nil {
			errs = append(errs, err)
		}
		if r != filter.RuleReference && len(o.Candidates) > 0 && len(o.Ensemble) > 0 {
			errs = append(errs, fmt.Errorf("the %s rule takes one consensus step: candidates from files or ensemble models, not both", r))
		}
	}
	if o.Consensus.Rule == filter.RuleJudge && (o.Judge == nil || o.Executor == nil) {
		errs = append(errs, errors.New("the judge rule needs a judge model"))
	}
	if o.MinJudge != nil && o.Consensus.Rule != filter.RuleJudge {
		errs = append(errs, errors.New("a judge floor needs the judge rule"))
	}
	if o.Weights != nil && o.Consensus.Rule != filter.RuleWeighted && o.Consensus.Rule != filter.RuleJudge {
		errs = append(errs, errors.New("member weights need the weighted or judge rule"))
	}
	if o.Concurrency < 0 || o.Workers < 0 {
		errs = append(errs, errors.New("concurrency and workers must not be negative"))
	}
	return errors.Join(errs...)
}

// Run reads records from src, runs the steps opts selects and passes
// each record, in input order, to keep when it survives every step or to
// reject (which may be nil) when a step drops it. A record is passed on as
// soon as it and every record before it are decided: Run streams, and
// holds at most a few chunks of records in memory, however long the input.
//
// keep and reject are called from one goroutine; an error from either
// stops the run and is returned. Dropping a record is not an error: it is
// counted in the returned stats under its stage-qualified reason. The
// novelty score of a dedup rejection is exact: the highest score against
// the instructions accepted before it. Everything passed on depends only
// on the input and opts, not on timing or Workers.
//
// Run fails on a malformed line (an error matching
// output.ErrInvalidLine that locates it) unless opts.SkipInvalid, on
// candidate sources whose length differs from the input's (a
// *CandidateCountError, reported as soon as it shows: when a candidate
// source runs out, or when the input does), on a failed ensemble call and
// on ctx's cancellation. The stats are returned in every case and count
// what was passed on before the failure.
//
// CPU-bound steps use opts.Workers goroutines on chunks of records whose
// order is restored before they are passed on. If ctx is cancelled while
// src.Read is blocked (on a terminal, say), Run returns without waiting
// for it; that Read's goroutine ends when the Read returns, without
// reading further.
//
// Calls of Run may run concurrently as long as they share no source.
func Run(ctx context.Context, src RecordSource, opts Options, keep func(Kept) error, reject func(output.Rejected) error) (Stats, error) {
	st, _, err := run(ctx, src, opts, keep, reject)
	return st, err
}

// Estimate is the first pass of a two-pass run with the weighted or judge
// rule: it reads src through the steps opts selects, as Run would, keeps
// nothing, and returns the members' record over every consensus decision.
// A second Run over the same input with that record as Options.Weights
// then decides every record with weights learned from all of them, not
// only from the records before it. The weights depend on the candidates'
// agreement alone, so this pass decides with the weighted rule and does
// not call the judge; it makes every ensemble call a Run would. It fails
// as Run does.
func Estimate(ctx context.Context, src RecordSource, opts Options) (*filter.Reliability, error) {
	opts.Consensus.Rule = filter.RuleWeighted
	opts.Judge, opts.MinJudge, opts.Weights, opts.Meta = nil, nil, nil, false
	_, f, err := run(ctx, src, opts, func(Kept) error { return nil }, nil)
	if err != nil {
		return nil, err
	}
	return &f.rel, nil
}

// run is Run, also returning its state.
func run(ctx context.Context, src RecordSource, opts Options, keep func(Kept) error, reject func(output.Rejected) error) (Stats, *state, error) {
	if err := opts.validate(); err != nil {
		return Stats{}, nil, fmt.Errorf("filter options: %w", err)
	}
	if src == nil {
		return Stats{}, nil, errors.New("filter: nil record source")
	}
	f := newState(opts)
	g, gctx := errgroup.WithContext(ctx)

	// The reader is not a member of g: see the doc comment. A watcher in
	// g carries its outcome.
	items := make(chan item, chunkSize)
	readDone := make(chan struct{})
	var rd readResult
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

	var c <-chan []item
	chunks := make(chan []item, 2)
	g.Go(func() error { return batch(gctx, items, chunks) })
	c = chunks
	stage := func(run func(in <-chan []item, out chan<- []item) error) {
		in, out := c, make(chan []item, 2)
		g.Go(func() error { return run(in, out) })
		c = out
	}
	if opts.Heuristics != nil {
		stage(func(in <-chan []item, out chan<- []item) error {
			return ordered(gctx, in, out, f.workers, f.heuristics)
		})
	}
	if opts.Dedup != nil {
		stage(func(in <-chan []item, out chan<- []item) error { return f.dedup(gctx, in, out) })
	}
	if len(opts.Candidates) > 0 {
		stage(func(in <-chan []item, out chan<- []item) error {
			return ordered(gctx, in, out, f.workers, f.offline)
		})
	}
	if len(opts.Ensemble) > 0 {
		// One record at a time from here, so that a record is written as
		// soon as its own calls are done.
		stage(func(in <-chan []item, out chan<- []item) error { return split(gctx, in, out) })
		stage(func(in <-chan []item, out chan<- []item) error {
			return ordered(gctx, in, out, f.concurrency, f.online)
		})
	}
	last := c
	g.Go(func() error { return f.write(gctx, last, keep, reject) })

	err := g.Wait()
	st := f.stats
	st.EnsembleCalls = int(f.calls.Load())
	st.JudgeCalls = int(f.judgeCalls.Load())
	if rel := f.rel.Summary(); rel.Rows > 0 {
		st.Reliability = &rel
	}
	select {
	case <-readDone:
		st.Misaligned, st.FirstMisaligned = rd.misaligned, rd.firstMisaligned
	default:
	}
	return st, f, err
}

// item is one input position on its way through the steps.
type item struct {
	seq  int
	name string // source name and line, formatted on demand
	line int
	rec  output.Record
	orig output.Record // as read, for output.Rejected
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
	// agr is a consensus step's measured candidates waiting for the
	// ordered writer to apply the rule (with stage and the judge's
	// scores); see state.deferred.
	agr      *filter.Agreement
	stage    string
	judge    []float64
	compared []string
	names    []string
}

func (it *item) alive() bool { return it.drop == "" && it.invalid == nil }

func (it *item) source() string {
	if it.name == "" && it.line == 0 {
		return ""
	}
	return it.name + ":" + strconv.Itoa(it.line)
}

// where locates the item for an error message.
func (it *item) where() string {
	if s := it.source(); s != "" {
		return s
	}
	return "record " + strconv.Itoa(it.seq+1)
}

// state is the state shared by the steps of one Run call.
type state struct {
	opts        Options
	workers     int
	concurrency int
	checks      *filter.InstructionChecks
	index       *filter.Index     // the dedup step's accepted instructions
	ens         pipeline.Ensemble // the online step's models
	candNames   []string

	calls      atomic.Int64       // ensemble calls started
	judgeCalls atomic.Int64       // judge calls started
	rel        filter.Reliability // the members' record, in input order
	stats      Stats              // written by the writer only
}

func newState(opts Options) *state {
	f := &state{opts: opts, workers: opts.Workers, concurrency: opts.Concurrency}
	if f.workers == 0 {
		f.workers = max(1, runtime.GOMAXPROCS(0))
	}
	if f.concurrency == 0 {
		f.concurrency = DefaultConcurrency
	}
	if h := opts.Heuristics; h != nil {
		f.checks = h.Checks
		if f.checks == nil {
			f.checks = filter.DefaultInstructionChecks()
		}
	}
	if opts.Dedup != nil {
		f.index = filter.NewPrefixIndex()
		if opts.NoveltyMax {
			f.index = filter.NewIndex()
		}
		f.index.AddAll(opts.Exclude)
	}
	f.ens = pipeline.Ensemble{Models: opts.Ensemble, Sampling: opts.EnsembleSampling, Consensus: opts.Consensus}
	for _, c := range opts.Candidates {
		f.candNames = append(f.candNames, c.Name)
	}
	f.stats.Dropped = map[string]int{}
	return f
}
