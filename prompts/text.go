package prompts

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text helpers shared by the parsers. Every helper returns substrings of
// its argument (or pieces of them) so that the parsers never invent text.

// normalizeNewlines turns "\r\n" and lone "\r" into "\n".
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// cutAtMarker returns s up to the first stop marker.
func cutAtMarker(s string) string {
	before, _, _ := strings.Cut(s, DefaultStop)
	return before
}

// trimSpace trims Unicode white space.
func trimSpace(s string) string {
	return strings.TrimFunc(s, unicode.IsSpace)
}

// collapseSpace replaces every run of white space by one space and trims,
// as the reference's re.sub(r"\s+", " ", s).strip() does.
func collapseSpace(s string) string {
	if collapsed(s) {
		return s // most demonstrations already are: no copy
	}
	return strings.Join(strings.Fields(s), " ")
}

// collapsed reports whether s is ASCII with no white space but single
// spaces between words, so that collapseSpace would return it unchanged.
// It may report false for some such strings (any non-ASCII one).
func collapsed(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			return false
		case c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' '):
			return false
		}
	}
	return true
}

// cutAtBlankLine returns s up to its first blank line (a line holding only
// white space) that follows some content; leading blank lines are kept.
func cutAtBlankLine(s string) string {
	seen := false
	for start := 0; start < len(s); {
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		if trimSpace(s[start:end]) == "" {
			if seen {
				return s[:start]
			}
		} else {
			seen = true
		}
		start = end + 1
	}
	return s
}

// markdownChars are the markdown decoration characters stripped from the
// ends of a line: emphasis, headings, block quotes and code marks.
const markdownChars = "*_#>`~"

// stripMarkdownEdges removes markdown emphasis, heading and quote
// characters (and the spaces next to them) from both ends of s.
func stripMarkdownEdges(s string) string {
	return strings.Trim(trimSpace(strings.Trim(trimSpace(s), markdownChars)), markdownChars+" \t")
}

// quotePairs are the quotation marks stripped when they wrap a whole text.
var quotePairs = [][2]string{
	{`"`, `"`}, {"“", "”"}, {"'", "'"}, {"‘", "’"}, {"`", "`"}, {"«", "»"},
}

// unquote removes one pair of quotation marks wrapping the whole of s, if
// the opening mark does not occur again inside (so that `"a" and "b"` is
// kept whole).
func unquote(s string) string {
	for _, q := range quotePairs {
		if len(s) >= len(q[0])+len(q[1]) && strings.HasPrefix(s, q[0]) && strings.HasSuffix(s, q[1]) {
			inner := s[len(q[0]) : len(s)-len(q[1])]
			if strings.Contains(inner, q[0]) || strings.Contains(inner, q[1]) {
				return s
			}
			return trimSpace(inner)
		}
	}
	return s
}

// boilerplateLeadRE matches the opening of a chat model's preamble line
// ("Sure! Here is an example:", "Certainly.", "Here's a new task:"), after
// markdown has been stripped.
var boilerplateLeadRE = regexp.MustCompile(`(?i)^(?:sure|certainly|of course|okay|ok|absolutely|alright|all right|great|no problem|happy to help|here(?:'s|’s| is| are)|below (?:is|are)|this is|example|instance|sample|the (?:example|instance))\b`)

// interjectionRE matches a leading interjection sentence ("Sure! ",
// "Certainly. ") that precedes the real content on the same line.
var interjectionRE = regexp.MustCompile(`(?i)^(?:sure|certainly|of course|absolutely|okay|ok|alright|great)(?:,? (?:here you go|no problem|happy to help))?[!.]\s+`)

// closerRE matches the opening of a chat model's closing remark ("I hope
// this helps", "Let me know if ...", "Note: ...").
var closerRE = regexp.MustCompile(`(?i)^(?:i hope|hope this|let me know|feel free|is there anything|if you (?:need|would like|'d like|want)|would you like|this example|in this example|note:|please note)`)

// isPreambleLine reports whether line (trimmed) is a chat model's
// boilerplate lead-in rather than content: it starts with a boilerplate
// phrase and ends a sentence or introduces what follows, or it is a short
// label line such as "Example:".
func isPreambleLine(line string) bool {
	l := stripMarkdownEdges(line)
	if l == "" {
		return true
	}
	if boilerplateLeadRE.MatchString(l) {
		return strings.HasSuffix(l, ":") || strings.HasSuffix(l, "!") || strings.HasSuffix(l, ".") || len(strings.Fields(l)) <= 3
	}
	return false
}

// dropClosers removes trailing paragraphs of s (separated by blank lines)
// that are a chat model's closing remarks, keeping at least the first
// paragraph.
func dropClosers(s string) string {
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	starts := paragraphStarts(s)
	for len(starts) > 1 {
		last := starts[len(starts)-1]
		if !closerRE.MatchString(stripMarkdownEdges(s[last:])) {
			break
		}
		s = strings.TrimRightFunc(s[:last], unicode.IsSpace)
		starts = starts[:len(starts)-1]
	}
	return s
}

// paragraphStarts returns the offsets where the paragraphs of s begin: the
// start of s, and every line that follows a blank line and has content.
func paragraphStarts(s string) []int {
	starts := []int{0}
	blank, seen := false, false
	for start := 0; start < len(s); {
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		if trimSpace(s[start:end]) == "" {
			blank = true
		} else {
			if blank && seen {
				starts = append(starts, start)
			}
			blank, seen = false, true
		}
		start = end + 1
	}
	return starts
}
