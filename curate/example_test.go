package curate_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ensinstruct/ensinstruct/curate"
	"github.com/ensinstruct/ensinstruct/output"
	"github.com/ensinstruct/ensinstruct/pipeline"
)

// ExampleFilter removes a near-duplicate instruction and applies the
// consensus rule with one extra candidate per record, as "ensinstruct
// filter --dedup --candidates other.jsonl" does.
func ExampleRun() {
	data := `{"instruction": "Name the capital of France.", "input": "", "output": "Paris"}
{"instruction": "Name the capital of France!", "input": "", "output": "Paris."}
{"instruction": "Add two and two.", "input": "", "output": "five"}
`
	other := `{"instruction": "Name the capital of France.", "input": "", "output": "paris"}
{"instruction": "Name the capital of France!", "input": "", "output": "Paris"}
{"instruction": "Add two and two.", "input": "", "output": "4"}
`
	threshold := pipeline.DefaultNoveltyThreshold
	opts := curate.Options{
		Dedup: &threshold,
		Candidates: []curate.CandidateSource{
			{Name: "other.jsonl", Records: output.NewReader(strings.NewReader(other), "other.jsonl")},
		},
	}
	w := output.NewWriter(os.Stdout, output.FormatAlpaca, false)
	stats, err := curate.Run(context.Background(), output.NewReader(strings.NewReader(data), "data.jsonl"), opts,
		func(r curate.Kept) error { return w.Write(r.Record) },
		func(r output.Rejected) error {
			fmt.Printf("dropped %s: %s\n", r.Source, r.Reason)
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("read %d, kept %d\n", stats.Read, stats.Kept)
	// Output:
	// {"instruction":"Name the capital of France.","input":"","output":"Paris"}
	// dropped data.jsonl:2: dedup/not-novel
	// dropped data.jsonl:3: consensus/dropped-low-agreement
	// read 3, kept 1
}
