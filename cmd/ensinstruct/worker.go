package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ensinstruct/ensinstruct/config"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline/jetstream"
	"github.com/spf13/cobra"
)

const workerExample = `  # serve the models of a config whose endpoints this machine reaches
  ENSINSTRUCT_NATS_TOKEN=... ensinstruct worker --nats nats://coordinator:4222 -c nightly.yaml

  # serve one model, as a coordinator's --model ollama:llama3.1 names it
  ensinstruct worker --nats nats://coordinator:4222 --model ollama:llama3.1`

// workerFlags are the flags of the worker command.
type workerFlags struct {
	nats        string
	config      string
	models      []string
	drain       time.Duration
	dial        time.Duration
	name        string
	retryGap    time.Duration
	connectWait time.Duration
}

func (a *app) workerCmd() *cobra.Command {
	var o workerFlags
	cmd := &cobra.Command{
		Use:   "worker --nats URL (-c CONFIG | --model SPEC ...)",
		Short: "Execute the model calls of distributed runs, pulled from NATS JetStream",
		Long: `worker serves the model calls that coordinators (generate or filter with
--nats or --nats-listen) queue on NATS JetStream. It serves the models of its
configuration whose endpoints it can reach and whose API keys its own
environment holds, executes each call through its own pool (limits, retries,
timeouts), stores the result once under the call's cache key and
acknowledges it. Workers may join and leave at any time. On SIGTERM or
SIGINT a worker stops pulling, lets the calls it holds finish for up to
--drain-timeout, hands the others back and exits 0.

NATS credentials come from the environment: ` + jetstream.TokenEnv + ` (a token) or
` + jetstream.CredsEnv + ` (a credentials file). API keys never travel over NATS.`,
		Example: workerExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.worker(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.nats, "nats", "", "NATS server `URL` (a comma-separated list for a cluster)")
	f.StringVarP(&o.config, "config", "c", "", "configuration `FILE` (YAML): the models, limits and retries to serve")
	f.StringArrayVar(&o.models, "model", nil, "serve model `SPEC` as a coordinator's --model or --ensemble names it (repeatable)")
	f.DurationVar(&o.drain, "drain-timeout", jetstream.DefaultDrainTimeout, "on a signal, how long the calls in flight may finish before they are handed back")
	f.DurationVar(&o.dial, "dial-timeout", 5*time.Second, "how long to wait for each endpoint to answer at start (unreachable ones are not served)")
	f.DurationVar(&o.retryGap, "retry-delay", time.Second, "how long a call that failed with a transient error waits, per delivery so far, before it is handed out again")
	f.DurationVar(&o.connectWait, "connect-wait", time.Minute, "how long to keep trying while the NATS server does not answer at start")
	f.StringVar(&o.name, "name", "", "the worker's name in logs and the server's monitoring (default: ensinstruct worker)")
	return cmd
}

// worker runs the worker command until ctx is cancelled.
func (a *app) worker(ctx context.Context, o workerFlags) error {
	if o.nats == "" {
		return usagef("--nats URL is required")
	}
	if o.config == "" && len(o.models) == 0 {
		return usagef("give the models to serve: -c CONFIG or --model SPEC")
	}
	var cfg llm.Config
	if o.config != "" {
		fc, err := config.Load(o.config, nil)
		if err != nil {
			return a.inputError(err)
		}
		cfg = fc.Pool
	}
	if len(o.models) > 0 {
		models, err := modelsFromSpecs(o.models, nil, nil, "")
		if err != nil {
			return err
		}
		for _, m := range models {
			cfg.Models.Add(m.Name, m.ModelConfig)
		}
	}
	log := a.logger()
	serve, skipped, err := jetstream.Servable(ctx, cfg, a.getenv, o.dial)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return badInput(err)
	}
	for _, s := range skipped {
		log.Warn("not serving model", "model", s.Model, "reason", s.Reason)
	}
	if len(serve) == 0 {
		return fmt.Errorf("no model can be served from this machine (see the warnings above)")
	}
	pool, err := llm.NewPool(cfg, llm.WithGetenv(a.getenv), llm.WithLogger(log))
	if err != nil {
		return badInput(err)
	}
	name := o.name
	if name == "" {
		name = "ensinstruct worker"
	}
	nc, err := jetstream.Connect(ctx, o.nats, jetstream.ConnectOptions{Name: name, Auth: jetstream.AuthFromEnv(a.getenv), Logger: log, Wait: o.connectWait})
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := jetstream.NewWorker(ctx, jetstream.WorkerOptions{Conn: nc, Pool: pool, Models: serve,
		DrainTimeout: o.drain, RetryDelay: o.retryGap, Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	err = w.Run(ctx)
	log.Info("worker stopped", "calls_served", w.Served())
	return err
}
