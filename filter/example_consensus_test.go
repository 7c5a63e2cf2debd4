package filter_test

import (
	"fmt"

	"github.com/ensinstruct/ensinstruct/filter"
)

// A failed call and an empty answer are left out of the vote; the other
// members decide.
func ExampleDecide() {
	d := filter.Decide([]filter.Candidate{
		{Text: "Paris is the capital of France."},
		{Status: filter.CandidateFailed},
		{Text: "  "},
		{Text: "The capital of France is Paris."},
	}, filter.Votes{}, filter.ConsensusOptions{})
	fmt.Println(d.Kept, d.Pick, d.Reason, d.Status)
	// Output: true 0 agreement [ok failed empty ok]
}

// The weighted rule in a stream: each row is measured (the costly part,
// which may run in parallel), then decided in input order with the
// reliabilities of the rows before it, and recorded.
func ExampleReliability() {
	names := []string{"writer", "model-a", "model-b"}
	rows := [][]string{
		{"Water boils at 100 degrees.", "At 100 degrees water boils.", "Bananas are yellow."},
		{"Cats purr when happy.", "Happy cats purr.", "The stock market fell."},
		{"Paris is in France.", "Paris lies in France.", "Paris is in France, I think."},
	}
	var rel filter.Reliability
	opts := filter.ConsensusOptions{Rule: filter.RuleWeighted}
	for _, r := range rows {
		a := filter.Measure([]filter.Candidate{{Text: r[0]}, {Text: r[1]}, {Text: r[2]}}, opts)
		d := a.Select(opts.Rule, filter.Votes{Weights: rel.Weights(names)}, opts)
		rel.Observe(names, d)
		fmt.Println(d.Pick, d.Output)
	}
	w := rel.Weights(names)
	fmt.Println(w[2] < w[0] && w[2] < w[1])
	// Output:
	// 0 Water boils at 100 degrees.
	// 0 Cats purr when happy.
	// 0 Paris is in France.
	// true
}
