// Package output writes what a run keeps: the Record type and its fixed
// provenance schema (Meta), streaming writers for the alpaca, openai,
// sharegpt and prompt-completion formats in JSONL or Parquet, the
// readers of every format, atomic files, the dataset card next to an
// output file and the run manifest file. It decides nothing about what
// is kept. docs/trainers.md says which format each trainer loads.
package output
