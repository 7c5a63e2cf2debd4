package filter

// Reason names why a candidate was kept or dropped. Reasons are counted and
// reported (dropped{reason="not-novel"}); they are not errors.
type Reason string

// Reasons an instruction is dropped by the instruction checks or the novelty
// index.
const (
	ReasonTooShort        Reason = "too-short"      // word count at or below the minimum
	ReasonTooLong         Reason = "too-long"       // word count above the maximum
	ReasonBlacklisted     Reason = "blacklisted"    // contains a blacklisted word or phrase
	ReasonBadPrefix       Reason = "bad-prefix"     // starts with a rejected prefix ("Write a program")
	ReasonBadFirstChar    Reason = "bad-first-char" // starts with punctuation or a non-ASCII character
	ReasonNotNovel        Reason = "not-novel"      // Rouge-L above the threshold against an earlier one
	ReasonEmptyOutput     Reason = "empty-output"   // instance output is empty
	ReasonEmptyInput      Reason = "empty-input"    // input required but empty
	ReasonUnparsable      Reason = "unparsable"     // a model reply with no instance in it
	ReasonInstructionEcho Reason = "input-echoes-instruction"
)

// Further reasons an instance is dropped.
const (
	ReasonRepetitiveOutput Reason = "repetitive-output" // the output is stuck in a loop
)

// Reasons the consensus rule gives for its decision.
const (
	ReasonExactMatch   Reason = "exact-match"           // kept: candidates agree after normalization
	ReasonAgreement    Reason = "agreement"             // kept: highest summed Rouge agreement
	ReasonLowAgreement Reason = "dropped-low-agreement" // dropped: some pair agrees too little
	ReasonEmptyPick    Reason = "dropped-empty"         // dropped: the pick is empty
	ReasonJudged       Reason = "judged"                // kept: best judge score among supported candidates
	ReasonTooFew       Reason = "dropped-too-few"       // dropped: fewer than two usable candidates
	ReasonLowJudge     Reason = "dropped-low-judge"     // dropped: the judge graded the pick below the floor
)
