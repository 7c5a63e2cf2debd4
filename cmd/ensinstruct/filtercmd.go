package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/ensinstruct/ensinstruct/config"
	"github.com/ensinstruct/ensinstruct/curate"
	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/spf13/cobra"
)

const filterExample = `  # the reference's own sample: 153 rows in, 105 out
  ensinstruct filter --candidates flan-t5-xxl_output.jsonl --candidates flan-ul2_output.jsonl < samples.jsonl

  # heuristics and near-duplicate removal, also against last week's data
  ensinstruct filter --heuristics --dedup --exclude last-week.jsonl new.jsonl -o clean.jsonl

  # online consensus with two local models, as OpenAI chat fine-tuning data
  ensinstruct filter --ensemble ollama:llama3.1:8b --ensemble ollama:mistral --format openai data.jsonl`

// filterFlags are the flags of the filter command.
type filterFlags struct {
	inputFormat string
	format      string
	output      string
	container   string
	system      string
	join        string
	noCard      bool

	heuristics         bool
	minWords, maxWords int
	blacklist          []string
	badPrefixes        []string
	allowNonASCIIStart bool
	requireInput       bool
	allowEcho          bool
	allowRepetition    bool

	dedup      float64
	dedupFast  bool
	noveltyMax bool
	exclude    []string

	candidates []string

	ensemble    []string
	config      string
	cache       string
	noCache     bool
	concurrency int

	metric       string
	minAgreement float64
	selectRule   string
	judges       []string
	judgeMode    string
	minJudge     float64
	twoPass      bool

	rejected    string
	meta        bool
	skipInvalid bool

	nats natsFlags

	changed func(string) bool
}

// filterHeuristicFlags are the knobs of step 1.
var filterHeuristicFlags = []string{"min-words", "max-words", "blacklist", "bad-prefix", "allow-non-ascii-start", "require-input", "allow-echo", "allow-repetition"}

func (a *app) filterCmd() *cobra.Command {
	var o filterFlags
	cmd := &cobra.Command{
		Use:     "filter [FILE ...]",
		Short:   "Filter an instruction dataset by consensus, heuristics and deduplication",
		Long:    helpText("filter"),
		Example: filterExample,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.changed = cmd.Flags().Changed
			return a.filter(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.inputFormat, "input-format", "auto", "input `FORMAT`: auto (detected per file), alpaca, openai or sharegpt")
	f.StringVar(&o.format, "format", string(output.FormatAlpaca), "output `FORMAT`: alpaca, openai, sharegpt or prompt-completion")
	f.StringVar(&o.container, "container", "", "file type: jsonl or parquet (default: parquet for a .parquet -o, else jsonl)")
	f.StringVar(&o.system, "system", "", "a system message for the chat formats")
	f.StringVar(&o.join, "join", "", `what joins instruction and input in a user turn, with Go escapes (default "\n")`)
	f.BoolVar(&o.noCard, "no-card", false, "do not write a dataset card (FILE.README.md) next to -o FILE")
	f.StringVarP(&o.output, "output", "o", "", "write to `FILE` (through FILE.partial, renamed at the end) instead of stdout")

	f.BoolVar(&o.heuristics, "heuristics", false, "step 1: drop records that fail the instruction checks or the instance rules")
	f.IntVar(&o.minWords, "min-words", 3, "heuristics: drop instructions of at most `N` words")
	f.IntVar(&o.maxWords, "max-words", 150, "heuristics: drop instructions of more than `N` words (0: no limit)")
	f.StringSliceVar(&o.blacklist, "blacklist", filter.DefaultBlacklist(), "heuristics: drop instructions containing one of these `WORDS` (comma-separated; whole words, any case)")
	f.StringArrayVar(&o.badPrefixes, "bad-prefix", []string{"Write a program"}, "heuristics: drop instructions starting with `TEXT` (repeatable; replaces the default)")
	f.BoolVar(&o.allowNonASCIIStart, "allow-non-ascii-start", false, "heuristics: keep instructions starting with punctuation or a non-ASCII character")
	f.BoolVar(&o.requireInput, "require-input", false, "heuristics: drop records with an empty input")
	f.BoolVar(&o.allowEcho, "allow-echo", false, "heuristics: keep inputs that only repeat the instruction")
	f.BoolVar(&o.allowRepetition, "allow-repetition", false, "heuristics: keep outputs stuck in a loop")

	f.Float64Var(&o.dedup, "dedup", pipeline.DefaultNoveltyThreshold, "step 2: drop near-duplicate instructions: Rouge-L F above `THRESHOLD` (give it as --dedup=T)")
	f.Lookup("dedup").NoOptDefVal = strconv.FormatFloat(pipeline.DefaultNoveltyThreshold, 'g', -1, 64)
	f.BoolVar(&o.noveltyMax, "novelty-max", false, "dedup: also give kept records their novelty score (meta.novelty_max) by comparing every pair (same decisions; several times slower on large sets)")
	f.BoolVar(&o.dedupFast, "dedup-fast", false, "dedup: the default index (kept for older scripts)")
	f.MarkHidden("dedup-fast")
	f.StringArrayVar(&o.exclude, "exclude", nil, "dedup: also drop instructions near-duplicating those of `FILE`, a dataset or seed file (repeatable)")

	f.StringArrayVar(&o.candidates, "candidates", nil, "step 3: other models' outputs, record-aligned with the input, from `FILE` (repeatable)")

	f.StringArrayVar(&o.ensemble, "ensemble", nil, "step 4: ask model `SPEC` (ollama:NAME[@URL] or openai:NAME[@BASE_URL]; repeatable)")
	f.StringVarP(&o.config, "config", "c", "", "configuration `FILE` (YAML): its models, limits and retries; its ensemble-role models unless --ensemble")
	f.StringVar(&o.cache, "cache", "", "response cache `FILE` for the ensemble calls (default: ensinstruct/responses.db in the user cache directory)")
	f.BoolVar(&o.noCache, "no-cache", false, "do not use a response cache")
	f.IntVar(&o.concurrency, "concurrency", curate.DefaultConcurrency, "ensemble: `N` records whose calls are in flight at once (endpoint limits still apply)")
	addNATSFlags(f, &o.nats)

	f.StringVar(&o.metric, "metric", string(filter.MetricRougeL), "consensus: agreement `METRIC`, rougeL or rouge1 (both stemmed)")
	f.Float64Var(&o.minAgreement, "min-agreement", filter.DefaultMinAgreement, "consensus: drop when the lowest pairwise agreement is at most `SCORE`")
	f.StringVar(&o.selectRule, "select", string(filter.RuleReference), "consensus `RULE`: reference (the paper's), weighted (members weighted by their agreement, learned in input order or, with --two-pass, over the whole input) or judge")
	f.StringArrayVar(&o.judges, "judge", nil, "consensus: model `SPEC` that grades the candidates for --select judge")
	f.StringVar(&o.judgeMode, "judge-mode", string(judge.ModeRubric), "consensus: how the judge grades: rubric (a 1-10 grade per candidate) or answer (it answers; candidates graded by agreement)")
	f.BoolVar(&o.twoPass, "two-pass", false, "consensus, weighted and judge rules: learn the member weights from the whole input first, then decide every record with them (input and --candidates files are read twice)")
	f.Float64Var(&o.minJudge, "min-judge", 0, "consensus: drop a record whose pick the judge graded below `SCORE` (1 to 10)")

	f.StringVar(&o.rejected, "rejected", "", "write dropped records with their reason and scores to `FILE` (JSONL)")
	f.BoolVar(&o.meta, "meta", false, "add provenance and scores to kept records (a \"meta\" object)")
	f.BoolVar(&o.skipInvalid, "skip-invalid", false, "count and skip malformed lines instead of failing")
	return cmd
}

// filter runs the filter command.
func (a *app) filter(ctx context.Context, o filterFlags, args []string) (err error) {
	opts, err := o.options()
	if err != nil {
		return err
	}
	if o.twoPass && (len(args) == 0 || slices.Contains(args, "-")) {
		return usagef("--two-pass reads the input twice: give files, not stdin")
	}
	if o.dedupFast {
		fmt.Fprintln(a.stderr, "filter: --dedup-fast is the default now and may go; --novelty-max asks for the index that scores kept records")
	}
	if err := o.nats.check(o.changed, a.getenv); err != nil {
		return err
	}
	inFormat := output.Format("")
	if o.inputFormat != "auto" {
		if inFormat, err = output.ParseFormat(o.inputFormat); err != nil {
			return usagef("--input-format: %v", err)
		}
	}
	outOpts, container, err := o.outputOptions()
	if err != nil {
		return err
	}

	// Inputs and candidate files. Everything that can be checked before a
	// record is written is checked here.
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	sources, err := a.filterOpenSources(o, args, inFormat, &closers)
	if err != nil {
		return err
	}
	names := make([]string, len(sources.inputs))
	for i, in := range sources.inputs {
		names[i] = in.name
	}
	opts.InputName = strings.Join(names, " + ")
	opts.Candidates = sources.cands
	if len(o.candidates) > 0 {
		var inFiles []*os.File
		for _, in := range sources.inputs {
			inFiles = append(inFiles, in.file)
		}
		if err := curate.CheckCounts(opts.InputName, inFiles, sources.candFiles); err != nil {
			return a.inputError(err)
		}
	}
	if opts.Exclude, err = config.ExcludeInstructions(o.exclude); err != nil {
		return a.inputError(fmt.Errorf("--exclude: %w", err))
	}

	// Online consensus, and the judge.
	var pool *llm.Pool
	var calls pipeline.StatsReporter
	if len(o.ensemble) > 0 || len(o.judges) > 0 || o.config != "" {
		var closeCache func() error
		pool, opts.Ensemble, closeCache, err = a.filterPool(o)
		if err != nil {
			return err
		}
		defer func() {
			// The cache writes behind: its last commit happens here.
			if err := closeCache(); err != nil {
				a.logger().Error("response cache: the last responses were not saved; a rerun pays for them again", "err", err)
			}
		}()
		opts.Executor, calls = pool, pool
		if o.nats.enabled() {
			d := a.distributed(o.nats, a.logger())
			defer d.close()
			if opts.Executor, err = a.filterDistributed(ctx, d, pool); err != nil {
				return err
			}
			calls = opts.Executor.(pipeline.StatsReporter)
		}
		if opts.Consensus.Rule == filter.RuleJudge {
			names := pool.Models(llm.RoleJudge)
			if len(names) == 0 {
				return usagef("--select judge needs a judge model: give --judge SPEC, or a model with the judge role in -c")
			}
			info, _ := pool.Info(names[0])
			opts.Judge = &judge.Judge{Model: info.Name, Style: prompts.Style(info.Style), Mode: judge.Mode(o.judgeMode)}
			for _, m := range opts.Ensemble {
				if opts.Judge.Mode == judge.ModeAnswer && m.SameModel(info) {
					return usagef("--judge-mode answer: the judge %s is also an ensemble model (%s): its own output would be graded 10 and win; give a judge outside the pool", info.Name, m.Name)
				}
			}
		}
	}
	if o.twoPass {
		if sources, err = a.filterFirstPass(ctx, o, args, inFormat, sources, &opts, &closers); err != nil {
			return err
		}
	}
	if opts.Heuristics == nil && opts.Dedup == nil && len(opts.Candidates) == 0 && len(opts.Ensemble) == 0 {
		fmt.Fprintln(a.stderr, "filter: no step selected (--heuristics, --dedup, --candidates, --ensemble): records pass through unchanged")
	}

	// Outputs.
	var outFile *output.File
	var rejFile *output.AtomicFile
	defer func() {
		// Not committed: a failed run. An input problem makes the partial
		// output worthless; otherwise it keeps what was decided.
		abandon := func(path string) {
			if exitCode(ctx, err) == exitBadInput {
				os.Remove(path + output.PartialSuffix)
			} else if err != nil {
				fmt.Fprintf(a.stderr, "filter: the records decided so far are in %s%s\n", path, output.PartialSuffix)
			}
		}
		if outFile != nil {
			outFile.Close()
			abandon(outFile.Path())
		}
		if rejFile != nil {
			rejFile.Close()
			abandon(rejFile.Path())
		}
	}()
	var w output.Sink
	if o.output != "" {
		if outFile, err = output.Create(o.output, container, outOpts); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		w = outFile
	} else if w, err = output.Open(a.stdout, container, outOpts); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	keep := func(r curate.Kept) error {
		if err := w.Write(r.Record); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	}
	var reject func(output.Rejected) error
	var rejBuf *bufio.Writer
	if o.rejected != "" {
		if rejFile, err = output.CreateAtomic(o.rejected); err != nil {
			return fmt.Errorf("--rejected: %w", err)
		}
		rejBuf = bufio.NewWriterSize(rejFile, 64<<10)
		enc := json.NewEncoder(rejBuf)
		enc.SetEscapeHTML(false)
		reject = func(r output.Rejected) error {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("writing %s: %w", o.rejected, err)
			}
			return nil
		}
	}

	st, err := curate.Run(ctx, curate.JoinSources(sources.srcs...), opts, keep, reject)
	if err != nil {
		err = a.filterError(err, st, o)
		if exitCode(ctx, err) != exitBadInput {
			// Interrupted or failed: say how far it got.
			a.filterReport(st, calls, opts)
		}
		return err
	}
	if st.Read == 0 && st.Invalid > 0 {
		// Every line was skipped: not a dataset in a format we read.
		a.filterReport(st, calls, opts)
		return badInput(fmt.Errorf("0 of %d lines valid: the input is not a JSONL dataset in alpaca, openai or sharegpt form", st.Invalid))
	}
	if outFile == nil {
		if err := w.Close(); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	if rejFile != nil {
		if err := rejBuf.Flush(); err != nil {
			return fmt.Errorf("writing %s: %w", o.rejected, err)
		}
		if err := rejFile.Commit(); err != nil {
			return fmt.Errorf("--rejected: %w", err)
		}
		rejFile = nil
	}
	if outFile != nil {
		rows := outFile.Count()
		if err := outFile.Commit(); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		outFile = nil
		if !o.noCard {
			card := output.Card{DataFile: o.output, Container: container, Options: outOpts, Rows: rows,
				Command: "filter", Version: buildVersion(), Filter: &output.CardFilterCounts{Read: st.Read,
					Invalid: st.Invalid, Kept: st.Kept, EnsembleCalls: st.EnsembleCalls, Dropped: st.Dropped}}
			if err := output.WriteCard(card); err != nil {
				return fmt.Errorf("dataset card: %w", err)
			}
		}
	}
	a.filterReport(st, calls, opts)
	return nil
}

// outputOptions reads the output flags.
func (o filterFlags) outputOptions() (output.Options, output.Container, error) {
	var opts output.Options
	var err error
	if opts.Format, err = output.ParseFormat(o.format); err != nil {
		return opts, "", usagef("--format: %v", err)
	}
	opts.Meta, opts.System = o.meta, o.system
	if o.join != "" {
		if opts.Join, err = output.ParseJoin(o.join); err != nil {
			return opts, "", usagef("--join: %v", err)
		}
	}
	if err := opts.Validate(); err != nil {
		return opts, "", badInput(err)
	}
	c, err := output.ResolveContainer(o.container, o.output)
	if err != nil {
		return opts, "", usagef("--container: %v", err)
	}
	return opts, c, nil
}

// options turns the step flags into pipeline options, rejecting flags
// that belong to a step that is off.
func (o filterFlags) options() (curate.Options, error) {
	var opts curate.Options
	for _, name := range filterHeuristicFlags {
		if o.changed(name) && !o.heuristics {
			return opts, usagef("--%s is a knob of --heuristics, which is off", name)
		}
	}
	if o.heuristics {
		var blacklist, prefixes []string
		for _, w := range o.blacklist {
			if w = strings.TrimSpace(w); w != "" {
				blacklist = append(blacklist, w)
			}
		}
		for _, p := range o.badPrefixes {
			if p != "" {
				prefixes = append(prefixes, p)
			}
		}
		if o.minWords < 0 || o.maxWords < 0 {
			return opts, usagef("--min-words and --max-words must not be negative")
		}
		opts.Heuristics = &curate.HeuristicOptions{
			Checks:       filter.NewInstructionChecks(o.minWords, o.maxWords, blacklist, prefixes, !o.allowNonASCIIStart),
			Instance:     filter.InstanceRules{AllowInstructionEcho: o.allowEcho, AllowRepetition: o.allowRepetition},
			RequireInput: o.requireInput,
		}
		opts.DropEmptyPick = true
	}
	if o.changed("dedup") {
		if math.IsNaN(o.dedup) || o.dedup < 0 || o.dedup > 1 {
			return opts, usagef("--dedup: threshold %v is outside [0, 1]", o.dedup)
		}
		t := o.dedup
		opts.Dedup = &t
		if o.dedupFast && o.noveltyMax {
			return opts, usagef("--dedup-fast and --novelty-max choose different indexes: give one")
		}
		opts.NoveltyMax = o.noveltyMax
	} else if len(o.exclude) > 0 {
		return opts, usagef("--exclude needs --dedup")
	} else if o.dedupFast {
		return opts, usagef("--dedup-fast needs --dedup")
	} else if o.noveltyMax {
		return opts, usagef("--novelty-max needs --dedup")
	}
	online := len(o.ensemble) > 0 || o.config != ""
	if o.nats.enabled() && !online {
		return opts, usagef("--nats and --nats-listen apply to the ensemble calls: give --ensemble or -c")
	}
	for _, name := range []string{"cache", "no-cache", "concurrency"} {
		if o.changed(name) && !online && len(o.judges) == 0 {
			return opts, usagef("--%s applies to the model calls: give --ensemble, --judge or -c", name)
		}
	}
	if o.changed("cache") && o.noCache {
		return opts, usagef("--cache and --no-cache contradict each other")
	}
	if o.concurrency < 1 {
		return opts, usagef("--concurrency must be at least 1")
	}
	opts.Concurrency = o.concurrency
	for _, name := range []string{"metric", "min-agreement"} {
		if o.changed(name) && len(o.candidates) == 0 && !online {
			return opts, usagef("--%s applies to consensus: give --candidates or --ensemble", name)
		}
	}
	switch filter.Metric(o.metric) {
	case filter.MetricRougeL, filter.MetricRouge1:
		opts.Consensus.Metric = filter.Metric(o.metric)
	default:
		return opts, usagef("--metric: unknown metric %q (want rougeL or rouge1)", o.metric)
	}
	if math.IsNaN(o.minAgreement) {
		return opts, usagef("--min-agreement: not a number")
	}
	ma := o.minAgreement
	opts.Consensus.MinAgreement = &ma
	rule, err := filter.ParseRule(o.selectRule)
	if err != nil {
		return opts, usagef("--select: %v", err)
	}
	opts.Consensus.Rule = rule
	// Outputs the heuristics reject take no part in the vote.
	opts.Consensus.RejectRepetitive = o.heuristics && !o.allowRepetition
	if o.changed("min-judge") {
		if rule != filter.RuleJudge {
			return opts, usagef("--min-judge needs --select judge")
		}
		mj := o.minJudge
		opts.MinJudge = &mj
	}
	if len(o.judges) > 0 && rule != filter.RuleJudge {
		return opts, usagef("--judge needs --select judge")
	}
	if _, err := judge.ParseMode(o.judgeMode); err != nil {
		return opts, usagef("--judge-mode: %v", err)
	}
	if o.changed("judge-mode") && rule != filter.RuleJudge {
		return opts, usagef("--judge-mode needs --select judge")
	}
	if o.twoPass && rule != filter.RuleWeighted && rule != filter.RuleJudge {
		return opts, usagef("--two-pass needs --select weighted or judge")
	}
	if o.twoPass && (len(o.candidates) == 0 || len(o.ensemble) > 0) {
		return opts, usagef("%s", twoPassCandidatesOnly)
	}
	opts.SkipInvalid = o.skipInvalid
	opts.Meta = o.meta
	return opts, nil
}

// filterError turns a failed run's error into the command's: input
// problems exit 2, with a word on what stdout already received.
func (a *app) filterError(err error, st curate.Stats, o filterFlags) error {
	var cce *curate.CandidateCountError
	switch {
	case errors.As(err, &cce):
		if o.output == "" && st.Kept > 0 {
			return badInput(fmt.Errorf("%w; the %d records already written to stdout are not a valid result", err, st.Kept))
		}
		return badInput(err)
	case errors.Is(err, output.ErrInvalidLine):
		var le *output.LineError
		if errors.As(err, &le) && le.Line == 1 && st.Read == 0 && strings.HasPrefix(le.Msg, "invalid JSON") {
			return badInput(fmt.Errorf("%w (is %s a JSONL dataset? want one JSON object per line, in alpaca, openai or sharegpt form)", err, le.File))
		}
		return badInput(fmt.Errorf("%w (--skip-invalid skips malformed lines)", err))
	}
	return err
}
