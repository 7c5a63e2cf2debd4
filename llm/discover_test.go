package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fakeOllamaAdmin answers /api/tags, /api/show and /api/pull for models.
func fakeOllamaAdmin(t *testing.T, models []LocalModel, pull http.HandlerFunc) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/tags", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString(`{"models":[`)
		for i, m := range models {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"name":%q,"digest":"d-%s","size":%d,"details":{"family":%q,"parameter_size":"7B"}}`, m.Name, m.Name, m.Size, m.Family)
		}
		b.WriteString("]}")
		w.Write([]byte(b.String()))
	})
	mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Model string }
		jsonDecode(r, &req)
		for _, m := range models {
			if m.Name == req.Model {
				fmt.Fprintf(w, `{"template":%q,"capabilities":[%s]}`, m.Template, quoteAll(m.Capabilities))
				return
			}
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"error":"model not found"}`))
	})
	if pull != nil {
		mux.HandleFunc("POST /api/pull", pull)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ",")
}

const chatTemplate = "{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>"

func TestChoosePool(t *testing.T) {
	all := []LocalModel{
		{Name: "llama3.1:8b", Size: 4_900, Family: "llama", Template: chatTemplate, Capabilities: []string{"completion"}},
		{Name: "llama3.1:8b-text", Size: 4_800, Family: "llama", Template: "{{ .Prompt }}", Capabilities: []string{"completion"}},
		{Name: "qwen2.5:7b", Size: 4_700, Family: "qwen2", Template: chatTemplate, Capabilities: []string{"completion"}},
		{Name: "mistral:7b", Size: 4_100, Family: "llama", Template: chatTemplate},
		{Name: "gemma2:9b", Size: 5_400, Family: "gemma2", Template: chatTemplate, Capabilities: []string{"completion"}},
		{Name: "nomic-embed-text", Size: 9_000, Family: "nomic-bert", Capabilities: []string{"embedding"}},
		{Name: "phi3:mini", Size: 2_200, Family: "phi3", Template: chatTemplate},
	}
	srv := fakeOllamaAdmin(t, all, nil)
	got, err := ListOllama(context.Background(), nil, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := ChoosePool(srv.URL, got)
	if err != nil {
		t.Fatal(err)
	}
	// The writer is the base model (though not the largest); the ensemble
	// takes other families first (gemma2, qwen2, phi3), largest first.
	want := []string{"llama3.1:8b-text", "gemma2:9b", "qwen2.5:7b", "phi3:mini"}
	if !slices.Equal(pool.Names(), want) {
		t.Errorf("pool %v, want %v", pool.Names(), want)
	}
	if w, _ := pool.Get("llama3.1:8b-text"); w.Style != StyleCompletion || !slices.Equal(w.Roles, []Role{RoleInstructions, RoleInstances}) {
		t.Errorf("writer: %+v", w)
	}
	if e, _ := pool.Get("qwen2.5:7b"); e.Style != StyleChat || !slices.Equal(e.Roles, []Role{RoleEnsemble}) {
		t.Errorf("ensemble member: %+v", e)
	}
	// The same models in another order: the same pool.
	slices.Reverse(got)
	again, _ := ChoosePool(srv.URL, got)
	if !slices.Equal(again.Names(), want) {
		t.Errorf("another order: %v", again.Names())
	}
	// Without a base model the writer is the largest model; one family
	// only fills the ensemble from it.
	pool, _ = ChoosePool(srv.URL, []LocalModel{all[0], all[3], all[2]})
	if !slices.Equal(pool.Names(), []string{"llama3.1:8b", "qwen2.5:7b", "mistral:7b"}) {
		t.Errorf("no base model: %v", pool.Names())
	}
	// One usable model (and an embedder) is too few.
	if _, err := ChoosePool(srv.URL, []LocalModel{all[0], all[5]}); !errors.Is(err, ErrTooFewModels) {
		t.Errorf("one model: %v", err)
	}
	if s := SuggestedPool(64 << 30); len(s) < 3 || s[0] == SuggestedPool(8 << 30)[0] {
		t.Errorf("suggestions do not follow memory: %v", s)
	}
}

func TestPullOllama(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {
		for _, l := range []string{`{"status":"pulling manifest"}`,
			`{"status":"pulling abc","digest":"sha256:abc","total":1000,"completed":400}`,
			`{"status":"pulling abc","digest":"sha256:abc","total":1000,"completed":1000}`,
			`{"status":"verifying sha256 digest"}`, `{"status":"success"}`} {
			fmt.Fprintln(w, l)
			w.(http.Flusher).Flush()
		}
	}
	srv := fakeOllamaAdmin(t, nil, ok)
	var seen []PullProgress
	if err := PullOllama(context.Background(), nil, srv.URL, "qwen2.5:7b", func(p PullProgress) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 5 || seen[2].Completed != 1000 || seen[2].Total != 1000 || seen[4].Status != "success" || seen[0].Model != "qwen2.5:7b" {
		t.Errorf("progress %+v", seen)
	}
	for name, h := range map[string]http.HandlerFunc{
		"error line": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, `{"status":"pulling manifest"}`)
			fmt.Fprintln(w, `{"error":"pull model manifest: file does not exist"}`)
		},
		"cut short": func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"status":"pulling manifest"}`) },
		"status": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.Write([]byte(`{"error":"disk full"}`))
		},
	} {
		srv := fakeOllamaAdmin(t, nil, h)
		err := PullOllama(context.Background(), nil, srv.URL, "nope", nil)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
