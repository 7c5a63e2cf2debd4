package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ensinstruct/ensinstruct/config"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/spf13/cobra"
)

func (a *app) modelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Inspect the configured models, and the local Ollama's",
	}
	cmd.AddCommand(a.modelsCheckCmd(), a.modelsListCmd())
	return cmd
}

// modelsCheckOptions are the flags of "models check".
type modelsCheckOptions struct {
	config  string
	specs   []string
	timeout time.Duration
}

func (a *app) modelsCheckCmd() *cobra.Command {
	var o modelsCheckOptions
	cmd := &cobra.Command{
		Use:   "check [-c CONFIG] [--model SPEC ...]",
		Short: "Send one tiny request to every configured model",
		Long:  helpText("models-check"),
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

func (a *app) modelsCheck(ctx context.Context, o modelsCheckOptions) error {
	var cfg llm.Config
	if o.config != "" {
		fc, err := config.Load(o.config, nil)
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
		cfg.Models.Add(name, mc)
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
	results := make([]llm.PingResult, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		wg.Go(func() {
			results[i] = pool.Ping(ctx, info.Name, o.timeout)
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
		if r.Latency >= time.Millisecond {
			lat = r.Latency.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Model.Name, r.Model.Backend, r.Model.Endpoint, r.Status, lat)
		if r.Err != nil {
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
		if r.Err != nil {
			fmt.Fprintf(a.stderr, "ensinstruct: %v\n", r.Err) // the error names the model
		}
	}
	return &silentError{code: exitFailure}
}
