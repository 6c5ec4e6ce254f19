package app

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

// externalData is an external platform's data for the host tests: g1
// (acme, unassigned) linked to APP-1 of jira1, and users alice and bob.
func externalData() platform.Data {
	return platform.Data{
		Organizations: []platform.Organization{{ID: "acme", Name: "Acme"}},
		Projects:      []platform.Project{{ID: "backend", Organization: "acme"}},
		Users: []platform.User{
			{ID: "alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend"}},
			{ID: "bob", Emails: []platform.Email{{Address: "bob@example.com", Verified: true}}, Projects: []string{"backend"}}},
		Groups: []platform.Group{{ID: "g1", Project: "backend"}},
		Links:  []platform.Link{{Group: "g1", Installation: "jira1", IssueKey: "APP-1"}},
	}
}

// startFakePlatform is a simulated platform over HTTP holding g1 (acme,
// unassigned) linked to APP-1 of jira1, and users alice and bob.
func startFakePlatform(t *testing.T, token string) *fakeplatform.Server {
	t.Helper()
	fp := fakeplatform.Start(token, nil)
	t.Cleanup(fp.Close)
	d := externalData()
	if err := fp.Load(&d); err != nil {
		t.Fatal(err)
	}
	return fp
}

// only makes the platform answer status and body to calls whose path is
// path, and behave otherwise.
func only(path string, status int, body string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
		return true
	}
}

// internalStatus and internalAnswer are what a delivery failing with the
// ABI's internal ends as, and its webhook is answered: kept for a retry
// if the ABI retries internal, failed if not.
var internalStatus = map[bool]string{true: store.DeliveryRetrying, false: store.DeliveryFailed}[abi.CodeInternal.Retryable()]

func internalAnswer() int {
	if abi.CodeInternal.Retryable() {
		return http.StatusServiceUnavailable
	}
	return pipeline.StatusFor(abi.CodeInternal)
}

// TestHTTPPlatformFailuresEndToEnd: through the host functions and the
// plugin, a platform that is down (5xx, refused connection) keeps the
// delivery and retries it until it applies; one that refuses (401, a 4xx)
// fails the delivery with its words, changing nothing; a broken answer is
// the ABI's internal. The ABI's codes carry it: unavailable (retried),
// denied (failed) and internal.
func TestHTTPPlatformFailuresEndToEnd(t *testing.T) {
	refusedURL := fakeplatform.ClosedURL(t)
	for _, tc := range []struct {
		name      string
		token     string // the host's; the platform's is "right"
		url       bool   // point the host at a closed port first
		intercept func(w http.ResponseWriter, r *http.Request) bool
		status    string // the delivery's, once settled (retrying: after the fault is cleared)
		answer    int
		err       string
	}{
		{name: "applies", token: "right", status: store.DeliveryDone, answer: 200},
		{name: "token refused", token: "wrong", status: store.DeliveryFailed, answer: 500,
			err: "platform GET /v1/linked-groups: answered 401 Unauthorized: unauthorized: token refused"},
		{name: "4xx on check", token: "right", intercept: only("/v1/assignments/check", 422, `{"error":{"code":"unknown_user","message":"no user alice"}}`),
			status: store.DeliveryFailed, answer: 500, err: "answered 422 Unprocessable Entity: unknown_user: no user alice"},
		// A broken answer is the ABI's internal: retried if the ABI
		// retries internal, failed if not.
		{name: "apply answer breaks the contract", token: "right", intercept: only("/v1/assignments", 200, `{"changed":"1"}`),
			status: internalStatus, answer: internalAnswer(), err: "answer breaks the contract (docs/PLATFORM.md): changed: want int"},
		{name: "linked-groups answer breaks the contract", token: "right", intercept: only("/v1/linked-groups", 200, `{"groups":[{"id":"g1"}]}`),
			status: internalStatus, answer: internalAnswer(), err: "groups_linked: platform GET /v1/linked-groups: answer breaks the contract (docs/PLATFORM.md): groups[0].project: missing"},
		{name: "503 on users, retried", token: "right", intercept: only("/v1/users", 503, `{"error":{"code":"busy","message":"try later"}}`),
			status: store.DeliveryRetrying, answer: 503, err: "users_by_email: platform GET /v1/users: answered 503 Service Unavailable: busy: try later"},
		{name: "503 on apply, retried", token: "right", intercept: only("/v1/assignments", 503, `{}`),
			status: store.DeliveryRetrying, answer: 503, err: "applying on the platform: platform POST /v1/assignments: answered 503"},
		{name: "connection refused, retried", token: "right", url: true, status: store.DeliveryRetrying, answer: 503,
			err: "groups_linked: platform GET /v1/linked-groups: unavailable: Get"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fp := startFakePlatform(t, "right")
			fp.Intercept(tc.intercept)
			platformURL := fp.URL()
			if tc.url {
				platformURL = refusedURL
			}
			a, srv, tok := newTestAppConfig(t, func(c *Config) {
				c.PlatformURL, c.PlatformToken = platformURL, tc.token
				c.Retry = pipeline.Config{BaseBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
				c.AnswerWait = 5 * time.Second
			})
			code, answer := post(t, srv.URL+WebhookPath+tok, assignedTo("alice", 1000))
			if code != tc.answer {
				t.Fatalf("webhook answered %d %v, want %d", code, answer, tc.answer)
			}
			ds, err := a.Store().Deliveries(ctx, store.DeliveryFilter{})
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries %v, %v", ds, err)
			}
			d := ds[0]
			if d.Status != tc.status || !strings.Contains(d.Error, tc.err) {
				t.Fatalf("delivery %s %q; want %s saying %q", d.Status, d.Error, tc.status, tc.err)
			}
			assignee, _ := fp.Assignee("g1")
			switch tc.status {
			case store.DeliveryDone:
				if assignee == nil || *assignee != "alice" || fp.Keys()[platform.ApplyKey{Installation: "jira1", Delivery: d.ID}.String()].Applied != 1 {
					t.Fatalf("g1 = %v, keys %v; want alice, applied once", assignee, fp.Keys())
				}
			case store.DeliveryFailed:
				if assignee != nil {
					t.Fatalf("a failed attempt changed g1 to %s", *assignee)
				}
			case store.DeliveryRetrying:
				if assignee != nil {
					t.Fatalf("g1 changed to %s while the platform was down", *assignee)
				}
				// The platform comes back: the kept delivery applies.
				fp.Intercept(nil)
				if tc.url {
					// The platform now listens where nothing did.
					ln, err := net.Listen("tcp", strings.TrimPrefix(refusedURL, "http://"))
					if err != nil {
						t.Fatal(err)
					}
					back := &httptest.Server{Listener: ln, Config: &http.Server{Handler: fp.Handler()}}
					back.Start()
					t.Cleanup(back.Close)
				}
				waitFor(t, "applied on the platform", func() bool { a, _ := fp.Assignee("g1"); return a != nil && *a == "alice" })
				waitFor(t, "done", func() bool {
					d, err := a.Store().Delivery(ctx, d.ID)
					return err == nil && d.Status == store.DeliveryDone
				})
			}
			if g, _ := a.Store().Group(ctx, "", "g1"); g.Assignee != nil {
				t.Fatalf("the host's own tables were changed")
			}
		})
	}
}

// TestInstallOnHTTPPlatform: with a platform over HTTP, the setup form
// lists the platform's organizations (not the host's own tables'), a Jira
// connects to one that exists only there, and Jira's webhooks then
// assign groups on the platform.
func TestInstallOnHTTPPlatform(t *testing.T) {
	fp := fakeplatform.Start("right", nil)
	t.Cleanup(fp.Close)
	if err := fp.Load(&platform.Data{
		Organizations: []platform.Organization{{ID: "remote-org", Name: "Remote Org"}},
		Projects:      []platform.Project{{ID: "ops", Organization: "remote-org"}},
		Users:         []platform.User{{ID: "alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"ops"}}},
		Groups:        []platform.Group{{ID: "gr", Project: "ops"}},
	}); err != nil {
		t.Fatal(err)
	}
	e := newInstallEnv(t, "10.3.1", func(c *Config) { c.PlatformURL, c.PlatformToken = fp.URL(), "right" })
	_, page := e.get(SetupPath)
	if !strings.Contains(page, `value="remote-org"`) || !strings.Contains(page, "Remote Org") || strings.Contains(page, `value="acme"`) {
		t.Fatalf("the setup form does not list the platform's organizations (and only them):\n%s", page)
	}
	if resp, body := e.approve(map[string]string{"organization": "remote-org"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("connecting to an organization that is only on the platform: %d\n%s", resp.StatusCode, body)
	}
	ins := e.installations()
	if len(ins) != 1 || len(ins[0].Organizations) != 1 || ins[0].Organizations[0].ID != "remote-org" {
		t.Fatalf("installations %+v, want one serving remote-org", ins)
	}
	if err := fp.Load(&platform.Data{Links: []platform.Link{{Group: "gr", Installation: ins[0].ID, IssueKey: "APP-7"}}}); err != nil {
		t.Fatal(err)
	}
	results := e.jira.Fire(context.Background(), []byte(`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10007","key":"APP-7","fields":{"assignee":{"name":"alice","emailAddress":"alice@example.com"}}},
		"changelog":{"id":"1","items":[{"field":"assignee"}]}}`))
	if len(results) != 1 || results[0].Status != 200 {
		t.Fatalf("fired webhook: %+v", results)
	}
	if a, _ := fp.Assignee("gr"); a == nil || *a != "alice" {
		t.Fatalf("gr = %v on the platform after Jira's webhook, want alice", a)
	}
}
