package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// DefaultN is the number of examples a run keeps when the file says none.
const DefaultN = 100

// Job returns the generate run the file describes, with every input it
// names loaded (the seed file, the --exclude datasets), so that bad input
// fails before any model is called. It sets neither the output writer for
// stdout nor anything of the process (environment, logger, version).
// Errors caused by the file are an *pipeline.InputError holding
// *llm.FieldError values (File.Locate points them at their lines); the
// pipeline validates the method's settings when the job starts.
func (f *File) Job() (pipeline.Job, error) {
	var j pipeline.Job
	if err := f.Batch.Validate("batch"); err != nil {
		return j, f.Locate(&pipeline.InputError{Err: err}, nil)
	}
	j.Pool = f.Batch.Apply(f.Pool)
	if len(j.Pool.Models) == 0 {
		return j, f.inputErr("models", "no models: give some in the file, or on the command line")
	}
	var err error
	if j.Options.Seeds, j.SeedsSource, j.SeedsSHA256, err = LoadSeeds(f.Seeds); err != nil {
		return j, err
	}

	n := DefaultN
	if f.N != nil {
		n = *f.N
	}
	if n < 0 {
		return j, f.inputErr("n", "%d: the number of examples must not be negative", n)
	}
	st := seeds.Count(j.Options.Seeds)
	j.Options.TargetA, j.Options.TargetB = SplitTarget(n, st.TypeA, st.TypeB)
	if f.NA != nil {
		j.Options.TargetA = *f.NA
	}
	if f.NB != nil {
		j.Options.TargetB = *f.NB
	}
	if j.Options.Exclude, err = ExcludeInstructions(f.Exclude); err != nil {
		var ie *pipeline.InputError
		if errors.As(err, &ie) {
			return j, &pipeline.InputError{Err: llm.FieldErrorf([]string{"exclude"}, "%v", ie.Err)}
		}
		return j, err
	}

	j.Output.Path = f.Output.Path
	format := f.Output.Format
	if format == "" {
		format = string(output.FormatAlpaca)
	}
	if j.Output.Options.Format, err = output.ParseFormat(format); err != nil {
		return j, f.inputErr("output.format", "%v", err)
	}
	j.Output.Options.Meta = f.Output.Meta
	j.Output.Options.System = f.Output.System
	if f.Output.Join != "" {
		if j.Output.Options.Join, err = output.ParseJoin(f.Output.Join); err != nil {
			return j, f.inputErr("output.join", "%v", err)
		}
	}
	if j.Output.Container, err = output.ResolveContainer(f.Output.Container, f.Output.Path); err != nil {
		return j, f.inputErr("output.container", "%v", err)
	}
	j.Output.Card = f.Output.Card == nil || *f.Output.Card
	j.Output.License = f.Output.License
	j.ManifestPath = f.Output.Manifest
	j.RunDir = f.RunDir
	j.Limits = f.Budget
	if j.Limits.MaxRequests < 0 {
		return j, f.inputErr("budget.max_requests", "must not be negative")
	}
	if !(j.Limits.MaxCostUSD >= 0) {
		return j, f.inputErr("budget.max_cost_usd", "must not be negative")
	}
	if err := f.method(&j.Options); err != nil {
		return j, err
	}
	return j, nil
}

// method sets the pipeline's knobs from the generation and filters
// sections.
func (f *File) method(opts *pipeline.Options) error {
	g, fl := f.Generation, f.Filters
	if f.Seed != nil {
		opts.Seed = *f.Seed
	}
	opts.DemosA, opts.DemosB, opts.MachineDemos = g.DemosA, g.DemosB, g.MachineDemos
	opts.Window, opts.MaxPending, opts.StallLimit = g.Window, g.MaxPending, g.StallLimit
	opts.InstructionSampling, opts.InstanceSampling, opts.EnsembleSampling = g.Instructions, g.Instances, g.Ensemble
	opts.NoveltyThreshold = fl.NoveltyThreshold
	opts.Instance = filter.InstanceRules{
		AllowEmptyInput:      fl.AllowEmptyInput,
		AllowInstructionEcho: fl.AllowInstructionEcho,
		AllowRepetition:      fl.AllowRepetition,
	}
	def := filter.DefaultInstructionChecks()
	minW, maxW, ascii := def.MinWords, def.MaxWords, def.ASCIIStart
	blacklist, prefixes := def.Blacklist, def.BadPrefixes
	if fl.MinWords != nil {
		minW = *fl.MinWords
	}
	if fl.MaxWords != nil {
		maxW = *fl.MaxWords
	}
	if fl.ASCIIStart != nil {
		ascii = *fl.ASCIIStart
	}
	if fl.Blacklist != nil {
		blacklist = fl.Blacklist
	}
	if fl.BadPrefixes != nil {
		prefixes = fl.BadPrefixes
	}
	if minW < 0 || maxW < 0 {
		return f.inputErr("filters.min_words", "min_words and max_words must not be negative")
	}
	opts.Checks = filter.NewInstructionChecks(minW, maxW, blacklist, prefixes, ascii)
	switch fl.Parser {
	case "", "robust":
	case "compat":
		opts.CompatParser = true
	default:
		return f.inputErr("filters.parser", "%q: want robust or compat", fl.Parser)
	}
	opts.Consensus.Rule = filter.Rule(fl.Consensus.Select)
	opts.Consensus.Metric = filter.Metric(fl.Consensus.Metric)
	opts.Consensus.MinAgreement = fl.Consensus.MinAgreement
	opts.JudgeMode = judge.Mode(fl.Consensus.JudgeMode)
	return nil
}

// inputErr is an input error about the field at the dotted path; the
// caller locates it (File.Locate).
func (f *File) inputErr(path, format string, args ...any) error {
	return &pipeline.InputError{Err: fieldErr(path, format, args...)}
}

// LoadSeeds loads a seed file, or the embedded set when path is "", and
// returns the tasks with the name and SHA-256 of the bytes they came
// from. A file with problems is an *pipeline.InputError listing every
// problem as FILE:LINE: field: message.
func LoadSeeds(path string) (tasks []seeds.Task, source, sha string, err error) {
	var raw []byte
	if path == "" {
		source, raw = "default", seeds.DefaultJSONL()
		tasks, err = seeds.Default()
	} else {
		source = path
		if raw, err = os.ReadFile(path); err != nil {
			return nil, "", "", &pipeline.InputError{Err: fmt.Errorf("seeds: %w", err)}
		}
		tasks, err = seeds.LoadFile(path)
	}
	var ve *seeds.ValidationError
	switch {
	case errors.As(err, &ve):
		if len(ve.Problems) == 1 {
			return nil, "", "", &pipeline.InputError{Err: fmt.Errorf("invalid seed file: %w", err)}
		}
		return nil, "", "", &pipeline.InputError{Err: fmt.Errorf("invalid seed file (%d problems):\n%w", len(ve.Problems), err)}
	case err != nil:
		return nil, "", "", &pipeline.InputError{Err: err}
	}
	sum := sha256.Sum256(raw)
	return tasks, source, hex.EncodeToString(sum[:]), nil
}

// SplitTarget splits n between the types in the seeds' A:B ratio.
func SplitTarget(n, a, b int) (int, int) {
	switch {
	case a+b == 0:
		return 0, 0
	case b == 0:
		return n, 0
	case a == 0:
		return 0, n
	}
	ta := (n*a + (a+b)/2) / (a + b)
	return ta, n - ta
}

// ExcludeInstructions reads the instructions of datasets (JSONL in any
// format, or seed tasks) that count as already generated.
func ExcludeInstructions(files []string) ([]string, error) {
	var all []string
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return nil, &pipeline.InputError{Err: err}
		}
		instr, err := output.ReadInstructions(fh, name)
		fh.Close()
		if errors.Is(err, output.ErrInvalidLine) {
			return nil, &pipeline.InputError{Err: err}
		}
		if err != nil {
			return nil, err
		}
		all = append(all, instr...)
	}
	return all, nil
}

// fieldErr is a *llm.FieldError for the field at the dotted path.
func fieldErr(path, format string, args ...any) error {
	return llm.FieldErrorf(strings.Split(path, "."), format, args...)
}
