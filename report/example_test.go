package report_test

import (
	"fmt"
	"io"
	"log"

	"github.com/ensinstruct/ensinstruct/report"
)

// Build reads a run directory; Render writes its page.
func ExampleBuild() {
	src, err := report.Resolve("testdata/run", "")
	if err != nil {
		log.Fatal(err)
	}
	f, err := report.Build(src, report.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, fn := range f.Funnels {
		fmt.Print(fn.Type, ":")
		for _, s := range fn.Stages {
			fmt.Printf(" %s %d", s.Name, s.Count)
		}
		fmt.Println()
	}
	fmt.Printf("top verb %q, %d members\n", f.Verbs.Top[0].Name, len(f.Members))
	if err := report.Render(io.Discard, f, report.RenderOptions{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// A: instruction requests 10 passed checks 8 novel 7 instances parsed 5 consensus kept 3
	// B: instruction requests 6 passed checks 5 novel 5 instances parsed 4 consensus kept 2
	// top verb "classify", 3 members
}

func ExampleLeadingVerb() {
	for _, s := range []string{
		"Please summarize the article.",
		"Given two numbers, find their sum.",
		"Can you explain gravity?",
		"What is the capital of Peru?",
	} {
		fmt.Println(report.LeadingVerb(s))
	}
	// Output:
	// summarize
	// find
	// explain
	// (question)
}
