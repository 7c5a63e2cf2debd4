package filter

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Tokenize splits s into Rouge tokens exactly as rouge_score's default
// tokenizer does without stemming: lowercase (as Python's str.lower), replace
// every run of characters outside [a-z0-9] with a space, split on white
// space. The tokens are substrings of one shared string.
func Tokenize(s string) []string {
	return AppendTokens(nil, s)
}

// AppendTokens appends the tokens of s (see Tokenize) to dst and returns the
// extended slice.
func AppendTokens(dst []string, s string) []string {
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				buf = append(buf, c)
			case 'A' <= c && c <= 'Z':
				buf = append(buf, c+('a'-'A'))
			default:
				buf = append(buf, ' ')
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		buf = appendLowerRune(buf, r)
	}
	return splitSpaces(dst, string(buf))
}

// appendLowerRune appends the part of Python's lowercase of r that survives
// the [a-z0-9] filter, with a space for everything else.
func appendLowerRune(buf []byte, r rune) []byte {
	// Python's full case mapping turns U+0130 (capital I with dot above)
	// into "i" followed by U+0307, a combining dot that splits the token.
	// Go's simple mapping gives a bare "i".
	if r == '\u0130' {
		return append(buf, 'i', ' ')
	}
	if l := unicode.ToLower(r); l < utf8.RuneSelf && ('a' <= l && l <= 'z' || '0' <= l && l <= '9') {
		// For example U+212A KELVIN SIGN lowercases to ASCII 'k'.
		return append(buf, byte(l))
	}
	return append(buf, ' ')
}

// splitSpaces appends the space-separated fields of s to dst, growing it
// once.
func splitSpaces(dst []string, s string) []string {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && (i == 0 || s[i-1] == ' ') {
			n++
		}
	}
	dst = slices.Grow(dst, n)
	start := -1
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

// Score is a precision, recall and F-measure triple, as rouge_score reports
// it. The prediction is the first text passed to a scoring function and the
// target the second: precision is relative to the prediction's length,
// recall to the target's.
type Score struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F         float64 `json:"f"`
}

// scoreFromOverlap builds a Score from a match count and the two lengths
// with rouge_score's arithmetic, so that the float bits agree: F is
// 2·p·r/(p+r), not 2·m/(a+b). Empty inputs score zero.
func scoreFromOverlap(match, predLen, targetLen int) Score {
	if predLen == 0 || targetLen == 0 {
		return Score{}
	}
	p := float64(match) / float64(predLen)
	r := float64(match) / float64(targetLen)
	return Score{Precision: p, Recall: r, F: fmeasure(p, r)}
}

// fmeasure is rouge_score's scoring.fmeasure.
func fmeasure(p, r float64) float64 {
	if p+r > 0 {
		return 2 * p * r / (p + r)
	}
	return 0
}
