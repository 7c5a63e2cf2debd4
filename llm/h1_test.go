package llm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer starts an httptest server that counts the connections it
// accepted.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// echo replies with the request's method, path and body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
}

func postString(t *testing.T, c *http.Client, ctx context.Context, u, body string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// h1Of returns the direct transport of the default client.
func h1Of(t *testing.T, c *http.Client) *h1Transport {
	t.Helper()
	h, ok := c.Transport.(*h1Transport)
	if !ok {
		t.Fatalf("the default client's transport is %T", c.Transport)
	}
	return h
}

func (t *h1Transport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, l := range t.idle {
		n += len(l)
	}
	return n
}

// Concurrent calls each get their own reply, on at most as many
// connections as calls were in flight, and the connections are kept.
func TestH1ConcurrentCallsKeepTheirConnections(t *testing.T) {
	srv, conns := countingServer(t, echo)
	c := newHTTPClientFor(8)
	var wg sync.WaitGroup
	errs := make(chan error, 8*25)
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				body := fmt.Sprintf("g%d-i%d-%s", g, i, strings.Repeat("x", i*300))
				got, err := postString(t, c, context.Background(), srv.URL+"/p?q=1", body)
				if err == nil && got != "POST /p?q=1 "+body {
					err = fmt.Errorf("call g%d i%d got %.40q", g, i, got)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.Load(); n < 1 || n > 8 {
		t.Errorf("8 concurrent callers opened %d connections, want 1 to 8", n)
	}
	if n := h1Of(t, c).idleCount(); n != int(conns.Load()) {
		t.Errorf("%d idle connections kept, want all %d", n, conns.Load())
	}
}

// A connection the server closed while it was idle is noticed before it
// is used: every call succeeds, each on a new connection.
func TestH1ServerClosedIdleConnection(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	var conns atomic.Int32
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
		case http.StateIdle:
			c.Close() // as an idle timeout does
		}
	}
	srv.Start()
	defer srv.Close()
	c := newHTTPClientFor(4)
	for i := range 5 {
		if i > 0 {
			// let the close arrive before the next call
			deadline := time.Now().Add(5 * time.Second)
			for conns.Load() < int32(i) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
		got, err := postString(t, c, context.Background(), srv.URL, fmt.Sprint(i))
		if err != nil || got != "POST / "+fmt.Sprint(i) {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}
	if n := conns.Load(); n != 5 {
		t.Errorf("%d connections, want 5", n)
	}
}

// rawServer serves HTTP/1.1 by hand, so that it can close a connection
// after reading a request and before replying: the race the probe of an
// idle connection cannot see.
func rawServer(t *testing.T, serve func(n int, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(n, c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRequest reads one request from br, or returns false.
func readRequest(br *bufio.Reader) (string, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", false
	}
	b, _ := io.ReadAll(req.Body)
	return string(b), true
}

// A reused connection that the server closes without a reply is replaced
// once, and the request goes out again on a new connection.
func TestH1ReplaysOnAConnectionClosedBeforeTheReply(t *testing.T) {
	var seen sync.Map // body -> times
	u := rawServer(t, func(n int, c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for served := 0; ; served++ {
			body, ok := readRequest(br)
			if !ok {
				return
			}
			v, _ := seen.LoadOrStore(body, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
			if n == 0 && served == 1 {
				return // the first connection's second request: closed unanswered
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	c := newHTTPClientFor(4)
	for _, body := range []string{"one", "two", "three"} {
		got, err := postString(t, c, context.Background(), u, body)
		if err != nil || got != body {
			t.Fatalf("%s: %q, %v", body, got, err)
		}
	}
	v, _ := seen.Load("two")
	if n := v.(*atomic.Int32).Load(); n != 2 {
		t.Errorf("the unanswered request was sent %d times, want 2", n)
	}
}

// A new connection that fails before the reply is not replayed: the
// server saw the request, and the Pool's retries decide.
func TestH1NoReplayOnANewConnection(t *testing.T) {
	var sent atomic.Int32
	u := rawServer(t, func(_ int, c net.Conn) {
		defer c.Close()
		if _, ok := readRequest(bufio.NewReader(c)); ok {
			sent.Add(1)
		}
	})
	c := newHTTPClientFor(4)
	if _, err := postString(t, c, context.Background(), u, "x"); err == nil {
		t.Fatal("no error for a connection closed without a reply")
	}
	if n := sent.Load(); n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
}

// Cancelling the call while the server works ends it at once with the
// context's error, and closes the connection.
func TestH1CancelWhileWaiting(t *testing.T) {
	gone := make(chan struct{})
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server watches for a hang-up once the body is read
		<-r.Context().Done()
		close(gone)
	})
	c := newHTTPClientFor(4)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := postString(t, c, ctx, srv.URL, "x")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the connection close")
	}
	if n := h1Of(t, c).idleCount(); n != 0 || conns.Load() != 1 {
		t.Errorf("%d idle connections after a cancelled call, %d opened", n, conns.Load())
	}
}

// Cancelling while the body is read fails the read with the context's
// error, and the connection is not kept.
func TestH1CancelWhileReadingTheBody(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first part"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := newHTTPClientFor(4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	for err == nil && n < len("first part") {
		var m int
		m, err = resp.Body.Read(buf[n:])
		n += m
	}
	if string(buf[:n]) != "first part" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	resp.Body.Close()
	if n := h1Of(t, c).idleCount(); n != 0 {
		t.Errorf("%d idle connections after a cancelled body", n)
	}
}

// How a reply ends decides whether its connection is kept: chunked
// replies read to the end are, "Connection: close" and a body closed
// far from its end are not.
func TestH1WhichConnectionsAreKept(t *testing.T) {
	for _, tt := range []struct {
		name     string
		handler  http.HandlerFunc
		read     int // bytes read before Close; -1: all
		want     string
		wantConn int32 // connections for 3 calls
	}{
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		}, -1, "ab", 1},
		{"connection close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.Write([]byte("ab"))
		}, -1, "ab", 3},
		{"a few bytes left", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ab\n\n"))
		}, 2, "ab", 1},
		{"a large body left", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ab"))
			w.Write([]byte(strings.Repeat("z", 1<<20)))
		}, 2, "ab", 3},
		{"no body", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, 0, "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := countingServer(t, tt.handler)
			c := newHTTPClientFor(4)
			for i := range 3 {
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				var got []byte
				if tt.read < 0 {
					got, err = io.ReadAll(resp.Body)
				} else {
					got = make([]byte, tt.read)
					_, err = io.ReadFull(resp.Body, got)
				}
				start := time.Now()
				resp.Body.Close()
				if err != nil || string(got) != tt.want {
					t.Fatalf("call %d: %q, %v", i, got, err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("Close took %v", d)
				}
			}
			if n := conns.Load(); n != tt.wantConn {
				t.Errorf("3 calls opened %d connections, want %d", n, tt.wantConn)
			}
			wantIdle := 0
			if tt.wantConn == 1 {
				wantIdle = 1
			}
			if n := h1Of(t, c).idleCount(); n != wantIdle {
				t.Errorf("%d idle connections kept, want %d", n, wantIdle)
			}
		})
	}
}

// https and proxied requests go to the standard transport.
func TestH1WhatTakesTheDirectPath(t *testing.T) {
	std := http.DefaultTransport.(*http.Transport).Clone()
	h := newH1Transport(std)
	req := func(u string) *http.Request {
		r, err := http.NewRequest("POST", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for u, want := range map[string]bool{
		"http://127.0.0.1:11434/api/generate": true,
		"http://gpu-box/v1/chat/completions":  true,
		"https://api.example.com/v1":          false,
	} {
		if got := h.direct(req(u)); got != want {
			t.Errorf("direct(%s) = %v, want %v", u, got, want)
		}
	}
	proxy, _ := url.Parse("http://proxy:3128")
	std.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "gpu-box" {
			return proxy, nil
		}
		return nil, nil
	}
	if h.direct(req("http://gpu-box/v1")) || !h.direct(req("http://other/v1")) {
		t.Error("a proxied host took the direct path, or an unproxied one did not")
	}
	expect := req("http://127.0.0.1/x")
	expect.Header.Set("Expect", "100-continue")
	if h.direct(expect) {
		t.Error("Expect: 100-continue took the direct path")
	}

	// And the standard path works through it.
	srv := httptest.NewTLSServer(http.HandlerFunc(echo))
	defer srv.Close()
	std.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	got, err := postString(t, &http.Client{Transport: h}, context.Background(), srv.URL+"/tls", "b")
	if err != nil || got != "POST /tls b" {
		t.Errorf("https through the fallback: %q, %v", got, err)
	}
}

// A reply that is not HTTP fails the call and its connection is dropped.
func TestH1GarbageReply(t *testing.T) {
	u := rawServer(t, func(_ int, c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			if _, ok := readRequest(br); !ok {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH\r\n\r\n"))
		}
	})
	c := newHTTPClientFor(4)
	if _, err := postString(t, c, context.Background(), u, "x"); err == nil {
		t.Fatal("no error for a reply that is not HTTP")
	}
	if n := h1Of(t, c).idleCount(); n != 0 {
		t.Errorf("%d idle connections kept after garbage", n)
	}
}

// CloseIdleConnections closes what the pool keeps.
func TestH1CloseIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	c := newHTTPClientFor(4)
	if _, err := postString(t, c, context.Background(), srv.URL, "x"); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
}

// The probe of an idle connection tells an open one from one the server
// closed, without waiting.
func TestH1ProbeOfAnIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := <-accepted
	pc := &h1Conn{conn: c, br: bufio.NewReader(c)}
	start := time.Now()
	if !pc.alive() {
		t.Error("an open connection probed as closed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the probe waited %v", d)
	}
	// eventually: the probe must see what the server did, once it arrives
	eventuallyNotAlive := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); pc.alive(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("%s probed as usable for 5 s", what)
				return
			}
		}
	}
	server.Write([]byte("HTTP/1.1 200 OK\r\n"))
	eventuallyNotAlive("a connection with unasked bytes")
	pc = &h1Conn{conn: c, br: bufio.NewReader(c)}
	pc.br.Discard(len("HTTP/1.1 200 OK\r\n"))
	if !pc.alive() {
		t.Error("an open connection, its bytes read, probed as closed")
	}
	server.Close()
	eventuallyNotAlive("a connection the server closed")
}

// A body read to its end keeps answering io.EOF, as the standard one
// does, and a closed one says so.
func TestH1BodyAfterItsEnd(t *testing.T) {
	srv, _ := countingServer(t, echo)
	c := newHTTPClientFor(4)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	if n, err := resp.Body.Read(b[:]); n != 0 || err != io.EOF {
		t.Errorf("read after the end: %d, %v; want 0, EOF", n, err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(b[:]); err == nil || err == io.EOF {
		t.Errorf("read after Close: %v, want an error", err)
	}
}

// A connection idle for longer than IdleConnTimeout is not reused.
func TestH1IdleTimeout(t *testing.T) {
	srv, conns := countingServer(t, echo)
	c := newHTTPClientFor(4)
	h1Of(t, c).std.IdleConnTimeout = 100 * time.Millisecond
	for i, wait := range []time.Duration{0, 0, 300 * time.Millisecond} {
		time.Sleep(wait)
		if _, err := postString(t, c, context.Background(), srv.URL, "x"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one reused at once, one after the timeout)", n)
	}
}
