package outputtest

import (
	"strings"
	"testing"
)

func TestSchema(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{"a":"x","b":1,"c":1.0,"d":true,"e":null}`, "{a:string,b:int,c:float,d:bool,e:null}"},
		{`{"n":1e-7,"m":-0.5,"k":-3,"j":2E+3}`, "{n:float,m:float,k:int,j:float}"},
		{`{"l":[1.0,0.5],"e":[],"o":[{"x":1}]}`, "{l:[float],e:[],o:[{x:int}]}"},
		{`{"l":[null,0.5,null]}`, "{l:[float]}"},
		{`{"l":[null]}`, "{l:[null]}"},
		{`{"m":{"c":{"s":[0.0]}}}`, "{m:{c:{s:[float]}}}"},
		{`{"b":1,"a":2}`, "{b:int,a:int}"},
		{`[1,2]`, "[int]"},
	}
	for _, tt := range tests {
		got, err := Schema([]byte(tt.line))
		if err != nil || got != tt.want {
			t.Errorf("Schema(%s) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"l":[1,1.5]}`, `{"l":[{"a":1},{"b":1}]}`, `{"a":`, `{"a":1} {"b":2}`, ``} {
		if got, err := Schema([]byte(bad)); err == nil {
			t.Errorf("Schema(%s) = %q, want an error", bad, got)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name, in, want string
		lines          int
	}{
		{"same", "{\"a\":1.0,\"l\":[0.5]}\n\n{\"a\":0.43,\"l\":[]}\n{\"a\":1.0,\"l\":[1.0]}\n", "", 3},
		{"int after float", "{\"m\":{\"n\":0.43}}\n{\"m\":{\"n\":0}}\n", "line 2: m.n: int, line 1 has float", 2},
		{"list element type", "{\"s\":[0.5]}\n{\"s\":[0,1]}\n", "line 2: s[]: int, line 1 has float", 2},
		{"missing key", "{\"a\":1,\"b\":2}\n{\"a\":1}\n", "line 2: top level: keys a, line 1 has keys a,b", 2},
		{"null then value", "{\"m\":{\"x\":null}}\n{\"m\":{\"x\":\"s\"}}\n", "line 2: m.x: string, line 1 has null", 2},
		{"key order", "{\"a\":1,\"b\":2}\n{\"b\":2,\"a\":1}\n", "keys b,a, line 1 has keys a,b", 2},
		{"bad json", "{\"a\":1}\n{\"a\":\n", "line 2:", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Check(strings.NewReader(tt.in))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check() = %v, want %q", err, tt.want)
			}
			if n != tt.lines {
				t.Errorf("Check() read %d lines, want %d", n, tt.lines)
			}
		})
	}
}
