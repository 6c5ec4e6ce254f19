package app

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
)

// assignedTo is an assignee change of APP-1 (issue 10001) at Jira time
// ts, to a user whose email is in the payload.
func assignedTo(user string, ts int) string {
	return fmt.Sprintf(`{"timestamp":%d,"webhookEvent":"jira:issue_updated","issue":{"id":"10001","key":"APP-1","fields":{"assignee":{"name":%q,"emailAddress":"%s@example.com"}}},"changelog":{"id":"%d","items":[{"field":"assignee"}]}}`,
		ts, user, user, ts)
}

// TestExternalPlatformAppliesOnceInOrder: with a platform whose data is
// not in the host's database (here the built-in platform over another
// database, as a platform reached over HTTP would be), assignments are
// applied there, in Jira's order, once per delivery.
func TestExternalPlatformAppliesOnceInOrder(t *testing.T) {
	ctx := context.Background()
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := store.Open(ctx, filepath.Join(t.TempDir(), "platform.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ext.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ext.PutOrganization(ctx, platform.Organization{ID: "acme"}))
	must(ext.PutInstallation(ctx, store.Installation{ID: "jira1", ExternalID: "x", BaseURL: "http://127.0.0.1:1", ConsumerKey: "k",
		WebhookSecret: "s", Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}}))
	must(ext.ImportData(ctx, &platform.Data{
		Projects: []platform.Project{{ID: "backend", Organization: "acme"}},
		Users: []platform.User{
			{ID: "alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend"}},
			{ID: "bob", Emails: []platform.Email{{Address: "bob@example.com", Verified: true}}, Projects: []string{"backend"}}},
		Groups: []platform.Group{{ID: "g1", Project: "backend"}},
		Links:  []platform.Link{{Group: "g1", Installation: "jira1", IssueKey: "APP-1"}},
	}))
	a, srv, tok := newTestAppConfig(t, func(c *Config) { c.Platform = ext; c.MaxBodyBytes = 1 << 16 })
	if _, err := a.Store().Group(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	assignee := func(st *store.Store) string {
		g, err := st.Group(ctx, "g1")
		must(err)
		if g.Assignee == nil {
			return ""
		}
		return *g.Assignee
	}
	for i, step := range []struct {
		body, status, want string
	}{
		{assignedTo("bob", 2000), "synced", "bob"},
		{assignedTo("alice", 1000), "stale", "bob"}, // older, arrived later
		{assignedTo("alice", 3000), "synced", "alice"},
		{assignedTo("alice", 3000), "synced", "alice"}, // Jira re-sent it: a duplicate
	} {
		code, answer := post(t, srv.URL+WebhookPath+tok, step.body)
		if code != 200 {
			t.Fatalf("step %d: %d %v", i, code, answer)
		}
		got := fmt.Sprint(answer["outcome"])
		if answer["status"] == "stale" {
			got = "stale"
		}
		if got != step.status || assignee(ext) != step.want {
			t.Fatalf("step %d: %s (%v), platform's g1 = %q; want %s, %q", i, got, answer, assignee(ext), step.status, step.want)
		}
		if assignee(a.Store()) != "" {
			t.Fatalf("step %d: the host's own tables were changed", i)
		}
	}
	// Each applied delivery's key is spent: applying it again changes
	// nothing.
	ds, err := a.Store().Deliveries(ctx, store.DeliveryFilter{Status: store.DeliveryDone})
	must(err)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries done, want 2", len(ds))
	}
	bob := "bob"
	n, err := ext.Apply(ctx, platform.ApplyKey{Installation: "jira1", Delivery: ds[0].ID}, []platform.Assignment{{Group: "g1", Assignee: &bob}})
	if err != nil || assignee(ext) != "alice" {
		t.Fatalf("re-applying the last delivery's key: %d, %v, g1 = %q; want no change", n, err, assignee(ext))
	}
}
