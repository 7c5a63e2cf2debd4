package llm

import (
	"fmt"
	"regexp"
	"strings"
)

// ParseSpec parses a model given on the command line:
//
//	ollama:NAME[@URL]        e.g. ollama:llama3.1:8b@http://gpu1:11434
//	openai:NAME[@BASE_URL]   e.g. openai:gpt-4o-mini
//
// NAME may contain colons and '@'. The text after the last '@' is the
// endpoint when it is meant as one: it has a scheme ("://") or is a
// host:port (which means http://host:port). Such an endpoint must be a
// valid http(s) URL, or ParseSpec fails: a typo in the URL must not turn
// into part of the model name, or send a key to the default host.
// Otherwise the '@' belongs to NAME ("user/model@sha256:…"). The returned
// name is NAME.
func ParseSpec(spec string) (string, ModelConfig, error) {
	backend, rest, ok := strings.Cut(spec, ":")
	if !ok {
		forms := make([]string, len(backendTable))
		for i, b := range backendTable {
			forms[i] = b.specForm
		}
		return "", ModelConfig{}, fmt.Errorf("model spec %q: want %s", spec, strings.Join(forms, " or "))
	}
	mc := ModelConfig{Backend: Backend(backend)}
	if _, ok := lookupBackend(mc.Backend); !ok {
		return "", ModelConfig{}, fmt.Errorf("model spec %q: unknown backend %q (want %s)", spec, backend, backendChoices())
	}
	name := rest
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		u, meant, err := specURL(rest[i+1:])
		switch {
		case err != nil:
			return "", ModelConfig{}, fmt.Errorf("model spec %q: endpoint: %w", spec, err)
		case meant:
			name, mc.Endpoint = rest[:i], u
		}
	}
	if name == "" {
		return "", ModelConfig{}, fmt.Errorf("model spec %q: missing model name", spec)
	}
	mc.Model = name
	return name, mc, nil
}

var hostPortRE = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]+$`)

// specURL reads the part of a model spec after its last '@'. meant
// reports whether it is written as an endpoint; err, whether that
// endpoint is invalid.
func specURL(s string) (u string, meant bool, err error) {
	switch {
	case strings.Contains(s, "://"):
		u, err = normalizeURL(s)
		return u, true, err
	case hostPortRE.MatchString(s):
		u, err = normalizeURL("http://" + s)
		return u, true, err
	}
	return "", false, nil
}
