// Package report computes the figures by which a generated instruction
// dataset is judged, and renders them as one self-contained HTML page:
// inline SVG charts, an inline stylesheet and a small inline script, and
// nothing fetched from the network.
//
// The figures come from files only: a run directory (manifest.json,
// kept.jsonl and rejected.jsonl, as generate writes them), or any
// instruction dataset in the alpaca, openai or sharegpt JSONL formats,
// with or without provenance, and the filter command's --rejected file.
// They are
//
//   - a funnel per type: how many candidates entered each stage and why
//     the rest were dropped;
//   - the distribution of each accepted instruction's highest Rouge-L
//     against earlier instructions and seeds (meta.novelty_max), with the
//     novelty threshold;
//   - the length distributions of instructions, inputs and outputs;
//   - the most frequent leading verbs (see LeadingVerb);
//   - per consensus member: win rate, empty rate, failure rate and the
//     mean pairwise agreement with every other member;
//   - calls, tokens and cost per model, and the run's timeline;
//   - a deterministic sample of kept and rejected examples with every
//     candidate and its scores.
//
// Build reads the files in one streaming pass, so its memory does not grow
// with the dataset beyond the bounded sample; Render writes the page, whose
// size is bounded whatever the input (see MaxExampleText).
package report
