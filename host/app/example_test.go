package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// tracker is an embedding program's platform: one organization (acme),
// one project (backend), one user (alice) and one group (g1) linked to
// Jira issue APP-1 of installation jira1, which serves acme. A real one
// keeps this in its database (see host/examples/tracker).
type tracker struct {
	mu       sync.Mutex
	assignee map[string]*string           // by group
	status   map[string]string            // by group
	applied  map[platform.ApplyKey]int    // Apply's idempotency record
	reach    map[string]map[string]string // installation → group → organization
}

func newTracker() *tracker {
	return &tracker{assignee: map[string]*string{"g1": nil}, status: map[string]string{"g1": platform.StatusUnresolved}, applied: map[platform.ApplyKey]int{},
		reach: map[string]map[string]string{"jira1": {"g1": "acme"}}}
}

func (t *tracker) Organizations(context.Context) ([]platform.Organization, error) {
	return []platform.Organization{{ID: "acme", Name: "Acme"}}, nil
}

func (t *tracker) LinkedGroups(_ context.Context, installation, issueKey string, orgs []string) ([]platform.LinkedGroup, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	org, ok := t.reach[installation]["g1"]
	if !ok || issueKey != "APP-1" || !contains(orgs, org) {
		return nil, nil
	}
	return []platform.LinkedGroup{{Group: platform.Group{ID: "g1", Project: "backend", Title: "API timeouts",
		Assignee: t.assignee["g1"], Status: t.status["g1"]}, Organization: org}}, nil
}

func (t *tracker) Group(_ context.Context, installation, id string) (platform.GroupLinks, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id != "g1" {
		return platform.GroupLinks{}, fmt.Errorf("group %s: %w", id, platform.ErrNotFound)
	}
	g := platform.GroupLinks{LinkedGroup: platform.LinkedGroup{Group: platform.Group{ID: "g1", Project: "backend",
		Title: "API timeouts", Assignee: t.assignee["g1"], Status: t.status["g1"]}, Organization: "acme"}}
	if _, ok := t.reach[installation]["g1"]; ok {
		g.IssueKeys = []string{"APP-1"}
	}
	return g, nil
}

func (t *tracker) User(_ context.Context, id string) (platform.User, error) {
	if id != "alice" {
		return platform.User{}, fmt.Errorf("user %s: %w", id, platform.ErrNotFound)
	}
	return platform.User{ID: "alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}},
		Projects: []string{"backend"}}, nil
}

func (t *tracker) UsersByEmail(_ context.Context, email string) ([]platform.UserMatch, error) {
	if !strings.EqualFold(strings.TrimSpace(email), "alice@example.com") {
		return nil, nil
	}
	return []platform.UserMatch{{ID: "alice", Verified: true, Projects: []string{"backend"}}}, nil
}

func (t *tracker) Check(_ context.Context, installation string, ch platform.Changes) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.check(installation, ch)
}

// check counts the changes ch would make, or refuses a group out of the
// installation's reach.
func (t *tracker) check(installation string, ch platform.Changes) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, err
	}
	changed := 0
	for _, sc := range ch.Statuses {
		if _, ok := t.reach[installation][sc.Group]; !ok {
			return 0, fmt.Errorf("group %s: %w", sc.Group, platform.ErrDenied)
		}
		if t.status[sc.Group] != sc.Status {
			changed++
		}
	}
	for _, a := range ch.Assignments {
		if _, ok := t.reach[installation][a.Group]; !ok {
			return 0, fmt.Errorf("group %s: %w", a.Group, platform.ErrDenied)
		}
		if old := t.assignee[a.Group]; (old == nil) != (a.Assignee == nil) || (old != nil && *old != *a.Assignee) {
			changed++
		}
	}
	return changed, nil
}

func (t *tracker) Apply(_ context.Context, key platform.ApplyKey, ch platform.Changes) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.applied[key]; ok {
		return n, nil // applied before: nothing to do
	}
	n, err := t.check(key.Installation, ch)
	if err != nil {
		return 0, err
	}
	for _, a := range ch.Assignments {
		t.assignee[a.Group] = a.Assignee
	}
	for _, sc := range ch.Statuses {
		t.status[sc.Group] = sc.Status
	}
	t.applied[key] = n
	return n, nil
}

func (t *tracker) assigneeOf(group string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.assignee[group]; a != nil {
		return *a
	}
	return "nobody"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A Go program embeds jirasync: it passes its own Platform, mounts the
// host's handler on its own mux, and owns the server and the shutdown.
// A webhook from Jira then assigns the program's group.
func Example_embed() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "jirasync-example-")
	defer os.RemoveAll(dir)
	plugin, err := pluginbuild.Path() // the plugin's .wasm: `make plugin` builds build/jirasync.wasm
	if err != nil {
		fmt.Println(err)
		return
	}

	platformData := newTracker()
	host, err := app.New(ctx, app.Config{
		DB:         filepath.Join(dir, "jirasync.db"), // deliveries, installations, the secret key beside it
		PluginPath: plugin,
		Platform:   platformData,
		PublicURL:  "https://tracker.example.com", // where Jira reaches the program
		AdminToken: "the-operators-secret-token",
		Logger:     slog.New(slog.DiscardHandler), // the program's logger
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Graceful stop: the program stops its server first, then the host.
	defer host.Close(ctx)

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "the tracker's own pages") })
	mux.Handle("/extensions/jira-server/", host.Handler()) // the webhook, setup and admin pages
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Connecting a Jira is normally done on /extensions/jira-server/setup;
	// here the installation is stored directly, with the webhook URL's
	// token minted from its secret.
	if err := host.PutInstallation(ctx, store.Installation{ID: "jira1", ExternalID: "jira.example.com:tracker",
		BaseURL: "https://jira.example.com", ConsumerKey: "tracker", WebhookSecret: "webhook-secret",
		Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}}); err != nil {
		fmt.Println(err)
		return
	}
	token, _ := webhooktoken.Mint("jira.example.com:tracker", []byte("webhook-secret"))

	// Jira reports that APP-1 was assigned to alice.
	resp, err := http.Post(srv.URL+app.WebhookPath+token, "application/json", strings.NewReader(
		`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated",
		  "issue":{"id":"10001","key":"APP-1","fields":{"assignee":{"name":"alice","emailAddress":"alice@example.com"}}},
		  "changelog":{"id":"1","items":[{"field":"assignee"}]}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("webhook:", resp.Status)
	fmt.Println("g1 assigned to", platformData.assigneeOf("g1"))

	// Later someone unassigns g1 in the program itself: it tells jirasync,
	// whose workers carry the change to APP-1 in Jira (when the
	// organization's outbound_assignee is on). The event is stored, one
	// delivery per installation, when PublishEvent returns.
	rec, err := host.PublishEvent(ctx, platform.Event{ID: "tracker-change-1", Type: platform.EventAssigned, Group: "g1",
		Assignee: nil, OccurredAt: time.Now()})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("event stored for", len(rec.Deliveries), "installation")
	// Output:
	// webhook: 200 OK
	// g1 assigned to alice
	// event stored for 1 installation
}
