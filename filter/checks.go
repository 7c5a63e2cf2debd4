package filter

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// InstructionChecks are the reference's post-filters on a generated
// instruction. The zero value drops only empty instructions;
// DefaultInstructionChecks returns the reference's settings. Build one with
// NewInstructionChecks (a struct literal works but recompiles the blacklist
// on every call). Check never modifies the value, so it is safe for
// concurrent use.
type InstructionChecks struct {
	// MinWords drops instructions with at most this many words.
	MinWords int
	// MaxWords drops instructions with more than this many words; 0 means
	// no limit.
	MaxWords int
	// Blacklist drops instructions containing any of these words or
	// phrases as whole words, ignoring case.
	Blacklist []string
	// BadPrefixes drops instructions that start with any of these strings
	// (case-sensitive, as the reference does).
	BadPrefixes []string
	// ASCIIStart drops instructions whose first character is ASCII
	// punctuation or not ASCII.
	ASCIIStart bool

	blacklistRE *regexp.Regexp
}

// DefaultBlacklist returns the reference's list of words that mark tasks a
// text model cannot do.
func DefaultBlacklist() []string {
	return []string{
		"image", "images", "graph", "graphs", "picture", "pictures",
		"file", "files", "map", "maps", "draw", "plot", "go to",
	}
}

// DefaultInstructionChecks returns the reference's checks: more than 3 and
// at most 150 words, no blacklisted word, not starting with "Write a
// program", first character ASCII and not punctuation.
func DefaultInstructionChecks() *InstructionChecks {
	c := &InstructionChecks{
		MinWords:    3,
		MaxWords:    150,
		Blacklist:   DefaultBlacklist(),
		BadPrefixes: []string{"Write a program"},
		ASCIIStart:  true,
	}
	c.compile()
	return c
}

// NewInstructionChecks returns checks with the given settings, ready to use.
func NewInstructionChecks(minWords, maxWords int, blacklist, badPrefixes []string, asciiStart bool) *InstructionChecks {
	c := &InstructionChecks{
		MinWords:    minWords,
		MaxWords:    maxWords,
		Blacklist:   blacklist,
		BadPrefixes: badPrefixes,
		ASCIIStart:  asciiStart,
	}
	c.compile()
	return c
}

// compile builds the blacklist matcher. Python's \b (which the reference
// uses) is a boundary between a Unicode word character and anything else;
// Go's \b is ASCII-only, so the boundaries are spelled out.
func (c *InstructionChecks) compile() {
	if len(c.Blacklist) == 0 {
		c.blacklistRE = nil
		return
	}
	alts := make([]string, len(c.Blacklist))
	for i, w := range c.Blacklist {
		alts[i] = regexp.QuoteMeta(w)
	}
	c.blacklistRE = regexp.MustCompile(`(?i)(?:^|[^\p{L}\p{N}_])(?:` + strings.Join(alts, "|") + `)(?:$|[^\p{L}\p{N}_])`)
}

// Check returns "" when instr passes every check, or the reason for the
// first check it fails, in the reference's order: length, blacklist,
// prefix, first character.
func (c *InstructionChecks) Check(instr string) Reason {
	n := len(PyFields(instr))
	if n <= c.MinWords {
		return ReasonTooShort
	}
	if c.MaxWords > 0 && n > c.MaxWords {
		return ReasonTooLong
	}
	re := c.blacklistRE
	if re == nil && len(c.Blacklist) > 0 {
		// A struct literal: build the matcher for this call only, so that
		// Check never writes to c.
		tmp := *c
		tmp.compile()
		re = tmp.blacklistRE
	}
	if re != nil && re.MatchString(instr) {
		return ReasonBlacklisted
	}
	for _, p := range c.BadPrefixes {
		if strings.HasPrefix(instr, p) {
			return ReasonBadPrefix
		}
	}
	if c.ASCIIStart {
		r, _ := utf8.DecodeRuneInString(instr)
		if r >= utf8.RuneSelf || isASCIIPunct(byte(r)) {
			return ReasonBadFirstChar
		}
	}
	return ""
}

// isASCIIPunct reports whether c is in Python's string.punctuation.
func isASCIIPunct(c byte) bool {
	return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0
}

// isPySpace reports whether Python's str.split() splits on r. Besides
// Unicode white space it splits on the separators U+001C to U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// PyFields splits s around runs of white space exactly as Python's
// str.split() without arguments does.
func PyFields(s string) []string {
	return strings.FieldsFunc(s, isPySpace)
}
