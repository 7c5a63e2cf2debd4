package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NamedModel is one entry of Models.
type NamedModel struct {
	// Name is the model's name in the pool (the key in the models map).
	Name string
	ModelConfig
}

// Models is the ordered models section: in YAML and JSON a mapping from
// name to ModelConfig whose order is kept. The zero value is empty and
// ready to use.
type Models []NamedModel

// Get returns the model called name.
func (ms Models) Get(name string) (ModelConfig, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m.ModelConfig, true
		}
	}
	return ModelConfig{}, false
}

// Set replaces the model called name, or appends it.
func (ms *Models) Set(name string, mc ModelConfig) {
	for i := range *ms {
		if (*ms)[i].Name == name {
			(*ms)[i].ModelConfig = mc
			return
		}
	}
	*ms = append(*ms, NamedModel{Name: name, ModelConfig: mc})
}

// Names returns the model names in order.
func (ms Models) Names() []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

// UnmarshalYAML decodes the models mapping in file order. It uses the
// callback form of yaml.v3's unmarshaler on purpose: the callback decodes
// with the caller's decoder, so KnownFields(true) still rejects unknown
// fields inside each model and errors keep their line numbers. The order
// comes from a second pass that records where each model starts.
func (ms *Models) UnmarshalYAML(unmarshal func(any) error) error {
	var self yamlPos
	if err := unmarshal(&self); err != nil {
		return err
	}
	switch self.kind {
	case 0: // null: no models
		*ms = nil
		return nil
	case yaml.MappingNode:
	default:
		return fmt.Errorf("line %d: models must be a mapping from name to model", self.line)
	}
	var byName map[string]ModelConfig
	if err := unmarshal(&byName); err != nil {
		return err
	}
	var pos map[string]yamlPos
	if err := unmarshal(&pos); err != nil {
		return err
	}
	out := make(Models, 0, len(byName))
	for name, mc := range byName {
		out = append(out, NamedModel{Name: name, ModelConfig: mc})
	}
	slices.SortFunc(out, func(a, b NamedModel) int {
		pa, pb := pos[a.Name], pos[b.Name]
		if pa.line != pb.line {
			return pa.line - pb.line
		}
		if pa.col != pb.col {
			return pa.col - pb.col
		}
		return strings.Compare(a.Name, b.Name)
	})
	*ms = out
	return nil
}

// yamlPos records where a YAML value starts and its kind. (A null value
// is not decoded at all and leaves it zero.)
type yamlPos struct {
	line, col int
	kind      yaml.Kind
}

// UnmarshalYAML records the node's position and accepts any content.
func (p *yamlPos) UnmarshalYAML(n *yaml.Node) error {
	p.line, p.col, p.kind = n.Line, n.Column, n.Kind
	return nil
}

// MarshalYAML encodes the models as an ordered mapping.
func (ms Models) MarshalYAML() (any, error) {
	node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, m := range ms {
		var v yaml.Node
		if err := v.Encode(m.ModelConfig); err != nil {
			return nil, err
		}
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.Name}, &v)
	}
	return node, nil
}

// MarshalJSON encodes the models as an object whose keys keep their order.
func (ms Models) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.ModelConfig)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes an object of models, keeping the order of its keys.
func (ms *Models) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*ms = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("models must be a JSON object")
	}
	var out Models
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var mc ModelConfig
		if err := dec.Decode(&mc); err != nil {
			return fmt.Errorf("models.%s: %w", name, err)
		}
		if _, dup := out.Get(name); dup {
			return fmt.Errorf("models.%s: defined twice", name)
		}
		out = append(out, NamedModel{Name: name, ModelConfig: mc})
	}
	*ms = out
	return nil
}

// Add adds a model given on the command line (see ParseSpec) and
// returns its name in ms. The same model given again, or already configured under
// that name, keeps its entry and gains mc's roles; a name taken by a
// different model gets the endpoint's host appended.
func (ms *Models) Add(name string, mc ModelConfig) string {
	if prev, ok := ms.Get(name); ok {
		if prev.Backend == mc.Backend && prev.Model == mc.Model && prev.Endpoint == mc.Endpoint {
			for _, r := range mc.Roles {
				if !slices.Contains(prev.Roles, r) {
					prev.Roles = append(slices.Clone(prev.Roles), r)
				}
			}
			ms.Set(name, prev)
			return name
		}
		host := string(mc.Backend)
		if u, err := url.Parse(mc.Endpoint); err == nil && u.Host != "" {
			host = u.Host
		}
		base := name + "@" + host
		name = base
		for i := 2; ; i++ {
			if _, taken := ms.Get(name); !taken {
				break
			}
			name = fmt.Sprintf("%s#%d", base, i)
		}
	}
	ms.Set(name, mc)
	return name
}
