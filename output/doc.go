// Package output writes what a run keeps: the Record type, streaming JSONL
// writers for the alpaca, openai and sharegpt formats, atomic files and the
// run manifest file. It decides nothing about what is kept.
package output
