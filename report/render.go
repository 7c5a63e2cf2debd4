package report

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed assets/report.html assets/report.css assets/report.js
var assets embed.FS

// RenderOptions tune Render. The zero value renders a static page.
type RenderOptions struct {
	// Refresh, when above 0, makes the page poll VersionURL every
	// Refresh seconds and reload itself when the answer differs from
	// Version: the served report of a run in progress.
	Refresh    float64
	VersionURL string
	Version    string
}

// page is the template's data.
type page struct {
	F          *Figures
	CSS        template.CSS
	JS         template.JS
	Funnels    []chart
	Reasons    []legendEntry
	HasNovelty bool
	Novelty    chart
	Lengths    []chart
	Verbs      chart
	Heatmap    chart
	Calls      chart
	Timeline   chart
	MaxText    int
	Refresh    string
	VersionURL string
	Version    string
}

// compiled is the template with its inlined stylesheet and script.
type compiled struct {
	t   *template.Template
	css template.CSS
	js  template.JS
}

// parsed parses the embedded assets once; the result is read-only.
var parsed = sync.OnceValues(func() (*compiled, error) {
	css, err := assets.ReadFile("assets/report.css")
	if err != nil {
		return nil, err
	}
	js, err := assets.ReadFile("assets/report.js")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"f0":        func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) },
		"f1":        func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		"f2":        func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
		"f3":        func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) },
		"f4":        func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) },
		"pct":       func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" },
		"hasSuffix": func(s, suffix string) bool { return strings.HasSuffix(s, "/"+suffix) },
		"short": func(s string) string {
			return s[:min(len(s), 12)]
		},
	}
	t, err := template.New("report.html").Funcs(funcs).ParseFS(assets, "assets/report.html")
	if err != nil {
		return nil, err
	}
	// The stylesheet and the script are the package's own embedded
	// files, never data: they are trusted as they are.
	return &compiled{t: t, css: template.CSS(css), js: template.JS(js)}, nil
})

// Render writes the HTML page of f to w. The page is self-contained: its
// stylesheet, script and charts are inline, and it loads nothing else.
// Render is safe for concurrent use.
func Render(w io.Writer, f *Figures, opts RenderOptions) error {
	c, err := parsed()
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	p := newPage(f, opts)
	p.CSS, p.JS = c.css, c.js
	if err := c.t.Execute(w, p); err != nil {
		return fmt.Errorf("rendering report: %w", err)
	}
	return nil
}

func newPage(f *Figures, opts RenderOptions) *page {
	p := &page{F: f, MaxText: MaxExampleText, VersionURL: opts.VersionURL, Version: opts.Version}
	if opts.Refresh > 0 && !math.IsInf(opts.Refresh, 0) {
		p.Refresh = strconv.FormatFloat(opts.Refresh, 'f', -1, 64)
	}

	colors := reasonColors(f.Funnels)
	for _, fn := range f.Funnels {
		p.Funnels = append(p.Funnels, funnelChart(fn, colors))
		for _, s := range fn.Stages {
			for _, d := range s.Drops {
				e := legendEntry{Name: d.Name, Fill: colors[d.Name]}
				if !slices.Contains(p.Reasons, e) {
					p.Reasons = append(p.Reasons, e)
				}
			}
		}
	}
	p.HasNovelty = sumInts(f.Novelty.Accepted)+sumInts(f.Novelty.Rejected) > 0
	p.Novelty = noveltyChart(f.Novelty)
	for _, l := range f.Lengths {
		p.Lengths = append(p.Lengths, lengthChart(l))
	}
	p.Verbs = verbChart(f.Verbs)
	p.Heatmap = heatmap(f.Members, f.Agreement)
	p.Calls = callsChart(f.Calls)
	p.Timeline = timelineChart(f.Timeline)
	return p
}
