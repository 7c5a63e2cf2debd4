package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/pipeline/jetstream"
	"github.com/spf13/cobra"
)

// cacheFlags are the flags of the cache export and import commands.
type cacheFlags struct {
	nats   string
	runDir string
	file   string
}

func (a *app) cacheCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Move model responses between a local response cache and a NATS results bucket",
		Long: `A run directory's response cache (DIR/cache.db) and the results bucket of
distributed runs hold the same responses under the same keys. export copies a
local cache into the bucket, so that a run started locally continues on
workers from another coordinator; import copies the bucket into a local cache,
so that a distributed run continues locally. Responses already at the
destination are kept. A coordinator given --nats with the same run directory
needs neither: it reads both.

NATS credentials come from ` + jetstream.TokenEnv + ` or ` + jetstream.CredsEnv + `.`,
		Args: cobra.NoArgs,
	}
	for _, dir := range []string{"export", "import"} {
		var o cacheFlags
		sub := &cobra.Command{
			Use:   dir + " --nats URL (--run-dir DIR | --cache FILE)",
			Short: map[string]string{"export": "Copy a local response cache into the results bucket", "import": "Copy the results bucket into a local response cache"}[dir],
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.cacheTransfer(cmd.Context(), dir, o)
			},
		}
		f := sub.Flags()
		f.StringVar(&o.nats, "nats", "", "NATS server `URL`")
		f.StringVar(&o.runDir, "run-dir", "", "the run directory whose cache.db to use")
		f.StringVar(&o.file, "cache", "", "the response cache `FILE` to use (as filter --cache names it)")
		cmd.AddCommand(sub)
	}
	return cmd
}

func (a *app) cacheTransfer(ctx context.Context, dir string, o cacheFlags) error {
	if o.nats == "" {
		return usagef("--nats URL is required")
	}
	path := o.file
	switch {
	case o.runDir != "" && o.file != "":
		return usagef("--run-dir and --cache contradict each other: give one")
	case o.runDir != "":
		path = filepath.Join(o.runDir, "cache.db")
	case o.file == "":
		return usagef("give the local cache: --run-dir DIR or --cache FILE")
	}
	cache, err := llm.OpenCache(path)
	if err != nil {
		return err
	}
	defer cache.Close()
	nc, err := jetstream.Connect(ctx, o.nats, jetstream.ConnectOptions{Name: "ensinstruct cache " + dir,
		Auth: jetstream.AuthFromEnv(a.getenv), Wait: 10 * time.Second})
	if err != nil {
		return err
	}
	defer nc.Close()
	move := jetstream.Export
	from, to := path, jetstream.ResultsBucket
	if dir == "import" {
		move, from, to = jetstream.Import, jetstream.ResultsBucket, path
	}
	n, err := move(ctx, nc, cache, jetstream.Topology{})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "cache %s: %d responses copied from %s to %s, %d already there\n", dir, n.Copied, from, to, n.Present)
	return nil
}
