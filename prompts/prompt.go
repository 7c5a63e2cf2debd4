package prompts

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

// Style selects how a prompt is rendered for a model. Any value other than
// StyleChat, including the zero value, renders as StyleCompletion.
type Style string

const (
	// StyleCompletion renders a prompt as raw text that a base model
	// continues (the method's original format).
	StyleCompletion Style = "completion"
	// StyleChat renders a prompt as system and user messages for
	// instruction-tuned models and hosted chat APIs.
	StyleChat Style = "chat"
)

// ParseStyle returns the Style named by s ("completion" or "chat", case
// and surrounding white space ignored), or an error naming the valid values.
func ParseStyle(s string) (Style, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case string(StyleCompletion):
		return StyleCompletion, nil
	case string(StyleChat):
		return StyleChat, nil
	}
	return "", fmt.Errorf("unknown prompt style %q (want %q or %q)", s, StyleCompletion, StyleChat)
}

// Message is one chat message. Role is "system", "user" or "assistant".
// The package does not import llm; the pipeline converts messages to the
// client's type.
type Message struct {
	Role    string
	Content string
}

// Prompt is a rendered prompt, a plain value the caller owns. Text is set
// for StyleCompletion and Messages for StyleChat; Stop is always set and
// should be passed to the model as its stop sequences. The parsers never rely on the stops being
// honoured: they cut the reply at the same places themselves.
type Prompt struct {
	Text     string
	Messages []Message
	Stop     []string
}

// DefaultStop is the method's stop marker. It ends every demonstration in
// the few-shot prompts, so a base model that follows the pattern writes it
// after one instruction or one instance.
const DefaultStop = "|EoS|"

// instanceStops are the stop sequences of the instance prompts: the marker,
// and a new "instruction:" line, which begins another instruction's
// instance. Deliberately not a blank line (the reference stops at "\n\n"):
// inputs and outputs legitimately contain blank lines (paragraphs, code,
// dialogues), and a model that writes "output:\n\n" first would be cut to
// nothing. ParseInstance cuts at the same places, so a model that ignores
// stops is still parsed safely.
func instanceStops() []string {
	return []string{DefaultStop, "\ninstruction:", "\nInstruction:"}
}

// Role names used in Messages.
const (
	roleSystem = "system"
	roleUser   = "user"
)

//go:embed templates
var templateFS embed.FS

// templates holds every *.tmpl file under templates/, each under its base
// name. It is read-only after initialisation and safe for concurrent use.
var templates = template.Must(template.New("prompts").
	Funcs(template.FuncMap{"field": fieldText}).
	ParseFS(templateFS, "templates/*.tmpl"))

// render executes the named embedded template. The templates and their data
// are fixed by this package and covered by golden tests, so an execution
// error is a programming error.
func render(name string, data any) string {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		panic(fmt.Sprintf("prompts: template %s: %v", name, err))
	}
	return b.String()
}

// fieldText formats a labelled field's content for a demonstration block:
// single-line content follows the label on the same line, multi-line
// content starts on the next line.
func fieldText(s string) string {
	if strings.Contains(s, "\n") {
		return "\n" + s
	}
	return " " + s
}

// chat builds a system + user chat prompt.
func chat(system, user string, stop []string) Prompt {
	return Prompt{
		Messages: []Message{
			{Role: roleSystem, Content: strings.TrimSpace(system)},
			{Role: roleUser, Content: strings.TrimSpace(user)},
		},
		Stop: stop,
	}
}
