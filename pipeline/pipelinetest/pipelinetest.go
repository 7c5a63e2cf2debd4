// Package pipelinetest provides a fake model for tests of the generate
// pipeline: Reply answers the pipeline's three kinds of prompt the way a
// competent pool of models would, deterministically from the request, with
// a controlled share of bad replies so that every drop reason occurs.
package pipelinetest

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/seeds"
)

// Request is what Reply needs to know about a model request.
type Request struct {
	Model       string
	Prompt      string   // completion style
	Messages    []string // chat style: the messages' contents, in order
	Temperature float64
	Seed        *int64
}

func (r Request) text() string {
	if r.Messages == nil {
		return r.Prompt
	}
	return strings.Join(r.Messages, "\n")
}

// ReplyTo answers a call a fake server received (llmtest.Server) as Reply
// answers the request.
func ReplyTo(c llmtest.Call) string {
	r := Request{Model: c.Model, Prompt: c.Prompt, Temperature: c.Temperature, Seed: c.Seed}
	if c.Messages != nil {
		r.Messages = []string{}
		for _, m := range c.Messages {
			r.Messages = append(r.Messages, m.Content)
		}
	}
	return Reply(r)
}

// Seeds returns a small seed set whose type-A instructions say "process"
// and type-B ones "describe": that is how Reply tells the types apart.
func Seeds() []seeds.Task {
	var ts []seeds.Task
	for i := 0; i < 12; i++ {
		ts = append(ts, seeds.Task{
			ID:          fmt.Sprintf("a%d", i),
			Instruction: fmt.Sprintf("Please process the given %s record and report its %s value", word(uint64(i)), word(uint64(i+50))),
			Instances:   []seeds.Instance{{Input: "x", Output: "y"}},
		})
	}
	for i := 0; i < 6; i++ {
		ts = append(ts, seeds.Task{
			ID:          fmt.Sprintf("b%d", i),
			Instruction: fmt.Sprintf("Please describe a typical %s in the %s style", word(uint64(i+100)), word(uint64(i+150))),
			Instances:   []seeds.Instance{{Output: "y"}},
		})
	}
	return ts
}

var vocab = strings.Fields(`apple river stone cloud maple copper violet harbor lantern meadow
orbit pepper quartz saddle timber velvet willow zephyr anchor basil cedar dune ember falcon
garnet hazel iris jasper kettle lotus marble nectar onyx pebble quill raven sierra tulip
umber vortex walnut yarrow zinc amber birch coral delta fjord glacier heron indigo juniper
kelp lichen mango nutmeg olive prism quiver reef sage thistle urchin vale wren yucca`)

func word(h uint64) string { return vocab[h%uint64(len(vocab))] }

func hashOf(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// Reply answers r:
//   - a judge prompt (chat: "Answer to grade:"; completion: ending in
//     "Score:") gets the grade N, from 1 to 10, fixed by the graded answer;
//   - a greedy request (temperature 0) is an ensemble answer prompt
//     (instruction, then input); model "e2" disagrees on a quarter of the
//     instructions;
//   - a prompt holding an "instruction: " line is an instance prompt; a
//     seventh of the replies are unparsable and a fifth of the outputs
//     wrong;
//   - anything else is an instruction prompt, answered with a new
//     instruction of the prompt's type.
func Reply(r Request) string {
	text := r.text()
	seed := ""
	if r.Seed != nil {
		seed = fmt.Sprint(*r.Seed)
	}
	h := hashOf(r.Model, text, seed)
	switch {
	case strings.Contains(text, "Answer to grade:"):
		// A judge: a grade from the answer alone, so that the same answer
		// always gets the same grade.
		_, answer, _ := strings.Cut(text, "Answer to grade:")
		return fmt.Sprintf("Score: %d", 1+hashOf(strings.TrimSpace(answer))%10)
	case r.Messages == nil && strings.HasSuffix(r.Prompt, "\nScore:"):
		// A judge's completion prompt: the graded answer is the last
		// "Answer:" line; the model continues with the grade.
		answer := r.Prompt[strings.LastIndex(r.Prompt, "\nAnswer:")+len("\nAnswer:") : len(r.Prompt)-len("\nScore:")]
		return fmt.Sprintf(" %d\n", 1+hashOf(strings.TrimSpace(answer))%10)
	case r.Temperature == 0:
		var instr, input string
		if r.Messages != nil {
			instr, input, _ = strings.Cut(r.Messages[len(r.Messages)-1], "\n\n")
		} else {
			instr, input, _ = strings.Cut(strings.TrimSpace(r.Prompt), "\n")
		}
		if strings.HasSuffix(r.Model, "e2") && hashOf(strings.TrimSpace(instr))%4 == 0 {
			return "I would rather talk about " + word(h) + " today"
		}
		return Answer(instr, input)
	case strings.Contains(text, "instruction: "):
		i := strings.LastIndex(text, "instruction: ")
		instr := strings.TrimSpace(text[i+len("instruction: "):])
		if h%7 == 0 {
			return "I am not sure what to write here."
		}
		input := ""
		if strings.Contains(instr, "process") {
			input = "the " + word(h) + " " + word(h>>8) + " record"
		}
		out := Answer(instr, input)
		if h%5 == 0 {
			out = "something else entirely about " + word(h>>16)
		}
		if input != "" {
			return "input: " + input + "\noutput: " + out + "\n|EoS|"
		}
		return "output: " + out + "\n|EoS|"
	default:
		verb := "describe"
		if strings.Contains(text, "process") {
			verb = "process"
		}
		n := 8 + int(h%6)
		w := []string{"Please", verb}
		for j := 0; j < n; j++ {
			w = append(w, word(h>>uint(j*5)+uint64(j)))
		}
		return " " + strings.Join(w, " ") + " |EoS|"
	}
}

// Answer is the correct answer to instruction on input, as Reply gives it.
func Answer(instruction, input string) string {
	h := hashOf(strings.TrimSpace(instruction), strings.TrimSpace(input))
	return "The answer is " + word(h) + " " + word(h>>10) + " " + word(h>>20) + "."
}
