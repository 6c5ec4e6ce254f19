package platformhttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/platform/platformtest"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

const token = "platform-token"

func reachOf(m map[string][]string) ReachFunc {
	return func(_ context.Context, installation string) ([]string, error) { return m[installation], nil }
}

// TestConformance runs the platform conformance suite on the client,
// talking to the simulated platform over loopback HTTP.
func TestConformance(t *testing.T) {
	platformtest.Run(t, func(t *testing.T, seed platformtest.Seed) platformtest.Instance {
		fp := fakeplatform.Start(token, nil)
		t.Cleanup(fp.Close)
		if err := fp.Load(&seed.Data); err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{URL: fp.URL(), Token: token, Reach: reachOf(seed.Installations)})
		if err != nil {
			t.Fatal(err)
		}
		return platformtest.Instance{Platform: c, Assignee: func(_ context.Context, group string) (*string, error) {
			a, ok := fp.Assignee(group)
			if !ok {
				return nil, platform.ErrNotFound
			}
			return a, nil
		}}
	})
}

func ptr(s string) *string { return &s }

// fixture is a platform with one group g1 (acme) linked to APP-1 of
// installation jira, and a client of it.
func fixture(t *testing.T, cfg func(*Config)) (*fakeplatform.Server, *Client) {
	t.Helper()
	fp := fakeplatform.Start(token, nil)
	t.Cleanup(fp.Close)
	err := fp.Load(&platform.Data{
		Organizations: []platform.Organization{{ID: "acme", Name: "Acme"}},
		Projects:      []platform.Project{{ID: "backend", Organization: "acme"}},
		Users:         []platform.User{{ID: "alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}}}},
		Groups:        []platform.Group{{ID: "g1", Project: "backend"}},
		Links:         []platform.Link{{Group: "g1", Installation: "jira", IssueKey: "APP-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := Config{URL: fp.URL(), Token: token, Reach: reachOf(map[string][]string{"jira": {"acme"}})}
	if cfg != nil {
		cfg(&c)
	}
	client, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return fp, client
}

// calls are the client's seven calls, as the pipeline makes them.
var calls = map[string]func(ctx context.Context, c *Client) error{
	"organizations": func(ctx context.Context, c *Client) error { _, err := c.Organizations(ctx); return err },
	"linked-groups": func(ctx context.Context, c *Client) error {
		_, err := c.LinkedGroups(ctx, "jira", "APP-1", []string{"acme"})
		return err
	},
	"users": func(ctx context.Context, c *Client) error {
		_, err := c.UsersByEmail(ctx, "alice@example.com")
		return err
	},
	"group": func(ctx context.Context, c *Client) error {
		_, err := c.Group(ctx, "jira", "g1")
		return err
	},
	"user": func(ctx context.Context, c *Client) error {
		_, err := c.User(ctx, "alice")
		return err
	},
	"check": func(ctx context.Context, c *Client) error {
		_, err := c.Check(ctx, "jira", platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")}},
			Statuses: []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved}}})
		return err
	},
	"apply": func(ctx context.Context, c *Client) error {
		_, err := c.Apply(ctx, platform.ApplyKey{Installation: "jira", Delivery: 1}, platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")}},
			Statuses: []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved}}})
		return err
	},
}

// answer makes the platform answer every call with status, content type
// and body.
func answer(status int, contentType, body string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		// None given: none sent (nil stops Go sniffing one).
		w.Header()["Content-Type"] = nil
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
		return true
	}
}

// TestAnswersBreakingTheContract: an answer outside the contract is a
// clear error (platform.ErrBadAnswer, saying what broke), never a crash
// or a silent success, and the apply it answered is not recorded.
func TestAnswersBreakingTheContract(t *testing.T) {
	const js = "application/json"
	for _, tc := range []struct {
		name, call, contentType, body string
		status                        int
		want                          string
	}{
		{"not JSON", "organizations", js, "<html>hello</html>", 200, "not a JSON object"},
		{"wrong content type", "organizations", "text/html", `{"organizations":[]}`, 200, `content type "text/html"`},
		{"no content type", "users", "", `{"users":[]}`, 200, `content type ""`},
		{"other charset", "users", "application/json; charset=latin1", `{"users":[]}`, 200, "content type"},
		{"array, not object", "organizations", js, `[{"id":"acme","name":"Acme"}]`, 200, "not a JSON object"},
		{"top member missing", "organizations", js, `{}`, 200, "organizations: missing"},
		{"member missing", "organizations", js, `{"organizations":[{"id":"acme"}]}`, 200, "organizations[0].name: missing"},
		{"wrong type", "organizations", js, `{"organizations":[{"id":7,"name":"Acme"}]}`, 200, "want a string, got number"},
		{"unknown member", "organizations", js, `{"organizations":[],"next":"x"}`, 200, `unknown key "next"`},
		{"id with a NUL", "organizations", js, `{"organizations":[{"id":"a\u0000b","name":"x"}]}`, 200, "control character"},
		{"duplicate id", "organizations", js, `{"organizations":[{"id":"a","name":"x"},{"id":"a","name":"y"}]}`, 200, "given twice"},
		{"invalid UTF-8", "organizations", js, "{\"organizations\":[{\"id\":\"\xff\",\"name\":\"x\"}]}", 200, "not valid UTF-8"},
		{"data after the object", "users", js, `{"users":[]} {}`, 200, "data after"},
		{"assignee missing (not null)", "linked-groups", js,
			`{"groups":[{"id":"g1","project":"backend","title":"","organization":"acme"}]}`, 200, "groups[0].assignee: missing"},
		{"assignee a number", "linked-groups", js,
			`{"groups":[{"id":"g1","project":"backend","title":"","organization":"acme","assignee":5}]}`, 200, "groups[0].assignee: want a string or null"},
		{"status not one of the two", "linked-groups", js,
			`{"groups":[{"id":"g1","project":"backend","title":"","organization":"acme","assignee":null,"status":"done"}]}`, 200, "groups[0].status: want"},
		{"group of an organization not asked for", "linked-groups", js,
			`{"groups":[{"id":"g9","project":"ops","title":"","organization":"globex","assignee":null}]}`, 200, `"globex" was not asked for`},
		{"verified a string", "users", js, `{"users":[{"id":"alice","verified":"yes","projects":[]}]}`, 200, "want true or false"},
		{"projects missing", "users", js, `{"users":[{"id":"alice","verified":true}]}`, 200, "users[0].projects: missing"},
		{"group missing", "group", js, `{"issue_keys":[]}`, 200, "group: missing"},
		{"issue keys missing", "group", js, `{"group":{"id":"g1","project":"backend","title":"","organization":"acme","assignee":null}}`, 200, "issue_keys: missing"},
		{"another group than asked for", "group", js,
			`{"group":{"id":"g2","project":"backend","title":"","organization":"acme","assignee":null},"issue_keys":[]}`, 200, `group.id: "g2", asked for "g1"`},
		{"group assignee missing", "group", js, `{"group":{"id":"g1","project":"backend","title":"","organization":"acme"},"issue_keys":[]}`, 200, "group.assignee: missing"},
		{"group organization not an id", "group", js,
			`{"group":{"id":"g1","project":"backend","title":"","organization":" acme","assignee":null},"issue_keys":[]}`, 200, "group.organization: has leading"},
		{"issue key not one", "group", js,
			`{"group":{"id":"g1","project":"backend","title":"","organization":"acme","assignee":null},"issue_keys":["app-1"]}`, 200, "issue_keys[0]: not a Jira issue key"},
		{"issue key twice", "group", js,
			`{"group":{"id":"g1","project":"backend","title":"","organization":"acme","assignee":null},"issue_keys":["APP-1","APP-1"]}`, 200, `"APP-1" given twice`},
		{"user missing", "user", js, `{}`, 200, "user: missing"},
		{"user emails missing", "user", js, `{"user":{"id":"alice","name":"","projects":[]}}`, 200, "user.emails: missing"},
		{"email verified missing", "user", js, `{"user":{"id":"alice","name":"","emails":[{"email":"a@example.com"}],"projects":[]}}`, 200, "user.emails[0].verified: missing"},
		{"email not an address", "user", js, `{"user":{"id":"alice","name":"","emails":[{"email":"alice","verified":true}],"projects":[]}}`, 200, "user.emails[0].email: not an email address"},
		{"another user than asked for", "user", js, `{"user":{"id":"bob","name":"","emails":[],"projects":[]}}`, 200, `user.id: "bob", asked for "alice"`},
		{"changed missing", "apply", js, `{}`, 200, "changed: missing"},
		{"changed negative", "apply", js, `{"changed":-1}`, 200, "want 0 to 2"},
		{"changed over the assignments and statuses", "check", js, `{"changed":3}`, 200, "want 0 to 2"},
		{"changed a float", "apply", js, `{"changed":1.5}`, 200, "want int"},
		{"204 No Content", "apply", "", ``, 204, "status 204"},
		{"redirect", "organizations", "", ``, 302, "status 302"},
		{"too large", "organizations", js, `{"organizations":[` + strings.Repeat(`{"id":"a","name":"x"},`, 100) + `]}`, 200, "answer over 1024 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp, c := fixture(t, func(c *Config) { c.MaxAnswerBytes = 1024 })
			fp.Intercept(answer(tc.status, tc.contentType, tc.body))
			err := calls[tc.call](context.Background(), c)
			var pe *Error
			if !errors.Is(err, platform.ErrBadAnswer) || errors.Is(err, platform.ErrRefused) || !errors.As(err, &pe) || !pe.Contract || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: %v; want a broken contract saying %q", tc.call, err, tc.want)
			}
			if !strings.Contains(err.Error(), "answer breaks the contract") {
				t.Errorf("error %q does not say the contract was broken", err)
			}
			if a, _ := fp.Assignee("g1"); a != nil || len(fp.Keys()) != 0 {
				t.Errorf("something changed: g1 = %v, keys %v", a, fp.Keys())
			}
		})
	}
}

// TestFailuresAreSorted: 5xx, a time-out and a refused connection pass
// (ErrUnavailable); a 4xx is a refusal with the platform's words; 403
// "denied" is ErrDenied; a wrong token is refused by the platform (401).
func TestFailuresAreSorted(t *testing.T) {
	refusedURL := fakeplatform.ClosedURL(t)
	for _, tc := range []struct {
		name      string
		intercept func(w http.ResponseWriter, r *http.Request) bool
		cfg       func(*Config)
		kind      error
		want      string
	}{
		{"503", answer(503, "text/plain", "maintenance"), nil, ErrUnavailable, "answered 503 Service Unavailable: maintenance"},
		{"500 with an error body", answer(500, "application/json", `{"error":{"code":"boom","message":"db down"}}`), nil,
			ErrUnavailable, "boom: db down"},
		{"time-out", hang, func(c *Config) { c.Timeout = 100 * time.Millisecond }, ErrUnavailable, "deadline exceeded"},
		{"connection refused", nil, func(c *Config) { c.URL = refusedURL }, ErrUnavailable, "refused"},
		{"token refused", nil, func(c *Config) { c.Token = "wrong" }, platform.ErrRefused, "answered 401 Unauthorized: unauthorized: token refused"},
		{"404 with text", answer(404, "text/plain", "no such\nroute"), nil, platform.ErrRefused, "answered 404 Not Found: no such route"},
		{"403 without denied", answer(403, "text/html", "<h1>Forbidden</h1>"), nil, platform.ErrRefused, "<h1>Forbidden</h1>"},
		{"403 denied", answer(403, "application/json", `{"error":{"code":"denied","message":"group g1 out of reach"}}`), nil,
			platform.ErrDenied, "denied: group g1 out of reach"},
		{"long words are cut", answer(400, "text/plain", strings.Repeat("é", 1000)), nil, platform.ErrRefused, "é…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp, c := fixture(t, tc.cfg)
			fp.Intercept(tc.intercept)
			for name, call := range calls {
				err := call(context.Background(), c)
				if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v; want %v saying %q", name, err, tc.kind, tc.want)
				}
				if len(err.Error()) > 700 || strings.Contains(err.Error(), token) {
					t.Errorf("%s: error unbounded or carrying the token: %q", name, err)
				}
			}
			if a, _ := fp.Assignee("g1"); a != nil {
				t.Errorf("g1 changed to %s", *a)
			}
		})
	}
}

// hang answers nothing until the caller gives up. The body is read
// first: until it is, the server does not notice the caller leave.
func hang(w http.ResponseWriter, r *http.Request) bool {
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
	return true
}

// TestNotFound: the platform's 404 with code "not_found" on the two reads
// by id is platform.ErrNotFound (the plugin ignores an event for a group
// that went); a 404 without that code is a route the platform does not
// serve, a refusal, never a missing object.
func TestNotFound(t *testing.T) {
	_, c := fixture(t, nil)
	ctx := context.Background()
	if _, err := c.Group(ctx, "jira", "gone"); !errors.Is(err, platform.ErrNotFound) || errors.Is(err, platform.ErrRefused) {
		t.Errorf("Group(gone): %v, want ErrNotFound", err)
	}
	if _, err := c.User(ctx, "gone"); !errors.Is(err, platform.ErrNotFound) || !strings.Contains(err.Error(), `not_found: no user "gone"`) {
		t.Errorf("User(gone): %v, want ErrNotFound with the platform's words", err)
	}
	fp, c := fixture(t, nil)
	fp.Intercept(answer(404, "text/plain", "404 page not found"))
	for _, name := range []string{"group", "user"} {
		if err := calls[name](ctx, c); !errors.Is(err, platform.ErrRefused) || errors.Is(err, platform.ErrNotFound) {
			t.Errorf("%s answered a bare 404: %v, want ErrRefused", name, err)
		}
	}
}

// TestCallerDeadlineBoundsTheCall: the context's deadline, sooner than
// the client's time-out, ends the call: the issue's hold in the pipeline
// is sized on it.
func TestCallerDeadlineBoundsTheCall(t *testing.T) {
	fp, c := fixture(t, nil)
	fp.Intercept(hang)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := calls["apply"](ctx, c)
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("apply under a 150ms deadline: %v after %s", err, time.Since(start))
	}
}

// TestApplyOncePerKeyOverHTTP: the key travels as Idempotency-Key with
// the installation, delivery, round and issue key; posting it again
// answers the first apply's count without applying.
func TestApplyOncePerKeyOverHTTP(t *testing.T) {
	fp, c := fixture(t, nil)
	key := platform.ApplyKey{Installation: "jira", Delivery: 42, Round: 1, IssueKey: "APP-1"}
	for i := range 3 {
		n, err := c.Apply(context.Background(), key, platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")}}})
		if err != nil || n != 1 {
			t.Fatalf("apply %d: %d, %v; want 1", i, n, err)
		}
	}
	rec := fp.Keys()["jira/42/1"]
	if rec.Posts != 3 || rec.Applied != 1 || rec.Changed != 1 {
		t.Fatalf("key record %+v, want 3 posts, applied once", rec)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	reach := reachOf(nil)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "ftp://x", Token: "t", Reach: reach}, "want http:// or https://"},
		{Config{URL: "http://", Token: "t", Reach: reach}, "no host"},
		{Config{URL: "https://u:p@x", Token: "t", Reach: reach}, "credentials"},
		{Config{URL: "https://x/?a=1", Token: "t", Reach: reach}, "no query"},
		{Config{URL: "https://x", Reach: reach}, "no token"},
		{Config{URL: "https://x", Token: "a\nb", Reach: reach}, "line break"},
		{Config{URL: "https://x", Token: "t"}, "no Reach"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg.URL, err, tc.want)
		}
	}
}
