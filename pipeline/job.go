package pipeline

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
	"sync"
	"sync/atomic"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// Job is one generate run as a library call, from configuration to
// manifest. Start resolves the defaults, derives the run identity from the
// resolved options, checks everything that can be checked without side
// effects (so that bad input creates no run directory and no output
// file), preflights the endpoints, opens the run directory and its
// response cache and builds the executor; Run then runs the pipeline under
// the budget, streams the records, keeps the evidence, commits the output
// and writes the manifest.
//
// The zero value is not usable: set Options (seeds and targets), Pool and
// Output. A Job is a plain value; Start does not modify it.
type Job struct {
	// Options are the method's settings. Models and RunID are filled in
	// from Pool and the run identity.
	Options Options
	// Pool is the model pool: models, endpoints, retries.
	Pool llm.Config
	// SeedsSource names where Options.Seeds came from ("default" for the
	// embedded set, or a file name) and SeedsSHA256 is the digest of its
	// bytes; both go into the manifest, the digest into the identity. An
	// empty digest is computed from the tasks themselves.
	SeedsSource, SeedsSHA256 string

	// RunDir holds the response cache, the evidence files and, when the
	// records go to a writer, the manifest. "" means DefaultRunDir of the
	// run identity.
	RunDir string
	// Output says where the records go.
	Output Output
	// ManifestPath is where the manifest is written; "" means next to
	// Output.Path (PATH.manifest.json), or RunDir/manifest.json when the
	// records go to a writer.
	ManifestPath string
	// Limits is the run's hard budget.
	Limits Limits
	// Executor builds the executor the run's calls go through, given the
	// local pool (with its response cache in the run directory); nil
	// means the local pool itself, which cannot run models whose calls
	// go through a Batch API (llm.ModelConfig.Batch). An executor that
	// is an io.Closer is closed by Run.Close, before the cache.
	Executor func(ctx context.Context, local *llm.Pool, runDir string) (Executor, error)
	// CallsElsewhere says that Executor runs the calls on other machines
	// (workers with their own API keys): Start neither requires the keys
	// here nor dials the endpoints.
	CallsElsewhere bool

	// PoolOptions are passed to llm.NewPool (an HTTP client, custom
	// backends for tests, ...). Start adds the cache, logger and getenv.
	PoolOptions []llm.Option
	// Getenv reads the environment (API keys, OLLAMA_HOST); nil means
	// os.Getenv.
	Getenv func(string) string
	// PreflightTimeout bounds the dial of each endpoint before the run;
	// 0 means 5 seconds, negative skips the preflight.
	PreflightTimeout time.Duration
	// Version is the program version the manifest records.
	Version string
	// Discovered lists the models a server had when the pool was chosen
	// from them automatically, for the manifest; nil otherwise.
	Discovered []llm.LocalModel
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Output says where a run's records go and how they are written: to Path
// through PATH.partial, renamed when the run ends on its own, or to Writer
// when Path is "" or "-"; in Container (JSONL or Parquet; "" means what
// Path's extension implies) with the format options of Options.
type Output struct {
	Path      string
	Writer    io.Writer
	Container output.Container
	Options   output.Options
	// Card writes a dataset card next to an output file (PATH.README.md)
	// when the run ends on its own; License goes into its front matter.
	Card    bool
	License string
}

func (o Output) toFile() bool { return o.Path != "" && o.Path != "-" }

// InputError marks an error caused by the run's configuration or input
// (a bad option, seed file, model spec or output path), as opposed to a
// failure while running. The command line exits 2 for it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputError(err error) error {
	if err == nil {
		return nil
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	return &InputError{Err: err}
}

// Run is a started Job: identity resolved, run directory and cache open,
// executor built. Progress and Stats may be called from any goroutine
// while Wait runs.
type Run struct {
	job      Job
	id       string
	runDir   string
	manifest string
	opts     Options
	pool     *llm.Pool
	cache    *llm.Cache
	base     Executor // where calls run, before the budget
	exec     Executor // what the pipeline calls
	gate     *Gate
	runner   *Runner
	evidence *evidenceFiles
	started  time.Time
	timeline timeline
}

// Start prepares the run (see Job). Every error caused by the
// configuration or input wraps an *InputError. If ctx is cancelled after
// the run identity is known, Start writes an interrupted manifest and
// returns ctx's error.
func (j Job) Start(ctx context.Context) (*Run, error) {
	started := time.Now()
	if j.Getenv == nil {
		j.Getenv = os.Getenv
	}
	if j.Logger == nil {
		j.Logger = slog.New(slog.DiscardHandler)
	}
	if j.Output.Options.Format == "" {
		j.Output.Options.Format = output.FormatAlpaca
	}
	if !j.Output.toFile() && j.Output.Writer == nil {
		return nil, inputError(errors.New("output: no path and no writer"))
	}
	if err := j.Output.Options.Validate(); err != nil {
		return nil, inputError(err)
	}
	if c, err := output.ResolveContainer(string(j.Output.Container), j.Output.Path); err != nil {
		return nil, inputError(err)
	} else {
		j.Output.Container = c
	}
	if j.SeedsSHA256 == "" {
		b, err := json.Marshal(j.Options.Seeds)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		j.SeedsSHA256 = hex.EncodeToString(sum[:])
	}

	// Everything that can be checked without side effects comes first.
	check, err := llm.NewPool(j.Pool, j.poolOptions(nil)...)
	if err != nil {
		return nil, inputError(err)
	}
	if err := check.MissingKeys(); err != nil && !j.CallsElsewhere {
		return nil, inputError(err)
	}
	j.Options.Models = check.All()
	if j.Executor == nil {
		for _, m := range j.Options.Models {
			if m.Batch {
				return nil, inputError(llm.FieldErrorf([]string{"models", m.Name, "batch"},
					"the model's calls go through a Batch API, which needs a batch executor (Job.Executor)"))
			}
		}
	}
	j.Options.Logger = j.Logger
	// The window follows the capacity of the endpoints that write
	// instructions, so that a big endpoint's slots are never starved;
	// it is resolved from the configuration (never from timing) before
	// the identity is computed, since it decides later prompts. With a
	// batch model the round is a batch job's worth (withDefaults), which
	// no max_concurrent bounds.
	batch := j.Options.batch()
	if j.Options.Window == 0 && !batch {
		j.Options.Window = max(DefaultWindow, check.Capacity(llm.RoleInstructions))
	}
	if j.Options.MaxPending == 0 && !batch {
		j.Options.MaxPending = max(DefaultMaxPending, 2*j.Options.Window)
	}
	if err := j.Options.validate(); err != nil {
		return nil, inputError(err)
	}
	opts := j.Options.withDefaults()
	id, err := Identity(opts, j.SeedsSHA256)
	if err != nil {
		return nil, err
	}
	opts.RunID = id
	r := &Run{job: j, id: id, runDir: j.RunDir, opts: opts, started: started}
	if r.runDir == "" {
		r.runDir = DefaultRunDir(id)
	}
	r.manifest = j.ManifestPath
	if r.manifest == "" {
		r.manifest = filepath.Join(r.runDir, "manifest.json")
		if j.Output.toFile() {
			r.manifest = j.Output.Path + ".manifest.json"
		}
	}
	if j.Output.toFile() {
		if err := checkDir(j.Output.Path, "output"); err != nil {
			return nil, inputError(err)
		}
	}
	if j.ManifestPath != "" {
		if err := checkDir(j.ManifestPath, "manifest"); err != nil {
			return nil, inputError(err)
		}
	}
	if j.PreflightTimeout >= 0 && !j.CallsElsewhere {
		timeout := j.PreflightTimeout
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		err := check.CheckReachable(ctx, timeout)
		if err == nil {
			err = check.CheckModels(ctx, timeout)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, r.abandon(ctx.Err())
			}
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, r.abandon(ctx.Err())
	}

	// Side effects from here on.
	if err := os.MkdirAll(r.runDir, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if r.cache, err = llm.OpenCache(filepath.Join(r.runDir, "cache.db"), llm.CacheWriteBehind(llm.WriteBehind)); err != nil {
		return nil, err
	}
	if r.pool, err = llm.NewPool(j.Pool, j.poolOptions(r.cache)...); err != nil {
		r.cache.Close()
		return nil, inputError(err)
	}
	r.exec = r.pool
	if j.Executor != nil {
		if r.exec, err = j.Executor(ctx, r.pool, r.runDir); err != nil {
			r.cache.Close()
			return nil, err
		}
	}
	r.base = r.exec
	if j.Limits.Active() {
		r.gate = NewGate(r.exec, opts.Models, j.Limits)
		r.exec = r.gate
		r.opts.Budget = r.gate
	}
	if r.evidence, err = createEvidence(r.runDir); err != nil {
		r.Close()
		return nil, err
	}
	r.opts.Evidence = r.evidence
	if r.runner, err = New(r.exec, r.opts); err != nil {
		r.Close()
		return nil, inputError(err)
	}
	return r, nil
}

func (j Job) poolOptions(cache *llm.Cache) []llm.Option {
	opts := append([]llm.Option{llm.WithGetenv(j.Getenv), llm.WithLogger(j.Logger)}, j.PoolOptions...)
	if cache != nil {
		opts = append(opts, llm.WithCache(cache))
	}
	return opts
}

// checkDir checks that the directory a file is to be written in exists.
func checkDir(path, what string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: directory %s: %w", what, path, dir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("%s %s: %s is not a directory", what, path, dir)
	}
	return nil
}

// abandon writes the manifest of a run interrupted before its first call
// and returns err, saying where the manifest is.
func (r *Run) abandon(err error) error {
	m := r.newManifest(StatusInterrupted, nil, 0)
	dir := filepath.Dir(r.manifest)
	if r.job.ManifestPath == "" && !r.job.Output.toFile() {
		os.MkdirAll(dir, 0o755) // the run directory
	}
	if werr := output.WriteJSONFile(r.manifest, m); werr != nil {
		return fmt.Errorf("interrupted before the first call (no manifest: %v): %w", werr, err)
	}
	return fmt.Errorf("interrupted before the first call (manifest %s): %w", r.manifest, err)
}

// ID returns the run identity.
func (r *Run) ID() string { return r.id }

// Dir returns the run directory.
func (r *Run) Dir() string { return r.runDir }

// ManifestPath returns where the manifest is written.
func (r *Run) ManifestPath() string { return r.manifest }

// Models returns the pool's models, with the defaults applied.
func (r *Run) Models() []llm.ModelInfo { return r.pool.All() }

// Progress returns the counts so far, per type ("A", "B").
func (r *Run) Progress() map[string]Counts { return r.runner.Progress() }

// Stats returns the accounting of the run's calls so far, per model
// (nil when the executor keeps none).
func (r *Run) Stats() map[string]llm.ModelStats {
	if s, ok := r.base.(StatsReporter); ok {
		return s.Stats()
	}
	return nil
}

// Batches returns the run's batch jobs, with their status and request
// counts (nil when the executor runs none; see BatchReporter).
func (r *Run) Batches() []BatchInfo {
	if b, ok := r.base.(BatchReporter); ok {
		return b.Batches()
	}
	return nil
}

// Started returns when Start was called.
func (r *Run) Started() time.Time { return r.started }

// Close stops the executor (if it is an io.Closer) and releases the run
// directory's cache. It is safe to call after Wait, and more than once.
func (r *Run) Close() error {
	var errs []error
	if r.evidence != nil {
		errs = append(errs, r.evidence.Close())
	}
	if c, ok := r.base.(io.Closer); ok && r.cache != nil {
		errs = append(errs, c.Close())
	}
	if r.cache != nil {
		errs = append(errs, r.cache.Close())
		r.cache = nil
	}
	return errors.Join(errs...)
}

// Wait runs the pipeline until every target is reached, the budget is
// spent, a type stalls, a call fails for good or ctx is cancelled. Records
// stream to the output as they are decided; kept.jsonl and rejected.jsonl
// in the run directory receive the evidence. When the run ends on its own
// (complete, budget or stalled) the output file is committed; otherwise
// PATH.partial keeps the records written so far. The manifest is written
// in every case and returned.
//
// An executor that is a Detacher may stop the run while its remaining
// calls are pending in batch jobs: the output stays unfinished as for an
// interrupted run, the manifest says StatusPending and the error is
// ErrDetached.
//
// The error is nil for a run that ended on its own, ctx's error for an
// interrupted one, or the failure.
func (r *Run) Wait(ctx context.Context) (Manifest, error) {
	out := r.job.Output
	var w output.Sink
	var file *output.File
	var err error
	if out.toFile() {
		if file, err = output.Create(out.Path, out.Container, out.Options); err != nil {
			return r.finish(ctx, nil, 0, inputError(fmt.Errorf("output: %w", err)))
		}
		defer file.Close() // a no-op after Commit
		w = file
	} else if w, err = output.Open(out.Writer, out.Container, out.Options); err != nil {
		return r.finish(ctx, nil, 0, inputError(fmt.Errorf("output: %w", err)))
	}
	stopTimeline := r.timeline.start(r)
	rctx, detached := r.detachable(ctx)
	counts, runErr := r.runner.Run(rctx, w.Write)
	if detached() && ctx.Err() == nil && errors.Is(runErr, context.Canceled) {
		runErr = ErrDetached
	}
	stopTimeline()
	if cerr := r.evidence.Close(); cerr != nil && runErr == nil {
		runErr = cerr
	}
	// The responses behind the records are durable before the output is
	// committed and the manifest says so.
	if cerr := r.cache.Flush(); cerr != nil && runErr == nil {
		runErr = cerr
	}
	status := StatusOf(runErr, ctx.Err() != nil, counts)
	ended := status != StatusFailed && status != StatusInterrupted && status != StatusPending
	switch {
	case file != nil && ended:
		if cerr := file.Commit(); cerr != nil {
			runErr = fmt.Errorf("output: %w", cerr)
		}
	case file == nil:
		if cerr := w.Close(); cerr != nil && runErr == nil {
			runErr = fmt.Errorf("output: %w", cerr)
		}
	}
	m, err := r.finish(ctx, counts, w.Count(), runErr)
	if err == nil && file != nil && out.Card {
		if cerr := output.WriteCard(r.card(m)); cerr != nil {
			err = fmt.Errorf("dataset card: %w", cerr)
		}
	}
	return m, err
}

// detachable returns ctx, cancelled as well when the executor detaches
// (see Detacher), and a function that reports, once the run is over,
// whether it did.
func (r *Run) detachable(ctx context.Context) (context.Context, func() bool) {
	d, ok := r.base.(Detacher)
	if !ok {
		return ctx, func() bool { return false }
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var fired atomic.Bool
	wg.Go(func() {
		select {
		case <-d.Detached():
			fired.Store(true)
			cancel()
		case <-rctx.Done():
		}
	})
	return rctx, func() bool {
		cancel()
		wg.Wait()
		return fired.Load()
	}
}

// finish writes the manifest and returns it with the run's error.
func (r *Run) finish(ctx context.Context, counts map[string]Counts, records int, runErr error) (Manifest, error) {
	status := StatusOf(runErr, ctx.Err() != nil, counts)
	m := r.newManifest(status, counts, records)
	if runErr != nil && status != StatusInterrupted && status != StatusPending {
		m.Error = runErr.Error()
	}
	if err := output.WriteJSONFile(r.manifest, m); err != nil && runErr == nil {
		runErr = fmt.Errorf("writing the manifest: %w", err)
	}
	if runErr == nil && status == StatusStalled {
		runErr = ErrStalled
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err()
	}
	return m, runErr
}

// ErrStalled is the error of a run that ended because a type stopped
// making progress before reaching its target.
var ErrStalled = errors.New("a type stalled before reaching its target; check the models' replies, or raise --stall-limit to give them longer")

func (r *Run) newManifest(status string, counts map[string]Counts, records int) Manifest {
	st := seeds.Count(r.opts.Seeds)
	m := Manifest{
		Version:          r.job.Version,
		ConfigHash:       r.id,
		Seed:             r.opts.Seed,
		Status:           status,
		Started:          r.started.UTC(),
		Finished:         time.Now().UTC(),
		Seeds:            ManifestSeeds{Source: r.job.SeedsSource, SHA256: r.job.SeedsSHA256, Tasks: len(r.opts.Seeds), TypeA: st.TypeA, TypeB: st.TypeB},
		Models:           r.opts.Models,
		NoveltyThreshold: r.opts.noveltyThreshold(),
		Window:           r.opts.Window,
		ConsensusRule:    string(r.opts.ensembleRule()),
		JudgeMode:        r.opts.judgeMode(),
		Discovered:       r.job.Discovered,
		Limits:           r.job.Limits,
		Output: ManifestOutput{Path: r.job.Output.Path, Format: string(r.job.Output.Options.Format),
			Container: string(r.job.Output.Container), Meta: r.job.Output.Options.Meta, Records: records},
		RunDir:   r.runDir,
		Counts:   counts,
		Timeline: r.timeline.points(),
	}
	if m.Output.Path == "" {
		m.Output.Path = "-"
	}
	if m.Counts == nil {
		m.Counts = map[string]Counts{}
	}
	if r.base != nil {
		m.Calls = r.Stats()
		m.Batches = r.Batches()
	}
	if r.pool != nil {
		m.Endpoints = r.pool.EndpointStats()
	}
	if r.runner != nil {
		if rel := r.runner.Reliability(); rel.Rows > 0 {
			m.Reliability = &rel
		}
	}
	m.Seconds = m.Finished.Sub(m.Started).Seconds()
	m.Totals = SumStats(m.Calls)
	return m
}
