package fakejira

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
)

// startWithIssues is start plus users who share an email, and issues.
func startWithIssues(t *testing.T) *Server {
	t.Helper()
	s := start(t, Config{})
	s.AddUser(User{Name: "carol", Key: "JIRAUSER10102", EmailAddress: "Shared@Example.com", DisplayName: "Carol", Active: true})
	s.AddUser(User{Name: "dave", Key: "JIRAUSER10103", EmailAddress: "shared@example.com", DisplayName: "Dave", Active: true})
	s.AddUser(User{Name: "alicia", Key: "JIRAUSER10104", EmailAddress: "alice@example.com.au", DisplayName: "Alicia", Active: true})
	for _, is := range []Issue{
		{Key: "APP-1", ID: "10042", Assignee: "alice", Status: "1"},
		{Key: "APP-2", Status: "5"},
		{Key: "APP-3", RefuseAssign: 400},
		{Key: "APP-4", RefuseAssign: 403},
	} {
		if err := s.AddIssue(is); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestUserSearch(t *testing.T) {
	mine, _ := keys(t)
	s := startWithIssues(t)
	c := signer{consumer: consumer, key: mine, token: token}.client()
	tests := []struct {
		name  string
		query string
		want  int
		names []string
	}{
		{"by exact email", "username=alice@example.com", 200, []string{"alice", "alicia"}},
		{"email case-insensitively", "username=SHARED@example.COM", 200, []string{"carol", "dave"}},
		{"by name prefix", "username=ali", 200, []string{"alice", "alicia"}},
		{"by key", "username=JIRAUSER10103", 200, []string{"dave"}},
		{"by display name", "username=Carol", 200, []string{"carol"}},
		{"inactive left out", "username=bob", 200, []string{}},
		{"inactive on request", "username=bob&includeInactive=true", 200, []string{"bob"}},
		{"paged", "username=ali&startAt=1&maxResults=1", 200, []string{"alicia"}},
		{"nobody", "username=zed@example.com", 200, []string{}},
		{"no username", "", 400, nil},
		{"bad maxResults", "username=a&maxResults=x", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, s.URL()+"/rest/api/2/user/search?"+tt.query)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.names == nil {
				if !strings.Contains(string(body), `"errorMessages":["`) {
					t.Errorf("error body %s is not Jira's ErrorCollection", body)
				}
				return
			}
			var got []struct{ Name, Key, EmailAddress string }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			names := []string{}
			for _, u := range got {
				names = append(names, u.Name)
			}
			if !slices.Equal(names, tt.names) {
				t.Errorf("found %v, want %v", names, tt.names)
			}
		})
	}
	t.Run("unsigned is refused", func(t *testing.T) {
		resp, _ := get(t, plainClient(), s.URL()+"/rest/api/2/user/search?username=alice")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
		if rec := lastRequest(t, s); rec.Verified || rec.Problem != ProblemParameterAbsent {
			t.Errorf("record %+v", rec)
		}
	})
}

func TestIssueGet(t *testing.T) {
	mine, other := keys(t)
	s := startWithIssues(t)
	c := signer{consumer: consumer, key: mine, token: token}.client()
	type issue struct {
		ID, Key, Self string
		Fields        map[string]json.RawMessage
	}
	tests := []struct {
		name, path string
		want       int
		fields     []string
		assignee   string // "null" for none
		status     string // status JSON must contain this
	}{
		{"assigned", "/rest/api/2/issue/APP-1", 200, []string{"assignee", "project", "status", "summary"},
			`"name":"alice"`, `"id":"1","statusCategory":{"self":`},
		{"unassigned and resolved", "/rest/api/2/issue/APP-2", 200, []string{"assignee", "project", "status", "summary"},
			"null", `"key":"done"`},
		{"fields asked for", "/rest/api/2/issue/APP-1?fields=assignee,status", 200, []string{"assignee", "status"},
			`"key":"JIRAUSER10100"`, `"name":"Open"`},
		{"unknown issue", "/rest/api/2/issue/APP-99", 404, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, s.URL()+tt.path)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want == 404 {
				if string(body) != `{"errorMessages":["Issue Does Not Exist"],"errors":{}}` {
					t.Errorf("404 body %s", body)
				}
				return
			}
			var got issue
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range got.Fields {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.fields) {
				t.Errorf("fields %v, want %v", keys, tt.fields)
			}
			if a := string(got.Fields["assignee"]); (tt.assignee == "null" && a != "null") || !strings.Contains(a, tt.assignee) {
				t.Errorf("assignee %s, want %s", a, tt.assignee)
			}
			if st := string(got.Fields["status"]); !strings.Contains(st, tt.status) {
				t.Errorf("status %s lacks %s", st, tt.status)
			}
		})
	}
	if got, _ := s.Issue("APP-1"); got.ID != "10042" {
		t.Errorf("APP-1 id %q", got.ID)
	}
	t.Run("signed with the wrong key", func(t *testing.T) {
		resp, _ := get(t, signer{consumer: consumer, key: other, token: token}.client(), s.URL()+"/rest/api/2/issue/APP-1")
		if resp.StatusCode != http.StatusUnauthorized || lastRequest(t, s).Problem != ProblemSignatureInvalid {
			t.Errorf("status %d, record %+v", resp.StatusCode, lastRequest(t, s))
		}
	})
}

func TestAssign(t *testing.T) {
	mine, other := keys(t)
	good := signer{consumer: consumer, key: mine, token: token}.client()
	tests := []struct {
		name        string
		client      *http.Client
		issue, body string
		contentType string
		failure     int
		want        int
		message     string // in the answer
		assignee    string // the issue's assignee afterwards
		write       *Write // the write recorded, nil for none
	}{
		{name: "assign", issue: "APP-1", body: `{"name":"carol"}`, want: 204, assignee: "carol",
			write: &Write{Issue: "APP-1", Field: FieldAssignee, Value: "carol", Status: 204, ConsumerKey: consumer}},
		{name: "name case-insensitively", issue: "APP-1", body: `{"name":"CAROL"}`, want: 204, assignee: "carol",
			write: &Write{Issue: "APP-1", Field: FieldAssignee, Value: "CAROL", Status: 204, ConsumerKey: consumer}},
		{name: "unassign", issue: "APP-1", body: `{"name":null}`, want: 204, assignee: "",
			write: &Write{Issue: "APP-1", Field: FieldAssignee, Value: "", Status: 204, ConsumerKey: consumer}},
		{name: "same assignee again", issue: "APP-1", body: `{"name":"alice"}`, want: 204, assignee: "alice",
			write: &Write{Issue: "APP-1", Field: FieldAssignee, Value: "alice", Status: 204, ConsumerKey: consumer}},
		{name: "unknown user", issue: "APP-1", body: `{"name":"zed"}`, want: 400, message: `"assignee":"User 'zed' does not exist."`, assignee: "alice",
			write: &Write{Issue: "APP-1", Field: FieldAssignee, Value: "zed", Status: 400, ConsumerKey: consumer}},
		{name: "inactive user", issue: "APP-1", body: `{"name":"bob"}`, want: 400, message: "cannot be assigned issues", assignee: "alice",
			write: &Write{Issue: "APP-1", Field: FieldAssignee, Value: "bob", Status: 400, ConsumerKey: consumer}},
		{name: "not assignable on this issue", issue: "APP-3", body: `{"name":"carol"}`, want: 400, message: `"User 'carol' cannot be assigned issues."`,
			write: &Write{Issue: "APP-3", Field: FieldAssignee, Value: "carol", Status: 400, ConsumerKey: consumer}},
		{name: "no permission", issue: "APP-4", body: `{"name":"carol"}`, want: 403, message: `"errorMessages":["You do not have permission to assign issues."]`,
			write: &Write{Issue: "APP-4", Field: FieldAssignee, Value: "carol", Status: 403, ConsumerKey: consumer}},
		{name: "unknown issue", issue: "APP-99", body: `{"name":"carol"}`, want: 404, message: "Issue Does Not Exist",
			write: &Write{Issue: "APP-99", Field: FieldAssignee, Value: "carol", Status: 404, ConsumerKey: consumer}},
		{name: "not JSON", issue: "APP-1", body: `name=carol`, want: 400, assignee: "alice"},
		{name: "form content type", issue: "APP-1", body: `{"name":"carol"}`, contentType: "text/plain", want: 415, assignee: "alice"},
		{name: "wrong key", client: signer{consumer: consumer, key: other, token: token}.client(), issue: "APP-1", body: `{"name":"carol"}`, want: 401, assignee: "alice"},
		{name: "unsigned", client: plainClient(), issue: "APP-1", body: `{"name":"carol"}`, want: 401, assignee: "alice"},
		{name: "Jira failing", issue: "APP-1", body: `{"name":"carol"}`, failure: 503, want: 503, assignee: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startWithIssues(t)
			s.SetFailure(tt.failure)
			c := tt.client
			if c == nil {
				c = good
			}
			req, err := http.NewRequest(http.MethodPut, s.URL()+"/rest/api/2/issue/"+tt.issue+"/assignee", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, body := readAnswer(t)(c.Do(req))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want == 204 && len(body) != 0 {
				t.Errorf("204 with a body %q", body)
			}
			if is, ok := s.Issue(tt.issue); ok && is.Assignee != tt.assignee {
				t.Errorf("assignee %q, want %q", is.Assignee, tt.assignee)
			}
			checkWrite(t, s, body, tt.message, tt.write)
		})
	}
}

// checkWrite checks an answer says message and that s recorded exactly
// the one write (nil: none).
func checkWrite(t *testing.T, s *Server, answer []byte, message string, write *Write) {
	t.Helper()
	if !strings.Contains(string(answer), message) {
		t.Errorf("answer %s lacks %q", answer, message)
	}
	var want []Write
	if write != nil {
		want = []Write{*write}
	}
	if got := s.Writes(); !slices.Equal(got, want) {
		t.Errorf("writes %+v, want %+v", got, want)
	}
}

func TestTransitions(t *testing.T) {
	mine, _ := keys(t)
	c := signer{consumer: consumer, key: mine, token: token}.client()
	list := func(t *testing.T, s *Server, key string) (ids, to []string) {
		t.Helper()
		resp, body := get(t, c, s.URL()+"/rest/api/2/issue/"+key+"/transitions")
		if resp.StatusCode != 200 {
			t.Fatalf("GET transitions: %d %s", resp.StatusCode, body)
		}
		var got struct {
			Transitions []struct {
				ID string
				To struct {
					ID             string
					StatusCategory struct{ Key string }
				}
			}
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		for _, tr := range got.Transitions {
			ids = append(ids, tr.ID)
			to = append(to, tr.To.ID+"/"+tr.To.StatusCategory.Key)
		}
		return ids, to
	}
	t.Run("default workflow lists", func(t *testing.T) {
		s := startWithIssues(t)
		tests := []struct {
			key      string
			ids, tos []string
		}{
			{"APP-1", []string{"4", "5", "2"}, []string{"3/indeterminate", "5/done", "6/done"}},
			{"APP-2", []string{"2", "3"}, []string{"6/done", "4/new"}},
		}
		for _, tt := range tests {
			ids, tos := list(t, s, tt.key)
			if !slices.Equal(ids, tt.ids) || !slices.Equal(tos, tt.tos) {
				t.Errorf("%s: transitions %v to %v, want %v to %v", tt.key, ids, tos, tt.ids, tt.tos)
			}
		}
	})

	tests := []struct {
		name    string
		issue   string
		body    string
		want    int
		message string
		status  string // the issue's status afterwards
		write   *Write
	}{
		{name: "resolve", issue: "APP-1", body: `{"transition":{"id":"5"}}`, want: 204, status: "5",
			write: &Write{Issue: "APP-1", Field: FieldStatus, Value: "5", Transition: "5", Status: 204, ConsumerKey: consumer}},
		{name: "not from this status", issue: "APP-1", body: `{"transition":{"id":"3"}}`, want: 400, status: "1",
			message: "workflow operation (Reopen Issue) that is not valid for the current state of this issue (APP-1)",
			write:   &Write{Issue: "APP-1", Field: FieldStatus, Value: "4", Transition: "3", Status: 400, ConsumerKey: consumer}},
		{name: "unknown transition", issue: "APP-1", body: `{"transition":{"id":"999"}}`, want: 400, status: "1",
			message: "Transition id '999' is not valid for this issue.",
			write:   &Write{Issue: "APP-1", Field: FieldStatus, Transition: "999", Status: 400, ConsumerKey: consumer}},
		{name: "no transition", issue: "APP-1", body: `{"fields":{}}`, want: 400, status: "1", message: "Missing 'transition' identifier"},
		{name: "unknown issue", issue: "APP-9", body: `{"transition":{"id":"5"}}`, want: 404,
			write: &Write{Issue: "APP-9", Field: FieldStatus, Transition: "5", Status: 404, ConsumerKey: consumer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startWithIssues(t)
			resp, body := send(t, c, http.MethodPost, s.URL()+"/rest/api/2/issue/"+tt.issue+"/transitions", tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if is, ok := s.Issue(tt.issue); ok && is.Status != tt.status {
				t.Errorf("status %s, want %s", is.Status, tt.status)
			}
			checkWrite(t, s, body, tt.message, tt.write)
		})
	}

	t.Run("configured workflow with a global transition", func(t *testing.T) {
		s := startWithIssues(t)
		if err := s.SetTransitions([]Transition{{ID: "7", Name: "Done", To: "10001"}, {ID: "8", Name: "Back", From: []string{"10001"}, To: "1"}}); err != nil {
			t.Fatal(err)
		}
		if ids, _ := list(t, s, "APP-1"); !slices.Equal(ids, []string{"7"}) {
			t.Errorf("from Open: %v, want [7]", ids)
		}
		if resp, body := send(t, c, http.MethodPost, s.URL()+"/rest/api/2/issue/APP-1/transitions", `{"transition":{"id":"7"}}`); resp.StatusCode != 204 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if ids, _ := list(t, s, "APP-1"); !slices.Equal(ids, []string{"8"}) {
			t.Errorf("from Done: %v, want [8] (a global transition is not offered from its own target)", ids)
		}
	})
	t.Run("unsigned is refused", func(t *testing.T) {
		s := startWithIssues(t)
		resp, _ := send(t, plainClient(), http.MethodPost, s.URL()+"/rest/api/2/issue/APP-1/transitions", `{"transition":{"id":"5"}}`)
		if resp.StatusCode != http.StatusUnauthorized || len(s.Writes()) != 0 {
			t.Errorf("status %d, writes %+v", resp.StatusCode, s.Writes())
		}
		if is, _ := s.Issue("APP-1"); is.Status != "1" {
			t.Errorf("status changed to %s", is.Status)
		}
	})
}

func TestIssueSetupRefuses(t *testing.T) {
	s := startWithIssues(t)
	for _, is := range []Issue{{Key: "app1"}, {Key: "APP-"}, {Key: "1APP-1"}, {Key: "APP-1", Status: "77"},
		{Key: "APP-1", Assignee: "zed"}, {Key: "APP-1", RefuseAssign: 500}} {
		if err := s.AddIssue(is); err == nil {
			t.Errorf("AddIssue(%+v) accepted", is)
		}
	}
	for _, ts := range [][]Transition{{{Name: "no id", To: "1"}}, {{ID: "1", To: "77"}}} {
		if err := s.SetTransitions(ts); err == nil {
			t.Errorf("SetTransitions(%+v) accepted", ts)
		}
	}
	if err := s.Edit("APP-99", nil, "1"); err == nil {
		t.Error("Edit of an unknown issue accepted")
	}
}

// TestEcho: with echo on, each change through the REST API or Edit fires
// the issue-updated webhook at the registered webhooks, in order, with
// the changelog and the issue as it is after the change; a write that
// changes nothing, or fails, fires nothing.
func TestEcho(t *testing.T) {
	mine, _ := keys(t)
	c := signer{consumer: consumer, key: mine, token: token}.client()
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer recv.Close()
	before := time.Now()
	s, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddConsumer(consumer, &mine.PublicKey)
	s.AddAccessToken(consumer, token, "secret-1")
	s.AddUser(alice)
	s.AddUser(User{Name: "carol", Key: "JIRAUSER10102", DisplayName: "Carol", Active: true})
	if err := s.AddIssue(Issue{Key: "APP-1", ID: "10042", Assignee: "alice"}); err != nil {
		t.Fatal(err)
	}
	s.AddWebhook(Webhook{Name: "jirasync", URL: recv.URL + "/hook", Events: []string{"jira:issue_updated"}, Active: true})

	put := func(body string) {
		send(t, c, http.MethodPut, s.URL()+"/rest/api/2/issue/APP-1/assignee", body)
	}
	put(`{"name":"carol"}`) // before echo is on: no webhook
	s.SetEcho(true)
	put(`{"name":"alice"}`)
	put(`{"name":"alice"}`) // no change: no webhook
	put(`{"name":"zed"}`)   // refused: no webhook
	if resp, body := send(t, c, http.MethodPost, s.URL()+"/rest/api/2/issue/APP-1/transitions", `{"transition":{"id":"5"}}`); resp.StatusCode != 204 {
		t.Fatalf("transition: %d %s", resp.StatusCode, body)
	}
	empty := ""
	if err := s.Edit("APP-1", &empty, "4"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitEchoes(ctx); err != nil {
		t.Fatal(err)
	}

	type item struct {
		Field, From, FromString, To, ToString *string
	}
	type hook struct {
		Timestamp          int64
		WebhookEvent       string
		IssueEventTypeName string `json:"issue_event_type_name"`
		User               struct{ Name string }
		Issue              struct {
			ID, Key string
			Fields  struct {
				Assignee *struct{ Name, Key string }
				Status   struct{ ID string }
			}
		}
		Changelog struct {
			ID    string
			Items []item
		}
	}
	p := func(s string) *string { return &s }
	want := []struct {
		event, assignee, status string
		items                   []item
	}{
		{"issue_assigned", "alice", "1", []item{{Field: p("assignee"), From: p("JIRAUSER10102"), FromString: p("Carol"), To: p("JIRAUSER10100"), ToString: p("Alice Liddell")}}},
		{"issue_generic", "alice", "5", []item{{Field: p("status"), From: p("1"), FromString: p("Open"), To: p("5"), ToString: p("Resolved")}}},
		{"issue_generic", "", "4", []item{{Field: p("assignee"), From: p("JIRAUSER10100"), FromString: p("Alice Liddell")},
			{Field: p("status"), From: p("5"), FromString: p("Resolved"), To: p("4"), ToString: p("Reopened")}}},
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != len(want) {
		t.Fatalf("%d webhooks, want %d: %s", len(bodies), len(want), bodies)
	}
	ids := map[string]bool{}
	for i, w := range want {
		var h hook
		if err := json.Unmarshal(bodies[i], &h); err != nil {
			t.Fatal(err)
		}
		if h.WebhookEvent != "jira:issue_updated" || h.IssueEventTypeName != w.event || h.Timestamp < before.UnixMilli() || h.Timestamp > time.Now().UnixMilli() ||
			h.Issue.ID != "10042" || h.Issue.Key != "APP-1" || h.User.Name != adminKey || h.Issue.Fields.Status.ID != w.status {
			t.Errorf("webhook %d: %s", i, bodies[i])
		}
		if got := ""; h.Issue.Fields.Assignee != nil {
			got = h.Issue.Fields.Assignee.Name
			if got != w.assignee {
				t.Errorf("webhook %d: assignee %s, want %s", i, got, w.assignee)
			}
		} else if w.assignee != "" {
			t.Errorf("webhook %d: no assignee, want %s", i, w.assignee)
		}
		if string(mustJSON(t, h.Changelog.Items)) != string(mustJSON(t, w.items)) {
			t.Errorf("webhook %d: items %s, want %s", i, mustJSON(t, h.Changelog.Items), mustJSON(t, w.items))
		}
		if h.Changelog.ID == "" || ids[h.Changelog.ID] {
			t.Errorf("webhook %d: changelog id %q not fresh", i, h.Changelog.ID)
		}
		ids[h.Changelog.ID] = true
	}
	echoes := s.Echoes()
	if len(echoes) != 3 || echoes[0].Results[0].Status != 200 || !slices.Equal(echoes[2].Fields, []string{"assignee", "status"}) {
		t.Errorf("echoes %+v", echoes)
	}
}
