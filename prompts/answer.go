package prompts

import (
	"regexp"
	"strings"
)

// answerData is what the answer templates are executed with.
type answerData struct {
	Instruction string
	Input       string
}

// AnswerPrompt renders the stage-3 zero-shot prompt that asks an ensemble
// model to carry out instruction on input.
//
// StyleCompletion is exactly what the method sends: the trimmed
// instruction, "\n", and the trimmed input. For a type-B task the input is
// empty and the prompt is the instruction followed by "\n", as in the
// reference. StyleChat is a system message asking for the answer only and
// a user message holding the instruction and, after a blank line, the
// input.
//
// Stop is the marker only. The reference also stops at a blank line; here
// ParseAnswer cuts a completion reply at its first blank line after some
// content instead, because a base model that begins its continuation with
// a blank line would otherwise be stopped before it says anything.
func AnswerPrompt(style Style, instruction, input string) Prompt {
	data := answerData{Instruction: trimSpace(instruction), Input: trimSpace(input)}
	stop := []string{DefaultStop}
	if style == StyleChat {
		return chat(render("answer.chat.system.tmpl", data), render("answer.chat.user.tmpl", data), stop)
	}
	return Prompt{Text: render("answer.completion.tmpl", data), Stop: stop}
}

// answerLabelRE matches a label a model puts before its answer ("Answer:",
// "**Output:**", "Response:").
var answerLabelRE = regexp.MustCompile(`(?i)^(?:\*\*|__)?(?:answer|output|response)[ \t]*(?:\*\*|__)?[ \t]*:[ \t]*(?:\*\*|__)?`)

// ParseAnswer cleans an ensemble model's reply to AnswerPrompt: it cuts at
// the stop marker, drops a leading "Answer:" / "Output:" / "Response:"
// label and trims. For StyleCompletion it then keeps the text up to the
// first blank line after some content (the reference's blank-line stop).
// For StyleChat it drops a chat model's boilerplate only where it is
// clearly boilerplate: a first line that merely introduces the answer
// ("Sure! Here's a haiku about autumn:") when more follows, a leading
// interjection ("Certainly! "), and closing paragraphs such as "Let me know
// if you need anything else." The result is a trimmed piece of the reply:
// nothing is invented. It may be empty.
func ParseAnswer(reply string, style Style) string {
	s := trimSpace(cutAtMarker(normalizeNewlines(reply)))
	if style == StyleChat {
		s = dropAnswerPreamble(s)
		s = trimSpace(dropClosers(s))
	}
	if loc := answerLabelRE.FindStringIndex(s); loc != nil {
		s = trimSpace(s[loc[1]:])
	}
	if style != StyleChat {
		s = trimSpace(cutAtBlankLine(s))
	}
	return s
}

// dropAnswerPreamble removes a chat model's lead-in from s (trimmed): a
// first line that only introduces what follows, or an interjection at the
// start of the first line, as long as some content remains.
func dropAnswerPreamble(s string) string {
	first, rest, found := strings.Cut(s, "\n")
	l := stripMarkdownEdges(first)
	if found && trimSpace(rest) != "" && (onlyInterjectionRE.MatchString(l) ||
		(strings.HasSuffix(l, ":") && (boilerplateLeadRE.MatchString(l) || hereIsRE.MatchString(l)))) {
		return trimSpace(rest)
	}
	if loc := interjectionRE.FindStringIndex(s); loc != nil && trimSpace(s[loc[1]:]) != "" {
		return trimSpace(s[loc[1]:])
	}
	return s
}
