package filter

import (
	"unicode"
	"unicode/utf8"
)

// This file implements the Porter stemmer as NLTK's PorterStemmer runs it in
// its default NLTK_EXTENSIONS mode, which is what rouge_score uses. The
// departures from Porter's 1980 paper that this mode makes, all reproduced
// here:
//
//   - a pool of irregular forms bypasses the algorithm (skies → sky,
//     dying → die, proceed → proceed, ...);
//   - words of one or two characters are returned lowercased, unstemmed;
//   - step 1a maps a four-letter "-ies" word to "-ie" (dies → die), and
//     step 1b maps "-ied" to "-ie" in four-letter words and to "-i" in
//     longer ones, with no further step 1b processing;
//   - condition *o also holds for a two-letter stem vowel+consonant;
//   - step 1c turns a final y into i only after a consonant that is not the
//     first letter (happy → happi, enjoy → enjoy, spy → spi);
//   - step 2 tries "-alli" → "-al" first and, when it applies, runs step 2
//     again; it uses "-bli" → "-ble" instead of "-abli" → "-able", and adds
//     "-fulli" → "-ful" and "-logi" → "-log" (the measure for "-logi" counts
//     the "l" as part of the stem).
//
// A suffix rule list is applied the NLTK way: the first rule whose suffix
// the word ends with decides, and when its condition fails the word is
// left unchanged, without trying later rules.
//
// The algorithm is written once over a slice of characters and instantiated
// for bytes (ASCII words, the case that matters for Rouge) and runes (any
// other text), so that non-ASCII input is measured in characters as Python
// does.

// porterIrregular looks word up in NLTK's pool of irregular forms: a word
// found there is mapped to its paradigm and not stemmed.
func porterIrregular[S string | []byte](word S) (string, bool) {
	switch string(word) {
	case "sky", "skies":
		return "sky", true
	case "dying":
		return "die", true
	case "lying":
		return "lie", true
	case "tying":
		return "tie", true
	case "news":
		return "news", true
	case "inning", "innings":
		return "inning", true
	case "outing", "outings":
		return "outing", true
	case "canning", "cannings":
		return "canning", true
	case "howe":
		return "howe", true
	case "proceed":
		return "proceed", true
	case "exceed":
		return "exceed", true
	case "succeed":
		return "succeed", true
	}
	return "", false
}

// porterStackWord is the longest word Stem handles without a heap buffer.
const porterStackWord = 64

// Stem returns the Porter stem of word exactly as NLTK's
// PorterStemmer().stem(word) computes it in the default NLTK_EXTENSIONS
// mode. Like NLTK it lowercases the word first, as Python's str.lower does,
// and works on characters, not bytes. Invalid UTF-8 is read as U+FFFD. For
// text outside ASCII, Python and Go may disagree on the case of characters
// that one of their Unicode versions lacks.
//
// When the stem is a prefix of word, the result shares word's memory.
// Stem is safe for concurrent use.
func Stem(word string) string {
	if p, ok := porterIrregular(word); ok {
		return p
	}
	upper := false
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c >= utf8.RuneSelf {
			return porterStemRunes(word)
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if len(word) <= 2 && !upper {
		return word
	}
	var stack [porterStackWord]byte
	var w []byte
	if len(word) <= len(stack) {
		w = stack[:len(word)]
	} else {
		w = make([]byte, len(word))
	}
	copy(w, word)
	if upper {
		for i, c := range w {
			if 'A' <= c && c <= 'Z' {
				w[i] = c + ('a' - 'A')
			}
		}
	}
	if len(w) > 2 {
		w = porterSteps(w)
	}
	if !upper && string(w) == word[:len(w)] {
		return word[:len(w)]
	}
	return string(w)
}

// appendStem appends the stem of word, which must be ASCII lowercase, to
// dst and returns the extended slice. word may share dst's memory.
func appendStem(dst, word []byte) []byte {
	if p, ok := porterIrregular(word); ok {
		return append(dst, p...)
	}
	n := len(dst)
	dst = append(dst, word...)
	if len(word) <= 2 {
		return dst
	}
	w := porterSteps(dst[n:])
	return dst[:n+len(w)]
}

// porterStemRunes stems a word that is not pure ASCII.
func porterStemRunes(word string) string {
	w := porterLowerRunes(word)
	if utf8.RuneCountInString(word) > 2 {
		w = porterSteps(w)
	}
	return string(w)
}

// porterLowerRunes returns the characters of Python's word.lower(): Go's
// simple lowercase mapping, plus the two rules of Python's full mapping that
// differ: U+0130 (capital I with dot above) becomes "i" and a combining dot,
// and a capital sigma at the end of a word becomes a final sigma.
func porterLowerRunes(word string) []rune {
	src := []rune(word)
	w := make([]rune, 0, len(src)+1)
	for i, r := range src {
		switch r {
		case '\u0130':
			w = append(w, 'i', '\u0307')
		case 'Σ':
			if porterFinalSigma(src, i) {
				w = append(w, 'ς')
			} else {
				w = append(w, 'σ')
			}
		default:
			w = append(w, unicode.ToLower(r))
		}
	}
	return w
}

// porterFinalSigma reports whether the capital sigma at s[i] ends a word in
// the sense of Unicode's Final_Sigma condition, as Python tests it: a cased
// letter comes before it and none after it, skipping case-ignorable
// characters both ways.
func porterFinalSigma(s []rune, i int) bool {
	j := i - 1
	for j >= 0 && porterCaseIgnorable(s[j]) {
		j--
	}
	if j < 0 || !porterCased(s[j]) {
		return false
	}
	j = i + 1
	for j < len(s) && porterCaseIgnorable(s[j]) {
		j++
	}
	return j == len(s) || !porterCased(s[j])
}

// porterCased is Unicode's Cased property.
func porterCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// porterCaseIgnorable is Unicode's Case_Ignorable property: marks, format
// characters, modifiers, and the word-internal punctuation of Word_Break
// MidLetter, MidNumLet and Single_Quote.
func porterCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '\u00B7', '\u0387', '\u055F', '\u05F4', '\u2018', '\u2019',
		'\u2024', '\u2027', '\uFE13', '\uFE52', '\uFE55', '\uFF07', '\uFF0E', '\uFF1A':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// porterChar is the character type the stemmer works on.
type porterChar interface{ byte | rune }

// porterSteps runs steps 1a to 5b on the lowercase word w in place and
// returns the stem, a prefix of w's memory.
func porterSteps[C porterChar](w []C) []C {
	w = porterStep1a(w)
	w = porterStep1b(w)
	w = porterStep1c(w)
	w = porterStep2(w)
	w = porterStep3(w)
	w = porterStep4(w)
	w = porterStep5a(w)
	return porterStep5b(w)
}

// porterIsVowel reports whether c is one of a, e, i, o, u.
func porterIsVowel[C porterChar](c C) bool {
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'
}

// porterIsCons reports whether w[i] is a consonant in Porter's sense: not a
// vowel, and not a y that follows a consonant.
func porterIsCons[C porterChar](w []C, i int) bool {
	j := i
	for j >= 0 && w[j] == 'y' {
		j--
	}
	if j == i {
		return !porterIsVowel(w[i])
	}
	// w[j+1:i+1] are y's; each flips the consonant status of the one
	// before it, and a y at the start of the word is a consonant.
	flips := i - j
	cons := true
	if j >= 0 {
		cons = !porterIsVowel(w[j])
	} else {
		flips--
	}
	if flips%2 == 1 {
		cons = !cons
	}
	return cons
}

// porterMeasure returns m, the number of vowel-consonant sequences in w.
func porterMeasure[C porterChar](w []C) int {
	m := 0
	prevCons := true
	for i, c := range w {
		var cons bool
		switch {
		case porterIsVowel(c):
			cons = false
		case c == 'y':
			cons = i == 0 || !prevCons
		default:
			cons = true
		}
		if cons && !prevCons {
			m++
		}
		prevCons = cons
	}
	return m
}

// porterHasVowel is condition *v*: w contains a vowel. A y is a vowel
// exactly when it follows a consonant, so the first y after the start of
// the word is one unless a vowel came before it.
func porterHasVowel[C porterChar](w []C) bool {
	for i, c := range w {
		if porterIsVowel(c) || c == 'y' && i > 0 {
			return true
		}
	}
	return false
}

// porterEndsDouble is condition *d: w ends with a double consonant.
func porterEndsDouble[C porterChar](w []C) bool {
	n := len(w)
	return n >= 2 && w[n-1] == w[n-2] && porterIsCons(w, n-1)
}

// porterEndsCVC is condition *o: w ends consonant-vowel-consonant and the
// last consonant is not w, x or y; NLTK also accepts a two-letter word
// vowel-consonant.
func porterEndsCVC[C porterChar](w []C) bool {
	n := len(w)
	if n == 2 {
		return !porterIsCons(w, 0) && porterIsCons(w, 1)
	}
	if n < 3 {
		return false
	}
	last := w[n-1]
	return last != 'w' && last != 'x' && last != 'y' &&
		porterIsCons(w, n-1) && !porterIsCons(w, n-2) && porterIsCons(w, n-3)
}

// porterHasSuffix reports whether w ends with the ASCII suffix.
func porterHasSuffix[C porterChar](w []C, suffix string) bool {
	off := len(w) - len(suffix)
	if off < 0 {
		return false
	}
	// Backwards: words differ from a candidate suffix mostly at the end.
	for i := len(suffix) - 1; i >= 0; i-- {
		if w[off+i] != C(suffix[i]) {
			return false
		}
	}
	return true
}

// porterReplace returns w with its last n characters replaced by repl. The
// replacement is never longer than n, so it fits in w's memory.
func porterReplace[C porterChar](w []C, n int, repl string) []C {
	w = w[:len(w)-n]
	for i := 0; i < len(repl); i++ {
		w = append(w, C(repl[i]))
	}
	return w
}

// porterRule is one suffix rule: suffix is replaced by repl when the stem
// left by removing it satisfies the step's measure condition.
type porterRule struct {
	suffix, repl string
}

// porterApply applies a step's rules to w. rules groups them by the letter
// fromEnd characters before the end of their suffix; the first rule of
// w's group whose suffix w ends with decides: when the stem's measure is
// greater than minMeasure the suffix is replaced, otherwise w is returned
// unchanged without trying further rules.
func porterApply[C porterChar](w []C, rules *[26][]porterRule, fromEnd, minMeasure int) []C {
	i := len(w) - 1 - fromEnd
	if i < 0 || w[i] < 'a' || w[i] > 'z' {
		return w
	}
	for _, r := range rules[w[i]-'a'] {
		if porterHasSuffix(w, r.suffix) {
			if porterMeasure(w[:len(w)-len(r.suffix)]) > minMeasure {
				return porterReplace(w, len(r.suffix), r.repl)
			}
			return w
		}
	}
	return w
}

// porterStep1a removes plural endings.
func porterStep1a[C porterChar](w []C) []C {
	n := len(w)
	if n == 0 || w[n-1] != 's' {
		return w
	}
	switch {
	case porterHasSuffix(w, "sses"):
		return w[:n-2]
	case porterHasSuffix(w, "ies"):
		if n == 4 {
			return w[:3] // dies → die
		}
		return w[:n-2]
	case porterHasSuffix(w, "ss"):
		return w
	}
	return w[:n-1]
}

// porterStep1b removes -ed and -ing.
func porterStep1b[C porterChar](w []C) []C {
	n := len(w)
	if n == 0 {
		return w
	}
	var stem []C
	switch w[n-1] {
	case 'd':
		switch {
		case porterHasSuffix(w, "ied"):
			if n == 4 {
				return w[:3] // died → die
			}
			return w[:n-2] // spied → spi
		case porterHasSuffix(w, "eed"):
			if porterMeasure(w[:n-3]) > 0 {
				return w[:n-1]
			}
			return w
		case porterHasSuffix(w, "ed") && porterHasVowel(w[:n-2]):
			stem = w[:n-2]
		default:
			return w
		}
	case 'g':
		if !porterHasSuffix(w, "ing") || !porterHasVowel(w[:n-3]) {
			return w
		}
		stem = w[:n-3]
	default:
		return w
	}
	switch {
	case porterHasSuffix(stem, "at"), porterHasSuffix(stem, "bl"), porterHasSuffix(stem, "iz"):
		return append(stem, 'e')
	case porterEndsDouble(stem):
		if last := stem[len(stem)-1]; last != 'l' && last != 's' && last != 'z' {
			return stem[:len(stem)-1]
		}
		return stem
	case porterMeasure(stem) == 1 && porterEndsCVC(stem):
		return append(stem, 'e')
	}
	return stem
}

// porterStep1c turns a final y into i after a consonant that is not the
// first letter.
func porterStep1c[C porterChar](w []C) []C {
	n := len(w)
	if n > 2 && w[n-1] == 'y' && porterIsCons(w, n-2) {
		w[n-1] = 'i'
	}
	return w
}

// porterStep2Rules holds the step 2 rules, grouped by the next-to-last
// letter of their suffix (all lowercase ASCII) and in NLTK's order within a
// group. Only suffixes with the same next-to-last letter can both match a
// word, so a group's order is all that matters.
var porterStep2Rules = [26][]porterRule{
	'a' - 'a': {{"ational", "ate"}, {"tional", "tion"}},
	'c' - 'a': {{"enci", "ence"}, {"anci", "ance"}},
	'e' - 'a': {{"izer", "ize"}},
	'l' - 'a': {{"bli", "ble"}, {"alli", "al"}, {"entli", "ent"}, {"eli", "e"}, {"ousli", "ous"}, {"fulli", "ful"}},
	'o' - 'a': {{"ization", "ize"}, {"ation", "ate"}, {"ator", "ate"}},
	's' - 'a': {{"alism", "al"}, {"iveness", "ive"}, {"fulness", "ful"}, {"ousness", "ous"}},
	't' - 'a': {{"aliti", "al"}, {"iviti", "ive"}, {"biliti", "ble"}},
}

// porterStep2 maps double suffixes to single ones when m > 0.
func porterStep2[C porterChar](w []C) []C {
	if porterHasSuffix(w, "alli") && porterMeasure(w[:len(w)-4]) > 0 {
		// -alli → -al, then step 2 again on the result (which no longer
		// ends in "alli" or "logi").
		w = w[:len(w)-2]
	}
	if porterHasSuffix(w, "logi") {
		// Last in NLTK's list, but no other step 2 suffix ends in
		// "gi". The "l" counts as part of the stem.
		if porterMeasure(w[:len(w)-3]) > 0 {
			return w[:len(w)-1]
		}
		return w
	}
	return porterApply(w, &porterStep2Rules, 1, 0)
}

// porterStep3Rules holds the step 3 rules grouped by their last letter.
var porterStep3Rules = [26][]porterRule{
	'e' - 'a': {{"icate", "ic"}, {"ative", ""}, {"alize", "al"}},
	'i' - 'a': {{"iciti", "ic"}},
	'l' - 'a': {{"ical", "ic"}, {"ful", ""}},
	's' - 'a': {{"ness", ""}},
}

// porterStep3 handles -ic-, -full, -ness and the like when m > 0.
func porterStep3[C porterChar](w []C) []C {
	return porterApply(w, &porterStep3Rules, 0, 0)
}

// porterStep4Rules holds the step 4 rules grouped by the next-to-last
// letter of their suffix. "-ion" is handled apart: see porterStep4.
var porterStep4Rules = [26][]porterRule{
	'a' - 'a': {{"al", ""}},
	'c' - 'a': {{"ance", ""}, {"ence", ""}},
	'e' - 'a': {{"er", ""}},
	'i' - 'a': {{"ic", ""}},
	'l' - 'a': {{"able", ""}, {"ible", ""}},
	'n' - 'a': {{"ant", ""}, {"ement", ""}, {"ment", ""}, {"ent", ""}},
	'o' - 'a': {{"ou", ""}},
	's' - 'a': {{"ism", ""}},
	't' - 'a': {{"ate", ""}, {"iti", ""}},
	'u' - 'a': {{"ous", ""}},
	'v' - 'a': {{"ive", ""}},
	'z' - 'a': {{"ize", ""}},
}

// porterStep4 removes the remaining suffixes when m > 1.
func porterStep4[C porterChar](w []C) []C {
	if porterHasSuffix(w, "ion") {
		// (m > 1 and the stem ends in s or t). No other step 4 suffix
		// ends in "on".
		stem := w[:len(w)-3]
		if porterMeasure(stem) > 1 {
			if last := stem[len(stem)-1]; last == 's' || last == 't' {
				return stem
			}
		}
		return w
	}
	return porterApply(w, &porterStep4Rules, 1, 1)
}

// porterStep5a removes a final e when m > 1, or when m = 1 and the stem
// does not end cvc.
func porterStep5a[C porterChar](w []C) []C {
	n := len(w)
	if n == 0 || w[n-1] != 'e' {
		return w
	}
	stem := w[:n-1]
	m := porterMeasure(stem)
	if m > 1 || m == 1 && !porterEndsCVC(stem) {
		return stem
	}
	return w
}

// porterStep5b turns a final -ll into -l when m > 1.
func porterStep5b[C porterChar](w []C) []C {
	n := len(w)
	if porterHasSuffix(w, "ll") && porterMeasure(w[:n-1]) > 1 {
		return w[:n-1]
	}
	return w
}
