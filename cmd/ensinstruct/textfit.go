package main

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Text that has to fit a terminal line. Widths count runes: what the
// progress bar and the summary print is ASCII plus single-column symbols
// (█ ░ · …), and model names are ASCII in practice; a name in a
// double-width script would be measured short.

// defaultColumns is the width assumed when stderr is not a terminal, or
// a terminal that does not report its size.
const defaultColumns = 80

const ellipsis = "…"

// textWidth returns the number of terminal columns s takes.
func textWidth(s string) int { return utf8.RuneCountInString(s) }

// truncate cuts s to at most n columns, ending it with an ellipsis when
// something was cut.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if textWidth(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + ellipsis
}

// truncateMiddle cuts s to at most n columns by replacing its middle with
// an ellipsis, so that both ends stay readable: a model's family at the
// start and its size or quantization tag at the end.
func truncateMiddle(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	head := n / 2
	tail := n - 1 - head
	return string(r[:head]) + ellipsis + string(r[len(r)-tail:])
}

// padLeft right-aligns s in n columns.
func padLeft(s string, n int) string {
	if w := textWidth(s); w < n {
		return spaces(n-w) + s
	}
	return s
}

// padRight left-aligns s in n columns.
func padRight(s string, n int) string {
	if w := textWidth(s); w < n {
		return s + spaces(n-w)
	}
	return s
}

func spaces(n int) string { return strings.Repeat(" ", n) }

// plural returns "1 record", "2 records", "0 records".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// humanCount writes large counts short: 9999, 12.3k, 4.5M.
func humanCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// shortDuration writes d with the precision a person reads: 340ms,
// 11.5s, 1m23s, 2h05m.
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// rate writes a rate with one decimal below 10 and none above.
func rate(x float64) string {
	if x < 9.95 {
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

// usd writes a cost: four decimals below a dollar, cents above.
func usd(x float64) string {
	if x < 1 {
		return fmt.Sprintf("%.4f", x)
	}
	return fmt.Sprintf("%.2f", x)
}
