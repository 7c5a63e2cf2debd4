package filter

import (
	"bytes"
	"regexp"
	"slices"
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
	// blacklistASCII holds the words lowercased when every one is
	// non-empty ASCII: then ASCII text is scanned without the regexp.
	blacklistASCII []string
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
	c.blacklistRE, c.blacklistASCII = nil, nil
	if len(c.Blacklist) == 0 {
		return
	}
	alts := make([]string, len(c.Blacklist))
	lower := make([]string, len(c.Blacklist))
	for i, w := range c.Blacklist {
		alts[i] = regexp.QuoteMeta(w)
		lower[i] = strings.ToLower(w)
	}
	c.blacklistRE = regexp.MustCompile(`(?i)(?:^|[^\p{L}\p{N}_])(?:` + strings.Join(alts, "|") + `)(?:$|[^\p{L}\p{N}_])`)
	if !slices.ContainsFunc(c.Blacklist, func(w string) bool { return w == "" || !isASCII(w) }) {
		c.blacklistASCII = lower
	}
}

// blacklisted reports whether the matcher of c (re, and the lowercased
// words) finds a blacklisted word in instr. Text and words all ASCII are
// scanned directly, with the same answer: there (?i) is ASCII case and a
// word character is a letter, a digit or '_'. Anything else goes to the
// regexp, whose Unicode case folding (K matches the Kelvin sign) the scan
// does not reproduce.
func blacklisted(re *regexp.Regexp, words []string, instr string) bool {
	if words == nil || !isASCII(instr) {
		return re.MatchString(instr)
	}
	var buf [512]byte
	lower := buf[:0]
	if len(instr) > len(buf) {
		lower = make([]byte, 0, len(instr))
	}
	for i := 0; i < len(instr); i++ {
		b := instr[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		lower = append(lower, b)
	}
	for _, w := range words {
		for from := 0; from+len(w) <= len(lower); {
			i := bytes.Index(lower[from:], []byte(w))
			if i < 0 {
				break
			}
			i += from
			end := i + len(w)
			if (i == 0 || !isLowerWordByte(lower[i-1])) && (end == len(lower) || !isLowerWordByte(lower[end])) {
				return true
			}
			from = i + 1
		}
	}
	return false
}

// isLowerWordByte reports whether b, of lowercased ASCII text, is a
// letter, a digit or '_'.
func isLowerWordByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '_'
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Check returns "" when instr passes every check, or the reason for the
// first check it fails, in the reference's order: length, blacklist,
// prefix, first character.
func (c *InstructionChecks) Check(instr string) Reason {
	n := pyFieldCount(instr)
	if n <= c.MinWords {
		return ReasonTooShort
	}
	if c.MaxWords > 0 && n > c.MaxWords {
		return ReasonTooLong
	}
	re, words := c.blacklistRE, c.blacklistASCII
	if re == nil && len(c.Blacklist) > 0 {
		// A struct literal: build the matcher for this call only, so that
		// Check never writes to c.
		tmp := *c
		tmp.compile()
		re, words = tmp.blacklistRE, tmp.blacklistASCII
	}
	if re != nil && blacklisted(re, words, instr) {
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

// pyFieldCount is len(PyFields(s)), without building the fields.
func pyFieldCount(s string) int {
	n := 0
	in := false
	for _, r := range s {
		if isPySpace(r) {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}

// hasPyField reports whether PyFields(s) is not empty.
func hasPyField(s string) bool {
	for _, r := range s {
		if !isPySpace(r) {
			return true
		}
	}
	return false
}
