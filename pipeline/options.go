package pipeline

import (
	"errors"
	"log/slog"
	"slices"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// Sampling holds the decoding settings of one stage.
type Sampling struct {
	Temperature float64 `json:"temperature" yaml:"temperature"`
	TopP        float64 `json:"top_p,omitempty" yaml:"top_p"`
	TopK        int     `json:"top_k,omitempty" yaml:"top_k"`
	MaxTokens   int     `json:"max_tokens" yaml:"max_tokens"`
}

// Defaults of the method (the reference's settings).
const (
	DefaultDemosA           = 24  // demonstrations in a type-A instruction prompt
	DefaultDemosB           = 10  // demonstrations in a type-B instruction prompt
	DefaultMachineDemos     = 4   // of which at most this many are machine instructions
	DefaultNoveltyThreshold = 0.7 // reject an instruction whose max Rouge-L F is above this
	DefaultWindow           = 16  // instruction requests in flight per type
	DefaultMaxPending       = 64  // accepted instructions in flight per type
	DefaultStallLimit       = 500 // consecutive fruitless results before a type gives up
	// DefaultBatchWindow is the default Window and MaxPending when a
	// model's calls go through a Batch API: a round of instruction
	// requests per type that is worth a batch job.
	DefaultBatchWindow = 1000
)

// DefaultInstructionSampling returns the reference's decoding of stage 1:
// temperature 0.7, top-k 50, top-p 1, at most 256 tokens.
func DefaultInstructionSampling() Sampling {
	return Sampling{Temperature: 0.7, TopP: 1, TopK: 50, MaxTokens: 256}
}

// DefaultInstanceSampling returns the reference's decoding of stage 2:
// temperature 0.7, top-k 50, top-p 1, at most 512 tokens.
func DefaultInstanceSampling() Sampling {
	return Sampling{Temperature: 0.7, TopP: 1, TopK: 50, MaxTokens: 512}
}

// DefaultEnsembleSampling returns the reference's decoding of stage 3:
// greedy, at most 256 tokens.
func DefaultEnsembleSampling() Sampling { return Sampling{Temperature: 0, MaxTokens: 256} }

// Options configure a run. Fields left zero take the defaults above (a
// zero that is a legal value is spelled differently: NoveltyThreshold is a
// pointer, and a negative MachineDemos means none), so the zero value plus
// Seeds, Models and a target is a complete configuration.
type Options struct {
	// Seeds are the seed tasks; each type's pipeline uses those of its
	// type as demonstrations and as the start of its novelty pool.
	Seeds []seeds.Task
	// Models are the models by role (the pool's descriptions). At least
	// one model must have each role the run needs.
	Models []llm.ModelInfo
	// Seed makes every random choice reproducible.
	Seed int64
	// RunID names the run; record IDs derive from it. A Job sets it to
	// the run identity.
	RunID string

	// TargetA and TargetB are the numbers of examples to keep per type.
	TargetA, TargetB int

	// DemosA and DemosB are the demonstrations per instruction prompt;
	// MachineDemos is how many of them may be earlier machine
	// instructions (set it negative for none).
	DemosA, DemosB, MachineDemos int
	// Window is the number of instruction requests in flight per type.
	// A request's prompt shows machine instructions accepted up to
	// Window results before it, so Window is part of what makes a run
	// reproducible: changing it changes later prompts. 0 means
	// DefaultWindow, or DefaultBatchWindow when a model's calls go
	// through a Batch API (ModelInfo.Batch): then a type's requests go
	// out in rounds of a batch's size, and their machine demonstrations
	// come from instructions accepted in earlier rounds.
	Window int
	// MaxPending bounds the accepted instructions whose instance and
	// ensemble calls are in flight, per type; 0 means DefaultMaxPending,
	// or DefaultBatchWindow in batch mode (see Window).
	MaxPending int

	InstructionSampling, InstanceSampling, EnsembleSampling Sampling

	// Checks are the instruction heuristics; nil means the reference's.
	Checks *filter.InstructionChecks
	// NoveltyThreshold rejects an instruction whose highest Rouge-L F
	// against the pool is above it; nil means DefaultNoveltyThreshold, and
	// 0 rejects any instruction that shares a token with the pool.
	NoveltyThreshold *float64
	// Exclude holds instructions that count as already generated (for
	// example last night's output), for both types.
	Exclude []string
	// Instance holds the instance validity rules.
	Instance filter.InstanceRules
	// CompatParser selects the reference-compatible instance parser
	// instead of the robust default.
	CompatParser bool
	// Consensus parameterizes the consensus rule.
	Consensus filter.ConsensusOptions
	// JudgeMode is how the judge model grades for the judge rule; ""
	// means judge.ModeRubric.
	JudgeMode judge.Mode

	// Budget stops the run cleanly when it is spent; nil means none.
	Budget Budget
	// StallLimit stops a type after this many consecutive instruction
	// results without an accepted instruction, or decided instructions
	// without a kept example; 0 means DefaultStallLimit.
	StallLimit int

	// Evidence, when set, receives every kept and dropped candidate with
	// its scores, in a deterministic order (see Evidence).
	Evidence Evidence

	// Logger receives warnings and debug events; nil discards them.
	Logger *slog.Logger
}

// Budget reports whether the run may start another model call. The
// pipeline asks before every call and treats a call refused with an
// error matching ErrBudget as a clean stop.
type Budget interface {
	Exhausted() bool
}

// batch reports whether a model of the run uses a Batch API.
func (o Options) batch() bool {
	return slices.ContainsFunc(o.Models, func(m llm.ModelInfo) bool { return m.Batch })
}

// withDefaults returns o with unset fields replaced by defaults. It is
// idempotent, and two Options that differ only in spelling a default
// (Window 0 or 16) come out equal.
func (o Options) withDefaults() Options {
	if o.DemosA == 0 {
		o.DemosA = DefaultDemosA
	}
	if o.DemosB == 0 {
		o.DemosB = DefaultDemosB
	}
	if o.MachineDemos == 0 {
		o.MachineDemos = DefaultMachineDemos
	} else if o.MachineDemos < 0 {
		o.MachineDemos = -1
	}
	batch := o.batch()
	if o.Window == 0 {
		o.Window = DefaultWindow
		if batch {
			o.Window = DefaultBatchWindow
		}
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
		if batch {
			o.MaxPending = DefaultBatchWindow
		}
	}
	if o.InstructionSampling == (Sampling{}) {
		o.InstructionSampling = DefaultInstructionSampling()
	}
	if o.InstanceSampling == (Sampling{}) {
		o.InstanceSampling = DefaultInstanceSampling()
	}
	if o.EnsembleSampling == (Sampling{}) {
		o.EnsembleSampling = DefaultEnsembleSampling()
	}
	if o.Checks == nil {
		o.Checks = filter.DefaultInstructionChecks()
	}
	if o.NoveltyThreshold == nil {
		t := DefaultNoveltyThreshold
		o.NoveltyThreshold = &t
	}
	if o.Consensus.MinAgreement == nil {
		m := filter.DefaultMinAgreement
		o.Consensus.MinAgreement = &m
	}
	if o.Consensus.Metric == "" {
		o.Consensus.Metric = filter.MetricRougeL
	}
	if o.StallLimit == 0 {
		o.StallLimit = DefaultStallLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// judge returns the judge of the judge rule: the first model with the
// judge role; nil for the other rules.
func (o *Options) judge() *judge.Judge {
	if o.Consensus.Rule != filter.RuleJudge {
		return nil
	}
	if m := o.judgeInfo(); m.Name != "" {
		return &judge.Judge{Model: m.Name, Style: prompts.Style(m.Style), Mode: o.JudgeMode}
	}
	return nil
}

// judgeInfo is the model of the judge role (the zero value when none).
func (o *Options) judgeInfo() llm.ModelInfo {
	for _, m := range o.Models {
		if m.HasRole(llm.RoleJudge) {
			return m
		}
	}
	return llm.ModelInfo{}
}

// judgeMode is the resolved judge mode, "" when no judge grades.
func (o *Options) judgeMode() string {
	j := o.judge()
	if j == nil {
		return ""
	}
	m, _ := judge.ParseMode(string(j.Mode))
	return string(m)
}

// ensembleRule is the resolved consensus rule.
func (o *Options) ensembleRule() filter.Rule {
	if o.Consensus.Rule == "" {
		return filter.RuleReference
	}
	return o.Consensus.Rule
}

// machineDemos is the number of machine demonstrations allowed (≥ 0).
func (o *Options) machineDemos() int { return max(o.MachineDemos, 0) }

// noveltyThreshold is the resolved threshold.
func (o *Options) noveltyThreshold() float64 { return *o.NoveltyThreshold }

// field is an Options problem, named by its configuration path.
func field(path ...string) func(format string, args ...any) error {
	return func(format string, args ...any) error { return llm.FieldErrorf(path, format, args...) }
}

// validate checks that o can run. Every problem is an *llm.FieldError
// named by the configuration path of the setting (generation.window,
// filters.novelty_threshold, n_a, …), so that the command line can add
// the flag that sets it.
func (o Options) validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if o.TargetA < 0 {
		add(field("n_a")("must not be negative"))
	}
	if o.TargetB < 0 {
		add(field("n_b")("must not be negative"))
	}
	if o.TargetA == 0 && o.TargetB == 0 {
		add(field("n")("nothing to do: both targets are 0"))
	}
	a, b := seeds.Split(o.Seeds)
	if o.TargetA > 0 && len(a) == 0 {
		add(field("seeds")("a type-A target needs type-A seeds (tasks whose first instance has an input)"))
	}
	if o.TargetB > 0 && len(b) == 0 {
		add(field("seeds")("a type-B target needs type-B seeds (tasks whose first instance has no input)"))
	}
	for _, r := range llm.Roles() {
		if !slices.ContainsFunc(o.Models, func(m llm.ModelInfo) bool { return m.HasRole(r) }) {
			add(field("models")("no model has the %s role", r))
		}
	}
	for _, m := range o.Models {
		if m.Weight < 0 {
			add(field("models", m.Name, "weight")("must not be negative"))
		}
		if m.Style != llm.StyleCompletion && m.Style != llm.StyleChat {
			add(field("models", m.Name, "style")("unknown style %q (want completion or chat)", m.Style))
		}
	}
	for _, g := range []struct {
		name string
		v    int
	}{
		{"demos_a", o.DemosA}, {"demos_b", o.DemosB}, {"window", o.Window},
		{"max_pending", o.MaxPending}, {"stall_limit", o.StallLimit},
	} {
		if g.v < 0 {
			add(field("generation", g.name)("must not be negative"))
		}
	}
	for _, s := range []struct {
		name string
		s    Sampling
	}{
		{"instructions", o.InstructionSampling}, {"instances", o.InstanceSampling}, {"ensemble", o.EnsembleSampling},
	} {
		f := func(k string) func(string, ...any) error { return field("generation", s.name, k) }
		switch {
		case s.s.Temperature < 0:
			add(f("temperature")("must not be negative"))
		case s.s.TopP < 0 || s.s.TopP > 1:
			add(f("top_p")("%v is outside [0, 1]", s.s.TopP))
		case s.s.TopK < 0:
			add(f("top_k")("must not be negative"))
		case s.s.MaxTokens < 0:
			add(f("max_tokens")("must not be negative"))
		}
	}
	if t := o.NoveltyThreshold; t != nil && !(*t >= 0 && *t <= 1) {
		add(field("filters", "novelty_threshold")("%v is outside [0, 1]", *t))
	}
	switch o.Consensus.Metric {
	case "", filter.MetricRougeL, filter.MetricRouge1:
	default:
		add(field("filters", "consensus", "metric")("%q (want rougeL or rouge1)", o.Consensus.Metric))
	}
	if o.Consensus.Rule != "" {
		if _, err := filter.ParseRule(string(o.Consensus.Rule)); err != nil {
			add(field("filters", "consensus", "select")("%v", err))
		}
	}
	if _, err := judge.ParseMode(string(o.JudgeMode)); err != nil {
		add(field("filters", "consensus", "judge_mode")("%v", err))
	}
	if j := o.judge(); j != nil && j.Mode == judge.ModeAnswer {
		ji := o.judgeInfo()
		for _, m := range o.Models {
			if (m.HasRole(llm.RoleEnsemble) || m.HasRole(llm.RoleInstances)) && m.SameModel(ji) {
				add(field("filters", "consensus", "judge_mode")("answer: the judge %s is also a candidate's author (%s): its own output would be graded 10 and win; give a judge outside the pool", ji.Name, m.Name))
				break
			}
		}
	}
	if o.Consensus.Rule == filter.RuleJudge && o.judge() == nil {
		add(field("filters", "consensus", "select")("the judge rule needs a model with the judge role"))
	}
	if m := o.Consensus.MinAgreement; m != nil && *m != *m {
		add(field("filters", "consensus", "min_agreement")("not a number"))
	}
	return errors.Join(errs...)
}
