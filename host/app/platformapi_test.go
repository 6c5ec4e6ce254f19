package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

const testAdminToken = "platform-admin-token"

// apiEnv is a host with the admin token set, and the test app's data:
// organization acme, project backend, user alice, group g1 linked to
// APP-1 on installation jira1.
type apiEnv struct {
	t   *testing.T
	a   *App
	url string
}

func newAPIEnv(t *testing.T) *apiEnv {
	a, srv, _ := newTestAppConfig(t, func(c *Config) { c.AdminToken = testAdminToken })
	return &apiEnv{t: t, a: a, url: srv.URL}
}

func (e *apiEnv) doAuth(method, path, body, auth string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *apiEnv) do(method, path, body string) (int, string) {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+testAdminToken)
}

// must does a request that must answer want, and decodes the answer.
func (e *apiEnv) must(method, path, body string, want int) map[string]any {
	e.t.Helper()
	status, answer := e.do(method, path, body)
	if status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, status, answer, want)
	}
	var out map[string]any
	if answer != "" {
		if err := json.Unmarshal([]byte(answer), &out); err != nil {
			e.t.Fatalf("%s %s: answer not JSON: %s", method, path, answer)
		}
	}
	return out
}

// snapshot is everything the built-in platform holds, as an export.
func (e *apiEnv) snapshot() string {
	e.t.Helper()
	var b bytes.Buffer
	if err := e.a.Store().Export(context.Background(), &b); err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestPlatformAPIRoundTrip(t *testing.T) {
	e := newAPIEnv(t)
	e.must("PUT", "/api/v1/organizations/globex", `{"name":"Globex"}`, 200)
	e.must("PUT", "/api/v1/projects/ops", `{"organization":"globex","name":"Ops"}`, 200)
	got := e.must("PUT", "/api/v1/users/bob", `{"name":"Bob","emails":[{"email":"Bob@Example.com","verified":true}],"projects":["ops","backend"]}`, 200)
	want := `{"emails":[{"email":"Bob@Example.com","verified":true}],"id":"bob","name":"Bob","projects":["backend","ops"]}`
	if jsonOf(got) != want {
		t.Fatalf("PUT user answered %s, want the stored %s", jsonOf(got), want)
	}
	got = e.must("PUT", "/api/v1/groups/g2", `{"id":"g2","project":"ops","title":"Disk full","assignee":"bob"}`, 200)
	if jsonOf(got) != `{"assignee":"bob","id":"g2","project":"ops","status":"unresolved","title":"Disk full"}` {
		t.Fatalf("PUT group answered %s", jsonOf(got))
	}
	e.must("PUT", "/api/v1/groups/g2/links/jira1/OPS-7", ``, 200)
	e.must("PUT", "/api/v1/groups/g2/links/jira1/OPS-7", `{}`, 200) // again: the same link
	if got := e.must("GET", "/api/v1/groups/g2/links", "", 200); jsonOf(got) != `{"items":[{"group":"g2","installation":"jira1","issue_key":"OPS-7"}]}` {
		t.Fatalf("links: %s", jsonOf(got))
	}
	// Replacing a user replaces its emails and memberships.
	e.must("PUT", "/api/v1/users/bob", `{"name":"Bob","emails":[{"email":"bob@globex.com","verified":false}],"projects":["ops"]}`, 200)
	if got := e.must("GET", "/api/v1/users/bob", "", 200); jsonOf(got) != `{"emails":[{"email":"bob@globex.com","verified":false}],"id":"bob","name":"Bob","projects":["ops"]}` {
		t.Fatalf("GET user after replace: %s", jsonOf(got))
	}
	// Paging: one at a time, in id order.
	var ids []string
	after := ""
	for i := 0; i < 5; i++ {
		page := e.must("GET", "/api/v1/organizations?limit=1&after="+after, "", 200)
		for _, it := range page["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := page["next"].(string)
		if next == "" {
			break
		}
		after = next
	}
	if strings.Join(ids, ",") != "acme,globex" {
		t.Fatalf("organizations paged: %v", ids)
	}
	if got := e.must("GET", "/api/v1/groups?issue_key=OPS-7", "", 200); len(got["items"].([]any)) != 1 {
		t.Fatalf("groups linked to OPS-7: %s", jsonOf(got))
	}

	// Deleting: a project with groups is refused, and changes nothing.
	before := e.snapshot()
	if got := e.must("DELETE", "/api/v1/projects/ops", "", 409); !strings.Contains(got["error"].(string), "1 groups") {
		t.Fatalf("409 should say why: %v", got)
	}
	if got := e.must("DELETE", "/api/v1/organizations/globex", "", 409); !strings.Contains(got["error"].(string), "projects") {
		t.Fatalf("409 should say why: %v", got)
	}
	if e.snapshot() != before {
		t.Fatal("a refused delete changed data")
	}
	// Deleting a user unassigns its groups; a group goes with its links;
	// then the project goes with its memberships, then the organization.
	e.must("DELETE", "/api/v1/users/bob", "", 204)
	if got := e.must("GET", "/api/v1/groups/g2", "", 200); got["assignee"] != nil {
		t.Fatalf("group of a deleted user still assigned: %v", got)
	}
	e.must("PUT", "/api/v1/users/carol", `{"projects":["ops"]}`, 200)
	e.must("DELETE", "/api/v1/groups/g2/links/jira1/OPS-7", "", 204)
	e.must("DELETE", "/api/v1/groups/g2/links/jira1/OPS-7", "", 404)
	e.must("PUT", "/api/v1/groups/g2/links/jira1/OPS-7", "", 200)
	e.must("DELETE", "/api/v1/groups/g2", "", 204)
	e.must("GET", "/api/v1/groups/g2/links", "", 404)
	if got := e.must("GET", "/api/v1/groups?issue_key=OPS-7", "", 200); len(got["items"].([]any)) != 0 {
		t.Fatalf("links outlived their group: %s", jsonOf(got))
	}
	e.must("DELETE", "/api/v1/projects/ops", "", 204)
	if got := e.must("GET", "/api/v1/users/carol", "", 200); jsonOf(got["projects"]) != `[]` {
		t.Fatalf("membership outlived its project: %v", got)
	}
	e.must("DELETE", "/api/v1/organizations/globex", "", 204)
	e.must("GET", "/api/v1/organizations/globex", "", 404)
	e.must("DELETE", "/api/v1/organizations/globex", "", 404)
}

func TestPlatformAPIRefusesBadInput(t *testing.T) {
	e := newAPIEnv(t)
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field                    string // "" for the request as a whole
		says                     string
	}{
		{"unknown organization of a project", "PUT", "/api/v1/projects/p2", `{"organization":"nope"}`, 400, "organization", `unknown organization "nope"`},
		{"project without organization", "PUT", "/api/v1/projects/p2", `{"name":"x"}`, 400, "organization", "empty"},
		{"unknown project of a group", "PUT", "/api/v1/groups/g9", `{"project":"nope"}`, 400, "project", `unknown project "nope"`},
		{"unknown user as assignee", "PUT", "/api/v1/groups/g9", `{"project":"backend","assignee":"nope"}`, 400, "assignee", `unknown user "nope"`},
		{"empty assignee", "PUT", "/api/v1/groups/g9", `{"project":"backend","assignee":""}`, 400, "assignee", "empty"},
		{"unknown project of a user", "PUT", "/api/v1/users/u9", `{"projects":["backend","nope"]}`, 400, "projects[1]", `unknown project "nope"`},
		{"email not an email", "PUT", "/api/v1/users/u9", `{"emails":[{"email":"alice@example.com","verified":true},{"email":"not-an-email"}]}`, 400, "emails[1].email", "not an email"},
		{"email with a display name", "PUT", "/api/v1/users/u9", `{"emails":[{"email":"Alice <alice@example.com>"}]}`, 400, "emails[0].email", "not an email"},
		{"email twice", "PUT", "/api/v1/users/u9", `{"emails":[{"email":"a@example.com"},{"email":"A@example.com"}]}`, 400, "emails[1].email", "same address as emails[0]"},
		{"project twice", "PUT", "/api/v1/users/u9", `{"projects":["backend","backend"]}`, 400, "projects[1]", "same project"},
		{"id over 200 bytes", "PUT", "/api/v1/organizations/" + long, `{}`, 400, "id", "over the limit of 200"},
		{"id with a control character", "PUT", "/api/v1/organizations/a%0Ab", `{}`, 400, "id", "control character"},
		{"id in the body differs", "PUT", "/api/v1/organizations/o9", `{"id":"o8"}`, 400, "id", "differs"},
		{"unknown key", "PUT", "/api/v1/organizations/o9", `{"name":"x","colour":"red"}`, 400, "", `unknown key "colour"`},
		{"unknown key in an email", "PUT", "/api/v1/users/u9", `{"emails":[{"email":"a@example.com","primary":true}]}`, 400, "", `unknown key "primary"`},
		{"wrong type of name", "PUT", "/api/v1/organizations/o9", `{"name":5}`, 400, "name", "want a string"},
		{"wrong type of verified", "PUT", "/api/v1/users/u9", `{"emails":[{"email":"a@example.com","verified":"yes"}]}`, 400, "emails.verified", "want true or false"},
		{"wrong type of projects", "PUT", "/api/v1/users/u9", `{"projects":"backend"}`, 400, "projects", "want an array"},
		{"wrong type of assignee", "PUT", "/api/v1/groups/g9", `{"project":"backend","assignee":7}`, 400, "assignee", "want a string"},
		{"body not an object", "PUT", "/api/v1/organizations/o9", `["x"]`, 400, "", "not a JSON object"},
		{"body null", "PUT", "/api/v1/organizations/o9", `null`, 400, "", "not a JSON object"},
		{"body not JSON", "PUT", "/api/v1/organizations/o9", `{"name":`, 400, "", "unexpected EOF"},
		{"two objects", "PUT", "/api/v1/organizations/o9", `{} {}`, 400, "", "data after the JSON object"},
		{"invalid UTF-8", "PUT", "/api/v1/organizations/o9", "{\"name\":\"\xff\xfe\"}", 400, "", "not valid UTF-8"},
		{"NUL in a name", "PUT", "/api/v1/organizations/o9", `{"name":"a\u0000b"}`, 400, "name", "NUL"},
		{"NUL in a title", "PUT", "/api/v1/groups/g9", `{"project":"backend","title":"\u0000"}`, 400, "title", "NUL"},
		{"name over the limit", "PUT", "/api/v1/organizations/o9", `{"name":"` + strings.Repeat("n", 1001) + `"}`, 400, "name", "over the limit of 1000"},
		{"body over the limit", "PUT", "/api/v1/organizations/o9", `{"name":"` + strings.Repeat("n", MaxAPIBodyBytes) + `"}`, 413, "", "body over"},
		{"link to an unknown installation", "PUT", "/api/v1/groups/g1/links/nope/APP-2", ``, 400, "installation", `unknown installation "nope"`},
		{"link with a bad issue key", "PUT", "/api/v1/groups/g1/links/jira1/app%202", ``, 400, "issue_key", "not a Jira issue key"},
		{"link of an unknown group", "PUT", "/api/v1/groups/nope/links/jira1/APP-2", ``, 404, "", "not found"},
		{"link with a body", "PUT", "/api/v1/groups/g1/links/jira1/APP-2", `{"note":"x"}`, 400, "", `unknown key "note"`},
		{"limit not a number", "GET", "/api/v1/users?limit=ten", ``, 400, "limit", "whole number"},
		{"limit over the maximum", "GET", "/api/v1/users?limit=1001", ``, 400, "limit", "1 to 1000"},
		{"limit zero", "GET", "/api/v1/groups?limit=0", ``, 400, "limit", "1 to 1000"},
		{"unknown organization", "GET", "/api/v1/organizations/nope", ``, 404, "", "not found"},
		{"delete unknown user", "DELETE", "/api/v1/users/nope", ``, 404, "", "not found"},
		{"delete organization with projects", "DELETE", "/api/v1/organizations/acme", ``, 409, "", "projects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			status, answer := e.do(tc.method, tc.path, tc.body)
			var got apiError
			if err := json.Unmarshal([]byte(answer), &got); err != nil {
				t.Fatalf("answer is not a JSON error: %d %s", status, answer)
			}
			if status != tc.status || got.Field != tc.field || !strings.Contains(got.Error, tc.says) {
				t.Errorf("%d %+v; want %d, field %q, an error saying %q", status, got, tc.status, tc.field, tc.says)
			}
			if tc.field != "" && !strings.HasPrefix(got.Error, tc.field+": ") {
				t.Errorf("error %q does not start with its field %q", got.Error, tc.field)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("refused request changed data:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestPlatformAPINeedsTheBearerToken(t *testing.T) {
	e := newAPIEnv(t)
	for _, tc := range []struct{ name, auth string }{
		{"none", ""},
		{"wrong token", "Bearer nope"},
		{"empty bearer", "Bearer "},
		{"basic with the token", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testAdminToken))},
	} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			before := e.snapshot()
			status, answer := e.doAuth(m, "/api/v1/organizations/acme", `{"name":"x"}`, tc.auth)
			if status != http.StatusUnauthorized || !strings.Contains(answer, "admin token required") {
				t.Errorf("%s, %s: %d %s, want 401", tc.name, m, status, answer)
			}
			if e.snapshot() != before {
				t.Errorf("%s, %s: unauthorised request changed data", tc.name, m)
			}
		}
	}
}

func TestPlatformPage(t *testing.T) {
	e := newAPIEnv(t)
	e.must("PUT", "/api/v1/groups/g2", `{"project":"backend","title":"Second <group>","assignee":"alice"}`, 200)
	e.must("PUT", "/api/v1/groups/g2/links/jira1/APP-2", ``, 200)
	for _, tc := range []struct {
		query      string
		status     int
		has, hasnt []string
	}{
		{"", 200, []string{"acme", "g1", "g2", "Second &lt;group&gt;", "alice", "jira1: APP-1", "jira1: APP-2", "unassigned"}, nil},
		{"?issue_key=APP-2", 200, []string{"g2", "jira1: APP-2"}, []string{">g1<"}},
		{"?issue_key=APP-9", 200, []string{"None linked to APP-9"}, []string{">g1<", ">g2<"}},
		{"?issue_key=%3Cscript%3E", 400, []string{"not a Jira issue key"}, []string{"<script>"}},
	} {
		resp, body := adminGet(t, e.url+PlatformPath+tc.query, testAdminToken, "text/html")
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.query, resp.StatusCode, tc.status)
		}
		for _, s := range tc.has {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q", tc.query, s)
			}
		}
		for _, s := range tc.hasnt {
			if strings.Contains(body, s) {
				t.Errorf("%s: page has %q", tc.query, s)
			}
		}
	}
	if resp, _ := adminGet(t, e.url+PlatformPath, "", "application/json"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("platform page without sign-in: %d", resp.StatusCode)
	}
}

// TestFreshHostOffersAnOrganizationMadeByTheAPI: a host started without
// demo data can be connected to a Jira once the API made an organization
// (README, "A fresh host").
func TestFreshHostOffersAnOrganizationMadeByTheAPI(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, Config{DB: filepath.Join(t.TempDir(), "j.db"), Engine: "native", AdminToken: testAdminToken, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(ctx) })
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	e := &apiEnv{t: t, a: a, url: srv.URL}
	option := `<option value="acme"`
	if _, page := adminGet(t, srv.URL+SetupPath, testAdminToken, "text/html"); strings.Contains(page, option) {
		t.Fatal("a fresh host offers an organization")
	}
	e.must("PUT", "/api/v1/organizations/acme", `{"name":"Acme Corp"}`, 200)
	if _, page := adminGet(t, srv.URL+SetupPath, testAdminToken, "text/html"); !strings.Contains(page, option) {
		t.Fatalf("setup form does not offer the organization made by the API:\n%s", page)
	}
}

// TestPlatformAPIThrottlesWrongTokens: wrong bearer tokens on the API count
// towards the sign-in throttle, so the API is no way round it for someone
// guessing the admin token.
func TestPlatformAPIThrottlesWrongTokens(t *testing.T) {
	e := newAPIEnv(t)
	for i := range signInFailures {
		if status, answer := e.doAuth("GET", "/api/v1/organizations", "", "Bearer wrong-token-wrong-token"); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, status, answer)
		}
	}
	if status, answer := e.do("GET", "/api/v1/organizations", ""); status != http.StatusTooManyRequests {
		t.Fatalf("right token after %d failures: %d %s, want 429", signInFailures, status, answer)
	}
}
