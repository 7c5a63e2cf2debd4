package llm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ensinstruct/ensinstruct/llm"
)

func ExamplePool() {
	// A stand-in for an Ollama server.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"response":" there was a cat.","done":true,"done_reason":"stop","prompt_eval_count":4,"eval_count":5}`)
	}))
	defer srv.Close()

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	cache, err := llm.OpenCache(filepath.Join(dir, "responses.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()

	cfg := llm.Config{Models: llm.Models{{Name: "storyteller", ModelConfig: llm.ModelConfig{
		Backend:  llm.BackendOllama,
		Model:    "tiny",
		Endpoint: srv.URL,
		Roles:    []llm.Role{llm.RoleInstructions},
		Price:    llm.Price{CompletionPerMillion: 2},
	}}}}
	pool, err := llm.NewPool(cfg, llm.WithCache(cache))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pool.Models(llm.RoleInstructions))

	req := llm.Request{Prompt: "Once upon a time", MaxTokens: 16, Temperature: 0.7}
	for range 2 {
		resp, err := pool.Do(context.Background(), "storyteller", req, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%q cached=%v\n", resp.Text, resp.Cached)
	}
	st := pool.Stats()["storyteller"]
	fmt.Printf("calls=%d cache_hits=%d completion_tokens=%d cost=$%.6f\n", st.Calls, st.CacheHits, st.CompletionTokens, st.CostUSD)
	// Output:
	// [storyteller]
	// " there was a cat." cached=false
	// " there was a cat." cached=true
	// calls=2 cache_hits=1 completion_tokens=5 cost=$0.000010
}

func ExamplePool_errors() {
	// An Ollama server that does not have the model.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"model 'falcon:40b' not found"}`)
	}))
	defer srv.Close()

	cfg := llm.Config{Models: llm.Models{{Name: "falcon", ModelConfig: llm.ModelConfig{
		Backend: llm.BackendOllama, Model: "falcon:40b", Endpoint: srv.URL,
	}}}}
	pool, _ := llm.NewPool(cfg)
	_, err := pool.Do(context.Background(), "falcon", llm.Request{Prompt: "1."}, 0)

	var se *llm.StatusError
	if errors.Is(err, llm.ErrModelNotFound) && errors.As(err, &se) {
		fmt.Println("missing:", se.Model, "status", se.StatusCode, "retried:", pool.Stats()["falcon"].Retries)
	}
	// Output:
	// missing: falcon:40b status 404 retried: 0
}

func ExampleParseSpec() {
	for _, spec := range []string{
		"ollama:llama3.1:8b@http://gpu1:11434",
		"ollama:tiny@127.0.0.1:11555",
		"openai:gpt-4o-mini",
	} {
		name, mc, err := llm.ParseSpec(spec)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: backend=%s model=%s endpoint=%q\n", name, mc.Backend, mc.Model, mc.Endpoint)
	}
	// Output:
	// llama3.1:8b: backend=ollama model=llama3.1:8b endpoint="http://gpu1:11434"
	// tiny: backend=ollama model=tiny endpoint="http://127.0.0.1:11555"
	// gpt-4o-mini: backend=openai model=gpt-4o-mini endpoint=""
}
