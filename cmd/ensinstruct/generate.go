package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/seeds"
	"github.com/spf13/cobra"
)

const generateLong = `Run the whole Ensemble-Instruct pipeline and write the kept examples as JSONL.

For each task type (A: the task needs an input, B: it does not) the models
write new instructions from few-shot prompts of seed tasks, instructions too
close to earlier ones are dropped (Rouge-L > 0.7), a model writes an instance
for each, every ensemble model answers it zero-shot, and the example is kept
only when the outputs agree. Records stream to stdout (or -o FILE) as soon as
they are decided; progress and the final summary go to stderr.

Models come from a YAML config (-c) or from the command line:
  --model SPEC      writes instructions and instances (repeatable)
  --ensemble SPEC   answers for the consensus vote (repeatable)
A SPEC is ollama:NAME[@URL] or openai:NAME[@BASE_URL]. Command-line models
replace the config's models; the config's endpoints and retry still apply.
Any config field can be set with --set PATH=VALUE (e.g. --set
generation.window=32); the dedicated flags below win over --set.

Every model call goes through a response cache in the run directory
(--run-dir, default .ensinstruct/<config hash>). Running the same command
again replays finished calls from the cache and pays only for the rest, so a
killed run restarted with the same command produces byte-identical output.

Exit status: 0 when every target was reached or the budget stopped the run,
1 on failure or when a type stalled, 2 for bad usage or input, 130 when
interrupted (the records so far are flushed and the manifest written).`

const generateExample = `  ensinstruct generate --model ollama:llama3.1 --ensemble ollama:qwen2.5 --ensemble ollama:mistral -n 100 > data.jsonl
  ensinstruct generate -c nightly.yaml -o data.jsonl --exclude last-night.jsonl --max-cost 5`

// generateFlags are the flags of "generate". Every one overrides the
// config file's field of the same meaning when it is given.
type generateFlags struct {
	config      string
	sets        []string
	models      []string
	ensemble    []string
	style       string
	seedsFile   string
	seed        int64
	n, nA, nB   int
	out         string
	format      string
	meta        bool
	manifest    string
	runDir      string
	exclude     []string
	maxRequests int64
	maxCost     float64
	novelty     float64
	minAgree    float64
	metric      string
	parser      string
	window      int
	stallLimit  int
	progress    string
	interval    time.Duration
}

func (a *app) generateCmd() *cobra.Command {
	var o generateFlags
	cmd := &cobra.Command{
		Use:     "generate [flags]",
		Short:   "Run the whole Ensemble-Instruct pipeline and write JSONL",
		Long:    generateLong,
		Example: generateExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := resolveGenerate(cmd, o, a.getenv)
			if err != nil {
				return err
			}
			return a.generate(cmd.Context(), s)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "YAML configuration `FILE`")
	f.StringArrayVar(&o.sets, "set", nil, "set a config field, as `PATH=VALUE` (repeatable)")
	f.StringArrayVar(&o.models, "model", nil, "model `SPEC` that writes instructions and instances (repeatable)")
	f.StringArrayVar(&o.ensemble, "ensemble", nil, "model `SPEC` that answers for the consensus vote (repeatable)")
	f.StringVar(&o.style, "style", "", "prompt style for command-line models: completion or chat (default: completion for ollama, chat for openai)")
	f.StringVar(&o.seedsFile, "seeds", "", "seed task `FILE` (default: the embedded set)")
	f.Int64Var(&o.seed, "seed", 0, "random seed of the run")
	f.IntVarP(&o.n, "n", "n", 0, "examples to keep, split between types in the seeds' A:B ratio (default 100)")
	f.IntVar(&o.nA, "n-a", 0, "type-A examples to keep (overrides -n's split)")
	f.IntVar(&o.nB, "n-b", 0, "type-B examples to keep (overrides -n's split)")
	f.StringVarP(&o.out, "output", "o", "", "write records to `FILE` (through FILE.partial, renamed when done) instead of stdout")
	f.StringVar(&o.format, "format", "", "output format: alpaca, openai or sharegpt (default alpaca)")
	f.BoolVar(&o.meta, "meta", false, "add provenance to each record: id, type, models, consensus scores, novelty")
	f.StringVar(&o.manifest, "manifest", "", "write the run manifest to `FILE` (default: next to -o, or in the run directory)")
	f.StringVar(&o.runDir, "run-dir", "", "`DIR` for the response cache and manifest (default .ensinstruct/<config hash>)")
	f.StringArrayVar(&o.exclude, "exclude", nil, "treat the instructions of dataset `FILE` as already generated (repeatable)")
	f.Int64Var(&o.maxRequests, "max-requests", 0, "stop cleanly after this many model calls that reach a server (0: no limit)")
	f.Float64Var(&o.maxCost, "max-cost", 0, "stop cleanly once this many US dollars are spent (0: no limit)")
	f.Float64Var(&o.novelty, "novelty-threshold", 0, "drop an instruction whose Rouge-L against an earlier one is above this (default 0.7)")
	f.Float64Var(&o.minAgree, "min-agreement", 0, "drop an example whose least-agreeing pair of outputs scores at most this (default 0.01)")
	f.StringVar(&o.metric, "metric", "", "consensus agreement metric: rougeL or rouge1 (default rougeL)")
	f.StringVar(&o.parser, "parser", "", "instance parser: robust or compat (the reference's) (default robust)")
	f.IntVar(&o.window, "window", 0, "instruction requests in flight per type; part of what makes a run reproducible (default 16)")
	f.IntVar(&o.stallLimit, "stall-limit", 0, "give up on a type after this many fruitless results in a row (default 500)")
	f.StringVar(&o.progress, "progress", "", "progress on stderr: auto, bar, log or none (default auto)")
	f.DurationVar(&o.interval, "progress-interval", 10*time.Second, "how often to log progress when stderr is not a terminal")
	return cmd
}

// generateSettings is everything generate needs, resolved from flags, the
// config file and defaults.
type generateSettings struct {
	pool       llm.Config
	seeds      []seeds.Task
	seedsName  string
	seedsSHA   string
	exclude    []string
	opts       pipeline.Options
	out        string // "-" for stdout
	format     output.Format
	meta       bool
	manifest   string
	runDir     string
	configHash string
	budget     budgetConfig
	progress   string
	interval   time.Duration
}

// resolveGenerate merges flags over the config file over defaults and
// loads every input the run needs, so that bad input fails before any
// model is called.
func resolveGenerate(cmd *cobra.Command, o generateFlags, getenv func(string) string) (*generateSettings, error) {
	changed := cmd.Flags().Changed
	var fc *fileConfig
	var err error
	if o.config != "" || len(o.sets) > 0 {
		if fc, err = loadConfigWith(o.config, o.sets); err != nil {
			return nil, err
		}
	} else if fc, err = loadConfigWith("", nil); err != nil {
		return nil, err
	}

	s := &generateSettings{pool: fc.Pool, interval: o.interval}

	// Models: command-line specs replace the file's models.
	if len(o.models) > 0 || len(o.ensemble) > 0 {
		models, err := modelsFromSpecs(o.models, o.ensemble, o.style)
		if err != nil {
			return nil, err
		}
		s.pool.Models = models
		// Endpoint limits for endpoints no command-line model uses would
		// make the pool refuse to start; keep only the ones in use.
		s.pool.Endpoints = endpointsInUse(s.pool.Endpoints, models)
	} else if changed("style") {
		return nil, usagef("--style applies to --model and --ensemble models; set style per model in the config")
	}
	if len(s.pool.Models) == 0 {
		return nil, usagef("no models: give --model and --ensemble, or a config with models (-c)")
	}
	if err := s.pool.Validate(); err != nil {
		return nil, badInput(err)
	}

	// Seeds.
	s.seedsName = pick(changed("seeds"), o.seedsFile, fc.Seeds)
	var raw []byte
	if s.seedsName == "" {
		s.seedsName = "default"
		raw = seeds.DefaultJSONL()
		s.seeds, err = seeds.Default()
	} else {
		if raw, err = os.ReadFile(s.seedsName); err != nil {
			return nil, badInput(fmt.Errorf("seeds: %w", err))
		}
		s.seeds, err = loadSeeds(s.seedsName)
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	s.seedsSHA = hex.EncodeToString(sum[:])

	// Targets.
	st := seeds.Count(s.seeds)
	n := 100
	if fc.N != nil {
		n = *fc.N
	}
	if changed("n") {
		n = o.n
	}
	if n < 0 || o.nA < 0 || o.nB < 0 {
		return nil, usagef("targets must not be negative")
	}
	ta, tb := splitTarget(n, st.TypeA, st.TypeB)
	if fc.NA != nil {
		ta = *fc.NA
	}
	if fc.NB != nil {
		tb = *fc.NB
	}
	if changed("n-a") {
		ta = o.nA
	}
	if changed("n-b") {
		tb = o.nB
	}

	// Exclude datasets.
	excludeFiles := fc.Exclude
	if changed("exclude") {
		excludeFiles = o.exclude
	}
	for _, name := range excludeFiles {
		instr, err := readExcludeInstructions(name)
		if err != nil {
			return nil, err
		}
		s.exclude = append(s.exclude, instr...)
	}

	// Output.
	s.out = pick(changed("output"), o.out, fc.Output.Path)
	if s.out == "" {
		s.out = "-"
	}
	formatName := pick(changed("format"), o.format, fc.Output.Format)
	if formatName == "" {
		formatName = string(output.FormatAlpaca)
	}
	if s.format, err = output.ParseFormat(formatName); err != nil {
		return nil, badInput(fmt.Errorf("--format: %w", err))
	}
	s.meta = fc.Output.Meta || o.meta
	s.manifest = pick(changed("manifest"), o.manifest, fc.Output.Manifest)
	s.budget = fc.Budget
	if changed("max-requests") {
		s.budget.MaxRequests = o.maxRequests
	}
	if changed("max-cost") {
		s.budget.MaxCostUSD = o.maxCost
	}
	if s.budget.MaxRequests < 0 || s.budget.MaxCostUSD < 0 {
		return nil, usagef("budgets must not be negative")
	}
	s.progress = pick(changed("progress"), o.progress, fc.Progress)
	switch s.progress {
	case "":
		s.progress = "auto"
	case "auto", "bar", "log", "none":
	default:
		return nil, usagef("--progress %q: want auto, bar, log or none", s.progress)
	}

	// Pipeline options.
	opts, err := pipelineOptions(cmd, o, fc)
	if err != nil {
		return nil, err
	}
	opts.Seeds = s.seeds
	opts.TargetA, opts.TargetB = ta, tb
	opts.Exclude = s.exclude
	s.opts = opts
	if fc.Seed != nil {
		s.opts.Seed = *fc.Seed
	}
	if changed("seed") {
		s.opts.Seed = o.seed
	}

	s.configHash, err = configHash(s)
	if err != nil {
		return nil, err
	}
	s.opts.RunID = s.configHash
	s.runDir = pick(changed("run-dir"), o.runDir, fc.RunDir)
	if s.runDir == "" {
		s.runDir = filepath.Join(".ensinstruct", s.configHash[:16])
	}
	return s, nil
}

// pipelineOptions builds the pipeline's knobs from the config file and the
// flags that override them.
func pipelineOptions(cmd *cobra.Command, o generateFlags, fc *fileConfig) (pipeline.Options, error) {
	changed := cmd.Flags().Changed
	g, fl := fc.Generation, fc.Filters
	opts := pipeline.Options{
		DemosA:              g.DemosA,
		DemosB:              g.DemosB,
		MachineDemos:        g.MachineDemos,
		Window:              g.Window,
		MaxPending:          g.MaxPending,
		StallLimit:          g.StallLimit,
		InstructionSampling: g.Instructions,
		InstanceSampling:    g.Instances,
		EnsembleSampling:    g.Ensemble,
		Instance: filter.InstanceRules{
			AllowEmptyInput:      fl.AllowEmptyInput,
			AllowInstructionEcho: fl.AllowInstructionEcho,
			AllowRepetition:      fl.AllowRepetition,
		},
	}
	if changed("window") {
		opts.Window = o.window
	}
	if changed("stall-limit") {
		opts.StallLimit = o.stallLimit
	}
	if opts.Window < 0 || opts.StallLimit < 0 || opts.MaxPending < 0 || opts.DemosA < 0 || opts.DemosB < 0 {
		return opts, usagef("generation: window, max_pending, stall_limit and demos must not be negative")
	}

	if fl.NoveltyThreshold != nil {
		opts.NoveltyThreshold = *fl.NoveltyThreshold
	}
	if changed("novelty-threshold") {
		opts.NoveltyThreshold = o.novelty
	}
	if opts.NoveltyThreshold < 0 || opts.NoveltyThreshold > 1 {
		return opts, usagef("novelty threshold %v is outside [0, 1]", opts.NoveltyThreshold)
	}
	def := filter.DefaultInstructionChecks()
	minW, maxW := def.MinWords, def.MaxWords
	if fl.MinWords != nil {
		minW = *fl.MinWords
	}
	if fl.MaxWords != nil {
		maxW = *fl.MaxWords
	}
	blacklist, prefixes, ascii := def.Blacklist, def.BadPrefixes, def.ASCIIStart
	if fl.Blacklist != nil {
		blacklist = fl.Blacklist
	}
	if fl.BadPrefixes != nil {
		prefixes = fl.BadPrefixes
	}
	if fl.ASCIIStart != nil {
		ascii = *fl.ASCIIStart
	}
	opts.Checks = filter.NewInstructionChecks(minW, maxW, blacklist, prefixes, ascii)

	parser := pick(changed("parser"), o.parser, fl.Parser)
	switch parser {
	case "", "robust":
	case "compat":
		opts.CompatParser = true
	default:
		return opts, usagef("--parser %q: want robust or compat", parser)
	}
	metric := pick(changed("metric"), o.metric, fl.Consensus.Metric)
	switch filter.Metric(metric) {
	case "", filter.MetricRougeL, filter.MetricRouge1:
		opts.Consensus.Metric = filter.Metric(metric)
	default:
		return opts, usagef("--metric %q: want rougeL or rouge1", metric)
	}
	opts.Consensus.MinAgreement = fl.Consensus.MinAgreement
	if changed("min-agreement") {
		v := o.minAgree
		opts.Consensus.MinAgreement = &v
	}
	return opts, nil
}

// pick returns the flag's value when the flag was given, else the file's.
func pick(flagSet bool, flagVal, fileVal string) string {
	if flagSet {
		return flagVal
	}
	return fileVal
}

// splitTarget splits n between the types in the seeds' A:B ratio.
func splitTarget(n, a, b int) (int, int) {
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

// modelsFromSpecs turns --model and --ensemble specs into the pool's
// models (see addSpecModel: a spec given for both gets both roles).
func modelsFromSpecs(gen, ens []string, style string) (llm.Models, error) {
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
			addSpecModel(&ms, name, mc)
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

// configHash identifies what determines a run's model calls: the seeds,
// the run seed, the models and the generation and acceptance settings. Two
// commands with the same hash share a run directory (and so a response
// cache) and write the same record IDs. Targets, budgets, consensus
// settings, output and endpoint limits do not change any call and are left
// out, so that raising -n or changing the output format reuses every
// finished call. Endpoint URLs are left out too: they say where a model
// runs, not what the run is (the cache keys still tell endpoints apart).
func configHash(s *generateSettings) (string, error) {
	type model struct {
		Name, Backend, Model, Style string
		Roles                       []llm.Role
		Weight                      float64
		Options                     map[string]any
	}
	var models []model
	for _, m := range s.pool.Models {
		models = append(models, model{
			Name: m.Name, Backend: string(m.Backend), Model: m.Model,
			Style: string(m.Style), Roles: m.Roles, Weight: m.Weight, Options: m.Options,
		})
	}
	ex := sha256.New()
	for _, x := range s.exclude {
		ex.Write([]byte(x))
		ex.Write([]byte{0})
	}
	o := s.opts
	key := struct {
		Version                      int
		Seeds                        string
		Seed                         int64
		Models                       []model
		DemosA, DemosB, MachineDemos int
		Window                       int
		Instr, Inst, Ens             pipeline.Sampling
		Novelty                      float64
		MinWords, MaxWords           int
		Blacklist, Prefixes          []string
		ASCII, Compat                bool
		Rules                        filter.InstanceRules
		Exclude                      string
	}{
		1, s.seedsSHA, o.Seed, models, o.DemosA, o.DemosB, o.MachineDemos, o.Window,
		o.InstructionSampling, o.InstanceSampling, o.EnsembleSampling, o.NoveltyThreshold,
		o.Checks.MinWords, o.Checks.MaxWords, o.Checks.Blacklist, o.Checks.BadPrefixes,
		o.Checks.ASCIIStart, o.CompatParser, o.Instance, hex.EncodeToString(ex.Sum(nil)),
	}
	b, err := json.Marshal(key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// poolBudget is spent when the pool's calls that reached a server, or
// their cost, reach the limits.
type poolBudget struct {
	pool        *llm.Pool
	maxRequests int64
	maxCost     float64
}

func (b poolBudget) Exhausted() bool {
	t := pipeline.SumStats(b.pool.Stats())
	return (b.maxRequests > 0 && t.Calls-t.CacheHits >= b.maxRequests) ||
		(b.maxCost > 0 && t.CostUSD >= b.maxCost)
}

// generate runs the pipeline with resolved settings.
func (a *app) generate(ctx context.Context, s *generateSettings) (err error) {
	started := time.Now()
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Check everything that can be checked without side effects first, so
	// that bad input creates no run directory and no output file.
	check, err := llm.NewPool(s.pool, llm.WithGetenv(a.getenv))
	if err != nil {
		return badInput(err)
	}
	s.opts.Models = modelRefs(check)
	s.opts.Logger = logger
	if _, err := pipeline.New(check, s.opts); err != nil {
		return badInput(err)
	}
	if err := check.CheckReachable(ctx, 5*time.Second); err != nil {
		return err
	}

	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	cache, err := llm.OpenCache(filepath.Join(s.runDir, "cache.db"))
	if err != nil {
		return err
	}
	defer cache.Close()
	pool, err := llm.NewPool(s.pool, llm.WithCache(cache), llm.WithLogger(logger), llm.WithGetenv(a.getenv))
	if err != nil {
		return badInput(err)
	}
	if s.budget.MaxRequests > 0 || s.budget.MaxCostUSD > 0 {
		s.opts.Budget = poolBudget{pool, s.budget.MaxRequests, s.budget.MaxCostUSD}
	}
	runner, err := pipeline.New(pool, s.opts)
	if err != nil {
		return badInput(err)
	}

	// Output: stdout streams; a file is written through FILE.partial.
	var sink io.Writer = a.stdout
	var file *output.AtomicFile
	if s.out != "-" {
		if file, err = output.CreateAtomic(s.out); err != nil {
			return err
		}
		defer file.Close() // no-op after Commit
		sink = file
	}
	w := output.NewWriter(sink, s.format, s.meta)

	prog := newProgress(a.stderr, s.progress, s.interval, runner, pool, started)
	prog.start()
	counts, runErr := runner.Run(ctx, w.Write)
	prog.stop()

	interrupted := ctx.Err() != nil
	status := pipeline.StatusOf(runErr, interrupted, counts)
	if file != nil && (status == pipeline.StatusComplete || status == pipeline.StatusBudget || status == pipeline.StatusStalled) {
		if cerr := file.Commit(); cerr != nil && runErr == nil {
			runErr = cerr
			status = pipeline.StatusFailed
		}
	}

	m := pipeline.Manifest{
		Version:    buildVersion(),
		ConfigHash: s.configHash,
		Seed:       s.opts.Seed,
		Status:     status,
		Started:    started.UTC(),
		Finished:   time.Now().UTC(),
		Seeds: pipeline.ManifestSeeds{
			Source: s.seedsName, SHA256: s.seedsSHA, Tasks: len(s.seeds),
			TypeA: seeds.Count(s.seeds).TypeA, TypeB: seeds.Count(s.seeds).TypeB,
		},
		Models: pool.All(),
		Output: pipeline.ManifestOutput{Path: s.out, Format: string(s.format), Meta: s.meta, Records: w.Count()},
		RunDir: s.runDir,
		Counts: counts,
		Calls:  pool.Stats(),
	}
	m.Seconds = m.Finished.Sub(m.Started).Seconds()
	m.Totals = pipeline.SumStats(m.Calls)
	if runErr != nil && !interrupted {
		m.Error = runErr.Error()
	}
	manifestPath := s.manifest
	if manifestPath == "" {
		manifestPath = filepath.Join(s.runDir, "manifest.json")
		if s.out != "-" {
			manifestPath = s.out + ".manifest.json"
		}
	}
	merr := output.WriteJSONFile(manifestPath, m)
	writeSummary(a.stderr, m, manifestPath)

	switch {
	case runErr != nil:
		return runErr
	case merr != nil:
		return fmt.Errorf("writing the manifest: %w", merr)
	case status == pipeline.StatusStalled:
		return errors.New("a type stalled before reaching its target (see the summary above); check the models' replies, or lower the stall limit's sensitivity with --stall-limit")
	}
	return nil
}

// modelRefs describes the pool's models to the pipeline.
func modelRefs(p *llm.Pool) []pipeline.ModelRef {
	var refs []pipeline.ModelRef
	for _, m := range p.All() {
		refs = append(refs, pipeline.ModelRef{Name: m.Name, Roles: m.Roles, Weight: m.Weight, Style: m.Style})
	}
	return refs
}
