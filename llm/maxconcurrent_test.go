package llm

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestMaxConcurrentForms(t *testing.T) {
	for _, tc := range []struct {
		yaml, json string
		max        int
		auto       bool
		ollama     int // MaxConcurrent with the ollama defaults applied
	}{
		{"8", "8", 8, false, 8},
		{"auto", `"auto"`, 0, true, DefaultOllamaAutoCeiling},
		{"{auto: true, max: 32}", `{"auto":true,"max":32}`, 32, true, 32},
		{"{auto: true}", `{"auto":true}`, 0, true, DefaultOllamaAutoCeiling},
		{"{max: 4}", `{"max":4}`, 4, false, 4},
		{"{auto: false, max: 4}", `{"auto":false,"max":4}`, 4, false, 4},
		{"", "null", 0, false, DefaultOllamaConcurrency},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			src := "endpoints:\n  http://h:1: {max_concurrent: " + tc.yaml + ", timeout: 1m}\n"
			if tc.yaml == "" {
				src = "endpoints:\n  http://h:1: {timeout: 1m}\n"
			}
			c, err := decodeStrict(t, src)
			if err != nil {
				t.Fatal(err)
			}
			e := c.Endpoints["http://h:1"]
			if e.MaxConcurrent != tc.max || e.AutoConcurrency != tc.auto || e.Timeout.Minutes() != 1 {
				t.Errorf("YAML %q: %+v, want max %d auto %v", tc.yaml, e, tc.max, tc.auto)
			}
			if got := e.withDefaults(BackendOllama).MaxConcurrent; got != tc.ollama {
				t.Errorf("with ollama defaults: max_concurrent %d, want %d", got, tc.ollama)
			}
			var j EndpointConfig
			if err := json.Unmarshal([]byte(`{"max_concurrent":`+tc.json+`,"timeout":60000000000}`), &j); err != nil {
				t.Fatal(err)
			}
			if j != e {
				t.Errorf("JSON %s: %+v, want %+v", tc.json, j, e)
			}
			// Both encodings decode to the same value.
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeStrict(t, string(out))
			if err != nil {
				t.Fatalf("%v in\n%s", err, out)
			}
			if back.Endpoints["http://h:1"] != e {
				t.Errorf("YAML round trip: %+v from\n%s", back.Endpoints["http://h:1"], out)
			}
			jb, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var jback EndpointConfig
			if err := json.Unmarshal(jb, &jback); err != nil || jback != e {
				t.Errorf("JSON round trip: %+v, %v from %s", jback, err, jb)
			}
		})
	}
}

func TestMaxConcurrentErrors(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"fast", `line 3: max_concurrent: "fast" is not a number or auto (want a number, auto, or {auto: true, max: N})`},
		{"2.5", `line 3: max_concurrent: "2.5" is not a number or auto`},
		{`"8"`, `line 3: max_concurrent: "8" is not a number or auto`},
		{"[1, 2]", "line 3: max_concurrent: want a number, auto, or {auto: true, max: N}"},
		{"{auto: true, ceiling: 4}", "line 3: field ceiling not found"},
		{"{auto: yes please}", "line 3: cannot unmarshal"},
	} {
		src := "endpoints:\n  http://h:1:\n    max_concurrent: " + tc.value + "\n"
		_, err := decodeStrict(t, src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("max_concurrent: %s: error %v, want one containing %q", tc.value, err, tc.want)
		}
	}
	// Unknown fields beside max_concurrent are still refused.
	if _, err := decodeStrict(t, "endpoints:\n  http://h:1: {max_concurrent: auto, max_concurent: 3}\n"); err == nil ||
		!strings.Contains(err.Error(), "field max_concurent not found") {
		t.Errorf("misspelt field: %v", err)
	}
	// A negative ceiling is a validation error on the field.
	c, err := decodeStrict(t, "endpoints:\n  http://h:1: {max_concurrent: {auto: true, max: -1}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "endpoints.http://h:1.max_concurrent: must not be negative") {
		t.Errorf("Validate: %v", err)
	}
	for _, bad := range []string{`"fast"`, `{"auto":true,"ceiling":4}`, `2.5`} {
		var e EndpointConfig
		if err := json.Unmarshal([]byte(`{"max_concurrent":`+bad+`}`), &e); err == nil || !strings.Contains(err.Error(), "max_concurrent") {
			t.Errorf("JSON max_concurrent %s: error %v", bad, err)
		}
	}
}
