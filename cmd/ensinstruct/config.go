package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/ensinstruct/ensinstruct/llm"
	"go.yaml.in/yaml/v3"
)

// fileConfig is the YAML configuration file (-c). Unknown fields are
// errors. Add the pipeline's sections as further fields.
type fileConfig struct {
	// Pool is the model pool: the models, endpoints and retry sections at
	// the top level of the file.
	Pool llm.Config `yaml:",inline"`
}

// loadConfig reads and validates the configuration file at path. Every
// problem is bad input (exit 2) reported as FILE:LINE: message (decoding)
// or FILE: field: message (validation).
func loadConfig(path string) (*fileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, badInput(fmt.Errorf("config: %w", err))
	}
	defer f.Close()
	var c fileConfig
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, badInput(yamlError(path, err))
	}
	if err := c.Pool.Validate(); err != nil {
		return nil, badInput(prefixLines(path+": ", err))
	}
	return &c, nil
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

// prefixLines puts prefix before every line of err's message.
func prefixLines(prefix string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return errors.New(strings.Join(lines, "\n"))
}
