package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxLineBytes bounds one input line; records can be long, but a file with
// no newlines should not be read whole.
const MaxLineBytes = 64 << 20

// LineError is a problem with one input line.
type LineError struct {
	File string
	Line int
	Msg  string
}

// Error formats the problem as "FILE:LINE: message".
func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ErrInvalidLine is matched by every *LineError (errors.Is).
var ErrInvalidLine = errors.New("invalid input line")

// Is reports whether target is ErrInvalidLine.
func (e *LineError) Is(target error) bool { return target == ErrInvalidLine }

// Reader reads instruction records from JSONL in any of the formats, one
// record per line; blank lines are skipped. The format is fixed by the
// first record unless set with SetFormat. Not safe for concurrent use.
type Reader struct {
	sc     *bufio.Scanner
	name   string
	line   int
	format Format
	// instructionOnly accepts alpaca-shaped lines without an output, such
	// as seed tasks (see ReadInstructions).
	instructionOnly bool
}

// NewReader returns a Reader of r; name is used in error messages.
func NewReader(r io.Reader, name string) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	return &Reader{sc: sc, name: name}
}

// SetFormat fixes the input format instead of detecting it.
func (r *Reader) SetFormat(f Format) { r.format = f }

// Format returns the input format: set, detected, or "" before the first
// record.
func (r *Reader) Format() Format { return r.format }

// Line returns the line number of the record last returned.
func (r *Reader) Line() int { return r.line }

// Name returns the name given to NewReader.
func (r *Reader) Name() string { return r.name }

// Read returns the next record, io.EOF at the end, or a *LineError for a
// malformed line (after which reading may continue with the next line).
func (r *Reader) Read() (Record, error) {
	for r.sc.Scan() {
		r.line++
		b := bytes.TrimSpace(r.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rec, err := r.decode(b)
		if err != nil {
			return Record{}, &LineError{File: r.name, Line: r.line, Msg: err.Error()}
		}
		return rec, nil
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Record{}, fmt.Errorf("%s:%d: line longer than %d bytes", r.name, r.line+1, MaxLineBytes)
		}
		return Record{}, fmt.Errorf("reading %s: %w", r.name, err)
	}
	return Record{}, io.EOF
}

// inputLine has the fields of every format, so one decode tells which
// format a line is in.
type inputLine struct {
	Instruction   *string         `json:"instruction"`
	Input         *string         `json:"input"`
	Output        *string         `json:"output"`
	Messages      []chatMessage   `json:"messages"`
	Conversations []shareGPTTurn  `json:"conversations"`
	Prompt        json.RawMessage `json:"prompt"`
	Completion    json.RawMessage `json:"completion"`
}

func (r *Reader) decode(b []byte) (Record, error) {
	var in inputLine
	if err := json.Unmarshal(b, &in); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Record{}, fmt.Errorf("invalid JSON: %v (at byte %d)", err, se.Offset)
		}
		return Record{}, fmt.Errorf("invalid record: %v", err)
	}
	f := r.format
	if f == "" {
		switch {
		case in.Instruction != nil:
			f = FormatAlpaca
		case in.Messages != nil:
			f = FormatOpenAI
		case in.Conversations != nil:
			f = FormatShareGPT
		case in.Prompt != nil && in.Completion != nil:
			f = FormatPromptCompletion
		default:
			return Record{}, errors.New(`not an instruction record: want "instruction" (alpaca), "messages" (openai), "conversations" (sharegpt) or "prompt" and "completion" (prompt-completion)`)
		}
		r.format = f
	}
	switch f {
	case FormatOpenAI:
		turns := make([][2]string, len(in.Messages))
		for i, m := range in.Messages {
			turns[i] = [2]string{m.Role, m.Content}
		}
		return fromTurns(turns, "messages", "role", roleUser, roleAssistant)
	case FormatShareGPT:
		turns := make([][2]string, len(in.Conversations))
		for i, t := range in.Conversations {
			turns[i] = [2]string{t.From, t.Value}
		}
		return fromTurns(turns, "conversations", "from", fromHuman, fromGPT)
	case FormatPromptCompletion:
		return fromPromptCompletion(in.Prompt, in.Completion)
	default:
		if in.Instruction == nil {
			return Record{}, errors.New(`instruction: missing (alpaca format)`)
		}
		if in.Output == nil && !r.instructionOnly {
			return Record{}, errors.New(`output: missing (alpaca format)`)
		}
		rec := Record{Instruction: *in.Instruction}
		if in.Output != nil {
			rec.Output = *in.Output
		}
		if in.Input != nil {
			rec.Input = *in.Input
		}
		return rec, nil
	}
}

// fromPromptCompletion reads TRL's prompt-completion records: the
// conversational form (lists of messages) or the standard one (two
// strings, the prompt becoming the instruction).
func fromPromptCompletion(prompt, completion json.RawMessage) (Record, error) {
	var ps, cs string
	if json.Unmarshal(prompt, &ps) == nil && json.Unmarshal(completion, &cs) == nil {
		return Record{Instruction: strings.TrimSpace(ps), Output: cs}, nil
	}
	var pm, cm []chatMessage
	if err := json.Unmarshal(prompt, &pm); err != nil || pm == nil {
		return Record{}, errors.New("prompt: want a string or a list of messages")
	}
	if err := json.Unmarshal(completion, &cm); err != nil || cm == nil {
		return Record{}, errors.New("completion: want a string or a list of messages")
	}
	turns := make([][2]string, 0, len(pm)+len(cm))
	for _, m := range pm {
		if m.Role == roleAssistant {
			return Record{}, errors.New("prompt: an assistant turn belongs in the completion")
		}
		turns = append(turns, [2]string{m.Role, m.Content})
	}
	for _, m := range cm {
		if m.Role != roleAssistant {
			return Record{}, fmt.Errorf("completion: role %q, want %s", m.Role, roleAssistant)
		}
		turns = append(turns, [2]string{m.Role, m.Content})
	}
	return fromTurns(turns, "prompt", "role", roleUser, roleAssistant)
}

// fromTurns reads a single-exchange chat record: an optional system turn,
// one user turn and one assistant turn. The user turn becomes the
// instruction (chat formats do not separate instruction and input).
func fromTurns(turns [][2]string, field, key, user, assistant string) (Record, error) {
	var u, a []string
	for i, t := range turns {
		switch t[0] {
		case roleSystem:
		case user:
			u = append(u, t[1])
		case assistant:
			a = append(a, t[1])
		default:
			return Record{}, fmt.Errorf("%s[%d].%s: unknown %q (want system, %s or %s)", field, i, key, t[0], user, assistant)
		}
	}
	if len(u) != 1 || len(a) != 1 {
		return Record{}, fmt.Errorf("%s: want one %s and one %s turn, got %d and %d", field, user, assistant, len(u), len(a))
	}
	return Record{Instruction: strings.TrimSpace(u[0]), Output: a[0]}, nil
}

// ReadInstructions returns the instructions of a dataset: JSONL in any of
// the formats, or seed tasks (lines with an "instruction" and no
// "output"). For chat formats the instruction is the user turn. A
// malformed line is a *LineError.
func ReadInstructions(r io.Reader, name string) ([]string, error) {
	rd := NewReader(r, name)
	rd.instructionOnly = true
	var out []string
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Instruction)
	}
}
