package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeStrict decodes n into v, rejecting unknown fields. yaml.v3 can be
// strict only when decoding text, so n is encoded and decoded again; the
// line numbers in errors are then mapped back to n's (the file's) lines.
// A field that came from --set has no line and is reported as line 0.
func decodeStrict(n *yaml.Node, v any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var again yaml.Node
	if yaml.Unmarshal(data, &again) != nil {
		return err
	}
	lines := map[int]int{}
	mapLines(&again, n, lines)
	remap := func(m string) string {
		sub := yamlLineRE.FindStringSubmatch(strings.TrimSpace(m))
		if sub == nil {
			return m
		}
		l, _ := strconv.Atoi(sub[1])
		return fmt.Sprintf("line %d: %s", lines[l], sub[2])
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := &yaml.TypeError{Errors: make([]string, len(te.Errors))}
		for i, m := range te.Errors {
			out.Errors[i] = remap(m)
		}
		return out
	}
	return errors.New(remap(err.Error()))
}

// mapLines records, for every node of the re-encoded tree, the line of the
// corresponding node of the original tree. The trees have the same shape.
func mapLines(enc, orig *yaml.Node, lines map[int]int) {
	if _, ok := lines[enc.Line]; !ok {
		lines[enc.Line] = orig.Line
	}
	for i := range min(len(enc.Content), len(orig.Content)) {
		mapLines(enc.Content[i], orig.Content[i], lines)
	}
}

// applySets applies --set PATH=VALUE overrides to the document root: PATH
// is a dot-separated list of mapping keys (created when missing), VALUE is
// YAML (a scalar, or a flow list or mapping such as [a, b]).
func applySets(root *yaml.Node, sets []string) error {
	for _, kv := range sets {
		path, value, ok := strings.Cut(kv, "=")
		if !ok || path == "" {
			return fmt.Errorf("--set %q: want PATH=VALUE, e.g. --set generation.window=32", kv)
		}
		var val yaml.Node
		if err := yaml.Unmarshal([]byte(value), &val); err != nil {
			return fmt.Errorf("--set %s: %w", path, err)
		}
		var v *yaml.Node
		if val.Kind == yaml.DocumentNode && len(val.Content) == 1 {
			v = val.Content[0]
		} else {
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
		}
		if root.Kind == 0 {
			*root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
		}
		m := root.Content[0]
		keys := strings.Split(path, ".")
		for i, k := range keys {
			if m.Kind != yaml.MappingNode {
				return fmt.Errorf("--set %s: %s is not a mapping", path, strings.Join(keys[:i], "."))
			}
			var next *yaml.Node
			for j := 0; j+1 < len(m.Content); j += 2 {
				if m.Content[j].Value == k {
					next = m.Content[j+1]
					if i == len(keys)-1 {
						m.Content[j+1] = v
					}
					break
				}
			}
			if next == nil {
				next = &yaml.Node{Kind: yaml.MappingNode}
				if i == len(keys)-1 {
					next = v
				}
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, next)
			}
			m = next
		}
	}
	return nil
}

var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlError rewrites yaml.v3's "line N: ..." messages as FILE:N: ..., one
// per line, and "field x not found in type T" as unknown field "x".
func yamlError(path string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		m = strings.TrimSpace(m)
		sub := yamlLineRE.FindStringSubmatch(m)
		if sub == nil {
			out[i] = path + ": " + strings.TrimPrefix(m, "yaml: ")
			continue
		}
		msg := sub[2]
		if u := yamlUnknownRE.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("unknown field %q", u[1])
		}
		out[i] = fmt.Sprintf("%s:%s: %s", path, sub[1], msg)
	}
	return errors.New(strings.Join(out, "\n"))
}
