package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/host/store"
)

func orgsOf(t *testing.T, a *App) []store.InstallationOrg {
	t.Helper()
	in, err := a.Store().Installation(context.Background(), "jira1")
	if err != nil {
		t.Fatal(err)
	}
	return in.Organizations
}

// TestOrgSettingsAPI: the settings of an organization an installation
// serves read and change over the management API; bad settings are a 400
// naming the field and change nothing; each change is logged.
func TestOrgSettingsAPI(t *testing.T) {
	var logs lockedBuffer
	a, srv, _ := newTestAppConfig(t, func(c *Config) {
		c.AdminToken = testAdminToken
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	e := &apiEnv{t: t, a: a, url: srv.URL}
	const path = "/api/v1/installations/jira1/organizations"
	got := e.must("GET", path+"/acme", "", http.StatusOK)
	want := map[string]any{"organization": "acme", "inbound_assignee": true, "outbound_assignee": false,
		"inbound_status": false, "outbound_status": false, "status_mappings": []any{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GET settings = %v, want %v", got, want)
	}
	body := `{"inbound_status": true, "outbound_status": true,
		"status_mappings": [{"jira_project": "APP", "resolve_status": "Done", "unresolve_status": "Reopened"}]}`
	got = e.must("PUT", path+"/acme", body, http.StatusOK)
	want = map[string]any{"organization": "acme", "inbound_assignee": true, "outbound_assignee": false,
		"inbound_status": true, "outbound_status": true, "status_mappings": []any{
			map[string]any{"jira_project": "APP", "resolve_status": "Done", "unresolve_status": "Reopened"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PUT settings answered %v, want %v", got, want)
	}
	if l := e.must("GET", path, "", http.StatusOK); !reflect.DeepEqual(l["items"], []any{want}) {
		t.Errorf("list = %v, want [%v]", l, want)
	}
	if s := logs.String(); !strings.Contains(s, `"msg":"installation organization settings changed"`) ||
		!strings.Contains(s, `"inbound_status":"false -> true"`) || strings.Contains(s, `"inbound_assignee":`) {
		t.Errorf("log does not say what changed (and only that):\n%s", s)
	}
	before := orgsOf(t, a)
	for _, tc := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"outbound status without mappings", path + "/acme", `{"outbound_status": true}`, 400, "status_mappings"},
		{"outbound status, half a mapping", path + "/acme",
			`{"outbound_status": true, "status_mappings": [{"jira_project": "APP", "resolve_status": "Done"}]}`, 400,
			"status_mappings[0].unresolve_status"},
		{"not a project key", path + "/acme", `{"status_mappings": [{"jira_project": "app-1"}]}`, 400, "status_mappings[0].jira_project"},
		{"unknown key", path + "/acme", `{"inbound_stauts": true}`, 400, ""},
		{"a wrong type", path + "/acme", `{"inbound_status": "yes"}`, 400, "inbound_status"},
		{"organization differs", path + "/acme", `{"organization": "globex"}`, 400, "organization"},
		{"unknown organization", path + "/nope", `{}`, 400, "organization"},
		{"unknown installation", "/api/v1/installations/jira9/organizations/acme", `{}`, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer := e.do("PUT", tc.path, tc.body)
			if status != tc.status || !strings.Contains(answer, `"field":"`+tc.field+`"`) && tc.field != "" {
				t.Fatalf("%d %s; want %d naming %q", status, answer, tc.status, tc.field)
			}
			if after := orgsOf(t, a); !reflect.DeepEqual(after, before) {
				t.Errorf("a refused change changed the settings: %+v", after)
			}
		})
	}
	if status, _ := e.doAuth("GET", path+"/acme", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d, want 401", status)
	}
	if status, _ := e.do("GET", path+"/globex", ""); status != http.StatusNotFound {
		t.Errorf("an organization not served: %d, want 404", status)
	}
}

// TestOrgSettingsForm: the installation page shows every setting and
// changes them with its CSRF-checked form; a bad mapping is refused with
// the reason, changing nothing.
func TestOrgSettingsForm(t *testing.T) {
	e := newInstallEnv(t, "9.12.2")
	page := InstallationsPath + "/jira1"
	form := url.Values{"csrf": {e.csrf}, "organization": {"acme"}, "settings": {"1"}, "inbound_status": {"on"},
		"outbound_status": {"on"}, "status_mappings": {"APP | Done | Reopened\r\n\r\nOPS|Closed|To Do\r\n"}}
	resp := e.do("POST", page+"/organizations", form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving settings: %d", resp.StatusCode)
	}
	want := []store.InstallationOrg{{ID: "acme", InboundStatus: true, OutboundStatus: true, StatusMappings: []store.StatusMapping{
		{JiraProject: "APP", ResolveStatus: "Done", UnresolveStatus: "Reopened"}, {JiraProject: "OPS", ResolveStatus: "Closed", UnresolveStatus: "To Do"}}}}
	if got := orgsOf(t, e.app); !reflect.DeepEqual(got, want) {
		t.Fatalf("settings %+v, want %+v", got, want)
	}
	_, body := e.get(page)
	for _, s := range []string{`name="inbound_status" value="on" checked`, `name="outbound_assignee" value="on">`,
		"APP | Done | Reopened\nOPS | Closed | To Do", "not yet acted on"} {
		if !strings.Contains(body, s) {
			t.Errorf("installation page lacks %q:\n%s", s, body)
		}
	}
	for _, tc := range []struct {
		name string
		form url.Values
		code int
		says string
	}{
		{"a line without three parts", url.Values{"csrf": {e.csrf}, "organization": {"acme"}, "settings": {"1"},
			"status_mappings": {"APP | Done"}}, 400, "line 1: want"},
		{"outbound status without mappings", url.Values{"csrf": {e.csrf}, "organization": {"acme"}, "settings": {"1"},
			"outbound_status": {"on"}}, 400, "status_mappings: outbound status sync needs"},
		{"no CSRF token", url.Values{"organization": {"acme"}, "settings": {"1"}}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("POST", page+"/organizations", tc.form)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.says) {
				t.Fatalf("%d %s; want %d saying %q", resp.StatusCode, b, tc.code, tc.says)
			}
			if got := orgsOf(t, e.app); !reflect.DeepEqual(got, want) {
				t.Errorf("a refused form changed the settings: %+v", got)
			}
		})
	}
	// The add form (and the forms of before the settings) switches inbound
	// assignee sync only, keeping the rest.
	resp = e.do("POST", page+"/organizations", url.Values{"csrf": {e.csrf}, "organization": {"acme"}, "inbound_assignee": {"on"}})
	resp.Body.Close()
	want[0].InboundAssignee = true
	if got := orgsOf(t, e.app); resp.StatusCode != http.StatusSeeOther || !reflect.DeepEqual(got, want) {
		t.Fatalf("switching inbound assignee: %d, %+v; want %+v", resp.StatusCode, got, want)
	}
}
