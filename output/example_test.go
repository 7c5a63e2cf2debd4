package output_test

import (
	"fmt"
	"os"

	"github.com/ensinstruct/ensinstruct/output"
)

func ExampleNewJSONL() {
	w, err := output.NewJSONL(os.Stdout, output.Options{Format: output.FormatPromptCompletion, System: "Be brief."})
	if err != nil {
		fmt.Println(err)
		return
	}
	w.Write(output.Record{Instruction: "Add the numbers.", Input: "2 3", Output: "5"})
	// Output:
	// {"prompt":[{"role":"system","content":"Be brief."},{"role":"user","content":"Add the numbers.\n2 3"}],"completion":[{"role":"assistant","content":"5"}]}
}

func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := dir + "/data.parquet"
	c, _ := output.ResolveContainer("", path) // from the extension: parquet
	f, err := output.Create(path, c, output.Options{Format: output.FormatOpenAI, Meta: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	f.Write(output.Record{Instruction: "Name a colour.", Output: "Blue."})
	if err := f.Commit(); err != nil { // footer, fsync, rename
		fmt.Println(err)
		return
	}
	if err := output.WriteCard(output.Card{DataFile: path, Container: c, Options: output.Options{Format: output.FormatOpenAI, Meta: true}, Rows: f.Count(), Command: "generate"}); err != nil {
		fmt.Println(err)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// data.parquet
	// data.parquet.README.md
}
