package report

import (
	_ "embed"
	"strings"
	"sync"
	"unicode"
)

//go:embed verbs.txt
var verbsFile string

// Pseudo-verbs LeadingVerb returns for instructions it finds no listed
// verb in.
const (
	// VerbQuestion marks an instruction phrased as a question ("What is
	// the capital of France?").
	VerbQuestion = "(question)"
	// VerbNone marks an instruction with no listed verb near its start.
	VerbNone = "(none)"
)

// verbSet parses the embedded verb list once; it is read-only afterwards.
var verbSet = sync.OnceValue(func() map[string]bool {
	set := map[string]bool{}
	for line := range strings.Lines(verbsFile) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
})

// openers start an introductory clause that ends at the first comma
// ("Given a list of numbers, find ...").
var openers = map[string]bool{
	"given": true, "for": true, "in": true, "using": true, "based": true, "from": true,
	"if": true, "after": true, "with": true, "as": true, "when": true, "without": true,
}

// requestPrefixes are the polite or framing phrases skipped before the
// verb, longest first.
var requestPrefixes = [][]string{
	{"i", "would", "like", "you", "to"}, {"i", "want", "you", "to"}, {"i", "need", "you", "to"},
	{"i", "d", "like", "you", "to"}, {"your", "task", "is", "to"}, {"the", "task", "is", "to"},
	{"you", "need", "to"}, {"you", "should"}, {"you", "must"}, {"try", "to"}, {"help", "me"},
	{"let", "s"}, {"let", "us"}, {"can", "you"}, {"could", "you"}, {"would", "you"}, {"will", "you"},
	{"please"}, {"kindly"}, {"now"}, {"then"}, {"also"}, {"just"}, {"simply"}, {"briefly"},
	{"carefully"}, {"to"},
}

// questionWords start a question.
var questionWords = map[string]bool{
	"what": true, "which": true, "who": true, "whom": true, "whose": true, "why": true, "how": true,
	"when": true, "where": true, "is": true, "are": true, "was": true, "were": true, "do": true,
	"does": true, "did": true, "can": true, "could": true, "should": true, "would": true,
	"will": true, "has": true, "have": true,
}

// verbWindow is how many words after the skipped prefixes may hold the
// verb ("Then briefly explain" still finds "explain").
const verbWindow = 3

// LeadingVerb returns the verb an instruction opens with, by a heuristic
// that stands in for the dependency parse of the Self-Instruct paper (the
// root verb of the instruction): the instruction is lowercased and split
// into words (runs of letters); an introductory clause opened by "Given",
// "For", "In", "Using"… is skipped up to its comma; polite and framing
// phrases ("Please", "Can you", "I want you to", "Your task is to"…) are
// skipped; then the first of the next three words that is in the embedded
// verb list (verbs.txt) is the verb. An instruction that instead opens
// with a question word or an auxiliary ("What", "How", "Is"…) gives
// VerbQuestion; one with no listed verb gives VerbNone. It is safe for
// concurrent use.
func LeadingVerb(instruction string) string {
	words, comma := leadingWords(instruction, 24)
	if len(words) == 0 {
		return VerbNone
	}
	if openers[words[0]] && comma > 0 && comma < len(words) {
		words = words[comma:]
	}
	words = skipPrefixes(words)
	if len(words) == 0 {
		return VerbNone
	}
	verbs := verbSet()
	if verbs[words[0]] {
		return words[0]
	}
	if questionWords[words[0]] {
		return VerbQuestion
	}
	for _, w := range words[1:min(len(words), verbWindow)] {
		if verbs[w] {
			return w
		}
	}
	return VerbNone
}

// leadingWords returns up to n lowercased words of s, and the number of
// words before the first comma (0 if none).
func leadingWords(s string, n int) (words []string, comma int) {
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for _, r := range s {
		if len(words) >= n {
			break
		}
		switch {
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		case r == ',' && comma == 0:
			flush()
			comma = len(words)
		default:
			flush()
		}
	}
	flush()
	return words, comma
}

func skipPrefixes(words []string) []string {
	for {
		skipped := false
		for _, p := range requestPrefixes {
			if hasPrefix(words, p) {
				words = words[len(p):]
				skipped = true
				break
			}
		}
		if !skipped {
			return words
		}
	}
}

func hasPrefix(words, p []string) bool {
	if len(words) < len(p) {
		return false
	}
	for i := range p {
		if words[i] != p[i] {
			return false
		}
	}
	return true
}
