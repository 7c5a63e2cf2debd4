package output

import (
	"fmt"
	"strings"
)

// Record is one kept example. Meta is set only when provenance is asked
// for (--meta).
type Record struct {
	Instruction string
	Input       string
	Output      string
	Meta        *Meta
}

// Meta is a record's provenance.
type Meta struct {
	// ID is a UUID derived deterministically from the run, so that a
	// re-run writes the same IDs.
	ID string `json:"id"`
	// Type is "A" (the instruction takes an input) or "B".
	Type string `json:"type,omitempty"`
	// InstructionModel, InstanceModel and Ensemble name the models that
	// wrote the instruction, the instance and the extra outputs.
	InstructionModel string   `json:"instruction_model,omitempty"`
	InstanceModel    string   `json:"instance_model,omitempty"`
	Ensemble         []string `json:"ensemble,omitempty"`
	// Consensus describes how the output was chosen.
	Consensus *ConsensusMeta `json:"consensus,omitempty"`
	// NoveltyMax is the instruction's highest Rouge-L F against the seeds
	// and earlier instructions when it was accepted.
	NoveltyMax *float64 `json:"novelty_max,omitempty"`
	// Source locates a filtered record in its input ("data.jsonl:12").
	Source string `json:"source,omitempty"`
}

// ConsensusMeta is the consensus rule's decision for a record: which
// candidate was kept and why, with every pairwise score.
type ConsensusMeta struct {
	Reason   string    `json:"reason"`
	Pick     int       `json:"pick"`
	Pairwise []float64 `json:"pairwise"`
	Scores   []float64 `json:"scores"`
	MinPair  float64   `json:"min_pair"`
}

// UserTurn is the text of the user turn in chat formats: the instruction,
// and the input after a blank line when there is one.
func (r Record) UserTurn() string {
	if strings.TrimSpace(r.Input) == "" {
		return r.Instruction
	}
	return r.Instruction + "\n\n" + r.Input
}

// Format is an output (and input) format of instruction data.
type Format string

// The supported formats.
const (
	// FormatAlpaca is {"instruction", "input", "output"}.
	FormatAlpaca Format = "alpaca"
	// FormatOpenAI is OpenAI's chat fine-tuning format:
	// {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}.
	FormatOpenAI Format = "openai"
	// FormatShareGPT is {"conversations": [{"from": "human", ...},
	// {"from": "gpt", ...}]}.
	FormatShareGPT Format = "sharegpt"
)

// Formats returns the supported formats.
func Formats() []Format { return []Format{FormatAlpaca, FormatOpenAI, FormatShareGPT} }

// ParseFormat returns the Format named s, or an error listing the choices.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want alpaca, openai or sharegpt)", s)
}
