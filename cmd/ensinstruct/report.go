package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/report"
	"github.com/spf13/cobra"
)

// reportOptions are the report command's flags.
type reportOptions struct {
	out      string
	rejected string
	serve    string
	refresh  float64
	kept     int
	rejN     int
	opts     report.Options
}

func (a *app) reportCmd() *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report [flags] RUN_DIR | FILE.jsonl",
		Short: "Write a self-contained HTML report of a run or a dataset",
		Long: `report writes one HTML file that shows a run or a dataset: where candidates
were lost (a funnel per type, with drops by reason), how novel the
instructions are (Rouge-L against the most similar earlier instruction or
seed), the lengths of instructions, inputs and outputs, the most frequent
leading verbs, each ensemble member's win, empty and failure rates and
their pairwise agreement, calls, tokens and cost per model, the run's
timeline, and a sample of kept and rejected examples with every candidate
and its scores, filterable by reason. The page is self-contained: inline
SVG, no network, no external scripts.

The argument is a run directory (manifest.json, kept.jsonl and
rejected.jsonl), a dataset in any format (alpaca, openai or sharegpt
JSONL, with or without meta), or a rejected file (generate's
rejected.jsonl, or the output of filter --rejected); --rejected adds one to
a dataset.

--serve ADDR serves the same page on a loopback address instead, rebuilt
from the files on every request; the page reloads itself when they change,
so it follows a run that is still writing them. Stop it with Ctrl-C.`,
		Example: `  ensinstruct report .ensinstruct/3f9c2a1b -o report.html
  ensinstruct report data.jsonl --rejected rejected.jsonl -o data.html
  ensinstruct report --serve 127.0.0.1:8080 .ensinstruct/3f9c2a1b`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runReport(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "report.html", "write the page to `FILE` (- for stdout)")
	f.StringVar(&o.rejected, "rejected", "", "also read the rejected `FILE` (filter --rejected output)")
	f.StringVar(&o.serve, "serve", "", "serve the page on the loopback `ADDR` (127.0.0.1:8080) instead of writing it")
	f.Float64Var(&o.refresh, "refresh", report.DefaultRefresh, "with --serve, check the files for changes every `SECONDS`")
	f.StringVar(&o.opts.Title, "title", "", "the page's `TITLE` (default: the run directory or file name)")
	f.IntVar(&o.kept, "kept-samples", report.DefaultKeptSamples, "show at most `N` kept examples")
	f.IntVar(&o.rejN, "rejected-samples", report.DefaultRejectedSamples, "show at most `N` rejected examples")
	return cmd
}

func (a *app) runReport(cmd *cobra.Command, path string, o reportOptions) error {
	flags := cmd.Flags()
	switch {
	case o.serve != "" && flags.Changed("output"):
		return usagef("--serve and -o: serve the page or write it, not both")
	case o.refresh <= 0 || math.IsNaN(o.refresh) || math.IsInf(o.refresh, 0):
		return usagef("--refresh %v: want a number of seconds above 0", o.refresh)
	case o.kept < 0:
		return usagef("--kept-samples %d: want 0 or more", o.kept)
	case o.rejN < 0:
		return usagef("--rejected-samples %d: want 0 or more", o.rejN)
	}
	o.opts.KeptSamples, o.opts.RejectedSamples = &o.kept, &o.rejN
	if o.serve != "" {
		if err := report.CheckLoopback(o.serve); err != nil {
			return badInput(fmt.Errorf("--serve %w", err))
		}
		src, err := report.Resolve(path, o.rejected)
		if err == nil {
			_, err = report.Build(src, o.opts)
		}
		if err != nil {
			return reportError(err)
		}
		h := &report.Handler{Path: path, Rejected: o.rejected, Options: o.opts, Refresh: o.refresh, Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		return report.Serve(cmd.Context(), o.serve, h, func(url string) {
			fmt.Fprintf(a.stderr, "report: serving %s at %s (Ctrl-C to stop)\n", path, url)
		})
	}

	src, err := report.Resolve(path, o.rejected)
	if err != nil {
		return reportError(err)
	}
	fig, err := report.Build(src, o.opts)
	if err != nil {
		return reportError(err)
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, fig, report.RenderOptions{}); err != nil {
		return err
	}
	if o.out == "-" {
		_, err := a.stdout.Write(buf.Bytes())
		return err
	}
	if err := output.WriteFileAtomic(o.out, buf.Bytes()); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	shown := 0
	for _, g := range fig.Groups {
		shown += g.Shown
	}
	fmt.Fprintf(a.stderr, "report: wrote %s (%d KiB, %d examples shown)\n", o.out, (buf.Len()+1023)/1024, shown)
	return nil
}

// reportError marks input problems as bad input (exit 2).
func reportError(err error) error {
	if errors.Is(err, report.ErrInput) {
		return badInput(err)
	}
	return err
}
