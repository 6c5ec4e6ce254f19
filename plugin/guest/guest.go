// Package guest is the plugin's side of the ABI: it decodes an export's
// input, runs the logic, and encodes the output, over a Transport that
// carries host-function calls. The wasm adapter supplies a Transport made of
// Wasm imports; the host's native engine supplies one made of direct calls.
// Everything here is plain Go and runs under go test.
package guest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/groupsync"
	"github.com/jirasync/jirasync/plugin/jirawebhook"
	"github.com/jirasync/jirasync/plugin/outbound"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// Name and Version identify this plugin in its description.
const (
	Name    = "jirasync"
	Version = "0.1.0"
)

// Transport calls a host function with a JSON request and returns its JSON
// response. It must not fail: a host reports errors inside the response.
type Transport interface {
	Call(function string, request []byte) []byte
}

// Describe returns the plugin's description.
func Describe() abi.Description {
	return abi.Description{
		Name:       Name,
		Version:    Version,
		ABIVersion: abi.Version,
		Exports:    abi.Exports[:],
		Imports:    slices.Concat(abi.HostFunctions[:], abi.MemoryFunctions[:], abi.DirectFunctions[:]),
	}
}

// describeJSON is the describe export's output, encoded once: the
// description is constant, and encoding/json's reflection costs about a
// third of an empty call's round trip inside the sandbox (BENCHMARKS.md).
var describeJSON = sync.OnceValue(func() []byte { return mustMarshal(Describe()) })

// Dispatch runs one export. It returns the output to hand to the host, and
// whether the call succeeded; on failure the output is an encoded abi.Error.
func Dispatch(export string, input []byte, t Transport) ([]byte, bool) {
	switch export {
	case abi.ExportDescribe:
		// A copy: the native engine hands the output to the host as is.
		return bytes.Clone(describeJSON()), true
	case abi.ExportHandleIssueUpdated:
		sum, err := groupsync.Handle(Client{t}, input)
		if err != nil {
			return mustMarshal(groupsync.AsABIError(err)), false
		}
		return output(&abi.HandleResponse{Summary: sum}, encodeHandleResponse), true
	case abi.ExportHandlePlatformEvent:
		sum, err := outbound.Handle(Client{t}, input)
		if err != nil {
			return mustMarshal(groupsync.AsABIError(err)), false
		}
		return output(&abi.EventResponse{Summary: sum}, encodeEventResponse), true
	case abi.ExportInspectDelivery:
		// No host calls: a host asks before it has bound the call to
		// anything, and may ask again at will.
		in := webhook.Inspect(input)
		return output(&abi.InspectResponse{Inspection: &in}, encodeInspectResponse), true
	case abi.ExportRegisterWebhook:
		var req abi.RegisterWebhookRequest
		if err := json.Unmarshal(input, &req); err != nil {
			return mustMarshal(abi.Errorf(abi.CodeInvalidRequest, "register_webhook input: "+err.Error())), false
		}
		resp, err := jirawebhook.Register(Client{t}, req)
		if err != nil {
			return mustMarshal(groupsync.AsABIError(err)), false
		}
		return mustMarshal(resp), true
	case abi.ExportUnregisterWebhook:
		var req abi.UnregisterWebhookRequest
		if err := json.Unmarshal(input, &req); err != nil {
			return mustMarshal(abi.Errorf(abi.CodeInvalidRequest, "unregister_webhook input: "+err.Error())), false
		}
		if err := jirawebhook.Unregister(Client{t}, req.Webhook); err != nil {
			return mustMarshal(groupsync.AsABIError(err)), false
		}
		return mustMarshal(abi.Empty{}), true
	default:
		return mustMarshal(abi.Errorf(abi.CodeInvalidRequest, "unknown export "+export)), false
	}
}

// output writes an export's output with its encoder (encode.go).
func output[T any](v *T, enc encoder[T]) []byte {
	b, err := enc(make([]byte, 0, 256), v)
	if err != nil {
		return mustMarshal(abi.Errorf(abi.CodeInternal, "encoding output: "+err.Error()))
	}
	return b
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable with an unencodable value in a log field; the
		// types above are all plain data.
		b, _ = json.Marshal(abi.Errorf(abi.CodeInternal, "encoding output: "+err.Error()))
	}
	return b
}

// Client implements groupsync.Host over a Transport.
type Client struct{ T Transport }

var _ groupsync.Host = Client{}

// call sends req, written by enc (encode.go), to a host function, decodes
// its answer into resp with member (decode.go) and returns the failure the
// answer carries, if any.
func call[R, T any](c Client, function string, req R, enc encoder[R], resp *T, fault *abi.Fault, member decoder[T]) error {
	in, err := enc(make([]byte, 0, 128), &req)
	if err != nil {
		return abi.Errorf(abi.CodeInternal, fmt.Sprintf("encoding %s request: %v", function, err))
	}
	out := c.T.Call(function, in)
	if err := decodeAnswer(out, resp, fault, member); err != nil {
		return abi.Errorf(abi.CodeInternal, fmt.Sprintf("decoding %s response: %v", function, err))
	}
	if e := fault.Err(); e != nil {
		return e
	}
	return nil
}

func (c Client) Log(level, message string, fields map[string]any) {
	var resp abi.Empty
	// A log line that cannot be delivered is not worth failing a delivery.
	_ = call(c, abi.FuncLog, abi.LogRequest{Level: level, Message: message, Fields: fields}, encodeLog, &resp, &resp.Fault, noMembers)
}

func (c Client) Installation() (*abi.InstallationResponse, error) {
	var resp abi.InstallationResponse
	if err := call(c, abi.FuncInstallationGet, struct{}{}, encodeEmpty, &resp, &resp.Fault, installationMember); err != nil {
		return nil, err
	}
	return &resp, nil
}

func (c Client) JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error) {
	var resp abi.JiraResponse
	if err := call(c, abi.FuncJiraRequest, req, encodeJiraRequest, &resp, &resp.Fault, jiraMember); err != nil {
		return nil, err
	}
	return &resp, nil
}

func (c Client) GroupsLinked(req abi.GroupsLinkedRequest) ([]abi.LinkedGroup, error) {
	var resp abi.GroupsLinkedResponse
	if err := call(c, abi.FuncGroupsLinked, req, encodeGroupsLinked, &resp, &resp.Fault, groupsLinkedMember); err != nil {
		return nil, err
	}
	return resp.Groups, nil
}

func (c Client) UsersByEmail(email string) ([]abi.PlatformUser, error) {
	var resp abi.UsersByEmailResponse
	if err := call(c, abi.FuncUsersByEmail, abi.UsersByEmailRequest{Email: email}, encodeUsersByEmail, &resp, &resp.Fault, usersMember); err != nil {
		return nil, err
	}
	return resp.Users, nil
}

func (c Client) GroupsAssign(req abi.GroupsAssignRequest) (int, error) {
	var resp abi.GroupsAssignResponse
	if err := call(c, abi.FuncGroupsAssign, req, encodeGroupsAssign, &resp, &resp.Fault, assignMember); err != nil {
		return 0, err
	}
	return resp.Changed, nil
}

func (c Client) StateGet(key string) (string, bool, error) {
	var resp abi.StateGetResponse
	if err := call(c, abi.FuncStateGet, abi.StateGetRequest{Key: key}, encodeStateGet, &resp, &resp.Fault, stateMember); err != nil {
		return "", false, err
	}
	return resp.Value, resp.Found, nil
}

func (c Client) StatePut(req abi.StatePutRequest) error {
	var resp abi.Empty
	return call(c, abi.FuncStatePut, req, encodeStatePut, &resp, &resp.Fault, noMembers)
}

func (c Client) SharedStateGet(key string) (string, bool, error) {
	var resp abi.StateGetResponse
	if err := call(c, abi.FuncStateGet, abi.StateGetRequest{Key: key, Shared: true}, encodeStateGet, &resp, &resp.Fault, stateMember); err != nil {
		return "", false, err
	}
	return resp.Value, resp.Found, nil
}

func (c Client) GroupGet(id string) (*abi.GroupInfo, error) {
	var resp abi.GroupGetResponse
	if err := call(c, abi.FuncGroupGet, abi.GroupGetRequest{Group: id}, encodeGroupGet, &resp, &resp.Fault, groupGetMember); err != nil {
		return nil, err
	}
	if resp.Group == nil {
		return nil, abi.Errorf(abi.CodeInternal, abi.FuncGroupGet+" answered without a group")
	}
	return resp.Group, nil
}

func (c Client) UserGet(id string) (*abi.UserInfo, error) {
	var resp abi.UserGetResponse
	if err := call(c, abi.FuncUserGet, abi.UserGetRequest{User: id}, encodeUserGet, &resp, &resp.Fault, userGetMember); err != nil {
		return nil, err
	}
	if resp.User == nil {
		return nil, abi.Errorf(abi.CodeInternal, abi.FuncUserGet+" answered without a user")
	}
	return resp.User, nil
}
