package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// app holds what every command needs from the process: its streams and its
// environment. Tests build one directly; main builds it from the process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// run is the whole program: it parses args, runs the command under a context
// that SIGINT and SIGTERM cancel, reports the error on stderr and returns the
// exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default behaviour: a second
	// Ctrl-C kills a command that is slow to wind down.
	context.AfterFunc(ctx, stop)
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.execute(ctx, args)
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
	if err != nil && !errors.As(err, &se) {
		fmt.Fprintf(a.stderr, "ensinstruct: %v\n", err)
		if !started && cmd != nil {
			fmt.Fprintf(a.stderr, "Run '%s -h' for usage.\n", cmd.CommandPath())
		}
	}
	return exitCode(ctx, err)
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
2 bad usage or bad input, 130 interrupted.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	root.AddCommand(
		a.generateCmd(),
		a.filterCmd(),
		a.seedsCmd(),
		a.scoreCmd(),
		a.reportCmd(),
		a.modelsCmd(),
		a.versionCmd(),
	)
	return root
}
