package llm

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Transport is the round tripper of the Pool's default client. Plain
// http:// requests that no proxy takes are written and read on the
// caller's goroutine, over keep-alive connections it pools itself; every
// other request (https, a proxy from the environment) goes to the
// standard transport.
//
// Why: the standard transport gives every connection a reading and a
// writing goroutine, so each call passes between three goroutines several
// times, and at a few hundred calls a second each hand-off wakes an idle
// thread. A model endpoint on the same machine or network answers one
// request at a time per connection, which needs none of that. The request
// and the response are still written and parsed by net/http itself
// (Request.Write, ReadResponse), so what goes over the wire is the same.
//
// A pooled connection has no reader while it is idle, so it cannot notice
// that the server closed it. Before reuse it is probed with a read that
// cannot wait (where the system has one). A reused connection that still
// fails before the first byte of the reply (the server closed it in the
// meantime) is replaced once by a newly dialled one and the request sent
// again, as the standard transport does for a closed idle connection. A
// new connection that fails is never replayed: the Pool's retries decide.
// A connection idle for longer than the standard transport's
// IdleConnTimeout is not reused, in case a firewall dropped it unseen.
type h1Transport struct {
	// std takes everything the direct path does not; its
	// MaxIdleConnsPerHost, IdleConnTimeout and WriteBufferSize apply to
	// the direct path's connections too.
	std  *http.Transport
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle map[string][]*h1Conn // by host:port, most recently used last
}

func newH1Transport(std *http.Transport) *h1Transport {
	dial := std.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &h1Transport{std: std, dial: dial, idle: make(map[string][]*h1Conn)}
}

// h1ReadBuffer is the read buffer of a direct connection: a reply of a
// few KiB is read in one piece.
const h1ReadBuffer = 16 << 10

// h1Conn is one pooled connection.
type h1Conn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	addr string
	idle time.Time // when it was last put back
}

// direct reports whether req takes the direct path.
func (t *h1Transport) direct(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.URL.Host == "" || req.Header.Get("Expect") != "" {
		return false
	}
	if t.std.Proxy != nil {
		if u, err := t.std.Proxy(req); err != nil || u != nil {
			return false
		}
	}
	return true
}

// hostPort returns the address to dial for an http:// URL.
func hostPort(req *http.Request) string {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

// RoundTrip implements http.RoundTripper.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		return t.std.RoundTrip(req)
	}
	ctx := req.Context()
	addr := hostPort(req)
	for try := 0; ; try++ {
		var pc *h1Conn
		reused := false
		if try == 0 {
			pc, reused = t.get(addr)
		}
		if pc == nil {
			c, err := t.dial(ctx, "tcp", addr)
			if err != nil {
				closeBody(req)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, err
			}
			pc = &h1Conn{conn: c, br: bufio.NewReaderSize(c, h1ReadBuffer), bw: bufio.NewWriterSize(c, t.std.WriteBufferSize), addr: addr}
		}
		resp, replay, err := t.exchange(ctx, pc, req, reused)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		if replay && req.GetBody != nil && ctx.Err() == nil {
			body, gerr := req.GetBody()
			if gerr == nil {
				r := *req
				r.Body = body
				req = &r
				continue
			}
		}
		closeBody(req)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// exchange writes req on pc and reads the reply's header. replay is true
// when the reply failed before its first byte on a reused connection: the
// server had closed it, and the request may go out again.
func (t *h1Transport) exchange(ctx context.Context, pc *h1Conn, req *http.Request, reused bool) (resp *http.Response, replay bool, err error) {
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if err := req.Write(pc.bw); err != nil {
		return nil, reused, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, reused, err
	}
	if _, err := pc.br.Peek(1); err != nil {
		return nil, reused, err
	}
	resp, err = http.ReadResponse(pc.br, req)
	if err != nil {
		return nil, false, err
	}
	keep := !resp.Close && !req.Close && resp.ProtoAtLeast(1, 1)
	resp.Body = &h1Body{rc: resp.Body, t: t, pc: pc, ctx: ctx, stop: stop, keep: keep}
	return resp, false, nil
}

// get takes an idle connection to addr that is still open, or returns nil.
func (t *h1Transport) get(addr string) (*h1Conn, bool) {
	for {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			return nil, false
		}
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if maxAge := t.std.IdleConnTimeout; pc.alive() && (maxAge <= 0 || time.Since(pc.idle) < maxAge) {
			return pc, true
		}
		pc.conn.Close()
	}
}

// alive reports whether an idle connection may carry the next request:
// nothing is buffered from it, and a read that cannot wait finds it open
// with nothing to read (probeIdle).
func (pc *h1Conn) alive() bool {
	return pc.br.Buffered() == 0 && probeIdle(pc.conn)
}

// put returns a connection whose reply was read to the end.
func (t *h1Transport) put(pc *h1Conn) {
	pc.idle = time.Now()
	t.mu.Lock()
	if list := t.idle[pc.addr]; len(list) < t.std.MaxIdleConnsPerHost {
		t.idle[pc.addr] = append(list, pc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	pc.conn.Close()
}

// CloseIdleConnections closes the idle connections of both paths.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*h1Conn)
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.conn.Close()
		}
	}
	t.std.CloseIdleConnections()
}

// h1Body is a reply body on the direct path. The connection goes back to
// the pool when the body has been read to its end (or Close finds the end
// within a few KiB) and the call was not cancelled meanwhile; otherwise it
// is closed.
type h1Body struct {
	rc   io.ReadCloser
	t    *h1Transport
	pc   *h1Conn
	ctx  context.Context
	stop func() bool
	keep bool
	done bool  // the connection is released
	err  error // what every Read returns once done
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
		b.err = io.EOF
	case err != nil:
		b.finish(false)
		if cerr := b.ctx.Err(); cerr != nil {
			err = cerr
		}
		b.err = err
	}
	return n, err
}

var errBodyClosed = errors.New("http: read on closed response body")

func (b *h1Body) Close() error {
	defer func() { b.err = errBodyClosed }()
	if b.done {
		return nil
	}
	_, err := io.Copy(io.Discard, io.LimitReader(b.rc, 4<<10))
	atEnd := false
	if err == nil {
		var one [1]byte
		n, rerr := b.rc.Read(one[:])
		atEnd = n == 0 && rerr == io.EOF
	}
	b.finish(atEnd)
	return nil
}

func (b *h1Body) finish(atEnd bool) {
	b.done = true
	cancelled := !b.stop()
	if atEnd && b.keep && !cancelled {
		b.rc.Close() // at its end: reads nothing
		b.t.put(b.pc)
		return
	}
	// The connection first: closing a reply body the standard way reads
	// it to its end, which a closed connection cuts short.
	b.pc.conn.Close()
	b.rc.Close()
}
