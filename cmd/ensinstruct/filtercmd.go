package main

import "github.com/spf13/cobra"

func (a *app) filterCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "filter",
		Short: "Filter an instruction dataset by consensus, heuristics and deduplication",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return errNotBuilt("filter") },
	}
}
