// Package filter holds the computations that decide what ensinstruct keeps:
// Rouge scores identical to Google's rouge_score package, the novelty index
// that rejects near-duplicate instructions, the ensemble consensus rules
// (the reference rule, reliability-weighted rank voting and judge-scored
// selection), the per-member reliability statistics of a run, the
// evaluation of the rules against known answers, the instruction
// heuristics and the instance validity rules.
//
// Everything here is pure computation: no I/O, no models, no clocks. A
// filtered-out candidate is a reason (see Reason values), never an error.
package filter
