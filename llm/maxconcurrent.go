package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// This file holds the YAML and JSON form of an endpoint's max_concurrent,
// the one key that carries both EndpointConfig.MaxConcurrent and
// EndpointConfig.AutoConcurrency:
//
//	max_concurrent: 8                     # a fixed limit
//	max_concurrent: auto                  # adaptive, the backend's default ceiling
//	max_concurrent: {auto: true, max: 64} # adaptive, ceiling 64
//
// {max: 8} and {auto: false, max: 8} are the fixed limit 8.

// concurrencyValue is the decoded max_concurrent.
type concurrencyValue struct {
	max  int
	auto bool
}

// IsZero reports whether the value is unset, so that omitempty and
// omitzero leave it out.
func (v concurrencyValue) IsZero() bool { return v.max == 0 && !v.auto }

// concurrencyForm is the mapping form of max_concurrent.
type concurrencyForm struct {
	Auto bool `yaml:"auto" json:"auto"`
	Max  int  `yaml:"max,omitempty" json:"max,omitempty"`
}

const concurrencyWant = "want a number, auto, or {auto: true, max: N}"

// UnmarshalYAML decodes a number, auto or the mapping form. It uses the
// callback form of yaml.v3's unmarshaler so that the caller's decoder,
// strict about unknown fields, decodes the mapping.
func (v *concurrencyValue) UnmarshalYAML(unmarshal func(any) error) error {
	var held heldNode
	if err := unmarshal(&held); err != nil {
		return err
	}
	n := held.n
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "auto" {
			*v = concurrencyValue{auto: true}
			return nil
		}
		var i int
		if n.Tag != "!!int" || unmarshal(&i) != nil {
			return fmt.Errorf("line %d: max_concurrent: %q is not a number or auto (%s)", n.Line, n.Value, concurrencyWant)
		}
		*v = concurrencyValue{max: i}
		return nil
	case yaml.MappingNode:
		var f concurrencyForm
		if err := unmarshal(&f); err != nil {
			return err
		}
		*v = concurrencyValue{max: f.Max, auto: f.Auto}
		return nil
	}
	return fmt.Errorf("line %d: max_concurrent: %s", n.Line, concurrencyWant)
}

// heldNode keeps the node it is decoded from.
type heldNode struct{ n yaml.Node }

// UnmarshalYAML keeps n and accepts any content.
func (h *heldNode) UnmarshalYAML(n *yaml.Node) error {
	h.n = *n
	return nil
}

// MarshalYAML writes the shortest form that decodes to the same value.
func (v concurrencyValue) MarshalYAML() (any, error) {
	switch {
	case !v.auto:
		return v.max, nil
	case v.max == 0:
		return "auto", nil
	}
	return concurrencyForm{Auto: true, Max: v.max}, nil
}

// UnmarshalJSON decodes a number, "auto" or the object form, rejecting
// unknown keys in the object.
func (v *concurrencyValue) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case bytes.Equal(data, []byte(`"auto"`)):
		*v = concurrencyValue{auto: true}
		return nil
	case len(data) > 0 && data[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var f concurrencyForm
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("max_concurrent: %w", err)
		}
		*v = concurrencyValue{max: f.Max, auto: f.Auto}
		return nil
	}
	i, err := strconv.Atoi(string(data))
	if err != nil {
		return fmt.Errorf("max_concurrent: %s is not a number or \"auto\" (%s)", data, concurrencyWant)
	}
	*v = concurrencyValue{max: i}
	return nil
}

// MarshalJSON writes the shortest form that decodes to the same value.
func (v concurrencyValue) MarshalJSON() ([]byte, error) {
	switch {
	case !v.auto:
		return strconv.AppendInt(nil, int64(v.max), 10), nil
	case v.max == 0:
		return []byte(`"auto"`), nil
	}
	return json.Marshal(concurrencyForm{Auto: true, Max: v.max})
}

// endpointFields is EndpointConfig without its methods: the fields other
// than max_concurrent keep their own tags when an EndpointConfig is
// encoded or decoded.
type endpointFields EndpointConfig

// endpointForm is an EndpointConfig as it is written.
type endpointForm struct {
	MaxConcurrent  concurrencyValue `yaml:"max_concurrent,omitempty" json:"max_concurrent,omitzero"`
	endpointFields `yaml:",inline"`
}

func (e EndpointConfig) form() endpointForm {
	return endpointForm{concurrencyValue{max: e.MaxConcurrent, auto: e.AutoConcurrency}, endpointFields(e)}
}

func (f endpointForm) config() EndpointConfig {
	e := EndpointConfig(f.endpointFields)
	e.MaxConcurrent, e.AutoConcurrency = f.MaxConcurrent.max, f.MaxConcurrent.auto
	return e
}

// UnmarshalYAML decodes an endpoint's limits with the caller's (strict)
// decoder; max_concurrent takes the forms above.
func (e *EndpointConfig) UnmarshalYAML(unmarshal func(any) error) error {
	var f endpointForm
	if err := unmarshal(&f); err != nil {
		return err
	}
	*e = f.config()
	return nil
}

// MarshalYAML encodes an endpoint's limits, max_concurrent first.
func (e EndpointConfig) MarshalYAML() (any, error) { return e.form(), nil }

// UnmarshalJSON decodes an endpoint's limits; max_concurrent takes the
// forms above.
func (e *EndpointConfig) UnmarshalJSON(data []byte) error {
	var f endpointForm
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*e = f.config()
	return nil
}

// MarshalJSON encodes an endpoint's limits, max_concurrent first.
func (e EndpointConfig) MarshalJSON() ([]byte, error) { return json.Marshal(e.form()) }
