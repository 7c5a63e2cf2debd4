package prompts_test

import (
	"fmt"
	"strings"

	"github.com/ensinstruct/ensinstruct/filter"
	"github.com/ensinstruct/ensinstruct/prompts"
	"github.com/ensinstruct/ensinstruct/seeds"
)

func ExampleInstructionPrompt() {
	p := prompts.InstructionPrompt(prompts.StyleCompletion, seeds.TypeB, []string{
		"Suggest a name for a pet tortoise.",
		"How many minutes are there in a week?",
	})
	fmt.Println(p.Text)
	fmt.Printf("%q\n", p.Stop)
	// Output:
	// A list of diverse tasks, each answered directly with no input beyond the task itself:
	// 1. Suggest a name for a pet tortoise. |EoS|
	// 2. How many minutes are there in a week? |EoS|
	// 3.
	// ["|EoS|" "\n4."]
}

func ExampleParseInstruction() {
	instr, ok := prompts.ParseInstruction("Sure! Here's a new task:\n\n**Task:** \"List three uses of vinegar.\"", prompts.StyleChat)
	fmt.Println(instr, ok)
	// Output:
	// List three uses of vinegar. true
}

func ExampleInstancePrompt() {
	p := prompts.InstancePrompt(prompts.StyleCompletion, seeds.TypeA, "Count the words in the sentence.")
	lines := strings.Split(strings.TrimSuffix(p.Text, "\n"), "\n")
	fmt.Println(lines[len(lines)-1])
	fmt.Printf("%q\n", p.Stop)
	// Output:
	// instruction: Count the words in the sentence.
	// ["|EoS|" "\ninstruction:" "\nInstruction:"]
}

func ExampleFindInstance() {
	reply := "input: The cat sat.\noutput: 3\n|EoS|\n\ninstruction: Reverse the list.\ninput: 1, 2\noutput: 2, 1"
	instr := "Count the words in the sentence."
	in, out, found := prompts.FindInstance(reply, seeds.TypeA, instr)
	// Parsing finds the first instance; the validity rules judge it.
	reason := filter.CheckInstance(seeds.TypeA, instr, in, out, filter.InstanceRules{})
	fmt.Printf("%q %q %v %q\n", in, out, found, reason)
	// Output:
	// "The cat sat." "3" true ""
}

func ExampleParseAnswer() {
	fmt.Println(prompts.ParseAnswer("Certainly! Paris is the capital of France.\n\nLet me know if you have more questions.", prompts.StyleChat))
	// Output:
	// Paris is the capital of France.
}
