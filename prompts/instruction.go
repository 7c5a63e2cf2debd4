package prompts

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/ensinstruct/ensinstruct/seeds"
)

// instructionDemo is one numbered demonstration of the instruction prompt.
type instructionDemo struct {
	N    string
	Text string
}

// instructionData is what the instruction templates are executed with.
type instructionData struct {
	TypeA bool
	Demos []instructionDemo
	Next  string
	Stop  string
}

// InstructionPrompt renders the stage-1 prompt that asks for one new
// instruction of type typ, showing demos (instruction texts, in the order
// given: the caller samples and shuffles seeds and accepted machine
// instructions). Each demo is cleaned as the reference does: stop markers
// removed, white space collapsed, trailing colons dropped; demos that end up
// empty are skipped.
//
// StyleCompletion gives a header line, then "1. <demo> |EoS|" lines, and
// ends with the next number ("k+1."), so a base model continues the list.
// Stop holds the marker and "\n<k+2>." (the model starting yet another
// item). StyleChat gives a system message stating the kind of task wanted
// and a user message listing the demos and asking for exactly one new,
// different task, with the task only as the reply; Stop holds the marker.
func InstructionPrompt(style Style, typ seeds.Type, demos []string) Prompt {
	data := instructionData{TypeA: typ == seeds.TypeA, Stop: DefaultStop}
	for _, d := range demos {
		d = strings.TrimRight(collapseSpace(strings.ReplaceAll(d, DefaultStop, " ")), ":")
		d = trimSpace(d)
		if d == "" {
			continue
		}
		data.Demos = append(data.Demos, instructionDemo{N: strconv.Itoa(len(data.Demos) + 1), Text: d})
	}
	next := len(data.Demos) + 1
	data.Next = strconv.Itoa(next)
	if style == StyleChat {
		return chat(renderInstruction("instruction.chat.system.tmpl", data), renderInstruction("instruction.chat.user.tmpl", data), []string{DefaultStop})
	}
	return Prompt{
		Text: renderInstruction("instruction.completion.tmpl", data),
		Stop: []string{DefaultStop, "\n" + strconv.Itoa(next+1) + "."},
	}
}

// nextItemRE matches the start of a further numbered item ("\n26. ",
// "\n26 . "), where a completion reply that ignored its stops carries on.
var nextItemRE = regexp.MustCompile(`\n[ \t]*\d+[ \t]?[.)](?:\s|$)`)

// instructionLabelRE matches a label that a chat model puts before the task
// ("Task:", "New instruction:", "Task 25:", "Here is a new task:"),
// possibly after an interjection ("Sure! Here's one:").
var instructionLabelRE = regexp.MustCompile(`(?i)^(?:(?:sure|certainly|of course|okay|ok|absolutely|alright|great)[!,.]?\s*)?(?:(?:here(?:'s|’s| is)|below is)\s+(?:(?:a|an|one|the|my|your)\s+)?(?:(?:new|different|novel|fresh|possible|brand[- ]new)\s+)*(?:task|instruction|one|example)(?:\s+(?:of the same kind|for you|that (?:needs|requires) (?:an |no )?input))?|(?:(?:new|different|novel)\s+)?(?:task|instruction)(?:\s*#?\d+)?)\s*:\s*`)

// listMarkerRE matches a list marker at the start of a line: "25.", "25)",
// "-", "*", "•".
var listMarkerRE = regexp.MustCompile(`^(?:\d+[ \t]?[.)]|[-*•])[ \t]+`)

// stopLabelRE matches a line that starts something other than the task in
// a chat reply: an input, output or answer, an example or an explanation.
var stopLabelRE = regexp.MustCompile(`(?i)^(?:input|output|answer|response|example(?: input| output)?|explanation|note|solution)\s*:`)

// ParseInstruction extracts the one new instruction from a model's reply to
// InstructionPrompt, with white space collapsed to single spaces (an
// instruction is one line in every later prompt). It reports false when
// nothing usable is left.
//
// For StyleCompletion the instruction is the text up to the stop marker,
// the next numbered item or the first blank line. For StyleChat it also
// drops what chat models wrap around the task: preamble lines ("Sure! Here
// is a new task:"), labels ("Task:", "**New instruction:**"), list
// numbering, markdown emphasis and wrapping quotes; it keeps the first
// paragraph of what remains and stops at a line labelled "Input:",
// "Output:", "Example:" and the like. The result is always a piece of the
// reply: nothing is invented.
func ParseInstruction(reply string, style Style) (string, bool) {
	s := cutAtMarker(normalizeNewlines(reply))
	if loc := nextItemRE.FindStringIndex(s); loc != nil {
		s = s[:loc[0]]
	}
	if style == StyleChat {
		s = chatInstruction(s)
	} else {
		s = cutAtBlankLine(s)
	}
	s = collapseSpace(s)
	if s == "" {
		return "", false
	}
	return s, true
}

// chatInstruction finds the task in a chat reply (already cut at the
// marker): the first content line after any preamble, from where its label
// and decoration end, continued by the following lines of its paragraph.
// Decoration at the end (markdown, quotes) is removed from the whole, so
// the result is one piece of the reply.
func chatInstruction(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for _, line := range lines {
		if len(out) == 0 {
			if trimSpace(line) == "" {
				continue
			}
			off := instructionStart(line)
			if off < 0 || trimSpace(line[off:]) == "" {
				continue // the line was only a preamble or a label
			}
			out = append(out, line[off:])
			continue
		}
		l := trimSpace(line)
		if l == "" || stopLabelRE.MatchString(stripMarkdownEdges(l)) || listMarkerRE.MatchString(l) {
			break
		}
		out = append(out, line)
	}
	text := strings.Join(out, "\n")
	for {
		before := text
		text = unquote(stripMarkdownEdges(text))
		if text == before {
			return text
		}
	}
}

// instructionStart returns the offset in line (the first content line of a
// chat reply) where the task begins, after decoration, list numbering,
// labels and interjections ("1. **Task:** \"..."), or -1 when the line is
// only a preamble ("Sure! Here is a new task:").
func instructionStart(line string) int {
	off := 0
	for range 6 { // decorations nest
		rest := line[off:]
		l := strings.TrimLeft(rest, markdownChars+" \t")
		if loc := listMarkerRE.FindStringIndex(l); loc != nil {
			l = l[loc[1]:]
		}
		if isInstructionPreamble(stripMarkdownEdges(l)) {
			return -1
		}
		if loc := instructionLabelRE.FindStringIndex(l); loc != nil {
			l = l[loc[1]:]
		}
		if loc := interjectionRE.FindStringIndex(l); loc != nil {
			l = l[loc[1]:]
		}
		l = strings.TrimLeft(l, markdownChars+" \t")
		off += len(rest) - len(l)
		if len(l) == len(rest) {
			break
		}
	}
	return off
}

// onlyInterjectionRE matches a line that is nothing but an interjection.
var onlyInterjectionRE = regexp.MustCompile(`(?i)^(?:sure|certainly|of course|absolutely|okay|ok|alright|great|no problem)(?:,? (?:here you go|no problem|happy to help))?[!.]*$`)

// bareLabelRE matches a label line with nothing after it ("New task",
// "Task 3:", "Instruction:"), as a heading or on its own.
var bareLabelRE = regexp.MustCompile(`(?i)^(?:(?:new|different|novel)\s+)?(?:task|instruction)(?:\s*#?\d+)?\s*:?$`)

// hereIsRE matches the start of a "Here is ..." sentence, after an optional
// interjection.
var hereIsRE = regexp.MustCompile(`(?i)^(?:(?:sure|certainly|of course|okay|ok|absolutely|alright|great)[!,.]?\s*)?(?:here(?:'s|’s| is| are)|below (?:is|are))\b`)

// isInstructionPreamble reports whether l (a stripped line of a chat reply)
// is only a lead-in to the task: an interjection ("Sure!"), a bare label
// ("## New task"), a boilerplate
// line introducing what follows ("Here's one I came up with:"), or a short
// single "Here is ..." sentence ("Here is a new task.").
func isInstructionPreamble(l string) bool {
	switch {
	case onlyInterjectionRE.MatchString(l), bareLabelRE.MatchString(l):
		return true
	case strings.HasSuffix(l, ":") && (boilerplateLeadRE.MatchString(l) || hereIsRE.MatchString(l)):
		return instructionLabelRE.FindString(l) == l || !strings.Contains(strings.TrimSuffix(l, ":"), ":")
	case hereIsRE.MatchString(l) && (strings.HasSuffix(l, ".") || strings.HasSuffix(l, "!")):
		inner := strings.TrimRight(l, ".!")
		return !strings.ContainsAny(hereIsRE.ReplaceAllString(inner, ""), ".?!:;") && len(strings.Fields(l)) <= 12
	}
	return false
}
