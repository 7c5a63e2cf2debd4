// Package pipeline runs the Ensemble-Instruct method: instruction
// generation, novelty, instance generation, ensemble outputs and
// consensus, with deterministic randomness and in-order consumption, so
// that the same configuration and cached responses give the same records.
//
// Job is the run lifecycle as one library call: it resolves the options,
// derives the run identity from them, opens the run directory and its
// response cache, builds the executor (the local llm.Pool, or any
// Executor: the distributed and batch ones plug in here), enforces the
// budget with a Gate, keeps the evidence (kept.jsonl, rejected.jsonl),
// commits the output and writes the Manifest. Runner is the pipeline
// itself, for callers that bring their own executor and sink. Ensemble is
// the one ensemble step, shared with the filter command's library
// (package curate).
//
// It neither parses text formats nor speaks HTTP: prompts, config and
// filter do the first, llm the second.
package pipeline
