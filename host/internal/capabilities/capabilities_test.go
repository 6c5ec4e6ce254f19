package capabilities_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/jiraclient"
	"github.com/jirasync/jirasync/host/internal/teststore"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/platform/platformhttp"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/abischema"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

// records keeps the host's log records, to see what a plugin log line
// becomes.
type records struct {
	mu sync.Mutex
	rs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rs = append(r.rs, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// fixture: one installation serving acme, linked to g1 (acme) and to g2
// (globex, which it does not serve), alice in backend, and a Jira on
// loopback that answers what jira says.
func fixture(t *testing.T, jira http.HandlerFunc) (*capabilities.Set, *capabilities.Binding, *records, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t, "db")
	srv := httptest.NewServer(jira)
	t.Cleanup(srv.Close)
	key, err := os.ReadFile(filepath.Join("..", "jiraclient", "testdata", "rsa-test-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutOrganization(ctx, store.Organization{ID: "acme"}))
	must(st.PutOrganization(ctx, store.Organization{ID: "globex"}))
	must(st.PutProject(ctx, store.Project{ID: "backend", Organization: "acme"}))
	must(st.PutProject(ctx, store.Project{ID: "ops", Organization: "globex"}))
	must(st.PutUser(ctx, store.User{ID: "alice", Emails: []store.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend", "ops"}}))
	must(st.PutUser(ctx, store.User{ID: "bob", Name: "Bob", Emails: []store.Email{{Address: "Bob@Example.com", Verified: false},
		{Address: "bob@work.example", Verified: true}}}))
	must(st.PutGroup(ctx, store.Group{ID: "g1", Project: "backend"}))
	must(st.PutGroup(ctx, store.Group{ID: "g2", Project: "ops"}))
	must(st.PutGroup(ctx, store.Group{ID: "g3", Project: "backend"}))
	in := store.Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: srv.URL, ConsumerKey: "k",
		PrivateKeyPEM: string(key), AccessToken: "tok", AccessTokenSecret: "tok-secret", WebhookSecret: "s",
		Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true, OutboundAssignee: true, OutboundStatus: true,
			StatusMappings: []store.StatusMapping{{JiraProject: "APP", ResolveStatus: "Done", UnresolveStatus: "10001"}}}}}
	must(st.PutInstallation(ctx, in))
	must(st.LinkGroup(ctx, "g1", "jira1", "APP-10"))
	must(st.LinkGroup(ctx, "g1", "jira1", "APP-1"))
	must(st.LinkGroup(ctx, "g2", "jira1", "APP-1"))
	rec := &records{}
	return &capabilities.Set{Store: st, Platform: st, Jira: jiraclient.New()},
		&capabilities.Binding{Installation: in, Delivery: 1, Logger: slog.New(rec)}, rec, st
}

// TestHostFunctionsSpeakTheSchema calls every host function with good and
// bad requests: each answer must match docs/abi.schema.json, and carry
// what docs/ABI.md says it does.
func TestHostFunctionsSpeakTheSchema(t *testing.T) {
	schema, err := abischema.Load()
	if err != nil {
		t.Fatal(err)
	}
	set, b, _, _ := fixture(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/rest/api/2/binary":
			w.Write([]byte{0xff, 0xfe, 'o', 'k'})
		case "/rest/api/2/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"errorMessages":["maintenance"]}`))
		default:
			w.Write([]byte(`{"name":"alice"}`))
		}
	})
	tests := []struct {
		name, fn, req string
		wantCode      abi.ErrorCode // "" for success
		want          string        // the answer, when given
	}{
		{name: "log", fn: abi.FuncLog, req: `{"level":"warn","message":"m","fields":{"k":1}}`, want: `{}`},
		{name: "log unknown level", fn: abi.FuncLog, req: `{"level":"loud","message":"m"}`, want: `{}`},
		{name: "log malformed", fn: abi.FuncLog, req: `{"level":1}`, wantCode: abi.CodeInvalidRequest},
		{name: "installation, no secrets, with the outbound settings", fn: abi.FuncInstallationGet, req: `{}`,
			want: `{"id":"jira1","external_id":"jira.example.com:k","base_url":"` + b.Installation.BaseURL + `","organizations":[{"id":"acme","inbound_assignee":true,` +
				`"outbound_assignee":true,"outbound_status":true,"status_mappings":[{"jira_project":"APP","resolve_status":"Done","unresolve_status":"10001"}]}]}`},
		{name: "jira", fn: abi.FuncJiraRequest, req: `{"method":"GET","path":"/rest/api/2/user","query":{"username":["alice"]}}`,
			want: `{"status":200,"body":"{\"name\":\"alice\"}"}`},
		{name: "jira 5xx is a status", fn: abi.FuncJiraRequest, req: `{"method":"GET","path":"/rest/api/2/down"}`,
			want: `{"status":503,"body":"{\"errorMessages\":[\"maintenance\"]}"}`},
		{name: "jira bytes not UTF-8", fn: abi.FuncJiraRequest, req: `{"method":"GET","path":"/rest/api/2/binary"}`,
			want: `{"status":200,"body":"\ufffd\ufffdok"}`},
		{name: "jira body object", fn: abi.FuncJiraRequest, req: `{"method":"POST","path":"/rest/api/2/x","body":{"a":1}}`, wantCode: abi.CodeInvalidRequest},
		{name: "jira dot segment", fn: abi.FuncJiraRequest, req: `{"method":"GET","path":"/rest/../secure/admin"}`, wantCode: abi.CodeDenied},
		{name: "jira outside rest", fn: abi.FuncJiraRequest, req: `{"method":"GET","path":"/secure/admin"}`, wantCode: abi.CodeDenied},
		{name: "jira method", fn: abi.FuncJiraRequest, req: `{"method":"PATCH","path":"/rest/api/2/x"}`, wantCode: abi.CodeDenied},
		{name: "jira substitute outside install", fn: abi.FuncJiraRequest, req: `{"method":"POST","path":"/rest/x","body":"{}","substitute":true}`, wantCode: abi.CodeDenied},
		{name: "groups trims the key, served orgs only", fn: abi.FuncGroupsLinked, req: `{"issue_key":" APP-1 ","organizations":["acme","globex"]}`,
			want: `{"groups":[{"id":"g1","organization":"acme","project":"backend","assignee":null,"status":"unresolved"}]}`},
		{name: "groups none", fn: abi.FuncGroupsLinked, req: `{"issue_key":"APP-1","organizations":[]}`, want: `{"groups":[]}`},
		{name: "users trims and folds case", fn: abi.FuncUsersByEmail, req: `{"email":" ALICE@Example.com "}`,
			want: `{"users":[{"id":"alice","verified":true,"projects":["backend","ops"]}]}`},
		{name: "users none", fn: abi.FuncUsersByEmail, req: `{"email":"nobody@example.com"}`, want: `{"users":[]}`},
		{name: "users empty email", fn: abi.FuncUsersByEmail, req: `{"email":"  "}`, wantCode: abi.CodeInvalidRequest},
		{name: "assign", fn: abi.FuncGroupsAssign, req: `{"assignments":[{"group":"g1","assignee":"alice"}]}`, want: `{"changed":1}`},
		{name: "assign unchanged", fn: abi.FuncGroupsAssign, req: `{"assignments":[{"group":"g1","assignee":null}]}`, want: `{"changed":0}`},
		{name: "assign unserved org", fn: abi.FuncGroupsAssign, req: `{"assignments":[{"group":"g2","assignee":"alice"}]}`, wantCode: abi.CodeDenied},
		{name: "assign unlinked group", fn: abi.FuncGroupsAssign, req: `{"assignments":[{"group":"g3","assignee":"alice"}]}`, wantCode: abi.CodeDenied},
		{name: "assign with a status", fn: abi.FuncGroupsAssign, req: `{"assignments":[],"statuses":[{"group":"g1","status":"resolved"}]}`, want: `{"changed":1}`},
		{name: "assign a status already so", fn: abi.FuncGroupsAssign, req: `{"assignments":[],"statuses":[{"group":"g1","status":"unresolved"}]}`, want: `{"changed":0}`},
		{name: "assign a status of an unserved org", fn: abi.FuncGroupsAssign, req: `{"assignments":[],"statuses":[{"group":"g2","status":"resolved"}]}`, wantCode: abi.CodeDenied},
		{name: "assign a status that is not one", fn: abi.FuncGroupsAssign, req: `{"assignments":[],"statuses":[{"group":"g1","status":"done"}]}`, wantCode: abi.CodeInvalidRequest},
		{name: "group with its issue keys, sorted", fn: abi.FuncGroupGet, req: `{"group":"g1"}`,
			want: `{"group":{"id":"g1","organization":"acme","project":"backend","assignee":null,"status":"unresolved","issue_keys":["APP-1","APP-10"]}}`},
		// The plugin checks the organization against installation_get.
		{name: "group of an organization not served", fn: abi.FuncGroupGet, req: `{"group":"g2"}`,
			want: `{"group":{"id":"g2","organization":"globex","project":"ops","assignee":null,"status":"unresolved","issue_keys":["APP-1"]}}`},
		{name: "group not linked", fn: abi.FuncGroupGet, req: `{"group":"g3"}`,
			want: `{"group":{"id":"g3","organization":"acme","project":"backend","assignee":null,"status":"unresolved","issue_keys":[]}}`},
		{name: "group unknown", fn: abi.FuncGroupGet, req: `{"group":"g9"}`, wantCode: abi.CodeNotFound},
		{name: "group empty", fn: abi.FuncGroupGet, req: `{"group":""}`, wantCode: abi.CodeInvalidRequest},
		{name: "group with a NUL", fn: abi.FuncGroupGet, req: `{"group":"g\u00001"}`, wantCode: abi.CodeInvalidRequest},
		{name: "group not a string", fn: abi.FuncGroupGet, req: `{"group":1}`, wantCode: abi.CodeInvalidRequest},
		{name: "user with every address and its flag", fn: abi.FuncUserGet, req: `{"user":"bob"}`,
			want: `{"user":{"id":"bob","emails":[{"email":"Bob@Example.com","verified":false},{"email":"bob@work.example","verified":true}]}}`},
		{name: "user unknown", fn: abi.FuncUserGet, req: `{"user":"carol"}`, wantCode: abi.CodeNotFound},
		{name: "user empty", fn: abi.FuncUserGet, req: `{"user":" "}`, wantCode: abi.CodeInvalidRequest},
		{name: "state get missing", fn: abi.FuncStateGet, req: `{"key":"k"}`, want: `{"value":"","found":false}`},
		{name: "shared state put", fn: abi.FuncStatePut, req: `{"key":"k","value":"s","ttl_seconds":120,"shared":true}`, want: `{}`},
		{name: "shared state get", fn: abi.FuncStateGet, req: `{"key":"k","shared":true}`, want: `{"value":"s","found":true}`},
		{name: "shared state is not the installation's", fn: abi.FuncStateGet, req: `{"key":"k"}`, want: `{"value":"","found":false}`},
		{name: "shared state put over the bound", fn: abi.FuncStatePut, req: `{"key":"k","value":"` + strings.Repeat("x", 64<<10+1) + `","shared":true}`,
			wantCode: abi.CodeInvalidRequest},
		{name: "shared state put key over the bound", fn: abi.FuncStatePut, req: `{"key":"` + strings.Repeat("k", 513) + `","value":"v","shared":true}`,
			wantCode: abi.CodeInvalidRequest},
		{name: "state put no expiry", fn: abi.FuncStatePut, req: `{"key":"k","value":"v","ttl_seconds":0}`, want: `{}`},
		{name: "state get", fn: abi.FuncStateGet, req: `{"key":"k"}`, want: `{"value":"v","found":true}`},
		{name: "state put negative ttl", fn: abi.FuncStatePut, req: `{"key":"k","value":"v","ttl_seconds":-1}`, wantCode: abi.CodeInvalidRequest},
		{name: "state put empty key", fn: abi.FuncStatePut, req: `{"key":"","value":"v"}`, wantCode: abi.CodeInvalidRequest},
		{name: "state put value not a string", fn: abi.FuncStatePut, req: `{"key":"k","value":1}`, wantCode: abi.CodeInvalidRequest},
		{name: "state delete", fn: abi.FuncStatePut, req: `{"key":"k","delete":true}`, want: `{}`},
		{name: "state get deleted", fn: abi.FuncStateGet, req: `{"key":"k"}`, want: `{"value":"","found":false}`},
		{name: "shared state kept", fn: abi.FuncStateGet, req: `{"key":"k","shared":true}`, want: `{"value":"s","found":true}`},
		{name: "shared state delete", fn: abi.FuncStatePut, req: `{"key":"k","delete":true,"shared":true}`, want: `{}`},
		{name: "shared state get deleted", fn: abi.FuncStateGet, req: `{"key":"k","shared":true}`, want: `{"value":"","found":false}`},
		{name: "unknown function", fn: "jirasync_shell", req: `{}`, wantCode: abi.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := set.Call(context.Background(), b, tt.fn, []byte(tt.req))
			def := abischema.Response(tt.fn)
			if tt.fn == "jirasync_shell" {
				def = "fault"
			}
			if err := schema.Validate(def, out); err != nil {
				t.Error(err)
			}
			var f abi.Fault
			if err := json.Unmarshal(out, &f); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantCode != "":
				if f.Error == nil || f.Error.Code != tt.wantCode {
					t.Errorf("answer %s, want code %s", out, tt.wantCode)
				}
			case f.Error != nil:
				t.Errorf("answer %s, want success", out)
			case tt.want != "" && string(out) != tt.want:
				t.Errorf("answer %s, want %s", out, tt.want)
			}
		})
	}
}

// TestSharedStateAcrossInstallations: a shared key one installation
// writes, another reads and deletes (an echo record of a platform write
// is recognised in every installation); per-installation keys stay apart.
func TestSharedStateAcrossInstallations(t *testing.T) {
	set, b1, _, st := fixture(t, func(http.ResponseWriter, *http.Request) {})
	ctx := context.Background()
	other := store.Installation{ID: "jira2", ExternalID: "jira2.example.com:k", BaseURL: "https://jira2.example.com", ConsumerKey: "k",
		WebhookSecret: "s", Organizations: []store.InstallationOrg{{ID: "globex"}}}
	if err := st.PutInstallation(ctx, other); err != nil {
		t.Fatal(err)
	}
	b2 := &capabilities.Binding{Installation: other, Delivery: 2, Logger: b1.Logger}
	for _, step := range []struct {
		b       *capabilities.Binding
		fn, req string
		want    string
	}{
		{b1, abi.FuncStatePut, `{"key":"echo:group:g1:assignee","value":"alice","ttl_seconds":120,"shared":true}`, `{}`},
		{b1, abi.FuncStatePut, `{"key":"mine","value":"1"}`, `{}`},
		{b2, abi.FuncStateGet, `{"key":"echo:group:g1:assignee","shared":true}`, `{"value":"alice","found":true}`},
		{b2, abi.FuncStateGet, `{"key":"mine"}`, `{"value":"","found":false}`},
		{b2, abi.FuncStatePut, `{"key":"echo:group:g1:assignee","delete":true,"shared":true}`, `{}`},
		{b1, abi.FuncStateGet, `{"key":"echo:group:g1:assignee","shared":true}`, `{"value":"","found":false}`},
		{b1, abi.FuncStateGet, `{"key":"mine"}`, `{"value":"1","found":true}`},
	} {
		if got := set.Call(ctx, step.b, step.fn, []byte(step.req)); string(got) != step.want {
			t.Errorf("%s %s %s = %s, want %s", step.b.Installation.ID, step.fn, step.req, got, step.want)
		}
	}
}

// TestUnboundCallsDenied: a host call made where no installation is bound
// (describe, inspect_delivery) is denied, whatever the function.
func TestUnboundCallsDenied(t *testing.T) {
	set, _, _, st := fixture(t, func(http.ResponseWriter, *http.Request) {})
	unbound := &capabilities.Binding{Logger: slog.New(slog.DiscardHandler)}
	for _, fn := range abi.HostFunctions {
		out := set.Call(context.Background(), unbound, fn, []byte(`{"key":"k","value":"v"}`))
		var f abi.Fault
		if err := json.Unmarshal(out, &f); err != nil || f.Error == nil || f.Error.Code != abi.CodeDenied {
			t.Errorf("%s without an installation answered %s, want denied", fn, out)
		}
	}
	if _, found, err := st.StateGet(context.Background(), "", "k"); err != nil || found {
		t.Errorf("an unbound state_put wrote state (found %v, %v)", found, err)
	}
}

// TestLogLine: a plugin log line keeps the binding's installation and
// delivery, maps unknown levels to info, and carries at most 32 fields.
func TestLogLine(t *testing.T) {
	set, b, rec, _ := fixture(t, func(http.ResponseWriter, *http.Request) {})
	fields := map[string]any{"delivery": 99, "installation": "other", "issue_key": "X-1"}
	for i := range 40 {
		fields["f"+strings.Repeat("x", i)] = i
	}
	req, _ := json.Marshal(abi.LogRequest{Level: "loud", Message: "hello", Fields: fields})
	set.Call(context.Background(), b, abi.FuncLog, req)
	if len(rec.rs) != 1 {
		t.Fatalf("%d log records, want 1", len(rec.rs))
	}
	r := rec.rs[0]
	if r.Level != slog.LevelInfo {
		t.Errorf("level %v, want info for an unknown level", r.Level)
	}
	n := 0
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "delivery", "installation", "issue_key":
			t.Errorf("the plugin's %s reached the log line; the binding's is the one", a.Key)
		case "source":
		default:
			n++
		}
		return true
	})
	if n != 32 {
		t.Errorf("%d plugin fields on the line, want the cap of 32", n)
	}
}

// TestPlatformReadsOverHTTP: group_get and user_get through a platform
// reached over HTTP (the simulated one) answer as through the built-in
// store, and its failures map as docs/ABI.md says: its coded 404 is
// not_found, a bare 404 (a platform without the route) denied, a 5xx
// unavailable.
func TestPlatformReadsOverHTTP(t *testing.T) {
	set, b, _, _ := fixture(t, func(http.ResponseWriter, *http.Request) {})
	fp := fakeplatform.Start("platform-token", nil)
	t.Cleanup(fp.Close)
	if err := fp.Load(&platform.Data{
		Organizations: []platform.Organization{{ID: "acme"}},
		Projects:      []platform.Project{{ID: "backend", Organization: "acme"}},
		Users:         []platform.User{{ID: "alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}}}},
		Groups:        []platform.Group{{ID: "g1", Project: "backend", Status: platform.StatusResolved}},
		Links: []platform.Link{{Group: "g1", Installation: "jira1", IssueKey: "APP-2"}, {Group: "g1", Installation: "jira1", IssueKey: "APP-1"},
			{Group: "g1", Installation: "other", IssueKey: "OPS-1"}},
	}); err != nil {
		t.Fatal(err)
	}
	client, err := platformhttp.New(platformhttp.Config{URL: fp.URL(), Token: "platform-token",
		Reach: func(context.Context, string) ([]string, error) { return []string{"acme"}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	set.Platform = client
	for _, tc := range []struct {
		name, fn, req string
		intercept     func(w http.ResponseWriter, r *http.Request) bool
		want          string
	}{
		{"group", abi.FuncGroupGet, `{"group":"g1"}`, nil,
			`{"group":{"id":"g1","organization":"acme","project":"backend","assignee":null,"status":"resolved","issue_keys":["APP-1","APP-2"]}}`},
		{"user", abi.FuncUserGet, `{"user":"alice"}`, nil, `{"user":{"id":"alice","emails":[{"email":"alice@example.com","verified":true}]}}`},
		{"group the platform does not have", abi.FuncGroupGet, `{"group":"g9"}`, nil, `"code":"not_found"`},
		{"user the platform does not have", abi.FuncUserGet, `{"user":"bob"}`, nil, `"code":"not_found"`},
		{"a platform without the route", abi.FuncGroupGet, `{"group":"g1"}`, status(http.StatusNotFound), `"code":"denied"`},
		{"a platform down", abi.FuncUserGet, `{"user":"alice"}`, status(http.StatusBadGateway), `"code":"unavailable"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp.Intercept(tc.intercept)
			got := string(set.Call(context.Background(), b, tc.fn, []byte(tc.req)))
			if !strings.Contains(got, tc.want) {
				t.Errorf("answer %s, want %s", got, tc.want)
			}
		})
	}
}

// status makes the platform answer every call with a bare status.
func status(code int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, http.StatusText(code), code)
		return true
	}
}
