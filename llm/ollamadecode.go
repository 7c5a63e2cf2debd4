package llm

import (
	"bytes"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The Ollama reply parser. A reply is one JSON object (or, streamed,
// several), and encoding/json spends most of its time on reflection and
// on growing its buffer: about 6 µs for a 1 KB reply. parseChunk reads
// the objects Ollama writes directly, as json.Unmarshal into ollamaChunk
// would, and declines anything outside that shape (FuzzParseChunk holds
// the two equal), which then goes to encoding/json as before.

// chunkKeys are the fields of ollamaChunk, as Unmarshal matches them.
var chunkKeys = []string{"response", "message", "done", "done_reason", "prompt_eval_count", "eval_count", "error"}

// replyBufs holds the buffers replies are read into; what a reply yields
// is copied out, so a buffer is reused as soon as its reply is parsed.
var replyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// parseChunk parses the JSON object at the start of b (after white space)
// into c and returns the bytes it took. ok is false when b does not start
// with an object in the shape Ollama writes (strings, integers, booleans
// and null, and a "message" object of strings) or holds anything
// encoding/json would read differently: an escaped surrogate, invalid
// UTF-8, a key matching a field only when case is ignored, an integer
// with a fraction or out of range, or invalid JSON. c is then partly
// filled and must be dropped.
func parseChunk(b []byte, c *ollamaChunk) (n int, ok bool) {
	p := chunkParser{b: b}
	if !p.object(func(key []byte) bool {
		switch string(key) {
		case "response":
			return p.str(&c.Response)
		case "done_reason":
			return p.str(&c.DoneReason)
		case "error":
			return p.str(&c.Error)
		case "done":
			return p.boolean(&c.Done)
		case "prompt_eval_count":
			return p.integer(&c.PromptEvalCount)
		case "eval_count":
			return p.integer(&c.EvalCount)
		case "message":
			if p.null() {
				return true
			}
			return p.object(func(key []byte) bool {
				if string(key) == "content" {
					return p.str(&c.Message.Content)
				}
				return !foldsTo(key, "content") && p.scalar()
			})
		}
		for _, k := range chunkKeys {
			if foldsTo(key, k) {
				return false // Unmarshal would fill k: leave it to encoding/json
			}
		}
		return p.scalar()
	}) {
		return 0, false
	}
	return p.i, true
}

// plainByte marks the bytes a JSON string holds as they are and that
// need no UTF-8 check: ASCII but for controls, the quote and backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// foldsTo reports whether key matches field name k when case is ignored,
// as Unmarshal matches a key no field has exactly. (A key with a non-ASCII
// letter that folds to an ASCII one, such as the Kelvin sign, is as long
// as k in letters but not in bytes: the length is not a shortcut.)
func foldsTo(key []byte, k string) bool {
	return utf8.RuneCount(key) == len(k) && bytes.EqualFold(key, []byte(k))
}

type chunkParser struct {
	b []byte
	i int
}

func (p *chunkParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c, taking
// it if so.
func (p *chunkParser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object parses {"key": value, ...}, calling member for each key with
// the parser at its value.
func (p *chunkParser) object(member func(key []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		key, ok := p.strBytes()
		if !ok || !p.next(':') || !member(key) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// literal takes word if it comes next.
func (p *chunkParser) literal(word string) bool {
	p.ws()
	if bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

func (p *chunkParser) null() bool { return p.literal("null") }

// str parses a string into *s (s nil: skips it); null leaves *s as it
// is, as Unmarshal does.
func (p *chunkParser) str(s *string) bool {
	if p.null() {
		return true
	}
	v, ok := p.strBytes()
	if ok && s != nil {
		*s = string(v)
	}
	return ok
}

// strBytes parses a string and returns its contents: a piece of p.b when
// it has no escapes.
func (p *chunkParser) strBytes() ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			for p.i < len(p.b) && plainByte[p.b[p.i]] {
				p.i++
			}
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false // Unmarshal writes U+FFFD for it
			}
			p.i += size
		}
	}
	return nil, false
}

// escaped finishes a string whose first escape is at p.i.
func (p *chunkParser) escaped(start int) ([]byte, bool) {
	out := append(make([]byte, 0, p.i-start+64), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return out, true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return nil, false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				v, ok := hex4(p.b[p.i:])
				if !ok || (v >= 0xD800 && v < 0xE000) {
					return nil, false // a surrogate: Unmarshal pairs them
				}
				out = utf8.AppendRune(out, v)
				p.i += 4
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf:
			run := p.i
			for p.i < len(p.b) && plainByte[p.b[p.i]] {
				p.i++
			}
			out = append(out, p.b[run:p.i]...)
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false
			}
			out = append(out, p.b[p.i:p.i+size]...)
			p.i += size
		}
	}
	return nil, false
}

func (p *chunkParser) boolean(v *bool) bool {
	switch {
	case p.literal("true"):
		*v = true
	case p.literal("false"):
		*v = false
	default:
		return p.null()
	}
	return true
}

// number takes a JSON number and returns its text.
func (p *chunkParser) number() ([]byte, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	n := digits()
	if n == 0 || (n > 1 && p.b[intStart] == '0') {
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

// integer parses an integer into *v; null leaves it.
func (p *chunkParser) integer(v *int) bool {
	if p.null() {
		return true
	}
	text, ok := p.number()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(text), 10, strconv.IntSize)
	if err != nil {
		return false // a fraction, an exponent or out of range: an error for Unmarshal
	}
	*v = int(n)
	return true
}

// scalar skips a string, number, boolean or null: the value of a field
// ollamaChunk does not have.
func (p *chunkParser) scalar() bool {
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	switch p.b[p.i] {
	case '"':
		return p.str(nil)
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.null()
	}
	_, ok := p.number()
	return ok
}
