package jetstream

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ensinstruct/ensinstruct/llm"
	"golang.org/x/sync/errgroup"
)

// TestServerRestart restarts the NATS server (same file store, same
// port) twice while calls are queued and in flight: every call completes,
// and no request is made twice. AckWait is longer than an outage with its
// reconnects and retried operations (a few seconds on a loaded machine),
// as the default (30 s) is: a call held by a worker through the outage is
// not handed to another worker meanwhile.
func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := StartServer(ServerConfig{Host: "127.0.0.1", Port: -1, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	port := s.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { s.Shutdown() })
	srv := echoServer(t, 30*time.Millisecond)
	cfg := poolConfig(srv.URL, 4)
	e := newExecutor(t, connect(t, s, ""), newPool(t, cfg, nil, nil), Options{AckWait: 10 * time.Second})
	for range 2 {
		runWorker(t, connect(t, s, ""), newPool(t, cfg, nil, nil), time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var g errgroup.Group
	got := make([]llm.Response, 150)
	for i := range got {
		g.Go(func() error {
			var err error
			got[i], err = e.Do(ctx, []string{"a", "b"}[i%2], req(i), 0)
			return err
		})
	}
	for range 2 {
		time.Sleep(300 * time.Millisecond)
		s.Shutdown()
		time.Sleep(200 * time.Millisecond)
		if s, err = StartServer(ServerConfig{Host: "127.0.0.1", Port: port, StoreDir: dir}); err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted; %d replies served so far", srv.Served())
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if want := []string{"a", "b"}[i%2] + " says " + req(i).Prompt; r.Text != want {
			t.Errorf("call %d: %q, want %q", i, r.Text, want)
		}
	}
	repeats := 0
	for _, c := range srv.Counts() {
		repeats += c - 1
	}
	t.Logf("%d replies, %d distinct requests", srv.Served(), len(srv.Counts()))
	if repeats > 0 {
		t.Errorf("%d answered requests were made again", repeats)
	}
}
