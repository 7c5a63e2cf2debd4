package output

import (
	"bytes"
	"encoding/json"
)

// Kept is one line of a generate run directory's kept.jsonl: a kept
// record in alpaca form with its full provenance, and the candidate outputs
// its vote compared (candidate 0 is the instance's own output).
type Kept struct {
	Instruction string   `json:"instruction"`
	Input       string   `json:"input"`
	Output      string   `json:"output"`
	Meta        *Meta    `json:"meta"`
	Candidates  []string `json:"candidates"`
}

// keptJSON is the wire form of Kept.
type keptJSON struct {
	Instruction string    `json:"instruction"`
	Input       string    `json:"input"`
	Output      string    `json:"output"`
	Meta        *metaJSON `json:"meta"`
	Candidates  []string  `json:"candidates"`
}

// Encode writes k to enc as json.Marshal would, with its meta in the wire
// form directly (see Meta.MarshalJSON), which spares encoding/json a
// second pass over the meta's bytes.
func (k Kept) Encode(enc *json.Encoder) error {
	v := keptJSON{Instruction: k.Instruction, Input: k.Input, Output: k.Output, Candidates: k.Candidates}
	if k.Meta != nil {
		m, err := k.Meta.wire()
		if err != nil {
			return err
		}
		v.Meta = m
	}
	return enc.Encode(v)
}

// Rejected is a dropped candidate, or a malformed input line that was
// skipped, with the reason and the scores that decided it. Its JSON form
// is one line of a rejected file (the filter command's --rejected, and
// rejected.jsonl in a generate run directory): reason, source, then either
// the error (for a malformed line) or the record with its candidates and
// scores.
type Rejected struct {
	// Seq is the candidate's position in its stream (for the filter
	// command, in the input: 0-based, malformed lines included). It is
	// not written.
	Seq int `json:"-"`
	// Reason is the stage-qualified reason: "dedup/not-novel",
	// "instruction/too-short", or "input/invalid" for a malformed line.
	Reason string `json:"reason"`
	// Source locates the record ("data.jsonl:12"), when there is one.
	Source string `json:"source,omitempty"`
	// Error describes a malformed line; the other fields are then empty.
	Error string `json:"error,omitempty"`
	// Instruction, Input and Output are the candidate as it was when
	// dropped (empty where a stage dropped it before it had them).
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
	// Candidates are the outputs the deciding consensus step compared,
	// candidate 0 first; Meta.Consensus holds its scores.
	Candidates []string `json:"candidates,omitempty"`
	// Meta holds the scores of the steps that ran (novelty_max,
	// consensus), the models and the type; its Source is left to the
	// field above.
	Meta *Meta `json:"meta,omitempty"`
	// Raw is the model's reply when no instruction or instance could be
	// parsed from it.
	Raw string `json:"raw,omitempty"`
}

// MarshalJSON encodes r, leaving out the empty record fields of a
// malformed line. It does not escape <, > and & itself, so that an
// encoder with SetEscapeHTML(false) writes them as Writer does.
func (r Rejected) MarshalJSON() ([]byte, error) {
	type plain Rejected // without this method
	var v any = plain(r)
	if r.Error != "" {
		v = struct {
			Reason string `json:"reason"`
			Source string `json:"source,omitempty"`
			Error  string `json:"error"`
		}{r.Reason, r.Source, r.Error}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
