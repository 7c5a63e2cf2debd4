package report

import (
	"fmt"
	"math"
	"strings"
)

// chart is the geometry of one SVG figure; the template draws it. Marks
// (bars, cells, points) carry the class "mark", so a reader (or a test)
// can count them.
type chart struct {
	ID     string
	Label  string
	W, H   float64
	Rects  []rect
	Dots   []dot
	Lines  []line
	Texts  []text
	Path   string // a polyline's points, "" for none
	Legend []legendEntry
}

type rect struct {
	X, Y, W, H float64
	Class      string
	Fill       string
	Title      string
}

type dot struct {
	X, Y, R float64
	Title   string
}

type line struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

type text struct {
	X, Y   float64
	S      string
	Anchor string // start, middle or end
	Class  string
}

type legendEntry struct {
	Name  string
	Fill  string
	Class string
}

// palette colours the drop reasons of the funnel, in order of first use.
var palette = [...]string{"#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f", "#aec7e8", "#ffbb78"}

// reasonColors gives every drop reason of the funnels one colour.
func reasonColors(funnels []Funnel) map[string]string {
	colors := map[string]string{}
	for _, f := range funnels {
		for _, s := range f.Stages {
			for _, d := range s.Drops {
				if _, ok := colors[d.Name]; !ok {
					colors[d.Name] = palette[len(colors)%len(palette)]
				}
			}
		}
	}
	return colors
}

const (
	chartW   = 720.0
	labelW   = 170.0
	rowH     = 26.0
	barGap   = 6.0
	plotTop  = 12.0
	axisH    = 30.0
	numberW  = 70.0
	colChart = 340.0
)

// funnelChart draws a funnel: one bar per stage, and beside it what was
// lost on the way from the previous stage, one segment per reason.
func funnelChart(f Funnel, colors map[string]string) chart {
	c := chart{ID: "funnel-" + f.Type, Label: "funnel of type " + f.Type, W: chartW}
	top := 0
	for _, s := range f.Stages {
		top = max(top, s.Count)
	}
	scale := (chartW - labelW - numberW) / float64(max(top, 1))
	for i, s := range f.Stages {
		y := plotTop + float64(i)*rowH
		w := float64(s.Count) * scale
		c.Texts = append(c.Texts, text{X: labelW - 8, Y: y + rowH/2 + 4, S: s.Name, Anchor: "end"})
		c.Rects = append(c.Rects, rect{X: labelW, Y: y, W: w, H: rowH - barGap, Class: "mark bar stage",
			Title: fmt.Sprintf("%s: %d", s.Name, s.Count)})
		x := labelW + w
		for _, d := range s.Drops {
			dw := float64(d.Count) * scale
			c.Rects = append(c.Rects, rect{X: x, Y: y, W: dw, H: rowH - barGap, Class: "mark drop",
				Fill: colors[d.Name], Title: fmt.Sprintf("dropped %s: %d", d.Name, d.Count)})
			x += dw
		}
		if s.Unfinished > 0 {
			dw := float64(s.Unfinished) * scale
			c.Rects = append(c.Rects, rect{X: x, Y: y, W: dw, H: rowH - barGap, Class: "mark unfinished",
				Title: fmt.Sprintf("not finished when the run stopped: %d", s.Unfinished)})
			x += dw
		}
		c.Texts = append(c.Texts, text{X: x + 6, Y: y + rowH/2 + 4, S: fmt.Sprint(s.Count), Class: "num"})
	}
	c.H = plotTop + float64(len(f.Stages))*rowH + 4
	return c
}

// histogram draws vertical bars of counts, one per bin, stacked when
// there are two series, with ticks under the bins; marker, when not nil, is drawn as a vertical line
// at that fraction of the x axis.
func histogram(id, label string, names, ticks []string, series [][]int, classes []string, marker *float64, markerLabel string) chart {
	const h = 180.0
	c := chart{ID: id, Label: label, W: colChart, H: h + axisH + plotTop}
	n := len(names)
	if n == 0 {
		return c
	}
	top := 0
	for i := range n {
		t := 0
		for _, s := range series {
			t += s[i]
		}
		top = max(top, t)
	}
	left := 36.0
	bw := (colChart - left - 8) / float64(n)
	scale := h / float64(max(top, 1))
	base := plotTop + h
	for i := range n {
		y := base
		for si, s := range series {
			bh := float64(s[i]) * scale
			y -= bh
			c.Rects = append(c.Rects, rect{X: left + float64(i)*bw + 1, Y: y, W: bw - 2, H: bh,
				Class: "mark bar " + classes[si], Title: fmt.Sprintf("%s: %d", names[i], s[i])})
		}
	}
	c.Lines = append(c.Lines, line{X1: left, Y1: base, X2: colChart - 8, Y2: base, Class: "axis"})
	c.Texts = append(c.Texts, text{X: left - 4, Y: plotTop + 8, S: fmt.Sprint(top), Anchor: "end", Class: "tick"},
		text{X: left - 4, Y: base, S: "0", Anchor: "end", Class: "tick"})
	for i, name := range ticks {
		if name != "" {
			c.Texts = append(c.Texts, text{X: left + (float64(i)+0.5)*bw, Y: base + 14, S: name, Anchor: "middle", Class: "tick"})
		}
	}
	if marker != nil {
		x := left + *marker*(colChart-left-8)
		c.Lines = append(c.Lines, line{X1: x, Y1: plotTop - 4, X2: x, Y2: base, Class: "threshold"})
		c.Texts = append(c.Texts, text{X: x + 3, Y: plotTop + 4, S: markerLabel, Class: "tick threshold-label"})
	}
	return c
}

// noveltyChart is the novelty histogram over [0, 1].
func noveltyChart(nv Novelty) chart {
	names := make([]string, NoveltyBins)
	for i := range names {
		names[i] = fmt.Sprintf("%.2f–%.2f", float64(i)/NoveltyBins, float64(i+1)/NoveltyBins)
	}
	series, classes := [][]int{nv.Accepted}, []string{"accepted"}
	if sumInts(nv.Rejected) > 0 {
		series, classes = append(series, nv.Rejected), append(classes, "rejected")
	}
	label := ""
	if nv.Threshold != nil {
		label = fmt.Sprintf("threshold %.2f", *nv.Threshold)
	}
	c := histogram("novelty", "novelty histogram", names, nil, series, classes, nv.Threshold, label)
	// Label the axis by value, not by bin.
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.Texts = append(c.Texts, text{X: 36 + v*(colChart-44), Y: plotTop + 180 + 14, S: fmt.Sprint(v), Anchor: "middle", Class: "tick"})
	}
	return c
}

func lengthChart(l Lengths) chart {
	names := make([]string, len(l.Bins))
	ticks := make([]string, len(l.Bins))
	counts := make([]int, len(l.Bins))
	for i, b := range l.Bins {
		names[i], counts[i] = b.Name+" words", b.Count
		if i%2 == 0 || i == len(l.Bins)-1 {
			ticks[i] = strings.TrimSuffix(strings.Split(b.Name, "–")[0], "+")
		}
	}
	ticks[len(ticks)-1] += "+"
	return histogram("len-"+l.Field, l.Field+" lengths in words", names, ticks, [][]int{counts}, []string{"length"}, nil, "")
}

// hbars draws horizontal bars, one per row, each split into segments.
func hbars(id, label string, rows []string, segs [][]int, classes []string, titles func(row, seg int) string) chart {
	c := chart{ID: id, Label: label, W: chartW, H: plotTop + float64(len(rows))*rowH + 4}
	top := 0
	for _, s := range segs {
		top = max(top, sumInts(s))
	}
	scale := (chartW - labelW - numberW) / float64(max(top, 1))
	for i, name := range rows {
		y := plotTop + float64(i)*rowH
		c.Texts = append(c.Texts, text{X: labelW - 8, Y: y + rowH/2 + 4, S: name, Anchor: "end"})
		x := labelW
		for j, v := range segs[i] {
			w := float64(v) * scale
			c.Rects = append(c.Rects, rect{X: x, Y: y, W: w, H: rowH - barGap, Class: "mark bar " + classes[j], Title: titles(i, j)})
			x += w
		}
		c.Texts = append(c.Texts, text{X: x + 6, Y: y + rowH/2 + 4, S: fmt.Sprint(sumInts(segs[i])), Class: "num"})
	}
	return c
}

func verbChart(v Verbs) chart {
	rows := make([]string, len(v.Top))
	segs := make([][]int, len(v.Top))
	for i, c := range v.Top {
		rows[i], segs[i] = c.Name, []int{c.Count}
	}
	return hbars("verbs", "leading verbs", rows, segs, []string{"verb"}, func(r, _ int) string {
		return fmt.Sprintf("%s: %d (%.1f%%)", v.Top[r].Name, v.Top[r].Count, 100*ratio(int64(v.Top[r].Count), int64(v.Instructions)))
	})
}

func callsChart(calls []ModelCalls) chart {
	rows := make([]string, len(calls))
	segs := make([][]int, len(calls))
	for i, c := range calls {
		rows[i] = c.Name
		segs[i] = []int{int(c.Calls - c.CacheHits), int(c.CacheHits)}
	}
	c := hbars("calls", "calls per model", rows, segs, []string{"fresh", "cached"}, func(r, s int) string {
		return fmt.Sprintf("%s: %d %s calls", calls[r].Name, segs[r][s], []string{"fresh", "cached"}[s])
	})
	c.Legend = []legendEntry{{Name: "made", Class: "fresh"}, {Name: "from the cache", Class: "cached"}}
	return c
}

// heatmap draws the agreement matrix: one cell per pair of members.
func heatmap(members []Member, ag Agreement) chart {
	n := len(members)
	const cell = 44.0
	left := labelW
	topH := 24.0
	c := chart{ID: "agreement", Label: "pairwise agreement", W: left + float64(n)*cell + 8, H: topH + float64(n)*cell + 8}
	for i, m := range members {
		c.Texts = append(c.Texts,
			text{X: left - 8, Y: topH + float64(i)*cell + cell/2 + 4, S: fmt.Sprintf("%d. %s", i+1, m.Name), Anchor: "end"},
			text{X: left + float64(i)*cell + cell/2, Y: topH - 8, S: fmt.Sprint(i + 1), Anchor: "middle", Class: "tick"})
		for j := range n {
			x, y := left+float64(j)*cell, topH+float64(i)*cell
			r := rect{X: x + 1, Y: y + 1, W: cell - 2, H: cell - 2, Class: "mark cell"}
			v := ag.Mean[i][j]
			switch {
			case i == j:
				r.Class += " diag"
				r.Title = m.Name
			case v == nil:
				r.Class += " none"
				r.Title = fmt.Sprintf("%s and %s never met", m.Name, members[j].Name)
			default:
				r.Fill = heat(*v)
				r.Title = fmt.Sprintf("%s vs %s: mean agreement %.3f over %d decisions", m.Name, members[j].Name, *v, ag.N[i][j])
				c.Texts = append(c.Texts, text{X: x + cell/2, Y: y + cell/2 + 4, S: fmt.Sprintf("%.2f", *v), Anchor: "middle", Class: heatText(*v)})
			}
			c.Rects = append(c.Rects, r)
		}
	}
	return c
}

// heat maps an agreement in [0, 1] to a colour from pale to deep blue.
func heat(v float64) string {
	v = math.Max(0, math.Min(1, v))
	lerp := func(a, b float64) int { return int(math.Round(a + (b-a)*v)) }
	return fmt.Sprintf("rgb(%d,%d,%d)", lerp(239, 8), lerp(243, 48), lerp(255, 107))
}

func heatText(v float64) string {
	if v > 0.55 {
		return "cell-label light"
	}
	return "cell-label"
}

// timelineChart plots kept records against time, one point per sample.
func timelineChart(pts []TimePoint) chart {
	const h = 180.0
	c := chart{ID: "timeline", Label: "kept records over time", W: chartW, H: h + axisH + plotTop}
	if len(pts) == 0 {
		return c
	}
	left := 50.0
	maxT, maxK := pts[len(pts)-1].Seconds, 0
	for _, p := range pts {
		maxT = math.Max(maxT, p.Seconds)
		maxK = max(maxK, p.Kept)
	}
	sx := (chartW - left - 12) / math.Max(maxT, 1e-9)
	sy := h / float64(max(maxK, 1))
	base := plotTop + h
	var path strings.Builder
	for i, p := range pts {
		x, y := left+p.Seconds*sx, base-float64(p.Kept)*sy
		if i > 0 {
			path.WriteByte(' ')
		}
		fmt.Fprintf(&path, "%.1f,%.1f", x, y)
		c.Dots = append(c.Dots, dot{X: x, Y: y, R: 2.5,
			Title: fmt.Sprintf("%.1f s: %d kept, %d calls, $%.4f", p.Seconds, p.Kept, p.Calls, p.CostUSD)})
	}
	c.Path = path.String()
	c.Lines = append(c.Lines, line{X1: left, Y1: base, X2: chartW - 12, Y2: base, Class: "axis"},
		line{X1: left, Y1: plotTop, X2: left, Y2: base, Class: "axis"})
	c.Texts = append(c.Texts,
		text{X: left - 4, Y: plotTop + 8, S: fmt.Sprint(maxK), Anchor: "end", Class: "tick"},
		text{X: left - 4, Y: base, S: "0", Anchor: "end", Class: "tick"},
		text{X: left, Y: base + 14, S: "0 s", Class: "tick"},
		text{X: chartW - 12, Y: base + 14, S: fmt.Sprintf("%.1f s", maxT), Anchor: "end", Class: "tick"})
	return c
}

func sumInts(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}
