package abischema

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
)

func load(t *testing.T) *Schema {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchemaNamesMatchABI: every export and host function of plugin/abi
// has its two messages in the schema, and the schema has nothing else.
func TestSchemaNamesMatchABI(t *testing.T) {
	s := load(t)
	if s.ABIVersion() != abi.Version {
		t.Errorf("schema is for ABI %s, plugin/abi is %s", s.ABIVersion(), abi.Version)
	}
	if s.HostNamespace() != abi.HostNamespace {
		t.Errorf("schema host namespace %q, plugin/abi %q", s.HostNamespace(), abi.HostNamespace)
	}
	if !slices.Equal(s.Exports(), abi.Exports[:]) {
		t.Errorf("schema exports %v, plugin/abi %v", s.Exports(), abi.Exports)
	}
	if !slices.Equal(s.HostFunctions(), abi.HostFunctions[:]) {
		t.Errorf("schema host functions %v, plugin/abi %v", s.HostFunctions(), abi.HostFunctions)
	}
	// Memory functions (ABI 1.5) are raw: listed, with their results,
	// and no message of theirs is defined (the loop below refuses one).
	if !slices.Equal(s.MemoryFunctions(), abi.MemoryFunctions[:]) {
		t.Errorf("schema memory functions %v, plugin/abi %v", s.MemoryFunctions(), abi.MemoryFunctions)
	}
	if r, want := s.MemoryFunctionResults(), map[string]uint64{"copied": abi.CopyDone, "unsupported": abi.CopyUnsupported,
		"out_of_range": abi.CopyOutOfRange}; !maps.Equal(r, want) {
		t.Errorf("schema memory function results %v, plugin/abi %v", r, want)
	}
	// Direct calls (ABI 1.6) are raw too, their results negative.
	if !slices.Equal(s.DirectFunctions(), abi.DirectFunctions[:]) {
		t.Errorf("schema direct functions %v, plugin/abi %v", s.DirectFunctions(), abi.DirectFunctions)
	}
	if r, want := s.DirectFunctionResults(), map[string]int64{"unsupported": abi.DirectUnsupported,
		"out_of_range": abi.DirectOutOfRange, "no_answer": abi.DirectNoAnswer}; !maps.Equal(r, want) {
		t.Errorf("schema direct function results %v, plugin/abi %v", r, want)
	}
	want := map[string]bool{}
	for _, e := range abi.Exports {
		want[Input(e)], want[Output(e)] = true, true
	}
	for _, f := range abi.HostFunctions {
		want[Request(f)], want[Response(f)] = true, true
	}
	for _, d := range s.Defs() {
		if strings.ContainsRune(d, '.') && !want[d] {
			t.Errorf("schema defines %s, which is no message of plugin/abi", d)
		}
		delete(want, d)
	}
	for d := range want {
		t.Errorf("schema lacks %s", d)
	}
}

// TestSchemaErrorCodes: the schema's codes are plugin/abi's.
func TestSchemaErrorCodes(t *testing.T) {
	s := load(t)
	var codes []string
	for _, c := range abi.Codes {
		codes = append(codes, string(c))
		e, _ := json.Marshal(abi.Errorf(c, "m"))
		if err := s.Validate(ErrorDef, e); err != nil {
			t.Error(err)
		}
	}
	var def struct {
		Properties struct {
			Code struct {
				Enum []string `json:"enum"`
			} `json:"code"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(s.raw.Defs[ErrorDef], &def); err != nil {
		t.Fatal(err)
	}
	sort.Strings(codes)
	sort.Strings(def.Properties.Code.Enum)
	if !slices.Equal(codes, def.Properties.Code.Enum) {
		t.Errorf("schema error codes %v, plugin/abi %v", def.Properties.Code.Enum, codes)
	}
	if err := s.Validate(ErrorDef, []byte(`{"code":"teapot","message":"m"}`)); err == nil {
		t.Error("an unknown error code passed the schema")
	}
}

// goTypes pairs each schema definition with the plugin/abi type that
// encodes it.
var goTypes = map[string]any{
	ErrorDef:                              abi.Error{},
	Output(abi.ExportDescribe):            abi.Description{},
	Output(abi.ExportHandleIssueUpdated):  abi.HandleResponse{},
	Output(abi.ExportInspectDelivery):     abi.InspectResponse{},
	Input(abi.ExportRegisterWebhook):      abi.RegisterWebhookRequest{},
	Output(abi.ExportRegisterWebhook):     abi.RegisterWebhookResponse{},
	Input(abi.ExportUnregisterWebhook):    abi.UnregisterWebhookRequest{},
	Output(abi.ExportUnregisterWebhook):   abi.Empty{},
	Input(abi.ExportHandlePlatformEvent):  abi.PlatformEvent{},
	Output(abi.ExportHandlePlatformEvent): abi.EventResponse{},
	Request(abi.FuncLog):                  abi.LogRequest{},
	Response(abi.FuncLog):                 abi.Empty{},
	Request(abi.FuncInstallationGet):      abi.Empty{},
	Response(abi.FuncInstallationGet):     abi.InstallationResponse{},
	Request(abi.FuncJiraRequest):          abi.JiraRequest{},
	Response(abi.FuncJiraRequest):         abi.JiraResponse{},
	Request(abi.FuncGroupsLinked):         abi.GroupsLinkedRequest{},
	Response(abi.FuncGroupsLinked):        abi.GroupsLinkedResponse{},
	Request(abi.FuncUsersByEmail):         abi.UsersByEmailRequest{},
	Response(abi.FuncUsersByEmail):        abi.UsersByEmailResponse{},
	Request(abi.FuncGroupsAssign):         abi.GroupsAssignRequest{},
	Response(abi.FuncGroupsAssign):        abi.GroupsAssignResponse{},
	Request(abi.FuncStateGet):             abi.StateGetRequest{},
	Response(abi.FuncStateGet):            abi.StateGetResponse{},
	Request(abi.FuncStatePut):             abi.StatePutRequest{},
	Response(abi.FuncStatePut):            abi.Empty{},
	Request(abi.FuncGroupGet):             abi.GroupGetRequest{},
	Response(abi.FuncGroupGet):            abi.GroupGetResponse{},
	Request(abi.FuncUserGet):              abi.UserGetRequest{},
	Response(abi.FuncUserGet):             abi.UserGetResponse{},
}

// TestSchemaMatchesGoTypes walks each Go type beside its definition: every
// JSON member of the type is a property of the schema and the other way
// round, at every depth (the embedded Fault is the response envelope's
// other branch).
func TestSchemaMatchesGoTypes(t *testing.T) {
	s := load(t)
	for def, v := range goTypes {
		t.Run(def, func(t *testing.T) {
			var node map[string]any
			if err := json.Unmarshal(s.raw.Defs[def], &node); err != nil {
				t.Fatal(err)
			}
			compareType(t, s, def, reflect.TypeOf(v), node)
		})
	}
	for _, d := range s.Defs() {
		if _, ok := goTypes[d]; !ok && strings.ContainsRune(d, '.') && !strings.HasSuffix(d, ".input") {
			t.Errorf("%s has no Go type to compare with", d)
		}
	}
}

// resolve follows $ref, and takes a response's success branch (the one
// that is not the fault envelope).
func resolve(t *testing.T, s *Schema, node map[string]any) map[string]any {
	t.Helper()
	for {
		if r, ok := node["$ref"].(string); ok {
			name := strings.TrimPrefix(r, "#/$defs/")
			node = nil
			if err := json.Unmarshal(s.raw.Defs[name], &node); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if alts, ok := node["oneOf"].([]any); ok {
			var next map[string]any
			for _, a := range alts {
				m := a.(map[string]any)
				if m["$ref"] != "#/$defs/fault" && m["type"] != "null" {
					next = m
				}
			}
			node = next
			continue
		}
		return node
	}
}

func compareType(t *testing.T, s *Schema, where string, typ reflect.Type, node map[string]any) {
	t.Helper()
	node = resolve(t, s, node)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Slice:
		items, _ := node["items"].(map[string]any)
		if items == nil {
			t.Errorf("%s: Go has a list, the schema no items", where)
			return
		}
		compareType(t, s, where+"[]", typ.Elem(), items)
		return
	case reflect.Struct:
	default:
		return
	}
	props, _ := node["properties"].(map[string]any)
	seen := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Anonymous && f.Type == reflect.TypeOf(abi.Fault{}) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		seen[name] = true
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s: Go member %q is not in the schema", where, name)
			continue
		}
		compareType(t, s, where+"."+name, f.Type, p)
	}
	for name := range props {
		if !seen[name] {
			t.Errorf("%s: schema property %q is not in the Go type %s", where, name, typ)
		}
	}
}
