package prompts

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// A listFrame is an instruction template rendered once with placeholder
// demonstrations and cut into the literal text around them, so that a
// prompt is rendered by joining strings instead of executing the
// template for every request. The template stays the one source of the
// wording: a frame is checked against it when it is made.
//
// For k ≥ 1 demonstrations a list template renders as head, then unit for
// each demonstration but the last, then last for the last one (which
// holds whatever follows the list, the next number among it). A template
// that shows no demonstrations is all head, with no unit.
type listFrame struct {
	head string
	unit []piece
	last []piece
}

// A piece is literal text followed by a slot (0 for none).
type piece struct {
	lit  string
	slot byte
}

// The placeholders a frame is rendered with. They cannot occur in the
// templates' own text.
const (
	slotN    = "\x00n\x00"
	slotText = "\x00t\x00"
	slotNext = "\x00x\x00"
)

// newListFrame makes the frame of the named instruction template for a
// task type, checking it against the template; a template the frame
// cannot reproduce is a programming error.
func newListFrame(name string, typeA bool) *listFrame {
	demo := instructionDemo{N: slotN, Text: slotText}
	s := render(name, instructionData{TypeA: typeA, Demos: []instructionDemo{demo, demo}, Next: slotNext, Stop: DefaultStop})
	f := &listFrame{}
	i1 := strings.Index(s, slotN)
	if i1 < 0 {
		f.head = s
		if strings.Contains(s, "\x00") {
			panic(fmt.Sprintf("prompts: template %s: placeholders outside a demonstration", name))
		}
	} else {
		i2 := i1 + len(slotN) + strings.Index(s[i1+len(slotN):], slotN)
		f.head = s[:i1]
		f.unit, f.last = pieces(s[i1:i2]), pieces(s[i2:])
	}
	// The frame must render what the template does, for any number of
	// demonstrations.
	for k := range 4 {
		d := instructionData{TypeA: typeA, Stop: DefaultStop, Next: strconv.Itoa(k + 1)}
		for i := range k {
			d.Demos = append(d.Demos, instructionDemo{N: strconv.Itoa(i + 1), Text: "task " + strconv.Itoa(i)})
		}
		if want := render(name, d); f.render(name, d) != want {
			panic(fmt.Sprintf("prompts: template %s: its frame renders %d demonstrations differently", name, k))
		}
	}
	return f
}

// pieces cuts s at the placeholders.
func pieces(s string) []piece {
	var ps []piece
	for s != "" {
		i := strings.IndexByte(s, 0)
		if i < 0 || i+2 >= len(s) || s[i+2] != 0 {
			ps = append(ps, piece{lit: s})
			break
		}
		ps = append(ps, piece{lit: s[:i], slot: s[i+1]})
		s = s[i+3:]
	}
	return ps
}

// render renders d as the template name would. Without demonstrations a
// list template is executed itself (its text around an empty list may
// differ).
func (f *listFrame) render(name string, d instructionData) string {
	if f.unit == nil {
		return f.head
	}
	if len(d.Demos) == 0 {
		return render(name, d)
	}
	n := len(f.head) + 16*len(d.Demos)
	for _, x := range d.Demos {
		n += len(x.Text)
	}
	for _, p := range f.unit {
		n += len(p.lit) * len(d.Demos)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(f.head)
	for i, x := range d.Demos {
		ps := f.unit
		if i == len(d.Demos)-1 {
			ps = f.last
		}
		for _, p := range ps {
			b.WriteString(p.lit)
			switch p.slot {
			case 'n':
				b.WriteString(x.N)
			case 't':
				b.WriteString(x.Text)
			case 'x':
				b.WriteString(d.Next)
			}
		}
	}
	return b.String()
}

// instructionTemplates are the instruction prompt's templates.
var instructionTemplates = [...]string{"instruction.completion.tmpl", "instruction.chat.system.tmpl", "instruction.chat.user.tmpl"}

// instructionFrames holds the frame of each instruction template for each
// type, keyed by name and then typeA.
var instructionFrames = sync.OnceValue(func() map[string][2]*listFrame {
	m := make(map[string][2]*listFrame, len(instructionTemplates))
	for _, name := range instructionTemplates {
		m[name] = [2]*listFrame{newListFrame(name, false), newListFrame(name, true)}
	}
	return m
})

// renderInstruction renders the named instruction template (one of
// instructionTemplates) with d.
func renderInstruction(name string, d instructionData) string {
	fs := instructionFrames()[name]
	if d.TypeA {
		return fs[1].render(name, d)
	}
	return fs[0].render(name, d)
}
