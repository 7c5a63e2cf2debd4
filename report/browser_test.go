package report

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ensinstruct/ensinstruct/internal/testenv"
)

var screenshot = flag.String("screenshot", "", "also save the browser test's screenshot of the realistic report to `FILE` (docs/report.png)")

// artifactsEnv names a directory where the browser tests save their
// screenshots; without it they go to the test's temporary directory.
const artifactsEnv = "ENSINSTRUCT_TEST_ARTIFACTS"

// browser is a headless Chromium tab that records what the page logs and
// every request it makes.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	console  []string
	requests []string
}

// newBrowser starts Debian's Chromium with a fresh profile and the flags
// that keep it off the network by itself (no background networking,
// component updates, sync or QUIC).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.Chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	b := &browser{}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	b.ctx = ctx
	return b
}

// listen runs on the tab's reading goroutine: it only records.
func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			b.console = append(b.console, fmt.Sprintf("console.%s: %v", ev.Type, ev.Args))
		}
	case *runtime.EventExceptionThrown:
		b.console = append(b.console, "exception: "+ev.ExceptionDetails.Text+" "+exceptionText(ev.ExceptionDetails))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			b.console = append(b.console, fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

// check fails the test for any console error or warning, and for any
// request whose URL allowed rejects.
func (b *browser) check(t *testing.T, allowed func(url string) bool) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		t.Errorf("the page logged: %s", m)
	}
	if len(b.requests) == 0 {
		t.Errorf("no request recorded: the listener is not working")
	}
	for _, u := range b.requests {
		if !allowed(u) {
			t.Errorf("the page requested %s", u)
		}
	}
}

func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// wantMarks is the number of marks each figure of f must draw.
func wantMarks(f *Figures) map[string]int {
	m := map[string]int{}
	for _, fn := range f.Funnels {
		n := 0
		for _, s := range fn.Stages {
			n += 1 + len(s.Drops)
			if s.Unfinished > 0 {
				n++
			}
		}
		m["funnel-"+fn.Type] = n
	}
	series := 1
	if sumInts(f.Novelty.Rejected) > 0 {
		series = 2
	}
	m["novelty"] = NoveltyBins * series
	for _, l := range f.Lengths {
		m["len-"+l.Field] = len(lengthEdges)
	}
	m["verbs"] = len(f.Verbs.Top)
	m["agreement"] = len(f.Members) * len(f.Members)
	m["calls"] = 2 * len(f.Calls)
	m["timeline"] = len(f.Timeline)
	return m
}

func saveScreenshot(t *testing.T, b *browser, name string) []byte {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return png
}

// TestBrowserReport opens a realistic report from a file in Chromium:
// every figure draws the marks its figures call for, the examples filter
// shows exactly the rows of the chosen reason, an example opens to show
// its candidates, and the page logs no error and fetches nothing.
func TestBrowserReport(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir()
	synthRun(t, dir, 150, 1)
	src, err := Resolve(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Build(src, Options{Title: "nightly run"})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := Render(&page, f, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := "file://" + path
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#group-filter"))); err != nil {
		t.Fatal(err)
	}

	marks := wantMarks(f)
	if len(marks) != 10 {
		t.Errorf("%d figures, want 10 (two funnels, novelty, three lengths, verbs, agreement, calls, timeline): %v", len(marks), marks)
	}
	for id, want := range marks {
		got := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll("svg#%s .mark").length`, id))
		if got != want || want == 0 {
			t.Errorf("svg#%s has %d marks, want %d (and more than 0)", id, got, want)
		}
	}

	// Filter by the most frequent consensus reason: its examples have
	// candidates to show.
	var group Group
	for _, g := range f.Groups {
		if !g.IsKept && strings.HasPrefix(g.Name, "consensus/") && g.Shown > group.Shown {
			group = g
		}
	}
	if group.Shown < 2 {
		t.Fatalf("the fixture has no consensus reason with two examples: %+v", f.Groups)
	}
	visible := `[...document.querySelectorAll("tr.example")].filter(r => r.getClientRects().length > 0).map(r => r.dataset.group)`
	if got := eval[[]string](t, b, visible); len(got) != len(f.Examples) {
		t.Errorf("%d rows visible before filtering, want %d", len(got), len(f.Examples))
	}
	if err := chromedp.Do(b.ctx,
		chromedp.SetValue(chromedp.CSS("#group-filter"), group.Name),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("group-filter").dispatchEvent(new Event("change"))`),
	); err != nil {
		t.Fatal(err)
	}
	checkRows := func(when string) {
		t.Helper()
		got := eval[[]string](t, b, visible)
		if len(got) != group.Shown {
			t.Errorf("%s: %d rows visible, want the %d of %s", when, len(got), group.Shown, group.Name)
		}
		for _, g := range got {
			if g != group.Name {
				t.Errorf("%s: a %s row is visible", when, g)
			}
		}
		if got, want := eval[string](t, b, `document.getElementById("shown-count").textContent`), fmt.Sprintf("%d shown", group.Shown); got != want {
			t.Errorf("%s: the count says %q, want %q", when, got, want)
		}
	}
	checkRows("filtered")

	// The first visible example opens to show every candidate.
	var first Example
	for _, ex := range f.Examples {
		if ex.Group == group.Name {
			first = ex
			break
		}
	}
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`tr.example:not([hidden]) summary`))); err != nil {
		t.Fatal(err)
	}
	cands := `[...document.querySelectorAll("tr.example:not([hidden]) details[open] tr.candidate")].filter(r => r.getClientRects().length > 0).length`
	if got := eval[int](t, b, cands); got != len(first.Candidates) || got < 2 {
		t.Errorf("the opened example shows %d candidates, want %d", got, len(first.Candidates))
	}

	// The screenshot shows the figures, the filter and an opened example.
	png := saveScreenshot(t, b, "report.png")
	if *screenshot != "" {
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The filter is kept in the address, so a reload keeps it.
	if err := chromedp.Do(b.ctx, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("#group-filter"))); err != nil {
		t.Fatal(err)
	}
	checkRows("after a reload")
	if err := chromedp.Do(b.ctx,
		chromedp.SetValue(chromedp.CSS("#group-filter"), ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("group-filter").dispatchEvent(new Event("change"))`),
	); err != nil {
		t.Fatal(err)
	}

	if got := eval[[]string](t, b, visible); len(got) != len(f.Examples) {
		t.Errorf("%d rows visible after clearing the filter, want %d", len(got), len(f.Examples))
	}
	b.check(t, func(u string) bool { return u == url || strings.HasPrefix(u, url+"#") })
}

// TestBrowserServe opens the served report of a run directory and adds a
// kept record to it: the page reloads itself and shows the new record,
// and it fetches nothing but itself and its version.
func TestBrowserServe(t *testing.T) {
	b := newBrowser(t)
	dir := copyRun(t)
	url := serve(t, &Handler{Path: dir, Refresh: 0.2})

	kept := `document.querySelectorAll("tr.example.kept").length`
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#group-filter"))); err != nil {
		t.Fatal(err)
	}
	if got := eval[int](t, b, kept); got != 5 {
		t.Fatalf("%d kept rows, want 5", got)
	}
	before := eval[string](t, b, `document.body.dataset.version`)

	f, err := os.OpenFile(filepath.Join(dir, KeptFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(`{"instruction":"List three colors of the rainbow.","input":"","output":"Red, green and blue.","meta":{"id":"x","type":"B","instance_model":"gen","ensemble":["e1","e2"],"consensus":{"reason":"exact-match","pick":0,"pairwise":[1,1,1],"scores":[2,2,2],"min_pair":1},"novelty_max":0.3}}` + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		// During the reload an evaluation may fail; try again.
		n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](kept))
		if err == nil && n == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not reload with the new record: %d kept rows (%v)", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := eval[string](t, b, `document.body.dataset.version`); after == before {
		t.Errorf("the version is still %s after the change", after)
	}
	if got := eval[bool](t, b, `document.getElementById("live") !== null`); !got {
		t.Errorf("the served page does not say it is live")
	}
	saveScreenshot(t, b, "report-served.png")
	b.check(t, func(u string) bool { return u == url || u == url+"version" })
}
