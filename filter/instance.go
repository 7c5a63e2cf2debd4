package filter

import (
	"slices"

	"github.com/ensinstruct/ensinstruct/seeds"
)

// InstanceRules selects the validity rules CheckInstance applies to a
// parsed instance. The zero value is ensinstruct's default: every rule on.
// CompatInstanceRules returns the reference's (only an empty output is
// invalid). Values are plain data, safe to copy and share.
type InstanceRules struct {
	// AllowEmptyInput keeps type-A instances whose input is empty. The
	// reference keeps them (1 of its 72 type-A sample rows); by default
	// they are dropped, since a type-A task without its input is
	// unanswerable.
	AllowEmptyInput bool
	// AllowInstructionEcho keeps instances whose input merely repeats the
	// instruction (the same words, ignoring case and punctuation).
	AllowInstructionEcho bool
	// AllowRepetition keeps outputs caught in a loop: at least
	// instanceRepetitionMinTokens tokens of which fewer than
	// instanceRepetitionMinDistinct of the word trigrams are distinct.
	AllowRepetition bool
}

// CompatInstanceRules returns the rules that reproduce the reference
// implementation: only an empty output makes an instance invalid.
func CompatInstanceRules() InstanceRules {
	return InstanceRules{AllowEmptyInput: true, AllowInstructionEcho: true, AllowRepetition: true}
}

// Thresholds of the repetition rule. Degenerate loops measured in the
// reference's sample run ("unbelievable, unbelievable, …", a list repeating
// the same six lines) have 4–25 % distinct trigrams; long but genuine
// stories and lists there have 44 % or more.
const (
	instanceRepetitionMinTokens   = 30
	instanceRepetitionMinDistinct = 0.3
)

// CheckInstance applies the instance validity rules to an instance of
// instruction, of type typ. It returns "" when the instance is valid, or
// the reason for the first rule it fails, in this order:
// ReasonEmptyOutput (the output has no non-space character),
// ReasonEmptyInput (type A, empty input, unless rules.AllowEmptyInput),
// ReasonInstructionEcho (the input repeats the instruction, unless
// rules.AllowInstructionEcho) and ReasonRepetitiveOutput (unless
// rules.AllowRepetition). "Empty" follows the reference: no word in
// Python's str.split() sense. Safe for concurrent use.
func CheckInstance(typ seeds.Type, instruction, input, output string, rules InstanceRules) Reason {
	if !hasPyField(output) {
		return ReasonEmptyOutput
	}
	emptyInput := !hasPyField(input)
	if typ == seeds.TypeA && emptyInput && !rules.AllowEmptyInput {
		return ReasonEmptyInput
	}
	if !emptyInput && !rules.AllowInstructionEcho && instanceEchoes(input, instruction) {
		return ReasonInstructionEcho
	}
	if !rules.AllowRepetition && instanceRepetitive(output) {
		return ReasonRepetitiveOutput
	}
	return ""
}

// instanceEchoes reports whether input has the same Rouge tokens as
// instruction (case and punctuation ignored).
func instanceEchoes(input, instruction string) bool {
	a := Tokenize(input)
	return len(a) > 0 && slices.Equal(a, Tokenize(instruction))
}

// instanceRepetitive reports whether output is a degenerate loop: long
// enough, and with too few distinct word trigrams.
func instanceRepetitive(output string) bool {
	toks := Tokenize(output)
	if len(toks) < instanceRepetitionMinTokens {
		return false
	}
	type trigram [3]string
	seen := make(map[trigram]struct{}, len(toks))
	for i := 0; i+3 <= len(toks); i++ {
		seen[trigram{toks[i], toks[i+1], toks[i+2]}] = struct{}{}
	}
	return float64(len(seen)) < instanceRepetitionMinDistinct*float64(len(toks)-2)
}
