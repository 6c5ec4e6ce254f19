package fakeplatform

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
)

// TestRefusals: the simulated platform holds callers to the contract as a
// platform should: the token, the Idempotency-Key, strict bodies, the
// installation's reach; a refused apply does not spend its key.
func TestRefusals(t *testing.T) {
	s := Start("tok", nil)
	defer s.Close()
	if err := s.Load(&platform.Data{
		Organizations: []platform.Organization{{ID: "acme"}, {ID: "globex"}},
		Projects:      []platform.Project{{ID: "backend", Organization: "acme"}, {ID: "ops", Organization: "globex"}},
		Groups:        []platform.Group{{ID: "g1", Project: "backend"}, {ID: "g2", Project: "ops"}},
		Links:         []platform.Link{{Group: "g1", Installation: "jira", IssueKey: "APP-1"}, {Group: "g2", Installation: "jira", IssueKey: "APP-1"}},
	}); err != nil {
		t.Fatal(err)
	}
	const apply = `{"installation":"jira","organizations":["acme"],"delivery":1,"round":0,"issue_key":"APP-1","assignments":[{"group":"%s","assignee":null}]}`
	for _, tc := range []struct {
		name, method, path, token, key, body string
		status                               int
		want                                 string
	}{
		{"no token", "GET", "/v1/organizations", "", "", "", 401, "token refused"},
		{"wrong token", "GET", "/v1/organizations", "nope", "", "", 401, "token refused"},
		{"linked groups without installation", "GET", "/v1/linked-groups?issue_key=APP-1", "tok", "", "", 400, "required"},
		{"users without email", "GET", "/v1/users", "tok", "", "", 400, "email is required"},
		{"apply without key", "POST", "/v1/assignments", "tok", "", strings.Replace(apply, "%s", "g1", 1), 400, "Idempotency-Key"},
		{"unknown member", "POST", "/v1/assignments/check", "tok", "", `{"installation":"jira","organizations":[],"assignments":[],"x":1}`, 400, "unknown field"},
		{"group out of reach", "POST", "/v1/assignments", "tok", "jira/1/0", strings.Replace(apply, "%s", "g2", 1), 403, "denied"},
		{"the key was not spent", "POST", "/v1/assignments", "tok", "jira/1/0", strings.Replace(apply, "%s", "g1", 1), 200, `{"changed":0}`},
		{"unknown path", "GET", "/v2/organizations", "tok", "", "", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, s.URL()+tc.path, strings.NewReader(tc.body))
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		if tc.key != "" {
			req.Header.Set("Idempotency-Key", tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, resp.StatusCode, b, tc.status, tc.want)
		}
	}
	if rec := s.Keys()["jira/1/0"]; rec.Posts != 2 || rec.Applied != 1 {
		t.Errorf("key record %+v, want 2 posts, applied once", rec)
	}
}

// TestEvents: with SendEvents, each change the platform makes (an apply
// for jirasync, or a person's through Assign and SetStatus) is POSTed as
// an event, in order, with the bearer token; a change that changes
// nothing and a repeated idempotency key send none; a 5xx answer is
// retried, a 4xx one is not.
func TestEvents(t *testing.T) {
	type received struct {
		raw    map[string]any
		status int
	}
	var mu sync.Mutex
	var got []received
	answers := map[int]int{0: http.StatusServiceUnavailable, 5: http.StatusBadRequest} // by request number
	n := 0
	jirasync := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/api/v1/events" || r.Header.Get("Authorization") != "Bearer evtok" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("event sent to %s with %q, %q", r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
		}
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			t.Errorf("event body: %v", err)
		}
		status, ok := answers[n]
		if !ok {
			status = http.StatusAccepted
		}
		n++
		got = append(got, received{raw, status})
		w.WriteHeader(status)
	}))
	defer jirasync.Close()

	s := Start("tok", nil)
	defer s.Close()
	if err := s.Load(&platform.Data{
		Organizations: []platform.Organization{{ID: "acme"}},
		Projects:      []platform.Project{{ID: "backend", Organization: "acme"}},
		Users:         []platform.User{{ID: "alice"}, {ID: "bob"}},
		Groups:        []platform.Group{{ID: "g1", Project: "backend"}, {ID: "g2", Project: "backend"}},
		Links:         []platform.Link{{Group: "g1", Installation: "jira", IssueKey: "APP-1"}, {Group: "g2", Installation: "jira", IssueKey: "APP-1"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SendEvents("ftp://x", "evtok"); err == nil {
		t.Error("SendEvents took an ftp URL")
	}
	if err := s.SendEvents(jirasync.URL+"/api/v1/events", "evtok"); err != nil {
		t.Fatal(err)
	}
	apply := `{"installation":"jira","organizations":["acme"],"delivery":1,"round":0,"issue_key":"APP-1",
		"assignments":[{"group":"g1","assignee":"alice"},{"group":"g2","assignee":null}],"statuses":[{"group":"g1","status":"resolved"}]}`
	for range 2 { // the same key twice: applied once
		req, _ := http.NewRequest("POST", s.URL()+"/v1/assignments", strings.NewReader(apply))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Idempotency-Key", "jira/1/0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("apply: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	bob := "bob"
	for _, step := range []error{
		s.Assign("g1", &bob),
		s.Assign("g1", &bob), // unchanged: no event
		s.SetStatus("g1", platform.StatusUnresolved),
		s.SetStatus("g2", platform.StatusUnresolved), // unchanged
		s.Assign("g1", nil),
		s.Assign("g2", &bob),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	for _, bad := range []error{s.Assign("g9", nil), s.Assign("g1", ptr("carol")), s.SetStatus("g1", "done")} {
		if bad == nil {
			t.Error("a change to an unknown group, to an unknown user or to an unknown status was taken")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitEvents(ctx); err != nil {
		t.Fatal(err)
	}

	want := []string{"group.assigned g1 alice", "group.resolved g1 -", "group.assigned g1 bob", "group.unresolved g1 -",
		"group.assigned g1 null", "group.assigned g2 bob"}
	sent := s.SentEvents()
	var sentDesc []string
	var last time.Time
	ids := map[string]bool{}
	for i, e := range sent {
		a := "-"
		if e.Type == "group.assigned" {
			a = "null"
			if e.Assignee != nil {
				a = *e.Assignee
			}
		}
		sentDesc = append(sentDesc, e.Type+" "+e.Group+" "+a)
		at, err := time.Parse(time.RFC3339, e.OccurredAt)
		if err != nil || !at.After(last) {
			t.Errorf("event %d occurred_at %q (%v): want RFC 3339, after the one before (%v)", i, e.OccurredAt, err, last)
		}
		last = at
		if ids[e.ID] || e.ID == "" {
			t.Errorf("event %d: id %q empty or given twice", i, e.ID)
		}
		ids[e.ID] = true
	}
	if !slices.Equal(sentDesc, want) {
		t.Fatalf("sent %v, want %v", sentDesc, want)
	}
	if sent[0].Attempts != 2 || sent[0].Err != "" || sent[0].Status != http.StatusAccepted {
		t.Errorf("first event %+v: want answered 202 on its second attempt, after a 503", sent[0])
	}
	if sent[4].Attempts != 1 || sent[4].Status != http.StatusBadRequest || sent[4].Err == "" {
		t.Errorf("fifth event %+v: want refused with 400 once, not retried", sent[4])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want)+1 {
		t.Fatalf("jirasync received %d posts, want %d (one retry)", len(got), len(want)+1)
	}
	for i, r := range got {
		_, has := r.raw["assignee"]
		if assigned := r.raw["type"] == "group.assigned"; has != assigned || len(r.raw) != 4+boolInt(assigned) {
			t.Errorf("post %d %v: want id, type, group, occurred_at, and assignee with group.assigned only", i, r.raw)
		}
	}
	if got[5].raw["assignee"] != nil {
		t.Errorf("unassigning sent assignee %v, want null", got[5].raw["assignee"])
	}
}

func ptr(s string) *string { return &s }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
