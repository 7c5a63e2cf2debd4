package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// Executor runs model calls. The pipeline sends every call through it,
// identified by model name, request and sample index; the executor owns the
// response cache, limits and retries. *llm.Pool is the local executor.
type Executor interface {
	Do(ctx context.Context, model string, req llm.Request, sample int) (llm.Response, error)
}

// ModelRef is what the pipeline needs to know about a model: its name in
// the executor, the roles it plays, its share of a role and how prompts are
// rendered for it.
type ModelRef struct {
	Name   string
	Roles  []llm.Role
	Weight float64   // share of a role among the models that have it; 0 means 1
	Style  llm.Style // completion or chat
}

func (m ModelRef) has(r llm.Role) bool {
	for _, x := range m.Roles {
		if x == r {
			return true
		}
	}
	return false
}

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
)

// DefaultInstructionSampling, DefaultInstanceSampling and
// DefaultEnsembleSampling are the reference's decoding settings.
var (
	DefaultInstructionSampling = Sampling{Temperature: 0.7, TopP: 1, TopK: 50, MaxTokens: 256}
	DefaultInstanceSampling    = Sampling{Temperature: 0.7, TopP: 1, TopK: 50, MaxTokens: 512}
	DefaultEnsembleSampling    = Sampling{Temperature: 0, MaxTokens: 256}
)

// Options configure a run. Fields left zero take the defaults above, so
// the zero value plus Seeds, Models and a target is a complete
// configuration.
type Options struct {
	// Seeds are the seed tasks; each type's pipeline uses those of its
	// type as demonstrations and as the start of its novelty pool.
	Seeds []seeds.Task
	// Models are the models by role. At least one model must have each
	// role the run needs.
	Models []ModelRef
	// Seed makes every random choice reproducible.
	Seed int64
	// RunID names the run (the config hash); record IDs derive from it.
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
	// reproducible: changing it changes later prompts.
	Window int
	// MaxPending bounds the accepted instructions whose instance and
	// ensemble calls are in flight, per type.
	MaxPending int

	InstructionSampling, InstanceSampling, EnsembleSampling Sampling

	// Checks are the instruction heuristics; nil means the reference's.
	Checks *filter.InstructionChecks
	// NoveltyThreshold rejects an instruction whose highest Rouge-L F
	// against the pool is above it; 0 means 0.7.
	NoveltyThreshold float64
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

	// Budget stops the run cleanly when it is spent; nil means none.
	Budget Budget
	// StallLimit stops a type after this many consecutive instruction
	// results without an accepted instruction, or decided instructions
	// without a kept example; 0 means DefaultStallLimit.
	StallLimit int

	// Logger receives warnings and debug events; nil discards them.
	Logger *slog.Logger
}

// Budget reports whether the run may start another model call. The
// pipeline asks before every call; calls already started finish.
type Budget interface {
	Exhausted() bool
}

// withDefaults returns o with zero fields replaced by defaults.
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
		o.MachineDemos = 0
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.InstructionSampling == (Sampling{}) {
		o.InstructionSampling = DefaultInstructionSampling
	}
	if o.InstanceSampling == (Sampling{}) {
		o.InstanceSampling = DefaultInstanceSampling
	}
	if o.EnsembleSampling == (Sampling{}) {
		o.EnsembleSampling = DefaultEnsembleSampling
	}
	if o.Checks == nil {
		o.Checks = filter.DefaultInstructionChecks()
	}
	if o.NoveltyThreshold == 0 {
		o.NoveltyThreshold = DefaultNoveltyThreshold
	}
	if o.StallLimit <= 0 {
		o.StallLimit = DefaultStallLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// validate checks that o can run, with errors that name the setting.
func (o Options) validate() error {
	var errs []error
	if o.TargetA < 0 || o.TargetB < 0 {
		errs = append(errs, errors.New("targets must not be negative"))
	}
	if o.TargetA == 0 && o.TargetB == 0 {
		errs = append(errs, errors.New("nothing to do: both targets are 0"))
	}
	a, b := seeds.Split(o.Seeds)
	if o.TargetA > 0 && len(a) == 0 {
		errs = append(errs, errors.New("a type-A target needs type-A seeds (tasks whose first instance has an input)"))
	}
	if o.TargetB > 0 && len(b) == 0 {
		errs = append(errs, errors.New("a type-B target needs type-B seeds (tasks whose first instance has no input)"))
	}
	for _, r := range llm.Roles() {
		n := 0
		for _, m := range o.Models {
			if m.has(r) {
				n++
			}
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("no model has the %s role", r))
		}
	}
	for _, m := range o.Models {
		if m.Weight < 0 {
			errs = append(errs, fmt.Errorf("model %s: weight must not be negative", m.Name))
		}
		if m.Style != llm.StyleCompletion && m.Style != llm.StyleChat {
			errs = append(errs, fmt.Errorf("model %s: style %q (want completion or chat)", m.Name, m.Style))
		}
	}
	if o.NoveltyThreshold < 0 || o.NoveltyThreshold > 1 {
		errs = append(errs, fmt.Errorf("novelty threshold %v is outside [0, 1]", o.NoveltyThreshold))
	}
	return errors.Join(errs...)
}
