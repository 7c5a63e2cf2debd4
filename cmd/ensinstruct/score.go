package main

import "github.com/spf13/cobra"

func (a *app) scoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "score",
		Short: "Score text pairs with Rouge-L and Rouge-1, as the filters do",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return errNotBuilt("score") },
	}
}
