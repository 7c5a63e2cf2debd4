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

func (a *app) filterCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "filter",
		Short: "Filter an instruction dataset by consensus, heuristics and deduplication",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return errNotBuilt("filter") },
	}
}

func (a *app) scoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "score",
		Short: "Score text pairs with Rouge-L and Rouge-1, as the filters do",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return errNotBuilt("score") },
	}
}

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
