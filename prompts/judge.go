package prompts

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Judge scale: JudgePrompt asks for a whole number from JudgeMin to
// JudgeMax, and ParseJudgeScore returns scores in that range.
const (
	JudgeMin = 1
	JudgeMax = 10
)

// judgeData is what the judge templates are executed with.
type judgeData struct {
	Instruction string
	Input       string
	Answer      string
}

// JudgePrompt renders the prompt that asks a judge model to grade one
// candidate answer to instruction (with input, for a type-A task) on the
// rubric of the judge templates: a whole number from JudgeMin (wrong, off
// task, unfinished or empty) to JudgeMax (correct and complete).
//
// StyleChat is a system message with the rubric and a user message with
// the task and the answer, asking for the single line "Score: N".
// StyleCompletion is the rubric, two graded examples and the task, ending
// in "Score:" for the model to continue; it stops at the first line break
// after the grade. Each candidate is graded alone, so its position among
// the others cannot bias the grade.
func JudgePrompt(style Style, instruction, input, answer string) Prompt {
	data := judgeData{Instruction: trimSpace(instruction), Input: trimSpace(input), Answer: trimSpace(answer)}
	if style == StyleChat {
		return chat(render("judge.chat.system.tmpl", data), render("judge.chat.user.tmpl", data), []string{DefaultStop})
	}
	return Prompt{Text: render("judge.completion.tmpl", data), Stop: []string{"\n", DefaultStop}}
}

var (
	// judgeLabelRE matches a labelled grade: "Score: 7", "**Rating**: 8/10",
	// "grade of 6", "score = 9.5", "Score - 4".
	judgeLabelRE = regexp.MustCompile(`(?i)\b(?:score|rating|grade)\b[*_\s]*(?:[:=\-]|\bis\b|\bof\b)?[*_\s]*(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?`)
	// judgeFractionRE matches an unlabelled "7/10" or "7 out of 10".
	judgeFractionRE = regexp.MustCompile(`(?i)\b(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*(\d+)\b`)
	// judgeLeadRE matches a reply that starts with the grade (the
	// continuation of a completion prompt ending in "Score:").
	judgeLeadRE = regexp.MustCompile(`^[*_\s]*(\d+(?:\.\d+)?)\b`)
)

// ParseJudgeScore reads the grade from a judge model's reply to
// JudgePrompt rendered in style. It accepts what chat and completion models actually write:
// a bare number ("7", "7." or the continuation " 8\n"), a labelled grade
// anywhere in the reply ("Score: 7", "**Rating:** 8/10", "I'd give it a
// score of 6."), a JSON object with a "score" field, or a fraction ("7/10",
// "4 out of 5", scaled to 10). The last labelled grade wins over an
// earlier one, so a model that reasons first and concludes with "Score: N"
// is read correctly. For StyleCompletion only the reply's first line with
// content counts: a base model that ignores the stop goes on to invent
// further graded examples, whose grades are not this answer's. A grade below JudgeMin is raised to it; one above JudgeMax
// is on another scale and not read. ok is false when no grade can be
// found.
func ParseJudgeScore(reply string, style Style) (score float64, ok bool) {
	s := trimSpace(cutAtMarker(normalizeNewlines(reply)))
	if style != StyleChat {
		s, _, _ = strings.Cut(s, "\n")
	}
	if s == "" {
		return 0, false
	}
	if v, ok := judgeJSON(s); ok {
		return onJudgeScale(v)
	}
	if m := judgeLabelRE.FindAllStringSubmatch(s, -1); m != nil {
		last := m[len(m)-1]
		if v, ok := judgeValue(last[1], last[2]); ok {
			return v, true
		}
	}
	if m := judgeFractionRE.FindAllStringSubmatch(s, -1); m != nil {
		last := m[len(m)-1]
		if v, ok := judgeValue(last[1], last[2]); ok {
			return v, true
		}
	}
	if m := judgeLeadRE.FindStringSubmatch(s); m != nil {
		return judgeValue(m[1], "")
	}
	return 0, false
}

// judgeJSON reads {"score": N} from s, or from the first {...} in it (a
// model may wrap the object in a code fence).
func judgeJSON(s string) (float64, bool) {
	start, end := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}')
	if start < 0 || end < start {
		return 0, false
	}
	var v map[string]json.RawMessage
	if json.Unmarshal([]byte(s[start:end+1]), &v) != nil {
		return 0, false
	}
	for k, raw := range v {
		switch strings.ToLower(k) {
		case "score", "rating", "grade":
			var f float64
			if json.Unmarshal(raw, &f) == nil {
				return f, true
			}
			var str string
			if json.Unmarshal(raw, &str) == nil {
				if f, err := strconv.ParseFloat(strings.TrimSpace(str), 64); err == nil {
					return f, true
				}
			}
		}
	}
	return 0, false
}

// judgeValue converts a matched number, over scale when scale is not "",
// to the judge scale.
func judgeValue(num, scale string) (float64, bool) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, false
	}
	if scale != "" {
		d, err := strconv.ParseFloat(scale, 64)
		if err != nil || d <= 0 || v > d {
			return 0, false
		}
		v = v / d * JudgeMax
	}
	return onJudgeScale(v)
}

// onJudgeScale clamps v to [JudgeMin, JudgeMax]; a value above JudgeMax
// ("Score: 85") is on some other scale and not a grade we can read.
func onJudgeScale(v float64) (float64, bool) {
	if v > JudgeMax || v < 0 {
		return 0, false
	}
	return max(v, JudgeMin), true
}
