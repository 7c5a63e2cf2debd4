package main

import (
	"testing"
	"time"
)

func TestTruncation(t *testing.T) {
	end := func(s string, n int) string { return truncate(s, n) }
	middle := func(s string, n int) string { return truncateMiddle(s, n) }
	for _, tc := range []struct {
		name string
		cut  func(string, int) string
		s    string
		n    int
		want string
	}{
		{"fits", end, "abc", 3, "abc"},
		{"shorter", end, "abc", 10, "abc"},
		{"cut", end, "abcdef", 4, "abc…"},
		{"one column", end, "abcdef", 1, "…"},
		{"no room", end, "abc", 0, ""},
		{"negative", end, "abc", -3, ""},
		{"empty", end, "", 5, ""},
		{"symbols are one column", end, "A ███░░ 3/5 kept", 8, "A ███░░…"},
		{"symbols fit", end, "A ███░░ 3/5", 11, "A ███░░ 3/5"},
		{"middle: fits", middle, "llama3.1:8b", 11, "llama3.1:8b"},
		{"middle: keeps both ends", middle, "qwen2.5-coder:32b-instruct-q4_K_M", 16, "qwen2.5-…-q4_K_M"},
		{"middle: odd width", middle, "abcdefghij", 5, "ab…ij"},
		{"middle: even width", middle, "abcdefghij", 6, "abc…ij"},
		{"middle: two columns", middle, "abcdefghij", 2, "a…"},
		{"middle: one column", middle, "abcdefghij", 1, "…"},
		{"middle: no room", middle, "abc", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cut(tc.s, tc.n)
			if got != tc.want {
				t.Errorf("cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
			if w := textWidth(got); w > max(tc.n, 0) {
				t.Errorf("cut(%q, %d) is %d columns", tc.s, tc.n, w)
			}
		})
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "0 records"},
		{1, "1 record"},
		{2, "2 records"},
		{1000, "1000 records"},
	} {
		if got := plural(tc.n, "record"); got != tc.want {
			t.Errorf("plural(%d, record) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{340*time.Millisecond + 400*time.Microsecond, "340ms"},
		{11*time.Second + 534*time.Millisecond, "11.5s"},
		{59*time.Second + 960*time.Millisecond, "1m0s"},
		{83*time.Second + 400*time.Millisecond, "1m23s"},
		{2*time.Hour + 5*time.Minute + 20*time.Second, "2h05m"},
		{26 * time.Hour, "26h00m"},
	} {
		if got := shortDuration(tc.d); got != tc.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestHumanCount(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{9999, "9999"},
		{10_000, "10.0k"},
		{123_456, "123.5k"},
		{4_500_000, "4.5M"},
	} {
		if got := humanCount(tc.n); got != tc.want {
			t.Errorf("humanCount(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestRateAndUSD(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		want string
	}{
		{0, "0.0"}, {3.14, "3.1"}, {9.94, "9.9"}, {9.96, "10"}, {146.4, "146"},
	} {
		if got := rate(tc.x); got != tc.want {
			t.Errorf("rate(%v) = %q, want %q", tc.x, got, tc.want)
		}
	}
	for _, tc := range []struct {
		x    float64
		want string
	}{
		{0, "0.0000"}, {0.01234, "0.0123"}, {1.5, "1.50"}, {123.456, "123.46"},
	} {
		if got := usd(tc.x); got != tc.want {
			t.Errorf("usd(%v) = %q, want %q", tc.x, got, tc.want)
		}
	}
}
