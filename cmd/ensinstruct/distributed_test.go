package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm/llmtest"
	"github.com/ensinstruct/ensinstruct/pipeline/jetstream"
)

// The distributed tests run real processes: a real embedded NATS
// JetStream server (in the test process, so that it can be restarted on
// its file store), worker processes and coordinator processes of this
// binary, against the in-process fake model server, which counts what it
// serves.

// chaosToken is the NATS token of the tests' server.
const chaosToken = "nats-token-DO-NOT-LEAK-42"

// natsServer is a restartable embedded JetStream server.
type natsServer struct {
	t     *testing.T
	dir   string
	token string
	port  int
	s     *jetstream.Server
}

func startNATS(t *testing.T, token string) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), token: token, port: -1}
	n.start()
	t.Cleanup(func() { n.s.Shutdown() })
	return n
}

func (n *natsServer) start() {
	s, err := jetstream.StartServer(jetstream.ServerConfig{Host: "127.0.0.1", Port: n.port, StoreDir: n.dir, Token: n.token})
	if err != nil {
		n.t.Fatal(err)
	}
	n.s, n.port = s, s.Addr().(*net.TCPAddr).Port
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// restart stops the server, waits, and starts it again on the same port
// and store.
func (n *natsServer) restart(down time.Duration) {
	n.s.Shutdown()
	time.Sleep(down)
	n.start()
}

// proc is a running child process.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	return p.err
}

// wait waits for the process to exit by itself.
func (p *proc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		p.kill()
		t.Fatalf("%v did not finish within %v; stderr:\n%s", p.cmd.Args, limit, p.stderr.String())
		return nil
	}
}

// cluster is a NATS server, a fake model server, a configuration and
// the worker processes serving it.
type cluster struct {
	t       *testing.T
	bin     string
	dir     string
	nats    *natsServer
	srv     *llmtest.Server
	cfg     string
	seeds   string
	env     []string
	workers []*proc
	all     []*proc // every process started, for the secrets check
}

func newCluster(t *testing.T, latency time.Duration, maxConcurrent int) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: ensinstructBinary(t), dir: t.TempDir()}
	c.nats = startNATS(t, chaosToken)
	c.srv = fakeModels(t, latency)
	c.cfg = fakeConfig(t, c.dir, c.srv.URL, maxConcurrent)
	c.seeds = writeTestSeeds(t, c.dir)
	c.env = []string{jetstream.TokenEnv + "=" + chaosToken}
	return c
}

func (c *cluster) startWorker() *proc {
	p := startProc(c.t, c.bin, c.env, "worker", "--nats", c.nats.url(), "-c", c.cfg,
		"--drain-timeout", "2s", "--retry-delay", "50ms")
	c.workers = append(c.workers, p)
	c.all = append(c.all, p)
	return p
}

// coordinatorArgs is the generate command of the distributed runs.
func (c *cluster) coordinatorArgs(runDir, out string, n int) []string {
	return []string{"generate", "-c", c.cfg, "--seeds", c.seeds, "--meta", "-n", strconv.Itoa(n),
		"--run-dir", runDir, "-o", out, "--nats", c.nats.url(), "--nats-ack-wait", "1s"}
}

func (c *cluster) startCoordinator(runDir, out string, n int) *proc {
	p := startProc(c.t, c.bin, c.env, c.coordinatorArgs(runDir, out, n)...)
	c.all = append(c.all, p)
	return p
}

// stopWorkers stops the live workers with SIGTERM and returns how many
// calls each says it served.
func (c *cluster) stopWorkers() []int {
	var served []int
	re := regexp.MustCompile(`"calls_served":(\d+)`)
	for _, w := range c.workers {
		if w.exited() {
			continue
		}
		if err := w.stop(); err != nil {
			c.t.Errorf("worker exited with %v after SIGTERM:\n%s", err, w.stderr.String())
		}
		m := re.FindStringSubmatch(w.stderr.String())
		if m == nil {
			c.t.Errorf("worker did not report what it served:\n%s", w.stderr.String())
			continue
		}
		n, _ := strconv.Atoi(m[1])
		served = append(served, n)
	}
	return served
}

// noSecrets checks every process's diagnostics and the files of the
// run directory for the NATS token.
func (c *cluster) noSecrets(runDir string) {
	c.t.Helper()
	for _, p := range c.all {
		if strings.Contains(p.stderr.String(), chaosToken) {
			c.t.Errorf("the NATS token appears in the diagnostics of %v", p.cmd.Args[1])
		}
	}
	filepath.Walk(runDir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(chaosToken)) {
				c.t.Errorf("the NATS token appears in %s", path)
			}
		}
		return nil
	})
}

// reference runs the configuration locally, with a fresh cache, against
// its own fake server, and returns the output.
func (c *cluster) reference(n int) string {
	c.t.Helper()
	ref := fakeModels(c.t, 0)
	refCfg := fakeConfig(c.t, c.t.TempDir(), ref.URL, 4)
	out, stderr, code := runCLI(c.t, "generate", "-c", refCfg, "--seeds", c.seeds, "--meta", "-n", strconv.Itoa(n),
		"--run-dir", filepath.Join(c.dir, "ref"))
	if code != 0 {
		c.t.Fatalf("reference run: exit %d\n%s", code, stderr)
	}
	return out
}

// disruption is a time span during which a call may be paid twice: a
// reply the model server wrote just before (or during) it may not have
// been stored.
type disruption struct{ start, end time.Time }

// repaid counts the requests the model server answered more than once,
// and fails the test for each whose first answer was not in or shortly
// before a disruption (a call that had finished was paid again), and
// when there are more than the calls that can be in flight at once (8:
// two endpoints of 4) at each disruption. "Shortly" is generous (2 s):
// on a loaded machine a worker can take that long from the model's reply
// to the stored result.
func repaid(t *testing.T, srv *llmtest.Server, ds []disruption) (repeats, distinct int) {
	t.Helper()
	first := map[string]time.Time{}
	for _, s := range srv.Log() {
		at, seen := first[s.Digest]
		if !seen {
			first[s.Digest] = s.At
			continue
		}
		repeats++
		excused := false
		for _, d := range ds {
			if !at.Before(d.start.Add(-2*time.Second)) && !at.After(d.end.Add(2*time.Second)) && s.At.After(d.start) {
				excused = true
			}
		}
		if !excused {
			t.Errorf("request %s answered at %v was made again at %v", s.Digest, at.Format(time.StampMilli), s.At.Format(time.StampMilli))
		}
	}
	if repeats > 8*len(ds) {
		t.Errorf("%d calls paid twice after %d disruptions; at most 8 can be in flight at each", repeats, len(ds))
	}
	return repeats, len(first)
}

// TestDistributedIdentity runs generate with --nats against three worker
// processes and checks that the output and evidence are byte-identical
// to the local run of the same configuration, that no request reached
// the model server twice, that the work was shared, and that the NATS
// token appears nowhere.
func TestDistributedIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	c := newCluster(t, 5*time.Millisecond, 4)
	want := c.reference(24)
	for range 3 {
		c.startWorker()
	}
	runDir := filepath.Join(c.dir, "dist")
	env := map[string]string{jetstream.TokenEnv: chaosToken}
	args := c.coordinatorArgs(runDir, "-", 24)
	args = args[:len(args)-4] // stdout, not -o
	args = append(args, "--nats", c.nats.url())
	got, stderr, code := runCLIEnv(t, env, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got != want {
		t.Fatalf("distributed output differs from the local run:\n got %d bytes\nwant %d bytes", len(got), len(want))
	}
	sameEvidence(t, filepath.Join(c.dir, "ref"), runDir)
	for d, n := range c.srv.Counts() {
		if n != 1 {
			t.Errorf("request %s served %d times", d, n)
		}
	}
	m := readManifest(t, filepath.Join(runDir, "manifest.json"))
	// Calls still queued when the targets were reached are abandoned:
	// counted, perhaps never served (as with the local executor).
	if m.Totals.Calls == 0 || m.Totals.CompletionTokens == 0 || m.Totals.Calls-m.Totals.CacheHits > c.srv.Served()+16 {
		t.Errorf("manifest totals %+v; the server served %d", m.Totals, c.srv.Served())
	}
	served := c.stopWorkers()
	busy := 0
	for _, n := range served {
		if n > 0 {
			busy++
		}
	}
	t.Logf("workers served %v of %d replies", served, c.srv.Served())
	if busy < 2 {
		t.Errorf("workers served %v: the work was not shared", served)
	}
	if strings.Contains(stderr, chaosToken) {
		t.Error("the NATS token appears in the coordinator's diagnostics")
	}
	c.noSecrets(runDir)

	// The same command again: everything is answered from the caches, no
	// worker needed.
	c.srv.WaitIdle()
	before := c.srv.Served()
	again, stderr, code := runCLIEnv(t, env, args...)
	if code != 0 || again != want || c.srv.Served() != before {
		t.Errorf("replay: exit %d, same output %v, %d new calls\n%s", code, again == want, c.srv.Served()-before, stderr)
	}
}

// chaos runs the distributed generate command while disrupt, called
// rounds times at random points, breaks something; the coordinator is
// restarted with the same command whenever it dies. It checks that the
// final output is byte-identical to the local run and that no finished
// call was paid again.
func chaos(t *testing.T, seed uint64, rounds int, disrupt func(c *cluster, coord **proc, rng *rand.Rand) *disruption) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	const n = 40
	c := newCluster(t, 40*time.Millisecond, 4)
	want := c.reference(n)
	for range 3 {
		c.startWorker()
	}
	runDir := filepath.Join(c.dir, "dist")
	out := filepath.Join(c.dir, "out.jsonl")
	coord := c.startCoordinator(runDir, out, n)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	var ds []disruption
	restarts := 0
	deadline := time.Now().Add(90 * time.Second)
	for round := 0; ; round++ {
		if round < rounds {
			time.Sleep(time.Duration(250+rng.IntN(400)) * time.Millisecond)
		}
		if coord.exited() {
			if _, err := os.Stat(out); err == nil {
				break // finished
			}
			if coord.err != nil && !strings.Contains(coord.err.Error(), "killed") {
				t.Fatalf("coordinator failed: %v\n%s", coord.err, coord.stderr.String())
			}
			restarts++
			coord = c.startCoordinator(runDir, out, n)
		}
		if round < rounds {
			if d := disrupt(c, &coord, rng); d != nil {
				ds = append(ds, *d)
			}
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output after %v; coordinator stderr:\n%s", 90*time.Second, coord.stderr.String())
		}
		select {
		case <-coord.done:
		case <-time.After(time.Until(deadline)):
		}
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("output after %d rounds differs from the local run:\n got %d bytes\nwant %d bytes", rounds, len(got), len(want))
	}
	repeats, distinct := repaid(t, c.srv, ds)
	t.Logf("%d rounds, %d coordinator restarts, %d replies served, %d distinct, %d repaid", rounds, restarts, c.srv.Served(), distinct, repeats)
	c.stopWorkers()
	c.noSecrets(runDir)
}

// TestChaosKillWorker kills one worker at a time mid-run with SIGKILL and
// starts a replacement: its calls go to the other workers.
func TestChaosKillWorker(t *testing.T) {
	chaos(t, 1, 4, func(c *cluster, _ **proc, rng *rand.Rand) *disruption {
		var live []*proc
		for _, w := range c.workers {
			if !w.exited() {
				live = append(live, w)
			}
		}
		d := &disruption{start: time.Now()}
		live[rng.IntN(len(live))].kill()
		d.end = time.Now()
		c.startWorker()
		return d
	})
}

// TestChaosKillCoordinator kills the coordinator with SIGKILL: the same
// command resumes, replaying the results stored meanwhile.
func TestChaosKillCoordinator(t *testing.T) {
	chaos(t, 2, 4, func(c *cluster, coord **proc, _ *rand.Rand) *disruption {
		(*coord).kill()
		return nil // no call may be paid twice
	})
}

// TestChaosKillAllWorkers kills every worker, then starts new ones.
func TestChaosKillAllWorkers(t *testing.T) {
	chaos(t, 3, 3, func(c *cluster, _ **proc, rng *rand.Rand) *disruption {
		d := &disruption{start: time.Now()}
		for _, w := range c.workers {
			if !w.exited() {
				w.kill()
			}
		}
		d.end = time.Now()
		time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
		for range 3 {
			c.startWorker()
		}
		return d
	})
}

// TestChaosRestartNATS restarts the NATS server on its file store.
func TestChaosRestartNATS(t *testing.T) {
	chaos(t, 4, 3, func(c *cluster, _ **proc, rng *rand.Rand) *disruption {
		d := &disruption{start: time.Now()}
		c.nats.restart(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		d.end = time.Now()
		return d
	})
}

// TestDistributedSecurity: a worker without the token cannot connect, the
// embedded server refuses to listen beyond loopback without one, and the
// NATS flags are checked.
func TestDistributedSecurity(t *testing.T) {
	n := startNATS(t, chaosToken)
	srv := fakeModels(t, 0)
	dir := t.TempDir()
	cfg := fakeConfig(t, dir, srv.URL, 2)
	_, stderr, code := runCLI(t, "worker", "--nats", n.url(), "-c", cfg)
	if code != 1 || !strings.Contains(stderr, jetstream.TokenEnv) || !strings.Contains(strings.ToLower(stderr), "authorization") {
		t.Errorf("worker without the token: exit %d\n%s", code, stderr)
	}
	_, stderr, code = runCLIEnv(t, map[string]string{jetstream.TokenEnv: "wrong"}, "worker", "--nats", n.url(), "-c", cfg)
	if code != 1 || strings.Contains(stderr, chaosToken) {
		t.Errorf("worker with a wrong token: exit %d\n%s", code, stderr)
	}
	seeds := writeTestSeeds(t, dir)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-listen", "0.0.0.0:-1"}, "refusing to serve NATS beyond loopback without authentication"},
		{[]string{"--nats-listen", ":-1"}, jetstream.TokenEnv},
		{[]string{"--nats-listen", "nonsense"}, "--nats-listen"},
		{[]string{"--nats", n.url(), "--nats-listen", "127.0.0.1:-1"}, "contradict"},
		{[]string{"--nats-ack-wait", "1s"}, "--nats-ack-wait applies to distributed runs"},
	} {
		_, stderr, code := runCLI(t, append([]string{"generate", "-c", cfg, "--seeds", seeds, "--run-dir", filepath.Join(dir, "run")}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", tt.args, code, tt.want, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "worker", "-c", cfg); code != 2 || !strings.Contains(stderr, "--nats") {
		t.Errorf("worker without --nats: exit %d\n%s", code, stderr)
	}
	// A worker whose endpoints are all unreachable has nothing to serve.
	deadCfg := fakeConfig(t, t.TempDir(), "http://127.0.0.1:1", 2)
	_, stderr, code = runCLIEnv(t, map[string]string{jetstream.TokenEnv: chaosToken}, "worker", "--nats", n.url(), "-c", deadCfg, "--dial-timeout", "200ms")
	if code != 1 || !strings.Contains(stderr, "no model can be served") || !strings.Contains(stderr, "not serving model") {
		t.Errorf("worker with unreachable endpoints: exit %d\n%s", code, stderr)
	}
}

// TestDistributedEmbedded runs the embedded mode: generate --nats-listen
// with its store in the run directory, and a worker process joining it.
func TestDistributedEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker process")
	}
	c := newCluster(t, 0, 4)
	want := c.reference(12)
	// A free port for the embedded server, so that the worker knows it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	runDir := filepath.Join(c.dir, "emb")
	out := filepath.Join(c.dir, "emb.jsonl")
	coord := startProc(t, c.bin, c.env, "generate", "-c", c.cfg, "--seeds", c.seeds, "--meta", "-n", "12",
		"--run-dir", runDir, "-o", out, "--nats-listen", addr)
	c.all = append(c.all, coord)
	w := startProc(t, c.bin, c.env, "worker", "--nats", "nats://"+addr, "-c", c.cfg, "--connect-wait", "20s")
	c.all = append(c.all, w)
	if err := coord.wait(t, 60*time.Second); err != nil {
		t.Fatalf("coordinator: %v\n%s\nworker:\n%s", err, coord.stderr.String(), w.stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != want {
		t.Fatalf("embedded run output differs from the local run (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "nats", "jetstream")); err != nil {
		t.Errorf("the embedded server's store is not in the run directory: %v", err)
	}
	if !strings.Contains(coord.stderr.String(), "NATS JetStream server started") {
		t.Errorf("the coordinator does not say where workers connect:\n%s", coord.stderr.String())
	}
	w.stop()
	c.noSecrets(runDir)
}

// TestDistributedFilter runs filter --ensemble with --nats against a
// worker process, with an answering judge: the same records, decided and
// graded the same way, as the local run, and the calls reported.
func TestDistributedFilter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a worker process")
	}
	c := newCluster(t, 0, 2)
	data := filepath.Join(c.dir, "data.jsonl")
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, `{"instruction": "Please process the given record number %d", "input": "value %d", "output": "result %d"}`+"\n", i, i, i)
	}
	os.WriteFile(data, []byte(b.String()), 0o644)
	specs := []string{"--ensemble", "ollama:e1@" + c.srv.URL, "--ensemble", "ollama:e2@" + c.srv.URL,
		"--select", "judge", "--judge", "ollama:judge@" + c.srv.URL, "--judge-mode", "answer"}
	want, stderr, code := runCLI(t, append([]string{"filter", "--no-cache", "--meta", data}, specs...)...)
	if code != 0 {
		t.Fatalf("local filter: exit %d\n%s", code, stderr)
	}
	w := startProc(t, c.bin, c.env, "worker", "--nats", c.nats.url(), "--model", "ollama:e1@"+c.srv.URL, "--model", "ollama:e2@"+c.srv.URL, "--model", "ollama:judge@"+c.srv.URL)
	c.all = append(c.all, w)
	c.srv.WaitIdle()
	served := c.srv.Served()
	env := map[string]string{jetstream.TokenEnv: chaosToken}
	got, stderr, code := runCLIEnv(t, env, append([]string{"filter", "--cache", filepath.Join(c.dir, "f.db"), "--meta", "--nats", c.nats.url(), data}, specs...)...)
	if code != 0 || got != want {
		t.Fatalf("distributed filter: exit %d, same output %v\n%s\nworker:\n%s", code, got == want, stderr, w.stderr.String())
	}
	if !strings.Contains(want, `"judge":[`) || strings.Contains(want, `"judge":null`) {
		t.Errorf("the local run has no judge grades:\n%s", want)
	}
	if !strings.Contains(stderr, "filter: 24 ensemble calls, 0 answered from the cache") ||
		!strings.Contains(stderr, "filter: 12 judge calls (answer mode), 0 answered from the cache") || c.srv.Served()-served != 36 {
		t.Errorf("report or calls: %d new calls\n%s", c.srv.Served()-served, stderr)
	}
	w.stop()
	c.noSecrets(c.dir)
}

// TestCacheExportImport starts a run locally, exports its cache, and
// finishes it distributed from another run directory with nothing but
// the bucket; then imports the bucket into a fresh cache, and a local
// run from it calls no model.
func TestCacheExportImport(t *testing.T) {
	c := newCluster(t, 0, 2)
	env := map[string]string{jetstream.TokenEnv: chaosToken}
	local := filepath.Join(c.dir, "local")
	base := []string{"generate", "-c", c.cfg, "--seeds", c.seeds, "--meta", "-n", "12"}
	want, stderr, code := runCLI(t, append(base, "--run-dir", local)...)
	if code != 0 {
		t.Fatalf("local run: exit %d\n%s", code, stderr)
	}
	c.srv.WaitIdle() // calls the run gave up on may still be finishing
	served := c.srv.Served()
	_, stderr, code = runCLIEnv(t, env, "cache", "export", "--nats", c.nats.url(), "--run-dir", local)
	if code != 0 || !strings.Contains(stderr, "responses copied") {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	// No worker runs: every call must be answered from the bucket.
	got, stderr, code := runCLIEnv(t, env, append(base, "--nats", c.nats.url(), "--run-dir", filepath.Join(c.dir, "other"))...)
	c.srv.WaitIdle()
	if code != 0 || got != want || c.srv.Served() != served {
		t.Fatalf("distributed from the bucket: exit %d, same %v, %d calls\n%s", code, got == want, c.srv.Served()-served, stderr)
	}
	fresh := filepath.Join(c.dir, "fresh")
	_, stderr, code = runCLIEnv(t, env, "cache", "import", "--nats", c.nats.url(), "--run-dir", fresh)
	if code != 0 || !strings.Contains(stderr, "responses copied") {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	got, stderr, code = runCLI(t, append(base, "--run-dir", fresh)...)
	c.srv.WaitIdle()
	// Calls started after the target was in sight are timing-dependent
	// (a replay runs ahead faster); they change nothing in the output.
	if code != 0 || got != want || c.srv.Served() > served+16 {
		t.Fatalf("local from the imported cache: exit %d, same %v, %d new calls\n%s", code, got == want, c.srv.Served()-served, stderr)
	}
	if _, stderr, code := runCLI(t, "cache", "export", "--run-dir", fresh); code != 2 || !strings.Contains(stderr, "--nats") {
		t.Errorf("export without --nats: exit %d\n%s", code, stderr)
	}
}
