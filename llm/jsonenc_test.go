package llm

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// trickyStrings exercise every escape json.Marshal makes.
var trickyStrings = []string{
	"", "plain", `quote " and backslash \`, "<b>&amp;</b>", "tab\tnewline\nreturn\r",
	"\b\f\x00\x01\x1f\x7f", "héllo wörld ✓ 日本", "line\u2028para\u2029", "bad \xff utf-8 \xc3",
	"emoji 🙂 and \U0001F600", strings.Repeat("instruction: Write a haiku.\noutput: Waves |EoS|\n\n", 40),
}

// The hand-written body is byte for byte what json.Marshal makes of the
// API types.
func TestOllamaEncodeEqualsMarshal(t *testing.T) {
	seed := int64(-7)
	keep := 3 * time.Minute
	forever := time.Duration(-1)
	for _, mc := range []ModelConfig{
		{Model: "llama3.1:8b", Endpoint: "http://h:1"},
		{Model: "m<&>", Endpoint: "http://h:1", MaxContext: 8192, KeepAlive: &keep},
		{Model: "m", Endpoint: "http://h:1", KeepAlive: &forever},
	} {
		o, err := NewOllama(mc, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range trickyStrings {
			for _, req := range []Request{
				{Prompt: s},
				{Prompt: s, MaxTokens: 512, Temperature: 0.7, TopP: 0.95, TopK: 50, Seed: &seed, Stop: []string{"|EoS|", s}},
				{Prompt: s, Temperature: 1e-7, TopP: 1e21},
				{Messages: []Message{{Role: "system", Content: s}, {Role: "user", Content: "x" + s}}, Temperature: 0.2, MaxTokens: 64},
			} {
				for _, numCtx := range []int{0, 4096} {
					path, got, err := o.encode(req, numCtx)
					if err != nil {
						t.Fatal(err)
					}
					wantPath, want, err := o.encodeTypes(req, numCtx)
					if err != nil {
						t.Fatal(err)
					}
					if path != wantPath || !bytes.Equal(got, want) {
						t.Fatalf("encode(%+v, %d):\n got %s %s\nwant %s %s", req, numCtx, path, got, wantPath, want)
					}
				}
			}
		}
	}
}

func TestAppendJSONFloat(t *testing.T) {
	for _, f := range []float64{0, 0.7, 1, 2.5, 1e-6, 9.99e-7, 1e-9, 1e20, 1e21, 123456789.125, -0.3, -1e-8} {
		got, err := appendJSONFloat(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		_, want, _ := (&Ollama{}).encodeTypes(Request{Prompt: "p", Temperature: f}, 0)
		if !bytes.Contains(want, append([]byte(`"temperature":`), append(got, '}')...)) {
			t.Errorf("appendJSONFloat(%v) = %s, json.Marshal: %s", f, got, want)
		}
	}
	if _, err := appendJSONFloat(nil, math.NaN()); err == nil {
		t.Error("NaN encoded")
	}
}

func FuzzOllamaEncode(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, 0.7)
	}
	o, err := NewOllama(ModelConfig{Model: "m", Endpoint: "http://h:1"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, prompt, stop string, temp float64) {
		if math.IsNaN(temp) || math.IsInf(temp, 0) {
			return
		}
		for _, req := range []Request{
			{Prompt: prompt, Temperature: temp, Stop: []string{stop}},
			{Messages: []Message{{Role: "user", Content: prompt}}, Temperature: temp},
		} {
			_, got, err1 := o.encode(req, 2048)
			_, want, err2 := o.encodeTypes(req, 2048)
			if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %s %v\nwant %s %v", got, err1, want, err2)
			}
		}
	})
}

// The cache's hand-written encoding of a Response is json.Marshal's.
func TestAppendResponseEqualsMarshal(t *testing.T) {
	for _, s := range trickyStrings {
		for _, r := range []Response{
			{Text: s},
			{Text: s, FinishReason: s, PromptTokens: 3, CompletionTokens: -4, Latency: 5 * time.Millisecond, Cached: true, Truncated: true},
			{FinishReason: "length", Latency: -1},
		} {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendResponse(nil, r); !bytes.Equal(got, want) {
				t.Fatalf("appendResponse(%+v):\n got %s\nwant %s", r, got, want)
			}
		}
	}
}

func FuzzAppendResponse(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, "stop", 7, int64(12345), true)
	}
	f.Fuzz(func(t *testing.T, text, finish string, tokens int, latency int64, truncated bool) {
		r := Response{Text: text, FinishReason: finish, PromptTokens: tokens, CompletionTokens: tokens / 3, Latency: time.Duration(latency), Truncated: truncated}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendResponse(nil, r); !bytes.Equal(got, want) {
			t.Fatalf("appendResponse(%+v):\n got %s\nwant %s", r, got, want)
		}
	})
}
