package groupsync_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/groupsync"
	"github.com/jirasync/jirasync/plugin/internal/golden"
	"github.com/jirasync/jirasync/plugin/internal/memstate"
)

// memHost answers the capabilities from memory and records the calls, the
// native twin of the host's functions (as kube-scheduler-wasm-extension
// stubs its imports), so the logic is tested without a sandbox.
type memHost struct {
	memstate.State
	orgs       []abi.InstallationOrgSettings
	groups     []abi.LinkedGroup
	users      map[string][]abi.PlatformUser // by lower-case email
	jira       map[string]abi.JiraResponse   // by "param=value"
	jiraErr    *abi.Error
	assignErr  *abi.Error
	assigned   []abi.Assignment
	lookups    []url.Values
	logs       []string
	linkedOrgs []string
}

func (h *memHost) Log(level, message string, _ map[string]any) {
	h.logs = append(h.logs, level+": "+message)
}

func (h *memHost) Installation() (*abi.InstallationResponse, error) {
	return &abi.InstallationResponse{ID: "jira1", ExternalID: "jira.example.com:jirasync", Organizations: h.orgs}, nil
}

func (h *memHost) JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error) {
	h.lookups = append(h.lookups, req.Query)
	if h.jiraErr != nil {
		return nil, h.jiraErr
	}
	if req.Method != "GET" || req.Path != "/rest/api/2/user" {
		return nil, abi.Errorf(abi.CodeDenied, "unexpected request "+req.Method+" "+req.Path)
	}
	for k, v := range req.Query {
		if r, ok := h.jira[k+"="+v[0]]; ok {
			return &r, nil
		}
	}
	return &abi.JiraResponse{Status: 404, Body: `{"errorMessages":["no such user"]}`}, nil
}

func (h *memHost) GroupsLinked(req abi.GroupsLinkedRequest) ([]abi.LinkedGroup, error) {
	h.linkedOrgs = req.Organizations
	var out []abi.LinkedGroup
	for _, g := range h.groups {
		for _, o := range req.Organizations {
			if g.Organization == o {
				out = append(out, g)
			}
		}
	}
	return out, nil
}

func (h *memHost) UsersByEmail(email string) ([]abi.PlatformUser, error) {
	return h.users[strings.ToLower(email)], nil
}

func (h *memHost) GroupsAssign(req abi.GroupsAssignRequest) (int, error) {
	if h.assignErr != nil {
		return 0, h.assignErr
	}
	h.assigned = append(h.assigned, req.Assignments...)
	return len(req.Assignments), nil
}

// The logic of deliveries reads no single group or user.
func (h *memHost) GroupGet(id string) (*abi.GroupInfo, error) {
	return nil, abi.Errorf(abi.CodeDenied, "unexpected group_get "+id)
}

func (h *memHost) UserGet(id string) (*abi.UserInfo, error) {
	return nil, abi.Errorf(abi.CodeDenied, "unexpected user_get "+id)
}

func ptr(s string) *string { return &s }

func payload(assignee string) json.RawMessage {
	return json.RawMessage(`{"timestamp":1764410000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10002","key":"APP-1","fields":{"assignee":` + assignee + `}},
		"changelog":{"id":"10431","items":[{"field":"assignee","fieldtype":"jira"}]}}`)
}

func baseHost() *memHost {
	return &memHost{
		orgs: []abi.InstallationOrgSettings{{ID: "acme", InboundAssignee: true}},
		groups: []abi.LinkedGroup{
			{ID: "g1", Organization: "acme", Project: "backend", Assignee: ptr("bob")},
			{ID: "g2", Organization: "acme", Project: "frontend"},
		},
		users: map[string][]abi.PlatformUser{
			"alice@example.com": {{ID: "alice", Verified: true, Projects: []string{"backend", "frontend"}}},
		},
		jira: map[string]abi.JiraResponse{
			"username=alice":      {Status: 200, Body: `{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com"}`},
			"key=JIRAUSER10000":   {Status: 200, Body: `{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com"}`},
			"username=hidden":     {Status: 200, Body: `{"name":"hidden","key":"JIRAUSER10009"}`},
			"username=broken":     {Status: 200, Body: `<html>`},
			"username=jira-error": {Status: 502, Body: `bad gateway`},
			"username=forbidden":  {Status: 403, Body: `{"errorMessages":["no"]}`},
		},
	}
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name        string
		payload     json.RawMessage
		setup       func(*memHost)
		wantCode    abi.ErrorCode
		wantAssign  map[string]*string
		wantLookups int
		golden      string
	}{
		{name: "email in payload", payload: payload(`{"name":"alice","emailAddress":"alice@example.com"}`),
			wantAssign: map[string]*string{"g1": ptr("alice"), "g2": ptr("alice")}, golden: "assign-email-in-payload"},
		{name: "email looked up by name", payload: payload(`{"name":"alice","key":"JIRAUSER10000"}`),
			wantAssign: map[string]*string{"g1": ptr("alice"), "g2": ptr("alice")}, wantLookups: 1},
		{name: "email looked up by key", payload: payload(`{"key":"JIRAUSER10000","emailAddress":""}`),
			wantAssign: map[string]*string{"g1": ptr("alice"), "g2": ptr("alice")}, wantLookups: 1},
		{name: "cached email skips the lookup", payload: payload(`{"name":"alice"}`),
			setup:      func(h *memHost) { h.Local = map[string]string{"jira-user-email:username:alice": "alice@example.com"} },
			wantAssign: map[string]*string{"g1": ptr("alice"), "g2": ptr("alice")}},
		{name: "unassign", payload: payload(`null`), wantAssign: map[string]*string{"g1": nil, "g2": nil}, golden: "unassign"},
		{name: "jira hides the email", payload: payload(`{"name":"hidden"}`), wantLookups: 1, golden: "no-email"},
		{name: "unknown in jira", payload: payload(`{"name":"ghost"}`), wantLookups: 1},
		{name: "no identity", payload: payload(`{"displayName":"Someone"}`)},
		{name: "user not member of project", payload: payload(`{"emailAddress":"alice@example.com"}`),
			setup: func(h *memHost) {
				h.users["alice@example.com"] = []abi.PlatformUser{{ID: "alice", Verified: true, Projects: []string{"frontend"}}}
			},
			wantAssign: map[string]*string{"g2": ptr("alice")}, golden: "partial-skip"},
		{name: "unverified email does not count", payload: payload(`{"emailAddress":"alice@example.com"}`),
			setup: func(h *memHost) { h.users["alice@example.com"][0].Verified = false }},
		{name: "first member among users sharing an email", payload: payload(`{"emailAddress":"alice@example.com"}`),
			setup: func(h *memHost) {
				h.users["alice@example.com"] = []abi.PlatformUser{
					{ID: "alice-old", Verified: true, Projects: []string{"frontend"}},
					{ID: "alice", Verified: true, Projects: []string{"backend", "frontend"}}}
			},
			wantAssign: map[string]*string{"g1": ptr("alice"), "g2": ptr("alice-old")}},
		// Sent all the same: the group may change before the host commits.
		{name: "already assigned is unchanged", payload: payload(`{"emailAddress":"bob@example.com"}`),
			wantAssign: map[string]*string{"g1": ptr("bob")},
			setup: func(h *memHost) {
				h.users["bob@example.com"] = []abi.PlatformUser{{ID: "bob", Verified: true, Projects: []string{"backend"}}}
			}},
		{name: "org with sync disabled is not asked for", payload: payload(`{"emailAddress":"alice@example.com"}`),
			setup: func(h *memHost) { h.orgs[0].InboundAssignee = false }},
		{name: "no linked group makes no lookup", payload: payload(`{"name":"alice"}`),
			setup: func(h *memHost) { h.groups = nil }},
		{name: "jira down", payload: payload(`{"name":"alice"}`), wantLookups: 1, wantCode: abi.CodeUnavailable,
			setup: func(h *memHost) { h.jiraErr = abi.Errorf(abi.CodeUnavailable, "connection refused") }},
		{name: "jira 5xx", payload: payload(`{"name":"jira-error"}`), wantLookups: 1, wantCode: abi.CodeUnavailable},
		{name: "jira forbids", payload: payload(`{"name":"forbidden"}`), wantLookups: 1, wantCode: abi.CodeJiraRejected},
		{name: "jira answers garbage", payload: payload(`{"name":"broken"}`), wantLookups: 1, wantCode: abi.CodeJiraRejected},
		{name: "storage fails on assign", payload: payload(`{"emailAddress":"alice@example.com"}`), wantCode: abi.CodeUnavailable,
			setup: func(h *memHost) { h.assignErr = abi.Errorf(abi.CodeUnavailable, "database is locked") }},
		{name: "other fields only", payload: json.RawMessage(`{"webhookEvent":"jira:issue_updated","issue":{"key":"APP-1",
			"fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"items":[{"field":"status"}]}}`), golden: "other-fields"},
		{name: "no changelog", payload: json.RawMessage(`{"webhookEvent":"jira:issue_updated","issue":{"key":"APP-1"}}`)},
		// The URL names the event: a body without webhookEvent is an update.
		{name: "no webhookEvent", payload: json.RawMessage(`{"issue":{"key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},
			"changelog":{"items":[{"field":"assignee"}]}}`), wantAssign: map[string]*string{"g1": ptr("alice"), "g2": ptr("alice")}},
		{name: "other event", payload: json.RawMessage(`{"webhookEvent":"jira:issue_created","changelog":{"items":[{"field":"assignee"}]}}`)},
		{name: "assignee change without issue key", payload: json.RawMessage(`{"webhookEvent":"jira:issue_updated","changelog":{"items":[{"field":"assignee"}]}}`),
			wantCode: abi.CodeInvalidPayload},
		{name: "malformed", payload: json.RawMessage(`{"webhookEvent":`), wantCode: abi.CodeInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := baseHost()
			if tt.setup != nil {
				tt.setup(h)
			}
			sum, err := groupsync.Handle(h, tt.payload)
			if tt.wantCode != "" {
				var ae *abi.Error
				if !errors.As(err, &ae) || ae.Code != tt.wantCode {
					t.Fatalf("Handle error = %v, want code %s", err, tt.wantCode)
				}
				if len(h.assigned) != 0 {
					t.Errorf("a failed delivery assigned %v", h.assigned)
				}
			} else if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if len(h.lookups) != tt.wantLookups {
				t.Errorf("Jira lookups = %d (%v), want %d", len(h.lookups), h.lookups, tt.wantLookups)
			}
			got := map[string]*string{}
			for _, a := range h.assigned {
				got[a.Group] = a.Assignee
			}
			if len(got) != len(tt.wantAssign) {
				t.Errorf("assignments = %v, want %v", fmtAssign(got), fmtAssign(tt.wantAssign))
			}
			for g, want := range tt.wantAssign {
				if a, ok := got[g]; !ok || (a == nil) != (want == nil) || (a != nil && *a != *want) {
					t.Errorf("group %s assigned %v, want %v", g, fmtAssign(got), fmtAssign(tt.wantAssign))
				}
			}
			if tt.golden != "" {
				checkGolden(t, tt.golden, sum)
			}
		})
	}
}

func TestLookupCachesEmail(t *testing.T) {
	h := baseHost()
	body := payload(`{"name":"alice"}`)
	for i := 0; i < 3; i++ {
		if _, err := groupsync.Handle(h, body); err != nil {
			t.Fatal(err)
		}
	}
	cacheWrites := 0
	for _, p := range h.Puts {
		if strings.HasPrefix(p.Key, "jira-user-email:") {
			cacheWrites++
		}
	}
	if len(h.lookups) != 1 || cacheWrites != 1 {
		t.Fatalf("3 deliveries for one user made %d lookups and %d cache writes, want 1 and 1", len(h.lookups), cacheWrites)
	}
}

func fmtAssign(m map[string]*string) string {
	var parts []string
	for g, a := range m {
		v := "null"
		if a != nil {
			v = *a
		}
		parts = append(parts, g+"="+v)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// checkGolden compares the summary's JSON with testdata/NAME.golden.json;
// the export's output, the summary wrapped, must match the ABI schema.
func checkGolden(t *testing.T, name string, sum *abi.Summary) {
	t.Helper()
	golden.Check(t, name, abi.ExportHandleIssueUpdated, sum, abi.HandleResponse{Summary: sum})
}
