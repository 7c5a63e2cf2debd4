package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultRefresh is how often, in seconds, a served page asks whether
// its files changed.
const DefaultRefresh = 2.0

// Handler serves the report of a run directory or dataset, rebuilt from
// the files on every request, so that it follows a run that is still
// writing them: GET / is the page, GET /version a token that changes when
// the files do (the page polls it and reloads itself). It answers only
// requests addressed to a loopback host, so that a web page elsewhere
// cannot reach it through a rebound DNS name. Build errors are shown as a
// page that retries. It is safe for concurrent use once its fields are
// set; the zero value is not useful.
type Handler struct {
	// Path is the run directory or file, and Rejected an optional
	// rejected file, as given to Resolve.
	Path     string
	Rejected string
	Options  Options
	// Refresh is the page's polling interval in seconds (0:
	// DefaultRefresh).
	Refresh float64
	// Logger receives build errors (nil: discarded).
	Logger *slog.Logger
}

// ServeHTTP serves the page and its version.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		http.Error(w, "this report is served to loopback hosts only", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "/version":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, h.version())
	case "/":
		h.page(w)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) refresh() float64 {
	if h.Refresh > 0 {
		return h.Refresh
	}
	return DefaultRefresh
}

// page builds and renders the report; the version is taken first, so a
// change made while building reloads the page once more.
func (h *Handler) page(w http.ResponseWriter) {
	version := h.version()
	var buf bytes.Buffer
	src, err := Resolve(h.Path, h.Rejected)
	var f *Figures
	if err == nil {
		f, err = Build(src, h.Options)
	}
	if err == nil {
		err = Render(&buf, f, RenderOptions{Refresh: h.refresh(), VersionURL: "version", Version: version})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		if h.Logger != nil {
			h.Logger.Warn("report", "err", err)
		}
		w.WriteHeader(http.StatusInternalServerError)
		errorPage.Execute(w, struct {
			Err     string
			Refresh float64
		}{err.Error(), h.refresh()})
		return
	}
	w.Write(buf.Bytes())
}

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{{.Refresh}}">
<title>ensinstruct report: error</title></head>
<body><h1>The report cannot be built</h1><pre>{{.Err}}</pre><p>Retrying every {{.Refresh}} s.</p></body></html>
`))

// version is a token of the files' names, sizes and modification times.
func (h *Handler) version() string {
	paths := []string{h.Path, h.Rejected}
	if st, err := os.Stat(h.Path); err == nil && st.IsDir() {
		paths = append(paths, filepath.Join(h.Path, ManifestFile), filepath.Join(h.Path, KeptFile), filepath.Join(h.Path, RejectedFile))
	}
	sum := fnv.New64a()
	for _, p := range paths {
		if p == "" {
			continue
		}
		fmt.Fprint(sum, p)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			fmt.Fprint(sum, st.Size(), st.ModTime().UnixNano())
		}
		sum.Write([]byte{0})
	}
	return fmt.Sprintf("%016x", sum.Sum64())
}

// loopbackHost reports whether a request's Host names a loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNotLoopback is returned by CheckLoopback for an address that would
// expose the report beyond this machine.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckLoopback accepts only host:port addresses whose host is
// "localhost" or a loopback IP (127.0.0.0/8, ::1). An empty host means
// every interface and is refused.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT: %w", addr, err)
	}
	if host == "" || !loopbackHost(host) {
		return fmt.Errorf("%q: %w: the report is served on 127.0.0.1, ::1 or localhost only", addr, ErrNotLoopback)
	}
	return nil
}

// Serve listens on addr, which must be a loopback address, reports the
// page's URL to ready, and serves h until ctx is done.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(url string)) error {
	if err := CheckLoopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serving the report: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if ready != nil {
		ready("http://" + ln.Addr().String() + "/")
	}
	select {
	case err := <-done:
		return fmt.Errorf("serving the report: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	<-done
	if err != nil {
		return fmt.Errorf("stopping the report server: %w", err)
	}
	return ctx.Err()
}
