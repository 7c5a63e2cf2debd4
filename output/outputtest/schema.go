// Package outputtest checks that JSONL output keeps one schema on every
// line, the way a loader that infers types from the first lines (Arrow's
// JSON reader, and so Hugging Face datasets) needs it: the same keys in
// the same order, nested paths included, the same type for each, and an
// integer (1) told apart from a float (1.0). It is for tests, of this
// module and of programs that consume its output.
package outputtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Schema returns the inferred type of one JSON value, rendered as text:
// string, int, float, bool, null, [T] for a list of T (elements of one
// type; a null element takes the others' type, as Arrow does), [] for an
// empty list, and {k:T,…} for an object in key order. Two lines have the
// same schema exactly when their Schema strings are equal.
func Schema(line []byte) (string, error) {
	t, err := infer(line)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

// Check reads JSONL from r (blank lines skipped) and returns the number
// of lines read and an error naming the first line and path whose type
// differs from line 1's. Nulls are types here: a key that is null on one
// line and a string on another is a difference, because a loader that
// typed the column null from the first block cannot cast a later string.
// The one leniency is the empty list, which matches a list of any type
// (Arrow types it list<null>, and that casts to any list).
func Check(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var first *typ
	n := 0
	for sc.Scan() {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		n++
		t, err := infer(b)
		if err != nil {
			return n, fmt.Errorf("line %d: %w", n, err)
		}
		if first == nil {
			first = t
			continue
		}
		if path, got, want, ok := match(first, t, ""); !ok {
			return n, fmt.Errorf("line %d: %s: %s, line 1 has %s", n, pathName(path), got, want)
		}
	}
	return n, sc.Err()
}

// typ is an inferred type: kind is one of string, int, float, bool,
// null, list, object.
type typ struct {
	kind   string
	elem   *typ // list: nil for an empty list
	keys   []string
	fields []*typ
}

func (t *typ) String() string {
	switch t.kind {
	case "list":
		if t.elem == nil {
			return "[]"
		}
		return "[" + t.elem.String() + "]"
	case "object":
		parts := make([]string, len(t.keys))
		for i, k := range t.keys {
			parts[i] = k + ":" + t.fields[i].String()
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return t.kind
}

func infer(line []byte) (*typ, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	t, err := value(dec, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return t, nil
}

func value(dec *json.Decoder, path string) (*typ, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pathName(path), err)
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			t := &typ{kind: "object"}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key := k.(string)
				f, err := value(dec, path+"."+key)
				if err != nil {
					return nil, err
				}
				t.keys, t.fields = append(t.keys, key), append(t.fields, f)
			}
			_, err := dec.Token() // }
			return t, err
		}
		t := &typ{kind: "list"}
		for i := 0; dec.More(); i++ {
			e, err := value(dec, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			switch {
			case t.elem == nil || t.elem.kind == "null":
				t.elem = e
			case e.kind == "null":
			case e.String() != t.elem.String():
				return nil, fmt.Errorf("%s[%d]: %s in a list of %s", pathName(path), i, e, t.elem)
			}
		}
		_, err := dec.Token() // ]
		return t, err
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return &typ{kind: "float"}, nil
		}
		return &typ{kind: "int"}, nil
	case string:
		return &typ{kind: "string"}, nil
	case bool:
		return &typ{kind: "bool"}, nil
	case nil:
		return &typ{kind: "null"}, nil
	}
	return nil, fmt.Errorf("%s: unexpected token %v", pathName(path), tok)
}

func pathName(p string) string {
	if p == "" {
		return "top level"
	}
	return strings.TrimPrefix(p, ".")
}

// match compares b against a and returns the first path where they
// differ with both types.
func match(a, b *typ, path string) (string, string, string, bool) {
	if a.kind != b.kind {
		return path, b.String(), a.String(), false
	}
	switch a.kind {
	case "list":
		if a.elem == nil || b.elem == nil {
			return "", "", "", true
		}
		return match(a.elem, b.elem, path+"[]")
	case "object":
		if strings.Join(a.keys, ",") != strings.Join(b.keys, ",") {
			return path, "keys " + strings.Join(b.keys, ","), "keys " + strings.Join(a.keys, ","), false
		}
		for i := range a.fields {
			if p, got, want, ok := match(a.fields[i], b.fields[i], path+"."+a.keys[i]); !ok {
				return p, got, want, false
			}
		}
	}
	return "", "", "", true
}
