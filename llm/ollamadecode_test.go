package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// replySamples are reply bodies of every shape: what Ollama writes, what
// it streams, and what only encoding/json reads (or rejects).
var replySamples = []string{
	`{"model":"llama3.1:8b","created_at":"2026-12-03T08:00:00.1Z","response":"Input: \u003cb\u003e\nOutput: x","done":true,"done_reason":"stop","total_duration":123456789,"prompt_eval_count":812,"eval_count":120}`,
	`{"model":"m","message":{"role":"assistant","content":"a \"quoted\" \\ reply\t✓"},"done":true,"done_reason":"length","eval_count":-3}`,
	"{\"response\":\"one \"}\n{\"response\":\"two\",\"done\":false}\n{\"done\":true,\"eval_count\":2}\n",
	` {"response":null,"done":null,"message":null,"eval_count":null} {"done":true}`,
	`{"error":"model runner has unexpectedly stopped"}`,
	`{"Response":"folded key","done":true}`,
	`{"response":"\ud83d\ude00 surrogates","done":true}`,
	"{\"response\":\"bad \xff byte\",\"done\":true}",
	`{"response":"x","context":[1,2,3],"done":true}`,
	`{"response":"x","eval_count":1.5,"done":true}`,
	`{"response":"x","eval_count":99999999999999999999,"done":true}`,
	`{"response":"x","extra":1e-7,"done":true,"flag":false}`,
	`{"response":"x","done":true`,
	`{"response":"x" "done":true}`,
	`{"response":"x","done":true}garbage after the end`,
	`{"response":"x","done":tru}`,
	`{"response":"unterminated`,
	`null`, `[]`, ``, "  \n", `"a string"`, `{}`, `{"done":false}`,
	`{"response":"\u00e9\u2028\/\b\f\r","done":true}`,
	`{"response":"\x01 control","done":true}`,
	`{"response":"x","num":01,"done":true}`,
	`{"response":"x","num":-,"done":true}`,
	`{"response":"x","done":true,}`,
}

// parseChunk reads what it accepts as encoding/json does, and takes the
// same bytes.
func checkParseChunk(t *testing.T, b []byte) {
	t.Helper()
	var got ollamaChunk
	n, ok := parseChunk(b, &got)
	if !ok {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var want ollamaChunk
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("parseChunk took %q, which encoding/json rejects: %v", b, err)
	}
	if got != want || int64(n) != dec.InputOffset() {
		t.Fatalf("parseChunk(%q) = %+v after %d bytes, encoding/json %+v after %d", b, got, n, want, dec.InputOffset())
	}
}

func TestParseChunkEqualsJSON(t *testing.T) {
	accepted := 0
	for _, s := range replySamples {
		checkParseChunk(t, []byte(s))
		var c ollamaChunk
		if _, ok := parseChunk([]byte(s), &c); ok {
			accepted++
		}
	}
	// Ollama's own shapes must take the fast path, or it saves nothing.
	for _, s := range replySamples[:5] {
		var c ollamaChunk
		if _, ok := parseChunk([]byte(s), &c); !ok {
			t.Errorf("parseChunk declined an Ollama reply: %s", s)
		}
	}
	t.Logf("%d of %d samples parsed without encoding/json", accepted, len(replySamples))
}

func FuzzParseChunk(f *testing.F) {
	for _, s := range replySamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParseChunk(t, b) })
}

// decode gives what encoding/json alone gives, errors included, for
// every sample, whole or cut by a read error.
func TestDecodeEqualsStream(t *testing.T) {
	o := &Ollama{endpoint: "http://h:1", model: "m"}
	broken := errors.New("connection reset")
	for _, s := range replySamples {
		for _, cut := range []bool{false, true} {
			body := func() io.Reader {
				if cut {
					return io.MultiReader(strings.NewReader(s), errReader{broken})
				}
				return strings.NewReader(s)
			}
			got, gerr := o.decode(context.Background(), body())
			var text strings.Builder
			want, werr := o.decodeStream(context.Background(), body(), &text)
			if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Errorf("reply %q (cut %v):\n decode       %+v, %v\n encoding/json %+v, %v", s, cut, got, gerr, want, werr)
			}
		}
	}
}

func BenchmarkOllamaDecode(b *testing.B) {
	o := &Ollama{}
	body := `{"model":"llama3.1:8b","created_at":"2026-12-03T08:00:00.123456789Z","response":"` +
		strings.Repeat(`Input: a short passage \u003cb\u003e about the sea.\nOutput: The sea is wide.\n`, 8) +
		`","done":true,"done_reason":"stop","total_duration":123456789,"load_duration":1234567,"prompt_eval_count":812,` +
		`"prompt_eval_duration":23456789,"eval_count":120,"eval_duration":98765432}` + "\n"
	for _, bc := range []struct {
		name   string
		decode func() (Response, error)
	}{
		{"parseChunk", func() (Response, error) { return o.decode(context.Background(), strings.NewReader(body)) }},
		{"encoding-json", func() (Response, error) {
			var text strings.Builder
			return o.decodeStream(context.Background(), strings.NewReader(body), &text)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
