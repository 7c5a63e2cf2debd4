package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ensinstruct/ensinstruct/llm/llmtest"
)

// The fake server records what it receives, and the bare client replays
// exactly that: bodies with newlines, spaces and digits in them come back
// byte for byte, in order.
func TestRecordedRoundTrip(t *testing.T) {
	name := filepath.Join(t.TempDir(), "calls")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	srv := llmtest.NewServer(func(llmtest.Call) string { return "ok" })
	defer srv.Close()
	record(srv, f, func(err error) { t.Error(err) })
	want := []recorded{
		{"/api/generate", []byte(`{"model":"gen","prompt":"12 3\n\ninstruction: x\n","stream":false}`)},
		{"/v1/chat/completions", []byte(`{"model":"e1","messages":[{"role":"user","content":"a b\n7"}]}`)},
		{"/api/generate", []byte(`{"model":"gen","prompt":""}`)},
	}
	for _, r := range want {
		resp, err := http.Post(srv.URL+r.path, "application/json", bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	f.Close()
	got, err := readRecorded(name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recorded %q, want %q", got, want)
	}
	// A cut-off file is an error naming the request.
	b, _ := os.ReadFile(name)
	os.WriteFile(name, b[:len(b)-3], 0o644)
	if _, err := readRecorded(name); err == nil || !strings.Contains(err.Error(), "request 3") {
		t.Errorf("cut-off record file: err = %v", err)
	}
}
