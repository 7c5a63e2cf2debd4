// Command ensinstruct-bench measures how well generate keeps a big
// endpoint busy, and what it costs the coordinator: it runs a fake model
// server with an exact latency in a child process (so that its CPU time is
// not counted), then, against it, a whole generate run through pipeline.Job
// with its run directory and cache, and a bare Go HTTP client replaying
// the very requests that run made (the fake records them), with as many
// goroutines as the endpoint has slots. It prints, for each, the calls per
// second as a share of C/L and the process's CPU time (user + system) per
// call. Each measurement starts after a garbage collection.
//
//	go run ./cmd/ensinstruct-bench -cases 64:200ms -n 400
//
// Several C:L cases may be given, as -cases 16:100ms,64:200ms,256:500ms.
// -cpuprofile FILE writes a CPU profile of the whole command, its samples
// labelled what=generate or what=bare (pprof -tagfocus picks one; the
// runtime's own work, such as the collector's, is unlabelled);
// -memprofile FILE an allocation profile of the whole command.
//
// The process keeps the garbage collector's headroom as the ensinstruct
// command does (internal/gcfloor), for both measurements.
//
// ensinstruct-bench novelset -n N [-seed S] [-corpus DIR] writes the
// novelty benchmarks' set of N instructions as JSONL records, for timing
// ensinstruct filter --dedup on it (see docs/benchmarks.md).
//
// ensinstruct-bench startup -bin ENSINSTRUCT -exclude FILE [-runs R] times
// how long generate takes to write its first record with and without an
// --exclude file, against the fake server with no latency.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ensinstruct/ensinstruct/internal/gcfloor"
	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/pipeline"
	"github.com/ensinstruct/ensinstruct/pipeline/pipelinetest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "startup" {
		startup(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "novelset" {
		novelset(os.Args[2:])
		return
	}
	cases := flag.String("cases", "16:100ms,64:200ms,256:500ms", "C:L pairs, comma-separated")
	n := flag.Int("n", 0, "examples per generate run (default: enough for about 15 s of calls)")
	runs := flag.Int("runs", 3, "runs of each measurement")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile, labelled what=generate|bare, to `FILE`")
	skipBare := flag.Bool("no-bare", false, "skip the bare client (to profile generate alone)")
	skipGenerate := flag.Bool("no-generate", false, "skip the generate runs (to profile the bare client alone)")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the whole run to `FILE` at the end")
	flag.Parse()
	// As the command does, for both measurements in this process.
	gcfloor.Start(gcfloor.DefaultFloor)
	if *memprofile != "" {
		defer func() {
			f, err := os.Create(*memprofile)
			if err != nil {
				fatal(err)
			}
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Println("| C | L | what | calls | calls/s | share of C/L | CPU µs/call |")
	fmt.Println("|---|---|---|---|---|---|---|")
	rec, err := os.CreateTemp("", "ensinstruct-bench-calls")
	if err != nil {
		fatal(err)
	}
	rec.Close()
	defer os.Remove(rec.Name())
	for _, cs := range strings.Split(*cases, ",") {
		c, l, err := parseCase(cs)
		if err != nil {
			fatal(err)
		}
		url, stop := startServer(l, rec.Name())
		bound := float64(c) / l.Seconds()
		examples := *n
		if examples == 0 {
			// About 5 calls per kept example with the fake's yield
			// (4.8–4.9 measured at each of the three default cases).
			examples = max(50, int(bound*15/5))
		}
		var ratios []float64
		for r := 0; r < *runs; r++ {
			var calls []recorded
			var genCPU float64
			if !*skipGenerate {
				if err := os.Truncate(rec.Name(), 0); err != nil {
					fatal(err)
				}
				runtime.GC()
				var wall, cpu time.Duration
				pprof.Do(context.Background(), pprof.Labels("what", "generate"), func(context.Context) {
					wall, cpu = generate(url, c, examples, r)
				})
				if calls, err = readRecorded(rec.Name()); err != nil {
					fatal(err)
				}
				genCPU = row(c, l, "generate", int64(len(calls)), wall, cpu, bound)
			}
			if *skipBare {
				continue
			}
			if calls == nil {
				calls = synthetic(int(bound * 10))
			}
			runtime.GC()
			var n int64
			var wall, cpu time.Duration
			pprof.Do(context.Background(), pprof.Labels("what", "bare"), func(context.Context) {
				n, wall, cpu = bare(url, c, calls)
			})
			if bareCPU := row(c, l, "bare client", n, wall, cpu, bound); genCPU > 0 && bareCPU > 0 {
				ratios = append(ratios, genCPU/bareCPU)
			}
		}
		if len(ratios) > 0 {
			slices.Sort(ratios)
			m := len(ratios) / 2
			median := (ratios[m] + ratios[(len(ratios)-1)/2]) / 2
			fmt.Printf("| %d | %v | generate ÷ bare client, median of %d | | | | %.2f× (%.2f–%.2f) |\n",
				c, l, len(ratios), median, ratios[0], ratios[len(ratios)-1])
		}
		stop()
	}
}

// row prints one measurement and returns its CPU µs per call.
func row(c int, l time.Duration, what string, calls int64, wall, cpu time.Duration, bound float64) float64 {
	rate := float64(calls) / wall.Seconds()
	perCall := float64(cpu.Microseconds()) / float64(max(calls, 1))
	fmt.Printf("| %d | %v | %s | %d | %.1f | %.1f%% | %.0f |\n", c, l, what, calls, rate, 100*rate/bound, perCall)
	return perCall
}

func parseCase(s string) (int, time.Duration, error) {
	cs, ls, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("case %q: want C:L", s)
	}
	c, err := strconv.Atoi(cs)
	if err != nil {
		return 0, 0, fmt.Errorf("case %q: %w", s, err)
	}
	l, err := time.ParseDuration(ls)
	return c, l, err
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "ensinstruct-bench:", err)
	os.Exit(1)
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serve runs the fake model server: it prints its URL and serves until
// stdin closes. Given a file args[1], it appends every model request it
// receives to it, for the bare client to replay.
func serve(args []string) {
	l, err := time.ParseDuration(args[0])
	if err != nil {
		fatal(err)
	}
	srv := llmtest.NewServer(func(c llmtest.Call) string {
		return pipelinetest.Reply(pipelinetest.Request{Model: c.Model, Prompt: c.Prompt, Temperature: c.Temperature, Seed: c.Seed})
	})
	if len(args) > 1 && args[1] != "" {
		f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		record(srv, f, fatal)
	}
	srv.SetLatency(l)
	fmt.Println(srv.URL)
	signal.Ignore(syscall.SIGINT)
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// startServer starts the fake server in a child process, recording the
// requests it receives to the file record unless that is "".
func startServer(l time.Duration, record string) (string, func()) {
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command(exe, "serve", l.String(), record)
	stdin, _ := cmd.StdinPipe()
	var out bytes.Buffer
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	buf := make([]byte, 256)
	for !bytes.Contains(out.Bytes(), []byte("\n")) {
		n, err := stdout.Read(buf)
		if err != nil {
			fatal(fmt.Errorf("fake server: %w", err))
		}
		out.Write(buf[:n])
	}
	return strings.TrimSpace(out.String()), func() { stdin.Close(); cmd.Wait() }
}

// recorded is one model request as the fake server received it.
type recorded struct {
	path string
	body []byte
}

// record has srv append every model request it receives to w, one at a
// time, and pass a failed write to fail.
func record(srv *llmtest.Server, w io.Writer, fail func(error)) {
	var mu sync.Mutex
	srv.SetRecorder(func(path string, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		if err := writeRecorded(w, path, body); err != nil {
			fail(err)
		}
	})
}

// writeRecorded appends one request to a record file: its path and the
// body's length on a line, then the body.
func writeRecorded(w io.Writer, path string, body []byte) error {
	_, err := fmt.Fprintf(w, "%s %d\n%s", path, len(body), body)
	return err
}

// readRecorded reads the requests writeRecorded wrote.
func readRecorded(name string) ([]recorded, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var calls []recorded
	for {
		var c recorded
		var n int
		if _, err := fmt.Fscanf(r, "%s %d\n", &c.path, &n); err == io.EOF {
			return calls, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: request %d: %w", name, len(calls)+1, err)
		}
		c.body = make([]byte, n)
		if _, err := io.ReadFull(r, c.body); err != nil {
			return nil, fmt.Errorf("%s: request %d: %w", name, len(calls)+1, err)
		}
		calls = append(calls, c)
	}
}

// synthetic returns n instruction-sized completion requests, for when no
// generate run was recorded.
func synthetic(n int) []recorded {
	body, _ := json.Marshal(map[string]any{"model": "gen", "prompt": strings.Repeat("Write a new task. ", 200),
		"raw": true, "stream": false, "options": map[string]any{"temperature": 0.7, "num_predict": 256}})
	calls := make([]recorded, n)
	for i := range calls {
		calls[i] = recorded{"/api/generate", body}
	}
	return calls
}

// bare makes the given calls with c goroutines, as a plain Go client
// would, and returns the calls, wall and CPU time.
func bare(url string, c int, calls []recorded) (int64, time.Duration, time.Duration) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = c
	client := &http.Client{Transport: t}
	var wg sync.WaitGroup
	next := make(chan recorded, len(calls))
	for _, r := range calls {
		next <- r
	}
	close(next)
	cpu0, start := cpuTime(), time.Now()
	for range c {
		wg.Go(func() {
			for r := range next {
				resp, err := client.Post(url+r.path, "application/json", bytes.NewReader(r.body))
				if err != nil {
					fatal(err)
				}
				var v map[string]any
				json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return int64(len(calls)), time.Since(start), cpuTime() - cpu0
}

// generate runs a whole generate job with default settings against the
// fake and returns its wall and CPU time. The calls that count are those
// the fake recorded: the run's own count includes calls cancelled at its
// end before they were sent.
func generate(url string, c, examples, seed int) (time.Duration, time.Duration) {
	dir, err := os.MkdirTemp("", "ensinstruct-bench")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	var cfg llm.Config
	for _, m := range []struct {
		name  string
		roles []llm.Role
	}{
		{"gen", []llm.Role{llm.RoleInstructions, llm.RoleInstances}},
		{"e1", []llm.Role{llm.RoleEnsemble}},
		{"e2", []llm.Role{llm.RoleEnsemble}},
	} {
		cfg.Models.Set(m.name, llm.ModelConfig{Backend: llm.BackendOllama, Model: m.name, Endpoint: url, Roles: m.roles})
	}
	cfg.Endpoints = map[string]llm.EndpointConfig{url: {MaxConcurrent: c}}
	st := pipelinetest.Seeds()
	j := pipeline.Job{
		Options: pipeline.Options{Seeds: st, Seed: int64(seed), TargetA: examples * 2 / 3, TargetB: examples - examples*2/3},
		Pool:    cfg, RunDir: dir, Output: pipeline.Output{Writer: io.Discard},
	}
	cpu0, start := cpuTime(), time.Now()
	r, err := j.Start(context.Background())
	if err != nil {
		fatal(err)
	}
	_, err = r.Wait(context.Background())
	r.Close()
	if err != nil {
		fatal(err)
	}
	return time.Since(start), cpuTime() - cpu0
}
