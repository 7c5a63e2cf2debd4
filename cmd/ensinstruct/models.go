package main

import "github.com/spf13/cobra"

func (a *app) modelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Inspect the configured models",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Send one tiny request to every configured model",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return errNotBuilt("models check") },
	})
	return cmd
}
