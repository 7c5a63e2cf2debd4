package main

import "github.com/spf13/cobra"

func (a *app) generateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Run the whole Ensemble-Instruct pipeline and write JSONL",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return errNotBuilt("generate") },
	}
}
