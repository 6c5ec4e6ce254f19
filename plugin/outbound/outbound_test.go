package outbound_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/internal/golden"
	"github.com/jirasync/jirasync/plugin/internal/memstate"
	"github.com/jirasync/jirasync/plugin/outbound"
)

// jiraIssue is an issue of the fake Jira: its assignee's user name ("" for
// none) and its status id.
type jiraIssue struct{ assignee, status string }

type jiraUser struct{ name, email string }

// fakeHost answers the capabilities from memory and runs a small Jira
// Server: user search, issue reads, assignee writes, statuses and a
// workflow. It records every Jira request and every state write in one
// log, so that a test can see a write's echo record come before it.
type fakeHost struct {
	memstate.State
	orgs   []abi.InstallationOrgSettings
	groups map[string]abi.GroupInfo
	users  map[string]abi.UserInfo

	issues     map[string]*jiraIssue
	jiraUsers  []jiraUser
	statuses   []map[string]any
	workflow   map[string][]map[string]any // from status id → transitions
	fail       map[string]abi.JiraResponse // by "METHOD path": Jira's answer instead
	jiraErr    *abi.Error                  // every request: Jira unreachable
	groupErr   *abi.Error
	requests   []string // "METHOD path?query body"
	log        []string // requests and echo-record writes, in order
	statusGets int
}

func (h *fakeHost) Log(string, string, map[string]any) {}

func (h *fakeHost) Installation() (*abi.InstallationResponse, error) {
	return &abi.InstallationResponse{ID: "jira1", ExternalID: "jira.example.com:jirasync", Organizations: h.orgs}, nil
}

func (h *fakeHost) GroupGet(id string) (*abi.GroupInfo, error) {
	if h.groupErr != nil {
		return nil, h.groupErr
	}
	g, ok := h.groups[id]
	if !ok {
		return nil, abi.Errorf(abi.CodeNotFound, "no group "+id)
	}
	return &g, nil
}

func (h *fakeHost) UserGet(id string) (*abi.UserInfo, error) {
	u, ok := h.users[id]
	if !ok {
		return nil, abi.Errorf(abi.CodeNotFound, "no user "+id)
	}
	return &u, nil
}

func (h *fakeHost) StatePut(req abi.StatePutRequest) error {
	if strings.HasPrefix(req.Key, "echo:") {
		op := "record "
		if req.Delete {
			op = "drop "
		}
		h.log = append(h.log, op+req.Key+"="+req.Value)
	}
	return h.State.StatePut(req)
}

// Group sync's calls: outbound sync makes none of them.
func (h *fakeHost) GroupsLinked(abi.GroupsLinkedRequest) ([]abi.LinkedGroup, error) {
	return nil, abi.Errorf(abi.CodeDenied, "unexpected groups_linked")
}
func (h *fakeHost) UsersByEmail(string) ([]abi.PlatformUser, error) {
	return nil, abi.Errorf(abi.CodeDenied, "unexpected users_by_email")
}
func (h *fakeHost) GroupsAssign(abi.GroupsAssignRequest) (int, error) {
	return 0, abi.Errorf(abi.CodeDenied, "unexpected groups_assign")
}

func answer(status int, v any) *abi.JiraResponse {
	b, _ := json.Marshal(v)
	return &abi.JiraResponse{Status: status, Body: string(b)}
}

func (h *fakeHost) JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error) {
	line := req.Method + " " + req.Path
	if len(req.Query) > 0 {
		line += "?" + url.Values(req.Query).Encode()
	}
	if req.Body != "" {
		line += " " + req.Body
	}
	h.requests = append(h.requests, line)
	h.log = append(h.log, line)
	if h.jiraErr != nil {
		return nil, h.jiraErr
	}
	if r, ok := h.fail[req.Method+" "+req.Path]; ok {
		return &r, nil
	}
	rest, _ := strings.CutPrefix(req.Path, "/rest/api/2/")
	parts := strings.Split(rest, "/")
	switch {
	case req.Method == "GET" && rest == "status":
		h.statusGets++
		return answer(200, h.statuses), nil
	case req.Method == "GET" && rest == "user/search":
		q := strings.ToLower(req.Query["username"][0])
		out := []map[string]string{}
		for _, u := range h.jiraUsers {
			// Jira Server matches user names and emails by prefix.
			if strings.HasPrefix(strings.ToLower(u.name), q) || strings.HasPrefix(strings.ToLower(u.email), q) {
				out = append(out, map[string]string{"name": u.name, "key": "JIRAUSER-" + u.name, "emailAddress": u.email})
			}
		}
		return answer(200, out), nil
	case parts[0] != "issue" || len(parts) < 2:
		return answer(404, map[string]any{"errorMessages": []string{"no such resource"}}), nil
	}
	is, ok := h.issues[parts[1]]
	if !ok {
		return answer(404, map[string]any{"errorMessages": []string{"Issue Does Not Exist"}}), nil
	}
	switch {
	case req.Method == "GET" && len(parts) == 2:
		var assignee any
		if is.assignee != "" {
			assignee = map[string]string{"name": is.assignee}
		}
		return answer(200, map[string]any{"key": parts[1], "fields": map[string]any{"assignee": assignee,
			"status": map[string]string{"id": is.status}}}), nil
	case req.Method == "PUT" && len(parts) == 3 && parts[2] == "assignee":
		var body struct{ Name *string }
		_ = json.Unmarshal([]byte(req.Body), &body)
		is.assignee = ""
		if body.Name != nil {
			is.assignee = *body.Name
		}
		return &abi.JiraResponse{Status: 204}, nil
	case req.Method == "GET" && len(parts) == 3 && parts[2] == "transitions":
		return answer(200, map[string]any{"transitions": h.workflow[is.status]}), nil
	case req.Method == "POST" && len(parts) == 3 && parts[2] == "transitions":
		var body struct{ Transition struct{ ID string } }
		_ = json.Unmarshal([]byte(req.Body), &body)
		for _, t := range h.workflow[is.status] {
			if t["id"] == body.Transition.ID {
				is.status = t["to"].(map[string]string)["id"]
				return &abi.JiraResponse{Status: 204}, nil
			}
		}
		return answer(400, map[string]any{"errorMessages": []string{"It seems that you have tried to perform a workflow operation that is not valid"}}), nil
	}
	return answer(405, nil), nil
}

func ptr(s string) *string { return &s }

func trans(id, to string) map[string]any {
	return map[string]any{"id": id, "name": "to " + to, "to": map[string]string{"id": to}}
}

// baseHost: group g1 of acme linked to APP-1 and APP-2 through this
// installation; alice with one verified and one unverified email; Jira
// has alice, bob and a user whose name merely starts like alice's email;
// statuses Open (1), In Progress (3), Done (10001), Closed (6, done).
func baseHost() *fakeHost {
	return &fakeHost{
		orgs: []abi.InstallationOrgSettings{{ID: "acme", OutboundAssignee: true, OutboundStatus: true,
			StatusMappings: []abi.StatusMapping{{JiraProject: "APP", ResolveStatus: "Done", UnresolveStatus: "1"}}}},
		groups: map[string]abi.GroupInfo{
			"g1": {ID: "g1", Organization: "acme", Project: "backend", Status: "unresolved", IssueKeys: []string{"APP-1", "APP-2"}},
		},
		users: map[string]abi.UserInfo{
			"alice": {ID: "alice", Emails: []abi.UserEmail{{Email: "Alice@Example.com", Verified: true}, {Email: "alice@old.example.com"}}},
		},
		issues: map[string]*jiraIssue{"APP-1": {status: "1"}, "APP-2": {assignee: "bob", status: "3"}},
		jiraUsers: []jiraUser{{"alice", "alice@example.com"}, {"bob", "bob@example.com"},
			{"alice@example.com.test", "tester@example.com"}, {"olda", "alice@old.example.com"}},
		statuses: []map[string]any{
			{"id": "1", "name": "Open", "statusCategory": map[string]string{"key": "new"}},
			{"id": "3", "name": "In Progress", "statusCategory": map[string]string{"key": "indeterminate"}},
			{"id": "10001", "name": "Done", "statusCategory": map[string]string{"key": "done"}},
			{"id": "6", "name": "Closed", "statusCategory": map[string]string{"key": "done"}},
		},
		workflow: map[string][]map[string]any{
			"1":     {trans("11", "3"), trans("31", "10001")},
			"3":     {trans("21", "1"), trans("32", "10001")},
			"10001": {trans("41", "1")},
			"6":     {trans("51", "3")},
		},
	}
}

func event(typ string, assignee *string) []byte {
	b, _ := json.Marshal(abi.PlatformEvent{ID: "ev-1", Type: typ, Group: "g1", Assignee: assignee, OccurredAt: "2026-11-30T04:00:00Z"})
	return b
}

func TestHandle(t *testing.T) {
	assigned, resolved, unresolved := abi.EventGroupAssigned, abi.EventGroupResolved, abi.EventGroupUnresolved
	for _, tc := range []struct {
		name     string
		input    []byte
		setup    func(*fakeHost)
		wantCode abi.ErrorCode
		wantMsg  string // in the error
		// The outcome: the reason of an ignored event, else the
		// issues' actions ("APP-1 assigned alice").
		wantReason string
		wantIssues []string
		wantJira   map[string]jiraIssue
		wantWrites int // PUT and POST requests
		wantShared map[string]string
		wantLocal  map[string]string // echo records after
		golden     string
	}{
		{name: "assign", input: event(assigned, ptr("alice")), golden: "assign",
			wantIssues: []string{"APP-1 assigned alice", "APP-2 assigned alice"}, wantWrites: 2,
			wantJira:  map[string]jiraIssue{"APP-1": {"alice", "1"}, "APP-2": {"alice", "3"}},
			wantLocal: map[string]string{"echo:jira:APP-1:assignee": "alice", "echo:jira:APP-2:assignee": "alice"}},
		{name: "already the assignee", input: event(assigned, ptr("alice")),
			setup:      func(h *fakeHost) { h.issues["APP-1"].assignee, h.issues["APP-2"].assignee = "ALICE", "alice" },
			wantIssues: []string{"APP-1 unchanged alice", "APP-2 unchanged alice"}},
		{name: "unassign", input: event(assigned, nil), golden: "unassign",
			wantIssues: []string{"APP-1 unchanged", "APP-2 unassigned"}, wantWrites: 1,
			wantJira:  map[string]jiraIssue{"APP-1": {"", "1"}, "APP-2": {"", "3"}},
			wantLocal: map[string]string{"echo:jira:APP-2:assignee": ""}},
		{name: "no Jira user has the email", input: event(assigned, ptr("alice")),
			setup:      func(h *fakeHost) { h.jiraUsers = h.jiraUsers[1:] },
			wantIssues: []string{"APP-1 skipped no_jira_user", "APP-2 skipped no_jira_user"}},
		{name: "two Jira users with one email", input: event(assigned, ptr("alice")), golden: "ambiguous",
			setup:      func(h *fakeHost) { h.jiraUsers = append(h.jiraUsers, jiraUser{"alice2", "ALICE@example.com"}) },
			wantIssues: []string{"APP-1 skipped ambiguous_jira_user", "APP-2 skipped ambiguous_jira_user"}},
		{name: "two verified emails of one Jira user", input: event(assigned, ptr("alice")),
			setup: func(h *fakeHost) {
				h.users["alice"] = abi.UserInfo{ID: "alice", Emails: []abi.UserEmail{{Email: "alice@example.com", Verified: true}, {Email: "a@example.com", Verified: true}}}
				h.jiraUsers = append(h.jiraUsers, jiraUser{"alice", "a@example.com"})
			},
			wantIssues: []string{"APP-1 assigned alice", "APP-2 assigned alice"}, wantWrites: 2},
		{name: "unverified email not used", input: event(assigned, ptr("alice")),
			setup: func(h *fakeHost) {
				h.users["alice"] = abi.UserInfo{ID: "alice", Emails: []abi.UserEmail{{Email: "alice@old.example.com"}}}
			},
			wantIssues: []string{"APP-1 skipped no_jira_user", "APP-2 skipped no_jira_user"}},
		{name: "assignee not a platform user", input: event(assigned, ptr("ghost")),
			wantIssues: []string{"APP-1 skipped no_jira_user", "APP-2 skipped no_jira_user"}},
		{name: "Jira refuses the assignee", input: event(assigned, ptr("alice")), wantCode: abi.CodeJiraRejected,
			wantMsg: "User 'alice' cannot be assigned issues.",
			setup: func(h *fakeHost) {
				h.fail = map[string]abi.JiraResponse{"PUT /rest/api/2/issue/APP-1/assignee": {Status: 400,
					Body: `{"errorMessages":[],"errors":{"assignee":"User 'alice' cannot be assigned issues."}}`}}
			},
			wantWrites: 1, wantLocal: map[string]string{}},
		{name: "Jira forbids", input: event(assigned, ptr("alice")), wantCode: abi.CodeJiraRejected,
			wantMsg: "You do not have permission to assign issues.",
			setup: func(h *fakeHost) {
				h.fail = map[string]abi.JiraResponse{"PUT /rest/api/2/issue/APP-1/assignee": {Status: 403,
					Body: `{"errorMessages":["You do not have permission to assign issues."],"errors":{}}`}}
			},
			wantWrites: 1, wantLocal: map[string]string{}},
		// The write may have happened: its record waits for the echo.
		{name: "Jira 5xx on the write", input: event(assigned, ptr("alice")), wantCode: abi.CodeUnavailable,
			setup: func(h *fakeHost) {
				h.fail = map[string]abi.JiraResponse{"PUT /rest/api/2/issue/APP-1/assignee": {Status: 503, Body: "busy"}}
			},
			wantWrites: 1, wantLocal: map[string]string{"echo:jira:APP-1:assignee": "alice"}},
		{name: "Jira down", input: event(assigned, ptr("alice")), wantCode: abi.CodeUnavailable,
			setup: func(h *fakeHost) { h.jiraErr = abi.Errorf(abi.CodeUnavailable, "connection refused") }},
		{name: "issue gone from Jira", input: event(assigned, ptr("alice")),
			setup:      func(h *fakeHost) { delete(h.issues, "APP-1") },
			wantIssues: []string{"APP-1 skipped issue_not_found", "APP-2 assigned alice"}, wantWrites: 1},
		{name: "outbound assignee off", input: event(assigned, ptr("alice")), wantReason: abi.ReasonDirectionOff,
			setup: func(h *fakeHost) { h.orgs[0].OutboundAssignee = false }},
		{name: "echo of inbound sync's assignment", input: event(assigned, ptr("alice")), wantReason: abi.ReasonEcho,
			setup:      func(h *fakeHost) { h.Shared = map[string]string{"echo:group:g1:assignee": "alice"} },
			wantShared: map[string]string{"echo:group:g1:assignee": "alice"}},
		{name: "echo of inbound sync's unassignment", input: event(assigned, nil), wantReason: abi.ReasonEcho,
			setup:      func(h *fakeHost) { h.Shared = map[string]string{"echo:group:g1:assignee": ""} },
			wantShared: map[string]string{"echo:group:g1:assignee": ""}},
		{name: "a person's assignment right after inbound sync's", input: event(assigned, ptr("alice")),
			setup:      func(h *fakeHost) { h.Shared = map[string]string{"echo:group:g1:assignee": "bob"} },
			wantIssues: []string{"APP-1 assigned alice", "APP-2 assigned alice"}, wantWrites: 2, wantShared: map[string]string{}},
		{name: "group gone", input: event(assigned, ptr("alice")), wantReason: abi.ReasonGroupNotFound,
			setup: func(h *fakeHost) { delete(h.groups, "g1") }},
		{name: "platform down", input: event(assigned, ptr("alice")), wantCode: abi.CodeUnavailable,
			setup: func(h *fakeHost) { h.groupErr = abi.Errorf(abi.CodeUnavailable, "platform unavailable") }},
		{name: "organization not served", input: event(resolved, nil), wantReason: abi.ReasonNotLinked,
			setup: func(h *fakeHost) { h.orgs[0].ID = "globex" }},
		{name: "no issue linked through this installation", input: event(resolved, nil), wantReason: abi.ReasonNotLinked,
			setup: func(h *fakeHost) {
				h.groups["g1"] = abi.GroupInfo{ID: "g1", Organization: "acme", IssueKeys: []string{}}
			}},

		{name: "resolve", input: event(resolved, nil), golden: "resolve",
			wantIssues: []string{"APP-1 transitioned 10001", "APP-2 transitioned 10001"}, wantWrites: 2,
			wantJira:  map[string]jiraIssue{"APP-1": {"", "10001"}, "APP-2": {"bob", "10001"}},
			wantLocal: map[string]string{"echo:jira:APP-1:status": "10001", "echo:jira:APP-2:status": "10001"}},
		{name: "unresolve by status id", input: event(unresolved, nil),
			setup:      func(h *fakeHost) { h.issues["APP-1"].status, h.issues["APP-2"].status = "10001", "1" },
			wantIssues: []string{"APP-1 transitioned 1", "APP-2 unchanged 1"}, wantWrites: 1,
			wantJira: map[string]jiraIssue{"APP-1": {"", "1"}, "APP-2": {"bob", "1"}}},
		{name: "mapping by name, any case", input: event(resolved, nil),
			setup:      func(h *fakeHost) { h.orgs[0].StatusMappings[0].ResolveStatus = "done" },
			wantIssues: []string{"APP-1 transitioned 10001", "APP-2 transitioned 10001"}, wantWrites: 2},
		{name: "done to done", input: event(resolved, nil),
			setup:      func(h *fakeHost) { h.issues["APP-1"].status, h.issues["APP-2"].status = "10001", "10001" },
			wantIssues: []string{"APP-1 unchanged 10001", "APP-2 unchanged 10001"}},
		{name: "mapping missing for a project: nothing written", input: event(resolved, nil), wantCode: abi.CodeInvalidRequest,
			wantMsg: "no resolve_status for Jira project OPS",
			setup: func(h *fakeHost) {
				h.groups["g1"] = abi.GroupInfo{ID: "g1", Organization: "acme", IssueKeys: []string{"APP-1", "OPS-7"}}
			}},
		{name: "mapping to no status of this Jira", input: event(unresolved, nil), wantCode: abi.CodeInvalidRequest,
			wantMsg: `status "Reopened" of organization acme's mapping for Jira project APP is no status of this Jira`,
			setup:   func(h *fakeHost) { h.orgs[0].StatusMappings[0].UnresolveStatus = "Reopened" }},
		{name: "second project's mapping names no status: nothing written", input: event(resolved, nil), wantCode: abi.CodeInvalidRequest,
			wantMsg: `status "Shipped" of organization acme's mapping for Jira project OPS is no status of this Jira`,
			setup: func(h *fakeHost) {
				h.orgs[0].StatusMappings = append(h.orgs[0].StatusMappings, abi.StatusMapping{JiraProject: "OPS", ResolveStatus: "Shipped", UnresolveStatus: "1"})
				h.groups["g1"] = abi.GroupInfo{ID: "g1", Organization: "acme", IssueKeys: []string{"APP-1", "OPS-7"}}
				h.issues["OPS-7"] = &jiraIssue{status: "1"}
			}},
		{name: "no transition to the target", input: event(unresolved, nil), wantCode: abi.CodeJiraRejected,
			wantMsg: "no transition from Closed to Open on APP-1",
			setup:   func(h *fakeHost) { h.issues["APP-1"].status = "6" }},
		{name: "resolving an issue in another done status leaves it there", input: event(resolved, nil),
			setup:      func(h *fakeHost) { h.issues["APP-1"].status, h.issues["APP-2"].status = "6", "10001" },
			wantIssues: []string{"APP-1 unchanged 6", "APP-2 unchanged 10001"}},
		{name: "unresolving an issue in another open status leaves it there", input: event(unresolved, nil),
			setup:      func(h *fakeHost) { h.issues["APP-1"].status, h.issues["APP-2"].status = "3", "1" },
			wantIssues: []string{"APP-1 unchanged 3", "APP-2 unchanged 1"}},
		{name: "outbound status off", input: event(resolved, nil), wantReason: abi.ReasonDirectionOff,
			setup: func(h *fakeHost) { h.orgs[0].OutboundStatus = false }},
		{name: "echo of inbound sync's resolution", input: event(resolved, nil), wantReason: abi.ReasonEcho,
			setup:      func(h *fakeHost) { h.Shared = map[string]string{"echo:group:g1:status": "resolved"} },
			wantShared: map[string]string{"echo:group:g1:status": "resolved"}},
		{name: "unresolved after inbound sync resolved: a person's", input: event(unresolved, nil),
			setup: func(h *fakeHost) {
				h.Shared = map[string]string{"echo:group:g1:status": "resolved"}
				h.issues["APP-2"].status = "10001"
			},
			wantIssues: []string{"APP-1 unchanged 1", "APP-2 transitioned 1"}, wantWrites: 1, wantShared: map[string]string{}},
		{name: "transition refused", input: event(resolved, nil), wantCode: abi.CodeJiraRejected, wantMsg: "a validator failed",
			setup: func(h *fakeHost) {
				h.fail = map[string]abi.JiraResponse{"POST /rest/api/2/issue/APP-1/transitions": {Status: 400, Body: `{"errorMessages":["a validator failed"]}`}}
			},
			wantWrites: 1, wantLocal: map[string]string{}},

		// A later minor version may add members: a reader ignores them.
		{name: "unknown member ignored", input: []byte(`{"id":"e","type":"group.resolved","group":"g1","assignee":null,"occurred_at":"x","extra":1}`),
			wantIssues: []string{"APP-1 transitioned 10001", "APP-2 transitioned 10001"}, wantWrites: 2},
		{name: "trailing data", input: []byte(`{"id":"e","type":"group.resolved","group":"g1","assignee":null,"occurred_at":"x"} {}`),
			wantCode: abi.CodeInvalidRequest},
		{name: "empty assignee", input: []byte(`{"id":"e","type":"group.assigned","group":"g1","assignee":"","occurred_at":"x"}`),
			wantCode: abi.CodeInvalidRequest, wantMsg: "assignee is empty"},
		{name: "no group", input: []byte(`{"id":"e","type":"group.resolved","group":"","assignee":null,"occurred_at":"x"}`),
			wantCode: abi.CodeInvalidRequest, wantMsg: "group is empty"},
		{name: "unknown type", input: event("group.deleted", nil), wantCode: abi.CodeInvalidRequest, wantMsg: `type "group.deleted"`},
		{name: "assignee on a resolution", input: event(resolved, ptr("alice")), wantCode: abi.CodeInvalidRequest, wantMsg: "assignee is only for group.assigned"},
		{name: "not JSON", input: []byte(`{"id":`), wantCode: abi.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHost()
			if tc.setup != nil {
				tc.setup(h)
			}
			sum, err := outbound.Handle(h, tc.input)
			if tc.wantCode != "" {
				var ae *abi.Error
				if !errors.As(err, &ae) || ae.Code != tc.wantCode || !strings.Contains(ae.Message, tc.wantMsg) {
					t.Fatalf("Handle error = %v, want code %s with %q", err, tc.wantCode, tc.wantMsg)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range sum.Issues {
					got = append(got, strings.TrimSpace(r.Key+" "+r.Action+" "+r.Assignee+r.Status+r.Reason))
				}
				if sum.Reason != tc.wantReason || !slices.Equal(got, tc.wantIssues) {
					t.Errorf("reason %q, issues %q; want %q, %q", sum.Reason, got, tc.wantReason, tc.wantIssues)
				}
				if want := abi.OutcomeSynced; tc.wantReason != "" && sum.Outcome != abi.OutcomeIgnored || tc.wantReason == "" && sum.Outcome != want {
					t.Errorf("outcome %q with reason %q", sum.Outcome, sum.Reason)
				}
				if tc.wantReason != "" && len(h.requests) != 0 {
					t.Errorf("an ignored event sent Jira %q", h.requests)
				}
			}
			writes := 0
			for _, r := range h.requests {
				if strings.HasPrefix(r, "PUT ") || strings.HasPrefix(r, "POST ") {
					writes++
				}
			}
			if writes != tc.wantWrites {
				t.Errorf("Jira writes %d, want %d: %q", writes, tc.wantWrites, h.requests)
			}
			for key, want := range tc.wantJira {
				if got := *h.issues[key]; got != want {
					t.Errorf("Jira's %s is %+v, want %+v", key, got, want)
				}
			}
			if tc.wantLocal != nil && !maps.Equal(memstate.EchoRecords(h.Local), tc.wantLocal) {
				t.Errorf("installation's echo records %v, want %v", h.Local, tc.wantLocal)
			}
			if tc.wantShared != nil && !maps.Equal(h.Shared, tc.wantShared) {
				t.Errorf("host-wide echo records %v, want %v", h.Shared, tc.wantShared)
			}
			recordsBeforeWrites(t, h.log)
			if tc.golden != "" {
				golden.Check(t, tc.golden, abi.ExportHandlePlatformEvent, sum, abi.EventResponse{Summary: sum})
			}
		})
	}
}

// recordsBeforeWrites checks that each write to Jira came right after the
// record of its echo: a webhook may come back before Jira answers.
func recordsBeforeWrites(t *testing.T, log []string) {
	t.Helper()
	for i, l := range log {
		if !strings.HasPrefix(l, "PUT ") && !strings.HasPrefix(l, "POST ") {
			continue
		}
		if i == 0 || !strings.HasPrefix(log[i-1], "record echo:jira:") {
			t.Errorf("write %q not preceded by its echo record: %q", l, log)
		}
	}
}

// TestStatusListCache: the status list group sync caches is reused to
// resolve a mapping by name; a cached list from before names were kept
// (or one that lacks the status) is read again once.
func TestStatusListCache(t *testing.T) {
	for _, tc := range []struct {
		name, cached string
		wantGets     int
	}{
		{name: "none cached", wantGets: 1},
		{name: "cached with names", cached: `{"all":["1","3","10001"],"done":["10001"],"names":{"1":"Open","3":"In Progress","10001":"Done"}}`},
		{name: "cached without names", cached: `{"all":["1","3","10001"],"done":["10001"]}`, wantGets: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := baseHost()
			if tc.cached != "" {
				h.Local = map[string]string{"jira-statuses": tc.cached}
			}
			for range 2 {
				for _, is := range h.issues {
					is.status = "1"
				}
				if _, err := outbound.Handle(h, event(abi.EventGroupResolved, nil)); err != nil {
					t.Fatal(err)
				}
			}
			if h.statusGets != tc.wantGets {
				t.Errorf("two events read the status list %d times, want %d", h.statusGets, tc.wantGets)
			}
		})
	}
}
