package main

import (
	"encoding/json"
	"fmt"

	"github.com/ensinstruct/ensinstruct/config"
	"github.com/ensinstruct/ensinstruct/seeds"
	"github.com/spf13/cobra"
)

func (a *app) seedsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seeds",
		Short: "Validate, count and export seed tasks",
		Long: `Seed tasks are Self-Instruct JSONL, one task per line:
  {"id", "name", "instruction", "instances": [{"input", "output"}], "is_classification"}
A task whose first instance has a non-empty input is type A, otherwise type B.
Without --seeds, commands use the default set embedded in the binary.`,
	}
	cmd.AddCommand(a.seedsValidateCmd(), a.seedsStatsCmd(), a.seedsExportCmd())
	return cmd
}

func (a *app) seedsValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a seed file and report every problem as FILE:LINE: field: message",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			tasks, err := a.loadSeeds(args[0])
			if err != nil {
				return err
			}
			s := seeds.Count(tasks)
			fmt.Fprintf(a.stderr, "%s: ok: %d tasks (%d type A, %d type B, %d classification)\n",
				args[0], s.Tasks, s.TypeA, s.TypeB, s.Classification)
			return nil
		},
	}
}

func (a *app) seedsStatsCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print task counts as one JSON object",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			tasks, err := a.loadSeeds(file)
			if err != nil {
				return err
			}
			return json.NewEncoder(a.stdout).Encode(seeds.Count(tasks))
		},
	}
	cmd.Flags().StringVar(&file, "seeds", "", "seed `FILE` (default: the embedded set)")
	return cmd
}

func (a *app) seedsExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Write the embedded default seed set to stdout as JSONL",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := a.stdout.Write(seeds.DefaultJSONL())
			return err
		},
	}
}

// loadSeeds loads a seed file, or the embedded set when path is empty;
// a bad file is bad input listing every problem.
func (a *app) loadSeeds(path string) ([]seeds.Task, error) {
	tasks, _, _, err := config.LoadSeeds(path)
	return tasks, a.inputError(err)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %d argument(s), got %d (usage: %s)", cmd.CommandPath(), n, len(args), cmd.UseLine())
		}
		return nil
	}
}
