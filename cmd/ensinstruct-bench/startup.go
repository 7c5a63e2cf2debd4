package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// startup times how long `ensinstruct generate` takes to write its first
// record, with and without an --exclude file, against the fake server
// (no latency), so that what is measured is the start-up: reading the
// seeds and the exclusion set and indexing them.
func startup(args []string) {
	fs := flag.NewFlagSet("startup", flag.ExitOnError)
	bin := fs.String("bin", "ensinstruct", "the ensinstruct `binary` to run")
	exclude := fs.String("exclude", "", "a JSONL `FILE` of instructions for --exclude (ensinstruct-bench novelset writes one)")
	runs := fs.Int("runs", 3, "runs of each measurement")
	fs.Parse(args)
	if *exclude == "" {
		fatal(fmt.Errorf("startup: give -exclude FILE"))
	}
	url, stop := startServer(0, "")
	defer stop()
	dir, err := os.MkdirTemp("", "ensinstruct-bench-startup")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "run.yaml")
	err = os.WriteFile(cfg, fmt.Appendf(nil, `models:
  gen: {backend: ollama, model: gen, endpoint: %[1]s, roles: [instructions, instances]}
  e1: {backend: ollama, model: e1, endpoint: %[1]s, roles: [ensemble]}
  e2: {backend: openai, model: e2, endpoint: %[1]s/v1, roles: [ensemble], style: chat}
`, url), 0o644)
	if err != nil {
		fatal(err)
	}
	fmt.Println("| --exclude | first record after | peak RSS |")
	fmt.Println("|---|---|---|")
	for r := range *runs {
		for _, ex := range []string{"", *exclude} {
			args := []string{"generate", "-c", cfg, "-n", "5", "--run-dir", filepath.Join(dir, fmt.Sprint("run", r, ex != ""))}
			if ex != "" {
				args = append(args, "--exclude", ex)
			}
			first, rss := firstRecord(*bin, args)
			name := "none"
			if ex != "" {
				name = filepath.Base(ex)
			}
			fmt.Printf("| %s | %.2f s | %d MB |\n", name, first.Seconds(), rss>>20)
		}
	}
}

// firstRecord runs bin and returns the time until its first line of
// output, and its peak RSS. The run goes on to its end (or its failure:
// the fake's replies need not fill the target).
func firstRecord(bin string, args []string) (time.Duration, int64) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	r := bufio.NewReader(out)
	if _, err := r.ReadBytes('\n'); err != nil {
		cmd.Wait()
		fatal(fmt.Errorf("%s wrote no record: %w", bin, err))
	}
	first := time.Since(start)
	r.WriteTo(io.Discard)
	cmd.Wait()
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // KiB on Linux
	}
	return first, rss
}
