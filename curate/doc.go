// Package curate is the library of the filter command: it cleans an
// instruction dataset that already exists. Run streams records from any
// RecordSource through the steps Options select, in a fixed order —
// heuristics (the instruction checks and instance rules generate applies),
// dedup (near-duplicate instructions, against each other and an exclusion
// set, with filter.Index), offline consensus (candidate outputs from files
// aligned with the input) and online consensus (the pipeline's ensemble
// step, with models asked through a pipeline.Executor) — and passes each
// record on, in input order, as soon as it is decided. Dropped records are
// counted by stage-qualified reason and can be reported with their scores
// (output.Rejected); CheckCounts finds misaligned candidate files before
// anything is read.
package curate
