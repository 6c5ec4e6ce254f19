package groupsync_test

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/groupsync"
	"github.com/jirasync/jirasync/plugin/internal/memstate"
)

// echoPayload is an issue update with an assignee and a status item, as
// Jira sends back after an outbound write.
func echoPayload(assignee, fromStatus, toStatus string, items ...string) []byte {
	var its string
	for i, it := range items {
		if i > 0 {
			its += ","
		}
		if it == "status" {
			its += fmt.Sprintf(`{"field":"status","from":%q,"to":%q}`, fromStatus, toStatus)
		} else {
			its += `{"field":"` + it + `"}`
		}
	}
	return []byte(`{"timestamp":1764410000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10002","key":"APP-1","fields":{"assignee":` + assignee + `,
		"status":{"id":"` + toStatus + `","statusCategory":{"key":"done"}}}},
		"changelog":{"id":"10431","items":[` + its + `]}}`)
}

// TestInboundEcho: a webhook that brings back exactly what outbound sync
// wrote to the issue (its per-installation record) is not applied; one
// with another value is a person's change, applied, and the record goes.
// Every group change inbound sync stages is recorded host-wide for the
// platform's echo.
func TestInboundEcho(t *testing.T) {
	const alice = `{"name":"alice","emailAddress":"alice@example.com"}`
	for _, tc := range []struct {
		name        string
		body        []byte
		local       map[string]string // the installation's state before
		stateErr    *abi.Error
		wantCode    abi.ErrorCode
		wantReason  string
		wantAssign  int
		wantStatus  []abi.StatusChange
		wantLocal   map[string]string // echo records after
		wantShared  map[string]string
		wantLookups int
	}{
		{name: "our assignee comes back", body: echoPayload(alice, "1", "1", "assignee"),
			local: map[string]string{"echo:jira:APP-1:assignee": "alice"}, wantReason: abi.ReasonEcho,
			wantLocal: map[string]string{"echo:jira:APP-1:assignee": "alice"}},
		{name: "our unassignment comes back", body: echoPayload(`null`, "1", "1", "assignee"),
			local: map[string]string{"echo:jira:APP-1:assignee": ""}, wantReason: abi.ReasonEcho,
			wantLocal: map[string]string{"echo:jira:APP-1:assignee": ""}},
		{name: "a person's change right after ours", body: echoPayload(alice, "1", "1", "assignee"),
			local: map[string]string{"echo:jira:APP-1:assignee": "carol"}, wantAssign: 2, wantLocal: map[string]string{},
			wantShared: map[string]string{"echo:group:g1:assignee": "alice", "echo:group:g2:assignee": "alice"}},
		{name: "no record: applied, groups recorded", body: echoPayload(alice, "1", "1", "assignee"), wantAssign: 2,
			wantShared: map[string]string{"echo:group:g1:assignee": "alice", "echo:group:g2:assignee": "alice"}},
		{name: "unassigning records the changed group only", body: echoPayload(`null`, "1", "1", "assignee"), wantAssign: 2,
			wantShared: map[string]string{"echo:group:g1:assignee": ""}},
		{name: "our transition comes back", body: echoPayload(alice, "1", "10001", "status"),
			local: map[string]string{"echo:jira:APP-1:status": "10001"}, wantReason: abi.ReasonEcho,
			wantLocal: map[string]string{"echo:jira:APP-1:status": "10001"}},
		{name: "a person's transition", body: echoPayload(alice, "1", "10001", "status"),
			local:      map[string]string{"echo:jira:APP-1:status": "3"},
			wantStatus: []abi.StatusChange{{Group: "g1", Status: "resolved"}, {Group: "g2", Status: "resolved"}},
			wantLocal:  map[string]string{}, wantShared: map[string]string{"echo:group:g1:status": "resolved", "echo:group:g2:status": "resolved"}},
		{name: "assignee echoed, status a person's", body: echoPayload(alice, "1", "10001", "assignee", "status"),
			local:      map[string]string{"echo:jira:APP-1:assignee": "alice"},
			wantStatus: []abi.StatusChange{{Group: "g1", Status: "resolved"}, {Group: "g2", Status: "resolved"}},
			wantLocal:  map[string]string{"echo:jira:APP-1:assignee": "alice"},
			wantShared: map[string]string{"echo:group:g1:status": "resolved", "echo:group:g2:status": "resolved"}},
		{name: "state down: retried, nothing applied", body: echoPayload(alice, "1", "1", "assignee"),
			stateErr: abi.Errorf(abi.CodeUnavailable, "database is locked"), wantCode: abi.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &statusHost{memHost: baseHost(), statuses: map[string]string{"1": "new", "3": "indeterminate", "10001": "done"}}
			h.orgs[0].InboundStatus = true
			h.Local = maps.Clone(tc.local)
			h.Err = tc.stateErr
			sum, err := groupsync.Handle(h, tc.body)
			if tc.wantCode != "" {
				var ae *abi.Error
				if !errors.As(err, &ae) || ae.Code != tc.wantCode {
					t.Fatalf("Handle error = %v, want code %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q (summary %+v)", sum.Reason, tc.wantReason, sum)
			}
			if len(h.assigned) != tc.wantAssign || len(h.sent) != len(tc.wantStatus) {
				t.Errorf("staged %+v and %+v, want %d assignments and %+v", h.assigned, h.sent, tc.wantAssign, tc.wantStatus)
			}
			for i := range tc.wantStatus {
				if i < len(h.sent) && h.sent[i] != tc.wantStatus[i] {
					t.Errorf("status %d: %+v, want %+v", i, h.sent[i], tc.wantStatus[i])
				}
			}
			if tc.wantReason == abi.ReasonEcho && len(h.lookups)+h.reads != 0 {
				t.Errorf("an echo cost %d Jira requests", len(h.lookups)+h.reads)
			}
			if got := memstate.EchoRecords(h.Local); !maps.Equal(got, memstate.EchoRecords(tc.wantLocal)) {
				t.Errorf("installation's echo records %v, want %v", got, tc.wantLocal)
			}
			if got := memstate.EchoRecords(h.Shared); !maps.Equal(got, memstate.EchoRecords(tc.wantShared)) {
				t.Errorf("host-wide echo records %v, want %v", got, tc.wantShared)
			}
			for _, p := range h.Puts {
				if !p.Delete && strings.HasPrefix(p.Key, "echo:") && p.TTLSeconds != 120 {
					t.Errorf("echo record %s kept for %d s, want 120", p.Key, p.TTLSeconds)
				}
			}
		})
	}
}
