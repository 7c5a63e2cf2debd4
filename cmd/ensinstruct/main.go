// Command ensinstruct generates and filters instruction-tuning data with the
// Ensemble-Instruct method: a pool of language models writes new tasks from a
// small seed set, and an example is kept only when several models agree on
// its output.
//
// Run "ensinstruct help" for the commands.
package main

import (
	"os"

	"github.com/ensinstruct/ensinstruct/internal/gcfloor"
)

func main() {
	// A run keeps little live and allocates steadily: collect less often
	// (see internal/gcfloor). GOGC, when set, wins.
	gcfloor.Start(gcfloor.DefaultFloor)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
