package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// app holds what every command needs from the process: its streams and its
// environment. Tests build one directly; main builds it from the process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	scrOnce sync.Once
	scr     *screen // stderr's screen: see app.screen
}

// forceAfter is how long after the first signal a second one forces the
// process to exit. Tools such as timeout(1) send SIGTERM twice within a
// few milliseconds; only a user pressing Ctrl-C again means "now".
const forceAfter = time.Second

// run is the whole program: it parses args, runs the command under a context
// that SIGINT and SIGTERM cancel (both stop gracefully: the records so far
// are flushed, the summary printed and the manifest written), reports the
// error on stderr and returns the exit code. A second signal at least
// forceAfter after the first exits at once with status 130.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var first time.Time
		for {
			select {
			case <-sigs:
				if first.IsZero() {
					first = time.Now()
					cancel()
				} else if time.Since(first) >= forceAfter {
					fmt.Fprintln(stderr, "ensinstruct: second signal: exiting now")
					os.Exit(exitInterrupted)
				}
			case <-done:
				return
			}
		}
	})
	defer func() { close(done); wg.Wait() }()
	a := &app{stdin: stdin, stderr: stderr, getenv: os.Getenv}
	a.stdout = a.sharedStdout(stdout)
	return a.execute(ctx, args)
}

// stderrIsTerminal reports whether diagnostics go to a terminal.
func (a *app) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// logger returns the one logger of the process's diagnostics: text on a
// terminal, JSON lines otherwise (a cron log), so that warnings and
// progress never mix formats. Records are written above the progress
// bar, if one is drawn.
func (a *app) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if a.stderrIsTerminal() {
		return slog.New(a.screen().handler(slog.NewTextHandler(a.stderr, opts)))
	}
	return slog.New(a.screen().handler(slog.NewJSONHandler(a.stderr, opts)))
}

func (a *app) execute(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)

	// Cobra reports unknown commands, bad flags and wrong argument counts
	// before any PreRun hook. A failure before the hook ran is bad usage.
	started := false
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }

	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && !started {
		var ie *inputError
		if !errors.As(err, &ie) {
			err = badInput(err)
		}
	}
	var se *silentError
	code := exitCode(ctx, err)
	if code == exitInterrupted && errors.Is(err, context.Canceled) && err.Error() == context.Canceled.Error() {
		err = errors.New("interrupted") // not a stray "context canceled"
	}
	if err != nil && !errors.As(err, &se) {
		fmt.Fprintf(a.stderr, "ensinstruct: %v\n", err)
		if !started && cmd != nil {
			fmt.Fprintf(a.stderr, "Run '%s -h' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ensinstruct",
		Short: "Generate and filter instruction-tuning data by ensemble agreement",
		Long: `ensinstruct implements Ensemble-Instruct: from a small set of seed tasks it has
a pool of language models (local ones through Ollama, hosted ones through any
OpenAI-compatible API) write new instructions and instances, asks other models
for their own outputs, and keeps an example only when the models agree.

Data goes to stdout, diagnostics to stderr. Exit codes: 0 ok, 1 failure,
2 bad usage or bad input, 75 detached with batch jobs pending
(generate --detach), 130 interrupted.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	root.Version = buildVersion()
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(
		a.generateCmd(),
		a.filterCmd(),
		a.seedsCmd(),
		a.scoreCmd(),
		a.reportCmd(),
		a.evalSelectCmd(),
		a.modelsCmd(),
		a.workerCmd(),
		a.cacheCmd(),
		a.versionCmd(),
	)
	return root
}
