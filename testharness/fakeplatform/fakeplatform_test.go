package fakeplatform

import (
	"io"
	"net/http"
	"strings"
	"testing"

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
