package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/spf13/cobra"
)

func (a *app) modelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Inspect the configured models",
	}
	cmd.AddCommand(a.modelsCheckCmd())
	return cmd
}

// modelsCheckOptions are the flags of "models check".
type modelsCheckOptions struct {
	config  string
	specs   []string
	timeout time.Duration
}

const modelsCheckLong = `Send one tiny request (a few tokens, greedy, no cache, no retries) to every
model of the configuration file and every --model, all at once, and print a
table on stdout: model, backend, endpoint, status and latency. The status is
one of: ok, model missing, auth error, unreachable, timeout, rate limited,
error. What went wrong with each failing model is explained on stderr.

A model spec is ollama:NAME[@URL] or openai:NAME[@BASE_URL], for example
  ollama:llama3.1:8b                  (OLLAMA_HOST or http://localhost:11434)
  ollama:llama3.1:8b@http://gpu1:11434
  openai:gpt-4o-mini                  (https://api.openai.com/v1, key from $OPENAI_API_KEY)
  openai:meta-llama/Llama-3-8B@http://vllm:8000/v1

Exit status: 0 when every model answered, 1 when any failed, 2 for a bad
configuration or spec.`

func (a *app) modelsCheckCmd() *cobra.Command {
	var o modelsCheckOptions
	cmd := &cobra.Command{
		Use:   "check [-c CONFIG] [--model SPEC ...]",
		Short: "Send one tiny request to every configured model",
		Long:  modelsCheckLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.modelsCheck(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "configuration `FILE` (YAML) whose models to check")
	f.StringArrayVar(&o.specs, "model", nil, "a model to check, as ollama:NAME[@URL] or openai:NAME[@BASE_URL] (repeatable)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on a model after this long (0: the endpoint's timeout)")
	return cmd
}

// checkResult is one row of the table.
type checkResult struct {
	info    llm.ModelInfo
	status  string
	latency time.Duration
	err     error
}

func (a *app) modelsCheck(ctx context.Context, o modelsCheckOptions) error {
	var cfg llm.Config
	if o.config != "" {
		fc, err := loadConfig(o.config)
		if err != nil {
			return err
		}
		cfg = fc.Pool
	}
	for _, spec := range o.specs {
		name, mc, err := llm.ParseSpec(spec)
		if err != nil {
			return badInput(fmt.Errorf("--model: %w", err))
		}
		addSpecModel(&cfg.Models, name, mc)
	}
	if len(cfg.Models) == 0 {
		return usagef("no models to check: pass -c CONFIG or --model SPEC (for example --model ollama:llama3.1:8b)")
	}
	cfg.Retry = llm.RetryConfig{MaxAttempts: 1}
	pool, err := llm.NewPool(cfg,
		llm.WithGetenv(a.getenv),
		llm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return badInput(err)
	}

	infos := pool.All()
	results := make([]checkResult, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		wg.Go(func() {
			results[i] = checkOne(ctx, pool, info, o.timeout)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tBACKEND\tENDPOINT\tSTATUS\tLATENCY")
	failed := 0
	for _, r := range results {
		lat := "<1ms"
		if r.latency >= time.Millisecond {
			lat = r.latency.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.info.Name, r.info.Backend, r.info.Endpoint, r.status, lat)
		if r.err != nil {
			failed++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed == 0 {
		return nil
	}
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(a.stderr, "ensinstruct: %v\n", r.err) // the error names the model
		}
	}
	return &silentError{code: exitFailure}
}

// addSpecModel adds a model given on the command line to ms and returns
// its name there. The same model given again, or already configured under
// that name, keeps its entry and gains mc's roles; a name taken by a
// different model gets the endpoint's host appended.
func addSpecModel(ms *llm.Models, name string, mc llm.ModelConfig) string {
	if prev, ok := ms.Get(name); ok {
		if prev.Backend == mc.Backend && prev.Model == mc.Model && prev.Endpoint == mc.Endpoint {
			for _, r := range mc.Roles {
				if !slices.Contains(prev.Roles, r) {
					prev.Roles = append(slices.Clone(prev.Roles), r)
				}
			}
			ms.Set(name, prev)
			return name
		}
		host := string(mc.Backend)
		if u, err := url.Parse(mc.Endpoint); err == nil && u.Host != "" {
			host = u.Host
		}
		base := name + "@" + host
		name = base
		for i := 2; ; i++ {
			if _, taken := ms.Get(name); !taken {
				break
			}
			name = fmt.Sprintf("%s#%d", base, i)
		}
	}
	ms.Set(name, mc)
	return name
}

// checkOne sends the tiny request to one model.
func checkOne(ctx context.Context, pool *llm.Pool, info llm.ModelInfo, timeout time.Duration) checkResult {
	req := llm.Request{Prompt: "Once upon a time", MaxTokens: 2}
	if info.Style == llm.StyleChat {
		req = llm.Request{Messages: []llm.Message{{Role: "user", Content: "Say OK."}}, MaxTokens: 2}
	}
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	resp, err := pool.Do(cctx, info.Name, req, 0)
	r := checkResult{info: info, latency: time.Since(start), err: err}
	if err == nil {
		r.status = "ok"
		r.latency = resp.Latency
		return r
	}
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		r.err = fmt.Errorf("model %q: no reply within %v (raise --timeout for a model that is slow to load): %w", info.Name, timeout, llm.ErrTimeout)
	}
	r.status = checkStatus(err)
	return r
}

// checkStatus names the kind of a failed check.
func checkStatus(err error) string {
	switch {
	case errors.Is(err, llm.ErrModelNotFound):
		return "model missing"
	case errors.Is(err, llm.ErrAuth):
		return "auth error"
	case errors.Is(err, llm.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, llm.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, llm.ErrRateLimited):
		return "rate limited"
	}
	return "error"
}
