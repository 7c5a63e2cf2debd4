package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/ensinstruct/ensinstruct/internal/novelgen"
)

// novelset writes the novelty benchmarks' set as JSONL records.
func novelset(args []string) {
	fs := flag.NewFlagSet("novelset", flag.ExitOnError)
	n := fs.Int("n", 100_000, "instructions to write")
	seed := fs.Uint64("seed", 1, "seed")
	corpus := fs.String("corpus", "testdata", "`DIR` of JSONL files to build the word model from (the repository's testdata)")
	fs.Parse(args)
	m, err := novelgen.Load(*corpus)
	if err != nil {
		fatal(err)
	}
	set := m.Generate(*n, *seed)
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	for i, s := range set.Texts {
		if err := enc.Encode(map[string]string{"instruction": s, "input": "", "output": fmt.Sprint(i)}); err != nil {
			fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "%d instructions, %d planted near duplicates\n", len(set.Texts), set.Dups)
}
