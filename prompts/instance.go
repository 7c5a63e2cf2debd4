package prompts

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/ensinstruct/ensinstruct/seeds"
)

// demo is one worked example of the instance prompts.
type demo struct {
	Instruction string
	Input       string
	Output      string
}

// The instance demonstrations, loaded once from the embedded files. They
// are never modified.
var (
	demosA = mustLoadDemos("templates/demos_a.txt", seeds.TypeA)
	demosB = mustLoadDemos("templates/demos_b.txt", seeds.TypeB)
)

// chatInstanceDemos is how many demonstrations the chat-style instance
// prompt shows to pin the reply format.
const chatInstanceDemos = 3

// instanceData is what the instance templates are executed with.
type instanceData struct {
	TypeA       bool
	Demos       []demo
	Instruction string
	Stop        string
}

// InstancePrompt renders the stage-2 prompt that asks for one instance of
// instruction (type typ). The instruction is put on one line (white space
// collapsed, stop markers removed).
//
// StyleCompletion is a fixed few-shot prompt per type from the embedded
// templates/demos_a.txt (18 demonstrations) or demos_b.txt (15): a header
// line, then "instruction: …\ninput: …\noutput: …" blocks (type B: no input
// line), each followed by the stop marker and a blank line, ending with
// "instruction: <instruction>\n" so that the model continues with the
// input (type A) or the output (type B). StyleChat is a system message and
// a user message asking for exactly one input (type A) and its correct
// output for the instruction, in the stated "input: …\noutput: …" format,
// with three demonstrations of that format.
//
// Stop, for both styles, is the marker and a new "instruction:" line (in
// lower case and capitalised). Unlike the reference, which also stops at a
// blank line, it does not stop at "\n\n": that cuts multi-paragraph inputs
// and outputs, passages and code, and empties replies that begin
// "output:\n\n". ParseInstance ends the instance at the same places and
// never looks past them.
func InstancePrompt(style Style, typ seeds.Type, instruction string) Prompt {
	instruction = collapseSpace(strings.ReplaceAll(instruction, DefaultStop, " "))
	f := instanceFrames[0]
	switch {
	case style == StyleChat && typ == seeds.TypeA:
		f = instanceFrames[3]
	case style == StyleChat:
		f = instanceFrames[2]
	case typ == seeds.TypeA:
		f = instanceFrames[1]
	}
	return f().with(instruction)
}

// instanceSlot stands for the instruction in a rendered instance frame.
const instanceSlot = "\x00instruction\x00"

// instanceFrame is an instance prompt rendered once with instanceSlot
// where the instruction goes, and cut at the slots: the demonstrations
// never change, so a prompt costs joining the pieces around the
// instruction, not a template execution.
type instanceFrame struct {
	system, text []string // text is the user message of a chat prompt
	chat         bool
}

func (f instanceFrame) with(instruction string) Prompt {
	text := strings.Join(f.text, instruction)
	if f.chat {
		return chat(strings.Join(f.system, instruction), text, instanceStops())
	}
	return Prompt{Text: text, Stop: instanceStops()}
}

// instanceFrames are the four frames (completion B and A, chat B and A),
// each rendered on first use. They are never modified.
var instanceFrames = [4]func() instanceFrame{
	sync.OnceValue(func() instanceFrame { return renderInstanceFrame(false, false) }),
	sync.OnceValue(func() instanceFrame { return renderInstanceFrame(false, true) }),
	sync.OnceValue(func() instanceFrame { return renderInstanceFrame(true, false) }),
	sync.OnceValue(func() instanceFrame { return renderInstanceFrame(true, true) }),
}

func renderInstanceFrame(chatStyle, typeA bool) instanceFrame {
	data := instanceData{TypeA: typeA, Demos: demosB, Instruction: instanceSlot, Stop: DefaultStop}
	if typeA {
		data.Demos = demosA
	}
	if chatStyle {
		data.Demos = data.Demos[:chatInstanceDemos]
		return instanceFrame{system: cutSlots(render("instance.chat.system.tmpl", data)),
			text: cutSlots(render("instance.chat.user.tmpl", data)), chat: true}
	}
	return instanceFrame{text: cutSlots(render("instance.completion.tmpl", data))}
}

// cutSlots cuts a rendered frame at its instruction slots.
func cutSlots(text string) []string { return strings.Split(text, instanceSlot) }

// mustLoadDemos reads and parses an embedded demonstration file, panicking
// on error (the files are part of the package and tested).
func mustLoadDemos(name string, typ seeds.Type) []demo {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("prompts: %v", err))
	}
	d, err := parseDemos(string(b), typ)
	if err != nil {
		panic(fmt.Sprintf("prompts: %s: %v", name, err))
	}
	return d
}

// parseDemos parses a demonstration file: optional "#" comment lines, then
// blocks of lower-case "instruction:", "input:" and "output:" fields, each
// field's content continuing on the lines that follow it, each block ended
// by a line holding only the stop marker. Type-A blocks need all three
// fields, type-B blocks exactly instruction and output.
func parseDemos(text string, typ seeds.Type) ([]demo, error) {
	var (
		demos []demo
		cur   map[string]*strings.Builder
		field string
		start int
	)
	finish := func(line int) error {
		get := func(k string) string {
			if b := cur[k]; b != nil {
				return trimSpace(b.String())
			}
			return ""
		}
		d := demo{Instruction: get("instruction"), Input: get("input"), Output: get("output")}
		switch {
		case d.Instruction == "" || d.Output == "":
			return fmt.Errorf("block at line %d: missing instruction or output", start)
		case typ == seeds.TypeA && d.Input == "":
			return fmt.Errorf("block at line %d: type-A block without input", start)
		case typ == seeds.TypeB && cur["input"] != nil:
			return fmt.Errorf("block at line %d: type-B block with an input", start)
		case strings.Contains(d.Instruction, "\n"):
			return fmt.Errorf("block at line %d: instruction spans lines", start)
		}
		demos = append(demos, d)
		cur, field = nil, ""
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if cur == nil {
			if trimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			cur, start = map[string]*strings.Builder{}, n
		}
		if line == DefaultStop {
			if err := finish(n); err != nil {
				return nil, err
			}
			continue
		}
		if label, rest, ok := strings.Cut(line, ":"); ok && (label == "instruction" || label == "input" || label == "output") {
			if cur[label] != nil {
				return nil, fmt.Errorf("line %d: second %q field in one block", n, label)
			}
			field = label
			cur[field] = &strings.Builder{}
			cur[field].WriteString(rest)
			continue
		}
		if field == "" {
			return nil, fmt.Errorf("line %d: text outside a labelled field", n)
		}
		cur[field].WriteString("\n" + line)
	}
	if cur != nil {
		return nil, fmt.Errorf("block at line %d: not ended by a %q line", start, DefaultStop)
	}
	return demos, nil
}

// instanceLabel is a field label recognised in instance replies.
type instanceLabel int

const (
	labelNone instanceLabel = iota
	labelInstruction
	labelInput
	labelOutput
)

// instanceLabelRE matches a field label at the start of a line, in any
// case, with optional spaces before the colon and markdown around it:
// "input:", "Input :", "INPUT:", "**Output:**", "**Output**:", "### Input:",
// "- Output:", "Example input:".
var instanceLabelRE = regexp.MustCompile(`(?i)^[ \t]*(?:#{1,6}[ \t]*|>[ \t]*|[-*+•][ \t]+)?(?:\*\*|__|\*|_)?[ \t]*(?:(?:example|sample)[ \t]+)?(instruction|input|output)[ \t]*(?:\*\*|__|\*|_)?[ \t]*:[ \t]*(?:\*\*|__)?(?:\*|_)?`)

// matchLabel returns the label that line starts with and the content after
// it, or labelNone.
func matchLabel(line string) (instanceLabel, string) {
	m := instanceLabelRE.FindStringSubmatchIndex(line)
	if m == nil {
		return labelNone, ""
	}
	rest := line[m[1]:]
	switch strings.ToLower(line[m[2]:m[3]]) {
	case "instruction":
		return labelInstruction, rest
	case "input":
		return labelInput, rest
	default:
		return labelOutput, rest
	}
}

// isNoInput reports whether s is one of the ways models write "no input"
// in an input field ("none", "N/A", "<noinput>", ...), ignoring case,
// brackets, quotes and a final period.
func isNoInput(s string) bool {
	switch strings.ToLower(strings.Trim(trimSpace(s), "<>()[]\"'`*_.")) {
	case "none", "n/a", "na", "no input", "noinput", "empty", "null", "nil", "-",
		"no input needed", "no input required", "not applicable":
		return true
	}
	return false
}

// instanceStatus says what parseInstance found.
type instanceStatus int

const (
	instanceFound       instanceStatus = iota // an instance with a non-empty output
	instanceEmptyOutput                       // an output label, but nothing after it
	instanceNone                              // no instance for this instruction
)

// ParseInstance is ParseInstanceFor without the instruction: a reply that
// starts with an "instruction:" line cannot be told apart from an instance
// of another instruction, so it is rejected. The pipeline should prefer
// ParseInstanceFor or FindInstance.
func ParseInstance(reply string, typ seeds.Type) (input, output string, ok bool) {
	return ParseInstanceFor(reply, typ, "")
}

// ParseInstanceFor is the robust, default instance parser. It extracts the
// first instance from a reply to InstancePrompt (either style) for
// instruction, of type typ. ok is false, with empty results, when the reply
// holds no instance for this instruction or the instance's output is empty;
// run filter.CheckInstance on a found instance for the validity rules (an
// empty type-A input is returned as found and rejected there).
//
// It accepts:
//   - labels in any case, with spaces before the colon or markdown around
//     them ("input:", "INPUT :", "**Output:**", "### Input:");
//   - content on the label's line or starting on the next line, and
//     multi-line inputs and outputs, blank lines included;
//   - replies to the completion prompt that start directly with "input:"
//     or "output:" (the prompt ended with the instruction line), and a
//     first line "instruction: …" that echoes instruction (compared after
//     removing markers, collapsing white space and ignoring case and
//     trailing punctuation);
//   - a chat model's preamble before the first label ("Sure, here is an
//     example:"), closing remarks after the output ("Let me know if …"),
//     and a code fence wrapped around the whole reply;
//   - input placeholders such as "none" or "N/A", read as an empty input.
//
// Both types are parsed alike: a type-B reply that does hold an input
// returns it.
//
// The instance ends at the first stop marker, at a new "instruction:" line,
// or at a second input or output label (another instance), whichever comes
// first: text after that never belongs to this instruction. A reply whose
// first label is an "instruction:" line that does not echo instruction is
// another instruction's instance and is rejected, as is a reply with
// unlabelled text before its first label that is not a recognisable
// preamble (the model invented its own fields).
//
// Returned fields are trimmed pieces of the reply (with "\r\n" read as
// "\n"); nothing is invented.
func ParseInstanceFor(reply string, typ seeds.Type, instruction string) (input, output string, ok bool) {
	input, output, st := parseInstance(reply, typ, instruction)
	if st != instanceFound {
		return "", "", false
	}
	return input, output, true
}

// FindInstance is ParseInstanceFor without its one judgement: found is
// true whenever the reply holds an instance for instruction, even one
// whose output label is empty (output is then ""). It only parses; the
// pipeline judges the instance with filter.CheckInstance.
func FindInstance(reply string, typ seeds.Type, instruction string) (input, output string, found bool) {
	input, output, st := parseInstance(reply, typ, instruction)
	switch st {
	case instanceNone:
		return "", "", false
	case instanceEmptyOutput:
		return input, "", true
	}
	return input, output, true
}

// parseInstance implements ParseInstanceFor, also telling an empty output
// apart from no instance at all.
func parseInstance(reply string, typ seeds.Type, instruction string) (input, output string, st instanceStatus) {
	_ = typ // both types are parsed alike; the validity rules tell them apart
	s := normalizeNewlines(reply)
	var (
		preamble    []string
		echo        *strings.Builder // content of a leading instruction line
		cur         *strings.Builder // the field being read
		in, out     *strings.Builder
		seenField   bool
		lineStart   int
		terminating bool
	)
	for lineStart <= len(s) && !terminating {
		end := strings.IndexByte(s[lineStart:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += lineStart
		}
		line := s[lineStart:end]
		lineStart = end + 1

		label, rest := matchLabel(line)
		if label == labelInstruction && !seenField && echo == nil && acceptablePreamble(preamble) {
			// A leading instruction line: the markers on it belong to
			// the echoed instruction (the reference's own instructions
			// kept theirs), so they do not end the instance.
			echo = &strings.Builder{}
			echo.WriteString(strings.ReplaceAll(rest, DefaultStop, " "))
			cur = echo
			continue
		}
		// A marker ends the instance; the text before it on this line
		// still counts.
		if i := strings.Index(line, DefaultStop); i >= 0 {
			line = line[:i]
			label, rest = matchLabel(line)
			terminating = true
		}
		switch label {
		case labelInstruction:
			// A new block: whatever follows belongs to another
			// instruction.
			terminating = true
			continue
		case labelInput:
			if in != nil || out != nil {
				terminating = true // a second instance
				continue
			}
			in = &strings.Builder{}
			in.WriteString(rest)
			cur, seenField = in, true
			continue
		case labelOutput:
			if out != nil {
				terminating = true
				continue
			}
			out = &strings.Builder{}
			out.WriteString(rest)
			cur, seenField = out, true
			continue
		}
		if cur == nil {
			preamble = append(preamble, line)
			continue
		}
		if cur == echo && trimSpace(line) == "" {
			// The echoed instruction ends at a blank line; whatever
			// follows is preamble-free content or a label.
			cur = nil
			continue
		}
		cur.WriteString("\n" + line)
	}
	if !acceptablePreamble(preamble) {
		return "", "", instanceNone
	}
	if echo != nil && !echoes(echo.String(), instruction) {
		return "", "", instanceNone
	}
	if out == nil {
		return "", "", instanceNone
	}
	if in != nil {
		input = trimSpace(dropOpenFence(trimSpace(in.String())))
		if isNoInput(input) {
			input = ""
		}
	}
	output = trimSpace(dropOpenFence(dropClosers(trimSpace(out.String()))))
	if output == "" {
		return input, "", instanceEmptyOutput
	}
	return input, output, instanceFound
}

// dropOpenFence removes a last line "```" that closes a code fence opened
// before the field (a chat model that wrapped its whole reply in a fence):
// one whose field holds an odd number of fence marks.
func dropOpenFence(s string) string {
	i := strings.LastIndexByte(s, '\n')
	if i < 0 || trimSpace(s[i+1:]) != "```" || strings.Count(s, "```")%2 == 0 {
		return s
	}
	return trimSpace(s[:i])
}

// acceptablePreamble reports whether the unlabelled lines before the first
// label can be skipped: none, or at most three lines of a chat model's
// lead-in ("Sure, here is an example:", "Example:").
func acceptablePreamble(lines []string) bool {
	var content []string
	for _, l := range lines {
		if l = trimSpace(l); l != "" {
			content = append(content, l)
		}
	}
	if len(content) == 0 {
		return true
	}
	if len(content) > 3 {
		return false
	}
	for _, l := range content {
		if !isPreambleLine(l) {
			return false
		}
	}
	return true
}

// echoes reports whether got, the content of a leading "instruction:" line,
// repeats want.
func echoes(got, want string) bool {
	norm := func(s string) string {
		s = strings.ToLower(collapseSpace(strings.ReplaceAll(s, DefaultStop, " ")))
		return strings.TrimRight(s, " .?!:;\"'")
	}
	w := norm(want)
	return w != "" && norm(got) == w
}
