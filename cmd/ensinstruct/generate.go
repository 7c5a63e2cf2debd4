package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ensinstruct/ensinstruct/config"
	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/judge"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/batch"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const generateExample = `  ensinstruct generate --model ollama:llama3.1 --ensemble ollama:qwen2.5 --ensemble ollama:mistral -n 100 > data.jsonl
  ensinstruct generate -c nightly.yaml -o data.jsonl --exclude last-night.jsonl --max-cost 5`

// defaultN is the number of examples generate keeps when nothing says.
const defaultN = 100

// generateFields are the flags of generate that stand for a
// configuration field: a flag given on the command line overrides the
// field, after the file and every --set. Errors about a field name the
// flag when it was given.
var generateFields = map[string]string{
	"seeds": "seeds", "seed": "seed", "n": "n", "n-a": "n_a", "n-b": "n_b",
	"output": "output.path", "format": "output.format", "meta": "output.meta",
	"manifest": "output.manifest", "run-dir": "run_dir", "exclude": "exclude",
	"max-requests": "budget.max_requests", "max-cost": "budget.max_cost_usd",
	"novelty-threshold": "filters.novelty_threshold", "min-agreement": "filters.consensus.min_agreement",
	"metric": "filters.consensus.metric", "parser": "filters.parser",
	"window": "generation.window", "stall-limit": "generation.stall_limit", "progress": "progress",
	"select": "filters.consensus.select", "judge-mode": "filters.consensus.judge_mode", "batch": "batch.hosted",
	"pull": "pull", "system": "output.system", "join": "output.join", "container": "output.container",
}

// generateFlags are the flags of generate that are not fields.
type generateFlags struct {
	config   string
	sets     []string
	models   []string
	ensemble []string
	judges   []string
	style    string
	interval time.Duration
	noCard   bool
	nats     natsFlags
	detach   bool
}

func (a *app) generateCmd() *cobra.Command {
	var o generateFlags
	cmd := &cobra.Command{
		Use:     "generate [flags]",
		Short:   "Run the whole Ensemble-Instruct pipeline and write JSONL",
		Long:    helpText("generate"),
		Example: generateExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.generate(cmd.Context(), cmd.Flags(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "YAML configuration `FILE`")
	f.StringArrayVar(&o.sets, "set", nil, "set a config field, as `PATH=VALUE` (repeatable)")
	f.StringArrayVar(&o.models, "model", nil, "model `SPEC` that writes instructions and instances (repeatable)")
	f.StringArrayVar(&o.ensemble, "ensemble", nil, "model `SPEC` that answers for the consensus vote (repeatable)")
	f.StringVar(&o.style, "style", "", "prompt style for command-line models: completion or chat (default: completion for ollama, chat for openai)")
	f.DurationVar(&o.interval, "progress-interval", 10*time.Second, "how often to log progress when stderr is not a terminal")
	addNATSFlags(f, &o.nats)
	f.BoolVar(&o.detach, "detach", false, "exit with status 75 once every remaining call waits in a live Batch API job; the same command run again collects the results and goes on")
	// Field flags: their values only matter when given.
	f.String("seeds", "", "seed task `FILE` (default: the embedded set)")
	f.Int64("seed", 0, "random seed of the run")
	f.IntP("n", "n", config.DefaultN, "examples to keep, split between types in the seeds' A:B ratio")
	f.Int("n-a", 0, "type-A examples to keep (overrides -n's split)")
	f.Int("n-b", 0, "type-B examples to keep (overrides -n's split)")
	f.StringP("output", "o", "", "write records to `FILE` (through FILE.partial, renamed when done) instead of stdout")
	f.String("format", string(output.FormatAlpaca), "output format: alpaca, openai, sharegpt or prompt-completion")
	f.String("container", "", "file type: jsonl or parquet (default: parquet for a .parquet -o, else jsonl)")
	f.String("system", "", "a system message for the chat formats (openai, sharegpt, prompt-completion)")
	f.String("join", "", `what joins instruction and input in a user turn, with Go escapes (default "\n")`)
	f.BoolVar(&o.noCard, "no-card", false, "do not write a dataset card (FILE.README.md) next to -o FILE")
	f.Bool("meta", false, "add provenance to each record: id, type, models, consensus scores, novelty")
	f.String("manifest", "", "write the run manifest to `FILE` (default: next to -o, or in the run directory)")
	f.String("run-dir", "", "`DIR` for the response cache, evidence and manifest (default .ensinstruct/<run identity>)")
	f.StringArray("exclude", nil, "treat the instructions of dataset `FILE` as already generated (repeatable)")
	f.Int64("max-requests", 0, "never make more than this many model calls that reach a server (0: no limit)")
	f.Float64("max-cost", 0, "never spend more than this many US dollars (0: no limit)")
	f.Float64("novelty-threshold", pipeline.DefaultNoveltyThreshold, "drop an instruction whose Rouge-L against an earlier one is above this (0: any shared word)")
	f.Float64("min-agreement", filter.DefaultMinAgreement, "drop an example whose least-agreeing pair of outputs scores at most this")
	f.String("metric", string(filter.MetricRougeL), "consensus agreement metric: rougeL or rouge1")
	f.String("select", string(filter.RuleReference), "consensus rule: reference (the paper's), weighted (members weighted by their agreement) or judge")
	f.StringArrayVar(&o.judges, "judge", nil, "model `SPEC` that grades the candidates for --select judge")
	f.String("judge-mode", string(judge.ModeRubric), "how the judge grades: rubric (a 1-10 grade per candidate) or answer (it answers; candidates graded by agreement)")
	f.String("parser", "robust", "instance parser: robust or compat (the reference's)")
	f.Int("window", pipeline.DefaultWindow, "instruction requests in flight per type; part of what makes a run reproducible")
	f.Int("stall-limit", pipeline.DefaultStallLimit, "give up on a type after this many fruitless results in a row")
	f.String("progress", "auto", "progress on stderr: auto, bar, log or none")
	f.Bool("pull", false, "have Ollama pull the models it lacks before the run (with no models named: a suggested pool)")
	f.Bool("batch", false, "send the calls of every hosted model (openai backend, server not local) through its Batch API, at the batch price")
	return cmd
}

// fieldOverrides turns the field flags that were given into overrides,
// PATH=VALUE with the value as YAML (JSON, for exact quoting).
func fieldOverrides(fs *pflag.FlagSet, fields map[string]string) []string {
	var sets []string
	fs.Visit(func(fl *pflag.Flag) {
		path, ok := fields[fl.Name]
		if !ok {
			return
		}
		var v any = fl.Value.String()
		switch fl.Value.Type() {
		case "stringArray", "stringSlice":
			v = fl.Value.(pflag.SliceValue).GetSlice()
		case "string":
		default: // numbers and booleans are YAML as pflag prints them
			sets = append(sets, path+"="+fl.Value.String())
			return
		}
		b, _ := json.Marshal(v)
		sets = append(sets, path+"="+string(b))
	})
	return sets
}

// flagOf returns, for a field set by a flag that was given, the flag as
// spelled on the command line.
func flagOf(fs *pflag.FlagSet, fields map[string]string) func(string) (string, bool) {
	return func(field string) (string, bool) {
		for name, path := range fields {
			if path == field && fs.Changed(name) {
				if len(name) == 1 {
					return "-" + name, true
				}
				return "--" + name, true
			}
		}
		return "", false
	}
}

// generate resolves the configuration and runs the job, with its
// progress on stderr.
func (a *app) generate(ctx context.Context, fs *pflag.FlagSet, o generateFlags) error {
	overrides := append(o.sets, fieldOverrides(fs, generateFields)...)
	if o.noCard {
		overrides = append(overrides, "output.card=false")
	}
	file, err := config.Load(o.config, overrides)
	if err != nil {
		return a.inputError(err)
	}
	if fs.Changed("judge-mode") && file.Filters.Consensus.Select != string(filter.RuleJudge) {
		return usagef("--judge-mode needs --select judge")
	}
	switch file.Progress {
	case "":
		file.Progress = "auto"
	case "auto", "bar", "log", "none":
	default:
		return usagef("--progress %q: want auto, bar, log or none", file.Progress)
	}
	// Command-line models replace the file's; a --judge alone joins the
	// file's models, or the local Ollama's.
	var judges llm.Models
	switch {
	case len(o.models) > 0 || len(o.ensemble) > 0:
		models, err := modelsFromSpecs(o.models, o.ensemble, o.judges, o.style)
		if err != nil {
			return err
		}
		file.Pool.Models = models
		// Endpoint limits for endpoints no command-line model uses would
		// make the pool refuse to start; keep only the ones in use.
		file.Pool.Endpoints = endpointsInUse(file.Pool.Endpoints, models)
	case len(o.judges) > 0:
		if judges, err = modelsFromSpecs(nil, nil, o.judges, o.style); err != nil {
			return err
		}
	case fs.Changed("style"):
		return usagef("--style applies to --model, --ensemble and --judge models; set style per model in the config")
	}
	log := a.logger()
	var discovered []llm.LocalModel
	switch {
	case len(file.Pool.Models) == 0 && o.config == "":
		// No models anywhere: the local Ollama's, chosen automatically.
		if file.Pool.Models, discovered, err = a.autoPool(ctx, file.Pull, judges, log); err != nil {
			return err
		}
	case file.Pull:
		if err := a.pullMissing(ctx, file.Pool.Models, log); err != nil {
			return err
		}
	}
	if len(judges) > 0 {
		if file.Pull {
			if err := a.pullMissing(ctx, judges, log); err != nil {
				return err
			}
		}
		// The command line's judge replaces the file's: a model the file
		// gave only the judge role goes.
		var kept llm.Models
		for _, m := range file.Pool.Models {
			m.Roles = slices.DeleteFunc(slices.Clone(m.Roles), func(r llm.Role) bool { return r == llm.RoleJudge })
			if len(m.Roles) > 0 {
				kept = append(kept, m)
			}
		}
		file.Pool.Models = kept
		for _, m := range judges {
			file.Pool.Models.Add(m.Name, m.ModelConfig)
		}
		file.Pool.Endpoints = endpointsInUse(file.Pool.Endpoints, file.Pool.Models)
	}
	located := func(err error) error { return a.inputError(file.Locate(err, flagOf(fs, generateFields))) }
	j, err := file.Job()
	if err != nil {
		return located(err)
	}
	j.Discovered = discovered
	j.Output.Writer = a.stdout
	j.Getenv = a.getenv
	j.Logger = log
	j.Version = buildVersion()
	if err := o.nats.check(fs.Changed, a.getenv); err != nil {
		return err
	}
	if o.nats.enabled() {
		if fs.Changed("batch") || o.detach {
			return usagef("--batch and --detach run calls through the Batch API; --nats runs them on workers: choose one")
		}
		d := a.distributed(o.nats, j.Logger)
		defer d.close()
		j.Executor, j.CallsElsewhere = d.jobExecutor, true
	} else {
		j.Executor = batchExecutor(j, file.Batch, o.detach)
	}
	run, err := j.Start(ctx)
	if err != nil {
		return located(err)
	}
	defer run.Close()
	prog := newProgress(a.screen(), file.Progress, o.interval, run, j.Logger)
	prog.start()
	m, err := run.Wait(ctx)
	prog.stop()
	writeSummary(a.stderr, m, run.ManifestPath())
	switch {
	case errors.Is(err, pipeline.ErrStalled):
		return fmt.Errorf("%w (see the summary above)", err)
	case errors.Is(err, pipeline.ErrDetached):
		fmt.Fprintf(a.stderr, "ensinstruct: %d batch jobs pending; run the same command again to collect their results and go on\n", livePending(m.Batches))
		return &silentError{code: exitPending}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return &silentError{code: exitInterrupted} // the summary says so
	}
	return located(err)
}

// batchExecutor runs the calls of models whose calls go through a Batch
// API, and collects the live jobs an earlier run left in the run
// directory; runs without either use the local pool alone.
func batchExecutor(j pipeline.Job, set batch.Settings, detach bool) func(context.Context, *llm.Pool, string) (pipeline.Executor, error) {
	return func(ctx context.Context, local *llm.Pool, runDir string) (pipeline.Executor, error) {
		if !batch.Wanted(local, runDir) {
			return local, nil
		}
		return batch.New(ctx, batch.Options{Local: local, Config: j.Pool, RunDir: runDir, Settings: set,
			Detach: detach, Getenv: j.Getenv, Logger: j.Logger})
	}
}

// inputError makes library input errors exit 2.
func (a *app) inputError(err error) error {
	var ie *pipeline.InputError
	if errors.As(err, &ie) {
		return badInput(err)
	}
	return err
}

// modelsFromSpecs turns --model and --ensemble specs into the pool's
// models (see llm.Models.Add: a spec given for both gets both roles).
func modelsFromSpecs(gen, ens, judges []string, style string) (llm.Models, error) {
	if style != "" && style != string(llm.StyleCompletion) && style != string(llm.StyleChat) {
		return nil, usagef("--style %q: want completion or chat", style)
	}
	var ms llm.Models
	for _, group := range []struct {
		flag  string
		specs []string
		roles []llm.Role
	}{
		{"--model", gen, []llm.Role{llm.RoleInstructions, llm.RoleInstances}},
		{"--ensemble", ens, []llm.Role{llm.RoleEnsemble}},
		{"--judge", judges, []llm.Role{llm.RoleJudge}},
	} {
		for _, spec := range group.specs {
			name, mc, err := llm.ParseSpec(spec)
			if err != nil {
				return nil, badInput(fmt.Errorf("%s: %w", group.flag, err))
			}
			if style != "" {
				mc.Style = llm.Style(style)
			}
			mc.Roles = group.roles
			ms.Add(name, mc)
		}
	}
	return ms, nil
}

func endpointsInUse(eps map[string]llm.EndpointConfig, ms llm.Models) map[string]llm.EndpointConfig {
	if len(eps) == 0 {
		return eps
	}
	used := map[string]bool{}
	for _, m := range ms {
		used[m.Endpoint] = true
	}
	out := map[string]llm.EndpointConfig{}
	for k, v := range eps {
		if used[k] {
			out[k] = v
		}
	}
	return out
}
