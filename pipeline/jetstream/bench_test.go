package jetstream

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"golang.org/x/sync/errgroup"
)

// The benchmarks run the coordinator in the benchmark process and
// everything else in child processes of the test binary: the NATS
// server, and N workers each with its own fake model server (latency L)
// and endpoint (max_concurrent C). So the process CPU time the benchmark
// measures is the coordinator's alone.
//
//	go test -run '^$' -bench Distributed -benchtime 1x -count 3 ./pipeline/jetstream

// helperEnv selects what a child process of the test binary does.
const helperEnv = "ENSINSTRUCT_JETSTREAM_BENCH_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "server":
		benchServer()
	case "worker":
		benchWorker()
	}
	os.Exit(0)
}

// benchServer runs a NATS server until stdin closes.
func benchServer() {
	dir, _ := os.MkdirTemp("", "ensinstruct-bench-nats")
	defer os.RemoveAll(dir)
	s, err := StartServer(ServerConfig{Host: "127.0.0.1", Port: -1, StoreDir: dir})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Println(s.ClientURL())
	bufio.NewReader(os.Stdin).ReadString('\n')
	s.Shutdown()
}

// benchWorker runs a fake model server and a worker serving it until
// stdin closes. It prints the fake server's URL.
func benchWorker() {
	latency, _ := time.ParseDuration(os.Getenv("BENCH_LATENCY"))
	conc, _ := strconv.Atoi(os.Getenv("BENCH_CONCURRENCY"))
	srv := llmtest.NewServer(func(c llmtest.Call) string { return "ok " + c.Prompt[:min(len(c.Prompt), 16)] })
	srv.SetLatency(latency)
	defer srv.Close()
	cfg := benchConfig([]string{srv.URL}, conc)
	pool, err := llm.NewPool(cfg)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	nc, err := Connect(context.Background(), os.Getenv("BENCH_NATS"), ConnectOptions{Name: "bench worker"})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewWorker(ctx, WorkerOptions{Conn: nc, Pool: pool, DrainTimeout: time.Second})
	if err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Println(srv.URL)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	bufio.NewReader(os.Stdin).ReadString('\n')
	cancel()
	<-done
}

// benchConfig has one model per URL, m0, m1, ..., each on its own
// endpoint with max_concurrent conc.
func benchConfig(urls []string, conc int) llm.Config {
	cfg := llm.Config{Endpoints: map[string]llm.EndpointConfig{}}
	for i, u := range urls {
		name := "m" + strconv.Itoa(i)
		if len(urls) == 1 && os.Getenv("BENCH_INDEX") != "" {
			name = "m" + os.Getenv("BENCH_INDEX")
		}
		cfg.Models = append(cfg.Models, llm.NamedModel{Name: name, ModelConfig: llm.ModelConfig{
			Backend: llm.BackendOllama, Model: "bench", Endpoint: u, Roles: []llm.Role{llm.RoleEnsemble}}})
		cfg.Endpoints[u] = llm.EndpointConfig{MaxConcurrent: conc, Timeout: time.Minute}
	}
	return cfg
}

// helper starts a child process and returns the first line it prints.
func helper(b *testing.B, env ...string) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil || strings.HasPrefix(line, "error") {
		b.Fatalf("helper %v: %q %v", env, line, err)
	}
	return line
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkDistributed(b *testing.B) {
	const conc, latency, rounds = 8, 500 * time.Millisecond, 10
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) { benchDistributed(b, n, conc, latency, rounds, true) })
	}
}

// BenchmarkDistributedMax drives instant endpoints as hard as the queue
// allows: the calls per second one coordinator and one server sustain,
// with the coordinator's local cache (as generate runs) and without it
// (the queue alone).
func BenchmarkDistributedMax(b *testing.B) {
	for _, cache := range []bool{true, false} {
		b.Run(fmt.Sprintf("cache=%v", cache), func(b *testing.B) { benchDistributed(b, 4, 64, 0, 20, cache) })
	}
}

func benchDistributed(b *testing.B, workers, conc int, latency time.Duration, rounds int, withCache bool) {
	url := helper(b, helperEnv+"=server")
	var urls []string
	for i := range workers {
		urls = append(urls, helper(b, helperEnv+"=worker", "BENCH_NATS="+url, "BENCH_INDEX="+strconv.Itoa(i),
			"BENCH_LATENCY="+latency.String(), "BENCH_CONCURRENCY="+strconv.Itoa(conc)))
	}
	cache, err := llm.OpenCache(b.TempDir()+"/cache.db", llm.CacheWriteBehind(llm.WriteBehind))
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	var popts []llm.Option
	if withCache {
		popts = append(popts, llm.WithCache(cache))
	}
	local, err := llm.NewPool(benchConfig(urls, conc), popts...)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := Connect(context.Background(), url, ConnectOptions{Name: "bench coordinator"})
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	e, err := NewExecutor(context.Background(), Options{Conn: nc, Local: local})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	// drive makes calls distinct calls (tag keeps them apart from other
	// drives': nothing is answered from a cache), calls/workers per model
	// from 2·conc goroutines each, so that every endpoint always has work
	// queued, and returns the time taken.
	drive := func(tag string, calls int64) time.Duration {
		start := time.Now()
		var g errgroup.Group
		for m := range workers {
			model := "m" + strconv.Itoa(m)
			var next atomic.Int64
			for range 2 * conc {
				g.Go(func() error {
					for {
						i := next.Add(1)
						if i > calls/int64(workers) {
							return nil
						}
						r := llm.Request{Prompt: fmt.Sprintf("benchmark call %s/%d %s", tag, i, strings.Repeat("x", 1500)), MaxTokens: 64}
						if _, err := e.Do(context.Background(), model, r, 0); err != nil {
							return err
						}
					}
				})
			}
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	drive("warm-up", int64(workers*conc)) // connections, consumers
	// What the open executor costs per second with no call in flight:
	// its timers, and the NATS server library's once-a-second read of
	// /proc, which every process linking it pays.
	const idleFor = 2 * time.Second
	c0 := cpuTime()
	time.Sleep(idleFor)
	idle := float64((cpuTime() - c0).Microseconds()) / idleFor.Seconds()
	total := int64(workers * conc * rounds)
	b.ResetTimer()
	var wall, cpu time.Duration
	for i := range b.N {
		c0 := cpuTime()
		wall += drive(strconv.Itoa(i), total)
		cpu += cpuTime() - c0
	}
	calls := float64(total) * float64(b.N)
	rate := calls / wall.Seconds()
	b.ReportMetric(rate, "calls/s")
	if latency > 0 {
		b.ReportMetric(100*rate/(float64(workers*conc)/latency.Seconds()), "%ideal")
	}
	b.ReportMetric(float64(cpu.Microseconds())/calls, "coord-µs-cpu/call")
	b.ReportMetric(idle, "idle-µs-cpu/s")
	// The CPU the calls themselves cost: the run's less what the same
	// wall time costs idle.
	b.ReportMetric((float64(cpu.Microseconds())-idle*wall.Seconds())/calls, "marginal-µs-cpu/call")
}
