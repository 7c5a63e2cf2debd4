// Package pipeline wires the Ensemble-Instruct stages together: instruction
// generation, novelty, instance generation, ensemble outputs and consensus,
// with deterministic randomness, a response cache that makes runs resumable,
// progress events and the run manifest.
//
// It neither parses text formats nor speaks HTTP: prompts and filter do the
// first, llm the second.
package pipeline
