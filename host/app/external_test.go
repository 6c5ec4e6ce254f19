package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
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

// externalPlatform is the built-in platform over a database of its own,
// standing in for a platform the host does not own. The installations its
// links name are stored there first (its tables reference them).
func externalPlatform(t *testing.T, data platform.Data, installs ...store.Installation) *store.Store {
	t.Helper()
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
	for _, o := range data.Organizations {
		if err := ext.PutOrganization(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range installs {
		if err := ext.PutInstallation(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	data.Organizations = nil
	if err := ext.ImportData(ctx, &data); err != nil {
		t.Fatal(err)
	}
	return ext
}

// TestExternalPlatformAppliesOnceInOrder: with a platform whose data is
// not in the host's database (here the built-in platform over another
// database, as a platform reached over HTTP would be), assignments are
// applied there, in Jira's order, once per delivery.
func TestExternalPlatformAppliesOnceInOrder(t *testing.T) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ext := externalPlatform(t, externalData(), store.Installation{ID: "jira1", ExternalID: "x", BaseURL: "http://127.0.0.1:1", ConsumerKey: "k",
		WebhookSecret: "s", Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}})
	a, srv, tok := newTestAppConfig(t, func(c *Config) { c.Platform = ext; c.MaxBodyBytes = 1 << 16 })
	if _, err := a.Store().Group(ctx, "", "g1"); err != nil {
		t.Fatal(err)
	}
	assignee := func(st *store.Store) string {
		g, err := st.Group(ctx, "", "g1")
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
	n, err := ext.Apply(ctx, platform.ApplyKey{Installation: "jira1", Delivery: ds[0].ID}, platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: &bob}}})
	if err != nil || assignee(ext) != "alice" {
		t.Fatalf("re-applying the last delivery's key: %d, %v, g1 = %q; want no change", n, err, assignee(ext))
	}
}

// TestSetupWithExternalPlatform: an operator connects a Jira to serve an
// organization that only the external platform knows (the host's own
// platform tables are empty of it), adds another one on the installation
// page, and Jira's webhook then assigns the platform's group.
func TestSetupWithExternalPlatform(t *testing.T) {
	ctx := context.Background()
	ext := externalPlatform(t, platform.Data{
		Organizations: []platform.Organization{{ID: "globex", Name: "Globex"}, {ID: "initech", Name: "Initech"}},
		Projects:      []platform.Project{{ID: "ops", Organization: "globex"}},
		Users:         []platform.User{{ID: "carol", Emails: []platform.Email{{Address: "carol@example.com", Verified: true}}, Projects: []string{"ops"}}},
		Groups:        []platform.Group{{ID: "g9", Project: "ops"}},
	})
	e := newInstallEnv(t, "9.12.2", func(c *Config) { c.Platform = ext })
	resp, body := e.approve(map[string]string{"organization": "globex"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d\n%s", resp.StatusCode, body)
	}
	ins := e.installations()
	if len(ins) != 1 || len(ins[0].Organizations) != 1 || ins[0].Organizations[0].ID != "globex" {
		t.Fatalf("installations %+v, want one serving globex", ins)
	}
	in := ins[0]
	resp = e.do("POST", InstallationsPath+"/"+in.ID+"/organizations", url.Values{"csrf": {e.csrf}, "organization": {"initech"},
		"inbound_assignee": {"on"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding initech: %d", resp.StatusCode)
	}
	if got, err := e.app.Store().Installation(ctx, in.ID); err != nil || len(got.Organizations) != 2 {
		t.Fatalf("installation %+v, %v; want it to serve globex and initech", got, err)
	}

	// The platform links its group to the new installation; Jira's
	// webhook assigns it there.
	if err := ext.PutInstallation(ctx, store.Installation{ID: in.ID, ExternalID: in.ExternalID, BaseURL: in.BaseURL,
		ConsumerKey: in.ConsumerKey, WebhookSecret: "unused", Organizations: []store.InstallationOrg{{ID: "globex", InboundAssignee: true}}}); err != nil {
		t.Fatal(err)
	}
	if err := ext.LinkGroup(ctx, "g9", in.ID, "OPS-1"); err != nil {
		t.Fatal(err)
	}
	results := e.jira.Fire(ctx, []byte(`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10001","key":"OPS-1","fields":{"assignee":{"name":"carol","emailAddress":"carol@example.com"}}},
		"changelog":{"id":"1","items":[{"field":"assignee"}]}}`))
	if len(results) != 1 || results[0].Status != 200 {
		t.Fatalf("fired webhook: %+v", results)
	}
	if g, err := ext.Group(ctx, "", "g9"); err != nil || g.Assignee == nil || *g.Assignee != "carol" {
		t.Fatalf("platform's g9 = %+v, %v; want carol", g, err)
	}
}
