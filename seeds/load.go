package seeds

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLineBytes bounds one JSONL line. Seed lines are small; the bound only
// stops a file without newlines from being read whole.
const MaxLineBytes = 64 << 20

// Problem is one thing wrong with a seed file, located by file, line and
// field. Field is a JSON path such as "instruction" or "instances[0].output".
type Problem struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// Error formats the problem as "FILE:LINE: field: message".
func (p Problem) Error() string {
	if p.Field == "" {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Field, p.Msg)
}

// ValidationError lists every problem found in a seed file, in line order.
type ValidationError struct {
	Problems []Problem
}

// Error returns one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadFile reads a seed file; see Load.
func LoadFile(path string) ([]Task, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Load(f, path)
}

// Load reads Self-Instruct JSONL from r, one task per line. Blank lines and
// CRLF line ends are accepted; unknown fields are ignored. name is used in
// problem reports. A task without an id gets "seed_LINE".
//
// When the input has problems, Load reads it to the end and returns a
// *ValidationError with all of them; a read error is returned as is.
func Load(r io.Reader, name string) ([]Task, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	var (
		tasks    []Task
		problems []Problem
		firstID  = map[string]int{}
		lineNo   int
	)
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if len(tasks) == 0 && len(problems) == 0 && line[0] == '[' {
			// A JSON array, on one line or pretty-printed: one problem,
			// not one per line.
			return nil, &ValidationError{Problems: []Problem{{name, lineNo, "",
				"the file is a JSON array; a seed file is JSONL, one JSON object per line (convert it with: jq -c '.[]' " + name + ")"}}}
		}
		t, ps := parseLine(line, name, lineNo)
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		if prev, dup := firstID[t.ID]; dup {
			problems = append(problems, Problem{name, lineNo, "id",
				fmt.Sprintf("duplicate id %q (first on line %d)", t.ID, prev)})
			continue
		}
		firstID[t.ID] = lineNo
		tasks = append(tasks, t)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, lineNo+1, MaxLineBytes)
		}
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return tasks, nil
}

// rawTask keeps each field undecoded so that invalid UTF-8 and wrong types
// can be reported against the field they are in.
type rawTask struct {
	ID               json.RawMessage `json:"id"`
	Name             json.RawMessage `json:"name"`
	Instruction      json.RawMessage `json:"instruction"`
	Instances        json.RawMessage `json:"instances"`
	IsClassification json.RawMessage `json:"is_classification"`
}

type rawInstance struct {
	Input  json.RawMessage `json:"input"`
	Output json.RawMessage `json:"output"`
}

func parseLine(line []byte, file string, lineNo int) (Task, []Problem) {
	var (
		t  Task
		ps []Problem
	)
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{file, lineNo, field, fmt.Sprintf(format, args...)})
	}
	var raw rawTask
	if err := json.Unmarshal(line, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			bad("", "want a JSON object per line, got %s", jsonKind(line))
		} else {
			bad("", "invalid JSON: %v", jsonMsg(err))
		}
		return t, ps
	}
	str := func(field string, msg json.RawMessage, dst *string) bool {
		if len(msg) == 0 || string(msg) == "null" {
			return false
		}
		if !utf8.Valid(msg) {
			bad(field, "invalid UTF-8")
			return false
		}
		if err := json.Unmarshal(msg, dst); err != nil {
			bad(field, "want a string, got %s", jsonKind(msg))
			return false
		}
		return true
	}

	if str("id", raw.ID, &t.ID) && strings.TrimSpace(t.ID) == "" {
		bad("id", "empty")
	}
	if t.ID == "" && len(ps) == 0 {
		t.ID = "seed_" + strconv.Itoa(lineNo)
	}
	str("name", raw.Name, &t.Name)
	switch ok := str("instruction", raw.Instruction, &t.Instruction); {
	case !ok && (len(raw.Instruction) == 0 || string(raw.Instruction) == "null"):
		bad("instruction", "missing")
	case ok && strings.TrimSpace(t.Instruction) == "":
		bad("instruction", "empty")
	}
	if len(raw.IsClassification) > 0 && string(raw.IsClassification) != "null" {
		if err := json.Unmarshal(raw.IsClassification, &t.IsClassification); err != nil {
			bad("is_classification", "want true or false, got %s", jsonKind(raw.IsClassification))
		}
	}

	var insts []json.RawMessage
	switch {
	case len(raw.Instances) == 0 || string(raw.Instances) == "null":
		bad("instances", "missing")
		return t, ps
	case json.Unmarshal(raw.Instances, &insts) != nil:
		bad("instances", "want a list of {\"input\", \"output\"} objects, got %s", jsonKind(raw.Instances))
		return t, ps
	case len(insts) == 0:
		bad("instances", "no instances")
		return t, ps
	}
	for i, msg := range insts {
		field := fmt.Sprintf("instances[%d]", i)
		var ri rawInstance
		if err := json.Unmarshal(msg, &ri); err != nil {
			bad(field, "want an {\"input\", \"output\"} object, got %s", jsonKind(msg))
			continue
		}
		var inst Instance
		str(field+".input", ri.Input, &inst.Input)
		switch ok := str(field+".output", ri.Output, &inst.Output); {
		case !ok && (len(ri.Output) == 0 || string(ri.Output) == "null"):
			bad(field+".output", "missing")
		case ok && strings.TrimSpace(inst.Output) == "":
			bad(field+".output", "empty")
		}
		t.Instances = append(t.Instances, inst)
	}
	return t, ps
}

// jsonMsg shortens encoding/json's syntax errors to what a user needs.
func jsonMsg(err error) string {
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err.Error()
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(msg json.RawMessage) string {
	if len(msg) == 0 {
		return "nothing"
	}
	switch msg[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
