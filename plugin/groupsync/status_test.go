package groupsync_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/groupsync"
)

// statusHost is memHost with Jira's status list and the statuses the
// plugin sends.
type statusHost struct {
	*memHost
	statuses map[string]string // Jira's statuses: id → category key
	reads    int               // GET /rest/api/2/status
	sent     []abi.StatusChange
}

func (h *statusHost) JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error) {
	if req.Method != "GET" || req.Path != "/rest/api/2/status" {
		return nil, abi.Errorf(abi.CodeDenied, "unexpected request "+req.Method+" "+req.Path)
	}
	h.reads++
	var list []map[string]any
	for id, cat := range h.statuses {
		list = append(list, map[string]any{"id": id, "name": "s" + id, "statusCategory": map[string]any{"key": cat}})
	}
	b, _ := json.Marshal(list)
	return &abi.JiraResponse{Status: 200, Body: string(b)}, nil
}

func (h *statusHost) GroupsAssign(req abi.GroupsAssignRequest) (int, error) {
	h.sent = append(h.sent, req.Statuses...)
	return h.memHost.GroupsAssign(req)
}

func statusPayload(from, to, current string) []byte {
	return []byte(fmt.Sprintf(`{"timestamp":1764410000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10002","key":"APP-1","fields":{"status":{"id":%q,"statusCategory":{"key":"new"}}}},
		"changelog":{"id":"1","items":[{"field":"status","from":%q,"to":%q}]}}`, current, from, to))
}

// TestStatusSync: the crossing is the changelog's from and to, the
// status set is issue.fields.status's, and a status the cached list does
// not know makes the plugin read the list again.
func TestStatusSync(t *testing.T) {
	jira := map[string]string{"1": "new", "3": "indeterminate", "5": "done", "10001": "done"}
	for _, tc := range []struct {
		name           string
		cached         string // the plugin's cached list, "" for none
		from, to, now  string
		want           []abi.StatusChange
		wantReads      int
		wantResolved   int
		wantUnresolved int
		groupStatusWas string
	}{
		{name: "into done", from: "3", to: "10001", now: "10001", wantReads: 1, wantResolved: 1,
			want: []abi.StatusChange{{Group: "g1", Status: "resolved"}}},
		{name: "out of done", from: "5", to: "1", now: "1", wantReads: 1, wantUnresolved: 1, groupStatusWas: "resolved",
			want: []abi.StatusChange{{Group: "g1", Status: "unresolved"}}},
		{name: "the issue as it is decides the status: moved into done, already out of it", from: "3", to: "10001", now: "1",
			wantReads: 1, want: []abi.StatusChange{{Group: "g1", Status: "unresolved"}}},
		{name: "done to done", from: "5", to: "10001", now: "10001", wantReads: 1},
		{name: "other to other", from: "1", to: "3", now: "3", wantReads: 1},
		{name: "cached list used", cached: `{"all":["1","3","5","10001"],"done":["5","10001"]}`, from: "3", to: "10001", now: "10001",
			wantReads: 0, wantResolved: 1, want: []abi.StatusChange{{Group: "g1", Status: "resolved"}}},
		{name: "an id the cache does not know: read again", cached: `{"all":["1","3"],"done":[]}`, from: "3", to: "10001", now: "10001",
			wantReads: 1, wantResolved: 1, want: []abi.StatusChange{{Group: "g1", Status: "resolved"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &statusHost{memHost: &memHost{
				orgs:   []abi.InstallationOrgSettings{{ID: "acme", InboundStatus: true}, {ID: "globex", InboundAssignee: true}},
				groups: []abi.LinkedGroup{{ID: "g1", Organization: "acme", Project: "backend", Status: tc.groupStatusWas}, {ID: "g2", Organization: "globex", Project: "ops"}},
			}, statuses: jira}
			if tc.cached != "" {
				h.Local = map[string]string{"jira-statuses": tc.cached}
			}
			sum, err := groupsync.Handle(h, statusPayload(tc.from, tc.to, tc.now))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.sent, tc.want) || h.reads != tc.wantReads {
				t.Fatalf("sent %+v after %d list reads; want %+v after %d (g2's organization syncs assignees only)", h.sent, h.reads, tc.want, tc.wantReads)
			}
			if sum.Outcome != abi.OutcomeSynced || sum.Resolved != tc.wantResolved || sum.Unresolved != tc.wantUnresolved {
				t.Errorf("summary %+v; want synced, %d resolved, %d unresolved", sum, tc.wantResolved, tc.wantUnresolved)
			}
			if len(h.assigned) != 0 {
				t.Errorf("a status change assigned %+v", h.assigned)
			}
		})
	}
}
