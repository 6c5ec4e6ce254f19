// Package abischema validates plugin-boundary messages against
// docs/abi.schema.json, for tests on both sides: plugin tests check what
// the guest sends, host tests what the host answers. Only tests import it,
// so neither the plugin nor the host binary carries a validator.
package abischema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/jirasync/jirasync/docs"
)

// Schema is the compiled ABI schema.
type Schema struct {
	raw struct {
		Meta struct {
			ABIVersion    string   `json:"abi_version"`
			HostNamespace string   `json:"host_namespace"`
			Exports       []string `json:"exports"`
			HostFunctions []string `json:"host_functions"`
			// Since ABI 1.5: raw functions, no envelope, no $defs.
			MemoryFunctions       []string          `json:"memory_functions"`
			MemoryFunctionResults map[string]uint64 `json:"memory_function_results"`
			// Since ABI 1.6: raw functions too; negative results.
			DirectFunctions       []string         `json:"direct_functions"`
			DirectFunctionResults map[string]int64 `json:"direct_function_results"`
		} `json:"x-jirasync"`
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	defs map[string]*jsonschema.Schema
}

// Message names a schema definition: an export's input or output, a host
// function's request or response.
func Input(export string) string     { return export + ".input" }
func Output(export string) string    { return export + ".output" }
func Request(function string) string { return function + ".request" }
func Response(function string) string {
	return function + ".response"
}

// ErrorDef is the definition of the error envelope.
const ErrorDef = "error"

const url = "https://jirasync.example/abi.schema.json"

var loaded struct {
	sync.Once
	s   *Schema
	err error
}

// Load compiles the schema once per process.
func Load() (*Schema, error) {
	loaded.Do(func() { loaded.s, loaded.err = compile(docs.ABISchema) })
	return loaded.s, loaded.err
}

func compile(raw []byte) (*Schema, error) {
	s := &Schema{defs: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(raw, &s.raw); err != nil {
		return nil, fmt.Errorf("abi.schema.json: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("abi.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	for name := range s.raw.Defs {
		d, err := c.Compile(url + "#/$defs/" + name)
		if err != nil {
			return nil, fmt.Errorf("abi.schema.json: $defs/%s: %w", name, err)
		}
		s.defs[name] = d
	}
	return s, nil
}

// Validate checks one JSON message against the named definition.
func (s *Schema) Validate(def string, msg []byte) error {
	d, ok := s.defs[def]
	if !ok {
		return fmt.Errorf("abi.schema.json has no definition %q", def)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("%s: not JSON: %w", def, err)
	}
	if err := d.Validate(v); err != nil {
		return fmt.Errorf("%s does not match the schema: %w (message %.300s)", def, err, msg)
	}
	return nil
}

// Defs lists the definitions, sorted.
func (s *Schema) Defs() []string {
	out := make([]string, 0, len(s.defs))
	for n := range s.defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ABIVersion, HostNamespace, Exports and HostFunctions are what the
// schema's x-jirasync member declares.
func (s *Schema) ABIVersion() string      { return s.raw.Meta.ABIVersion }
func (s *Schema) HostNamespace() string   { return s.raw.Meta.HostNamespace }
func (s *Schema) Exports() []string       { return s.raw.Meta.Exports }
func (s *Schema) HostFunctions() []string { return s.raw.Meta.HostFunctions }

// MemoryFunctions and MemoryFunctionResults (since ABI 1.5) are the raw
// memory functions the schema's x-jirasync member declares, and their
// results by name; no $defs entry describes them.
func (s *Schema) MemoryFunctions() []string                { return s.raw.Meta.MemoryFunctions }
func (s *Schema) MemoryFunctionResults() map[string]uint64 { return s.raw.Meta.MemoryFunctionResults }

// DirectFunctions and DirectFunctionResults (since ABI 1.6) are the raw
// direct-call functions the schema's x-jirasync member declares, and their
// negative results by name.
func (s *Schema) DirectFunctions() []string               { return s.raw.Meta.DirectFunctions }
func (s *Schema) DirectFunctionResults() map[string]int64 { return s.raw.Meta.DirectFunctionResults }
