package output

import (
	"errors"
	"fmt"
	"strconv"
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

// Meta is a record's provenance. One schema serves generate and filter
// records: the writers put every key on every line, write an absent value
// as null and never let a key change type between lines (see
// Meta.MarshalJSON and docs/trainers.md). An empty string and a nil slice
// or pointer are the absent values; a non-nil empty slice is written as
// an empty list.
type Meta struct {
	// ID is a UUID derived deterministically from the run (generate) or
	// from the record's content (filter), so that a re-run writes the
	// same IDs.
	ID string `json:"id"`
	// Type is "A" (the instruction takes an input) or "B".
	Type string `json:"type"`
	// InstructionModel, InstanceModel and Ensemble name the models that
	// wrote the instruction, the instance and the extra outputs. A filter
	// record has no instruction or instance model; its Ensemble names the
	// candidate sources after the record's own output.
	InstructionModel string   `json:"instruction_model"`
	InstanceModel    string   `json:"instance_model"`
	Ensemble         []string `json:"ensemble"`
	// Consensus describes how the output was chosen; nil when no
	// consensus step ran.
	Consensus *ConsensusMeta `json:"consensus"`
	// NoveltyMax is the instruction's highest Rouge-L F against the seeds
	// and earlier instructions when it was accepted; nil when novelty was
	// not computed.
	NoveltyMax *float64 `json:"novelty_max"`
	// Source locates a filtered record in its input ("data.jsonl:12");
	// empty for generated records.
	Source string `json:"source"`
	// MostSimilar lists the earlier instructions (seeds included) most
	// similar to this one, highest score first. Nil (null) when the run
	// did not compute them; empty when there was nothing to compare with.
	MostSimilar []Similar `json:"most_similar"`
}

// ConsensusMeta is the consensus rule's decision for a record: which
// candidate was kept and why, with every pairwise score.
type ConsensusMeta struct {
	Reason string `json:"reason"`
	// Pick is the index of the kept candidate: 0 is the instance's own
	// output, i > 0 the output of Ensemble[i-1].
	Pick     int       `json:"pick"`
	Pairwise []float64 `json:"pairwise"`
	Scores   []float64 `json:"scores"`
	MinPair  float64   `json:"min_pair"`
	// Winner names the kept candidate. Left empty, the writers derive it
	// from Pick (see Meta.WinnerName).
	Winner string `json:"winner"`
	// Judge holds a judge model's grade of each candidate in candidate
	// order (1 to 10; 0 for a candidate not graded); nil (null) when no
	// judge ran.
	Judge []float64 `json:"judge"`
}

// Similar is one earlier instruction and its Rouge-L F against the
// record's instruction.
type Similar struct {
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

// OwnCandidate is the Winner of a filter record whose own output was
// kept: that output came with the record, not from a named model.
const OwnCandidate = "input"

// WinnerName names the kept candidate: Consensus.Winner when set;
// otherwise InstanceModel (or OwnCandidate when there is none, as in
// filter) for candidate 0 and Ensemble[Pick-1] for the others. It is ""
// when there is no consensus or the pick names no candidate.
func (m *Meta) WinnerName() string {
	c := m.Consensus
	switch {
	case c == nil:
		return ""
	case c.Winner != "":
		return c.Winner
	case c.Pick == 0 && m.InstanceModel != "":
		return m.InstanceModel
	case c.Pick == 0:
		return OwnCandidate
	case c.Pick > 0 && c.Pick <= len(m.Ensemble):
		return m.Ensemble[c.Pick-1]
	}
	return ""
}

// DefaultJoin separates the instruction from the input in the user turn
// of every chat format: a single newline, the separator of the ensemble
// prompt the kept outputs were answers to, and the one LLaMA-Factory's
// alpaca loader applies (see docs/trainers.md).
const DefaultJoin = "\n"

// ParseJoin reads a --join value: the separator with Go string escapes
// (`\n`, `\n\n`, `\t`, ` `, `\"`), so a shell can pass it on one line;
// a value without a backslash is taken as it is. An empty separator is an error: it would glue the instruction to its
// input.
func ParseJoin(s string) (string, error) {
	v, err := s, error(nil)
	if strings.Contains(s, `\`) {
		v, err = strconv.Unquote(`"` + s + `"`)
	}
	if err != nil {
		return "", fmt.Errorf("--join %q: not a valid escaped string (write \\n for a newline, \\\" for a quote)", s)
	}
	if v == "" {
		return "", errors.New("--join: the separator must not be empty")
	}
	return v, nil
}

// UserTurn is the text of the user turn in chat formats: the instruction,
// then join and the input when there is an input. An empty join means
// DefaultJoin.
func (r Record) UserTurn(join string) string {
	if strings.TrimSpace(r.Input) == "" {
		return r.Instruction
	}
	if join == "" {
		join = DefaultJoin
	}
	return r.Instruction + join + r.Input
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
	// FormatPromptCompletion is TRL's conversational prompt-completion
	// format: {"prompt": [{"role": "user", ...}], "completion":
	// [{"role": "assistant", ...}]}; trainers compute the loss on the
	// completion only by default.
	FormatPromptCompletion Format = "prompt-completion"
)

// Formats returns the supported formats.
func Formats() []Format {
	return []Format{FormatAlpaca, FormatOpenAI, FormatShareGPT, FormatPromptCompletion}
}

// ParseFormat returns the Format named s, or an error listing the choices.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want %s)", s, formatList())
}

// formatList is "alpaca, openai, sharegpt or prompt-completion".
func formatList() string {
	fs := Formats()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// chat reports whether the format holds messages (and so a system turn
// and a joined user turn).
func (f Format) chat() bool { return f != FormatAlpaca }
