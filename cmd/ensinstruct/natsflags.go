package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/pipeline/jetstream"
	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"
)

// natsFlags are the flags that send a command's model calls to workers
// through NATS JetStream.
type natsFlags struct {
	url        string
	listen     string
	ackWait    time.Duration
	maxDeliver int
}

func addNATSFlags(f *pflag.FlagSet, o *natsFlags) {
	f.StringVar(&o.url, "nats", "", "run the model calls on `URL`'s workers (ensinstruct worker) through an existing NATS JetStream server or cluster")
	f.StringVar(&o.listen, "nats-listen", "", "run the model calls on workers through an embedded JetStream server listening on `ADDR` (HOST:PORT; beyond loopback it needs "+jetstream.TokenEnv+")")
	f.DurationVar(&o.ackWait, "nats-ack-wait", jetstream.DefaultAckWait, "with --nats: how long a worker may go silent before its calls go to another worker")
	f.IntVar(&o.maxDeliver, "nats-max-deliver", jetstream.DefaultMaxDeliver, "with --nats: how many times a call is handed to a worker before it fails for good")
}

func (o natsFlags) enabled() bool { return o.url != "" || o.listen != "" }

// check rejects contradicting flags, and a listen address that the
// environment's credentials do not allow, before anything is created.
func (o natsFlags) check(changed func(string) bool, getenv func(string) string) error {
	if o.url != "" && o.listen != "" {
		return usagef("--nats and --nats-listen contradict each other: give one")
	}
	if o.listen != "" {
		host, _, err := jetstream.ParseListen(o.listen)
		if err == nil {
			err = jetstream.CheckListen(host, jetstream.AuthFromEnv(getenv).Token)
		}
		if err != nil {
			return usagef("--nats-listen: %v", err)
		}
	}
	if !o.enabled() {
		for _, name := range []string{"nats-ack-wait", "nats-max-deliver"} {
			if changed(name) {
				return usagef("--%s applies to distributed runs: give --nats or --nats-listen", name)
			}
		}
	}
	if o.ackWait <= 0 || o.maxDeliver < 1 {
		return usagef("--nats-ack-wait must be positive and --nats-max-deliver at least 1")
	}
	return nil
}

// distributed is a command's connection to NATS and its executor; close
// releases them in order.
type distributed struct {
	flags  natsFlags
	auth   jetstream.Auth
	log    *slog.Logger
	server *jetstream.Server
	conn   *nats.Conn
	exec   *jetstream.Executor
}

func (a *app) distributed(o natsFlags, log *slog.Logger) *distributed {
	return &distributed{flags: o, auth: jetstream.AuthFromEnv(a.getenv), log: log}
}

// executor starts the embedded server (its store in storeDir) or dials
// the given one, and builds the executor over the local pool.
func (d *distributed) executor(ctx context.Context, local *llm.Pool, storeDir string) (pipeline.Executor, error) {
	url := d.flags.url
	if d.flags.listen != "" {
		host, port, err := jetstream.ParseListen(d.flags.listen) // checked by natsFlags.check
		if err != nil {
			return nil, &pipeline.InputError{Err: fmt.Errorf("--nats-listen: %w", err)}
		}
		d.server, err = jetstream.StartServer(jetstream.ServerConfig{Host: host, Port: port,
			StoreDir: storeDir, Token: d.auth.Token})
		if err != nil {
			return nil, err
		}
		d.log.Info("NATS JetStream server started; start workers with `ensinstruct worker --nats URL -c CONFIG`",
			"url", d.server.ClientURL(), "store", storeDir, "auth", d.auth.String())
	}
	var err error
	d.conn, err = jetstream.Connect(ctx, url, jetstream.ConnectOptions{Name: "ensinstruct coordinator", Auth: d.auth, Logger: d.log, Server: d.server, Wait: time.Minute})
	if err != nil {
		return nil, err
	}
	d.exec, err = jetstream.NewExecutor(ctx, jetstream.Options{Conn: d.conn, Local: local,
		AckWait: d.flags.ackWait, MaxDeliver: d.flags.maxDeliver, Logger: d.log})
	if err != nil {
		return nil, err
	}
	return d.exec, nil
}

// jobExecutor is executor in the form pipeline.Job takes, with the
// embedded server's store in the run directory.
func (d *distributed) jobExecutor(ctx context.Context, local *llm.Pool, runDir string) (pipeline.Executor, error) {
	return d.executor(ctx, local, filepath.Join(runDir, "nats"))
}

func (d *distributed) close() {
	if d.exec != nil {
		d.exec.Close()
	}
	if d.conn != nil {
		d.conn.Close()
	}
	if d.server != nil {
		d.server.Shutdown()
	}
}

// filterDistributed builds filter's executor. Its embedded server keeps
// its store next to the response cache.
func (a *app) filterDistributed(ctx context.Context, d *distributed, pool *llm.Pool) (pipeline.Executor, error) {
	var store string
	if d.flags.listen != "" {
		c := pool.Cache()
		if c == nil {
			return nil, usagef("--nats-listen keeps its store next to the response cache: give --cache FILE instead of --no-cache")
		}
		store = filepath.Join(filepath.Dir(c.Path()), "nats")
		if err := os.MkdirAll(store, 0o755); err != nil {
			return nil, fmt.Errorf("--nats-listen: %w", err)
		}
	}
	exec, err := d.executor(ctx, pool, store)
	return exec, a.inputError(err)
}
