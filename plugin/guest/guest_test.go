package guest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
	"github.com/jirasync/jirasync/testharness/abischema"
)

// schemaTransport answers host-function calls from a table, and holds both
// sides to the ABI schema: every request the guest sends, and every answer
// of the table (so that the test's host speaks the ABI too).
type schemaTransport struct {
	t       *testing.T
	s       *abischema.Schema
	answers map[string]func(req []byte) any
	calls   []string
}

func (tr *schemaTransport) Call(fn string, req []byte) []byte {
	tr.t.Helper()
	tr.calls = append(tr.calls, fn)
	if err := tr.s.Validate(abischema.Request(fn), req); err != nil {
		tr.t.Error(err)
	}
	answer, ok := tr.answers[fn]
	if !ok {
		tr.t.Errorf("unexpected host call %s %s", fn, req)
		out, _ := json.Marshal(abi.Empty{Fault: abi.Fault{Error: abi.Errorf(abi.CodeDenied, "not in this test")}})
		return out
	}
	out, err := json.Marshal(answer(req))
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := tr.s.Validate(abischema.Response(fn), out); err != nil {
		tr.t.Errorf("the test's own answer: %v", err)
	}
	return out
}

func ptr(s string) *string { return &s }

// host answers like a host with one installation serving acme, two groups
// linked to APP-1, alice on the platform, and a Jira that knows bob.
func host(jira func(abi.JiraRequest) abi.JiraResponse) map[string]func([]byte) any {
	state := map[string]string{}
	return map[string]func([]byte) any{
		abi.FuncLog: func([]byte) any { return abi.Empty{} },
		abi.FuncInstallationGet: func([]byte) any {
			return abi.InstallationResponse{ID: "jira1", ExternalID: "jira.example.com:jirasync", BaseURL: "https://jira.example.com",
				Organizations: []abi.InstallationOrgSettings{{ID: "acme", InboundAssignee: true, OutboundAssignee: true}}}
		},
		abi.FuncGroupsLinked: func([]byte) any {
			return abi.GroupsLinkedResponse{Groups: []abi.LinkedGroup{{ID: "g1", Organization: "acme", Project: "backend", Assignee: ptr("bob")},
				{ID: "g2", Organization: "acme", Project: "frontend"}}}
		},
		abi.FuncUsersByEmail: func(req []byte) any {
			var r abi.UsersByEmailRequest
			_ = json.Unmarshal(req, &r)
			if strings.EqualFold(r.Email, "alice@example.com") {
				return abi.UsersByEmailResponse{Users: []abi.PlatformUser{{ID: "alice", Verified: true, Projects: []string{"backend"}}}}
			}
			return abi.UsersByEmailResponse{Users: []abi.PlatformUser{}}
		},
		abi.FuncGroupsAssign: func(req []byte) any {
			var r abi.GroupsAssignRequest
			_ = json.Unmarshal(req, &r)
			return abi.GroupsAssignResponse{Changed: len(r.Assignments)}
		},
		abi.FuncStateGet: func(req []byte) any {
			var r abi.StateGetRequest
			_ = json.Unmarshal(req, &r)
			v, ok := state[r.Key]
			return abi.StateGetResponse{Value: v, Found: ok}
		},
		abi.FuncStatePut: func(req []byte) any {
			var r abi.StatePutRequest
			_ = json.Unmarshal(req, &r)
			state[r.Key] = r.Value
			return abi.Empty{}
		},
		abi.FuncJiraRequest: func(req []byte) any {
			var r abi.JiraRequest
			_ = json.Unmarshal(req, &r)
			return jira(r)
		},
		abi.FuncGroupGet: func(req []byte) any {
			var r abi.GroupGetRequest
			_ = json.Unmarshal(req, &r)
			if r.Group != "g1" {
				return abi.GroupGetResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeNotFound, "no group "+r.Group)}}
			}
			return abi.GroupGetResponse{Group: &abi.GroupInfo{ID: "g1", Organization: "acme", Project: "backend",
				Assignee: ptr("bob"), Status: abi.GroupUnresolved, IssueKeys: []string{"APP-1"}}}
		},
		abi.FuncUserGet: func([]byte) any {
			return abi.UserGetResponse{User: &abi.UserInfo{ID: "alice", Emails: []abi.UserEmail{{Email: "alice@example.com", Verified: true}}}}
		},
	}
}

// jira answers like a Jira 9 (or 10) that knows alice.
func jira(major int) func(abi.JiraRequest) abi.JiraResponse {
	return func(r abi.JiraRequest) abi.JiraResponse {
		switch {
		case r.Path == "/rest/api/2/user" && (r.Query["username"] != nil || r.Query["key"] != nil):
			return abi.JiraResponse{Status: 200, Body: `{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com"}`}
		case r.Path == "/rest/api/2/user/search":
			return abi.JiraResponse{Status: 200, Body: `[{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com"}]`}
		case r.Path == "/rest/api/2/issue/APP-1" && r.Method == "GET":
			return abi.JiraResponse{Status: 200, Body: `{"key":"APP-1","fields":{"assignee":null,"status":{"id":"1"}}}`}
		case r.Path == "/rest/api/2/issue/APP-1/assignee" && r.Method == "PUT":
			return abi.JiraResponse{Status: 204}
		case r.Path == "/rest/api/2/serverInfo" && major >= 10:
			return abi.JiraResponse{Status: 200, Body: `{"version":"10.3.1","versionNumbers":[10,3,1]}`}
		case r.Path == "/rest/api/2/serverInfo":
			return abi.JiraResponse{Status: 200, Body: `{"version":"9.12.0","versionNumbers":[9,12,0]}`}
		case r.Method == "POST" && major >= 10:
			return abi.JiraResponse{Status: 201, Body: `{"id":7}`}
		case r.Method == "POST":
			return abi.JiraResponse{Status: 201, Body: `{"self":"https://jira.example.com/rest/webhooks/1.0/webhook/7"}`}
		case r.Method == "DELETE":
			return abi.JiraResponse{Status: 204}
		}
		return abi.JiraResponse{Status: 404, Body: `{"errorMessages":["no"]}`}
	}
}

func payload(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDispatchSpeaksTheSchema runs every export the way a host would and
// checks every message the guest sends, outputs and errors included,
// against docs/abi.schema.json.
func TestDispatchSpeaksTheSchema(t *testing.T) {
	s, err := abischema.Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, export, input string
		jiraMajor           int
		wantOK              bool
		wantCalls           bool // whether host functions are called
	}{
		{name: "describe", export: abi.ExportDescribe, wantOK: true},
		{name: "email in payload", export: abi.ExportHandleIssueUpdated, input: payload(t, "assigned.json"), wantOK: true, wantCalls: true},
		{name: "lookup by name", export: abi.ExportHandleIssueUpdated, input: payload(t, "assigned-no-email.json"), wantOK: true, wantCalls: true},
		{name: "unassigned", export: abi.ExportHandleIssueUpdated, input: payload(t, "unassigned.json"), wantOK: true, wantCalls: true},
		{name: "ignored", export: abi.ExportHandleIssueUpdated, input: payload(t, "no-changelog.json"), wantOK: true, wantCalls: true},
		{name: "no issue key", export: abi.ExportHandleIssueUpdated, input: `{"changelog":{"items":[{"field":"assignee"}]}}`},
		{name: "inspect", export: abi.ExportInspectDelivery, input: payload(t, "assigned.json"), wantOK: true},
		{name: "inspect unreadable", export: abi.ExportInspectDelivery, input: `{"issue":{"id":[]}}`, wantOK: true},
		{name: "inspect no ids", export: abi.ExportInspectDelivery, input: `{}`, wantOK: true},
		{name: "register jira 9", export: abi.ExportRegisterWebhook, input: `{"name":"jirasync"}`, jiraMajor: 9, wantOK: true, wantCalls: true},
		{name: "register jira 10 over previous", export: abi.ExportRegisterWebhook, jiraMajor: 10, wantOK: true, wantCalls: true,
			input: `{"name":"jirasync","previous":{"api":"webhooks-1.0","id":"3"}}`},
		{name: "register bad input", export: abi.ExportRegisterWebhook, input: `[]`},
		{name: "unregister", export: abi.ExportUnregisterWebhook, input: `{"webhook":{"api":"jira-webhook-1.0","id":"7"}}`, wantOK: true, wantCalls: true},
		{name: "platform event", export: abi.ExportHandlePlatformEvent, wantOK: true, wantCalls: true,
			input: `{"id":"ev-1","type":"group.assigned","group":"g1","assignee":"alice","occurred_at":"2026-11-30T04:00:00Z"}`},
		{name: "platform event for a group gone", export: abi.ExportHandlePlatformEvent, wantOK: true, wantCalls: true,
			input: `{"id":"ev-2","type":"group.resolved","group":"g9","assignee":null,"occurred_at":"2026-11-30T04:00:00Z"}`},
		{name: "platform event of an unknown type", export: abi.ExportHandlePlatformEvent,
			input: `{"id":"ev-3","type":"group.deleted","group":"g1","assignee":null,"occurred_at":"2026-11-30T04:00:00Z"}`},
		{name: "unknown export", export: "drop_tables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &schemaTransport{t: t, s: s, answers: host(jira(tt.jiraMajor))}
			if err := s.Validate(abischema.Input(tt.export), []byte(tt.input)); tt.wantOK && tt.export != abi.ExportDescribe && err != nil {
				t.Errorf("the test's input: %v", err)
			}
			out, ok := guest.Dispatch(tt.export, []byte(tt.input), tr)
			if ok != tt.wantOK {
				t.Fatalf("Dispatch ok = %v, want %v; output %s", ok, tt.wantOK, out)
			}
			def := abischema.ErrorDef
			if ok {
				def = abischema.Output(tt.export)
			}
			if err := s.Validate(def, out); err != nil {
				t.Error(err)
			}
			if (len(tr.calls) > 0) != tt.wantCalls {
				t.Errorf("host calls %v, want calls: %v", tr.calls, tt.wantCalls)
			}
		})
	}
}
