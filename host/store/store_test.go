package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr(s string) *string { return &s }

// seed: two organizations served by jira1 (globex with sync off), a third
// installation-less one, and groups linked to APP-1.
func seed(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, o := range []string{"acme", "globex", "initech"} {
		must(t, s.PutOrganization(ctx, Organization{ID: o}))
	}
	must(t, s.PutProject(ctx, Project{ID: "backend", Organization: "acme"}))
	must(t, s.PutProject(ctx, Project{ID: "ops", Organization: "globex"}))
	must(t, s.PutProject(ctx, Project{ID: "lab", Organization: "initech"}))
	must(t, s.PutUser(ctx, User{ID: "alice-old", Emails: []Email{{Address: "ALICE@example.com", Verified: false}}, Projects: []string{"ops"}}))
	must(t, s.PutUser(ctx, User{ID: "alice", Emails: []Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend", "ops"}}))
	for _, g := range []Group{{ID: "g1", Project: "backend"}, {ID: "g2", Project: "ops", Assignee: ptr("alice")}, {ID: "g3", Project: "lab"}} {
		must(t, s.PutGroup(ctx, g))
	}
	must(t, s.PutInstallation(ctx, Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: "https://jira.example.com",
		ConsumerKey: "k", WebhookSecret: "s", Organizations: []InstallationOrg{{ID: "acme", InboundAssignee: true}, {ID: "globex"}}}))
	for _, g := range []string{"g1", "g2", "g3"} {
		must(t, s.LinkGroup(ctx, g, "jira1", "APP-1"))
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	for i := 0; i < 2; i++ {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v != len(migrations) {
			t.Fatalf("open %d: schema version %d, %v; want %d", i, v, err, len(migrations))
		}
		s.Close()
	}
}

func TestUsersByEmail(t *testing.T) {
	s := open(t)
	seed(t, s)
	got, err := s.UsersByEmail(context.Background(), "  Alice@Example.COM ")
	must(t, err)
	if len(got) != 2 || got[0].ID != "alice-old" || got[0].Verified || got[1].ID != "alice" || !got[1].Verified {
		t.Fatalf("UsersByEmail = %+v, want alice-old (unverified) then alice (verified)", got)
	}
	if len(got[1].Projects) != 2 {
		t.Errorf("alice's projects = %v, want backend and ops", got[1].Projects)
	}
	none, err := s.UsersByEmail(context.Background(), "nobody@example.com")
	if err != nil || len(none) != 0 {
		t.Errorf("unknown email: %v, %v", none, err)
	}
}

func TestLinkedGroupsOnlyInServedOrganizations(t *testing.T) {
	s := open(t)
	seed(t, s)
	ctx := context.Background()
	got, err := s.LinkedGroups(ctx, "jira1", "APP-1", []string{"acme", "globex", "initech"})
	must(t, err)
	if len(got) != 2 || got[0].ID != "g1" || got[1].ID != "g2" || got[1].Organization != "globex" {
		t.Fatalf("LinkedGroups = %+v; want g1 and g2 (g3's organization is not served by jira1)", got)
	}
	got, err = s.LinkedGroups(ctx, "jira1", "APP-1", []string{"acme"})
	must(t, err)
	if len(got) != 1 || got[0].ID != "g1" {
		t.Fatalf("LinkedGroups(acme) = %+v, want g1", got)
	}
	if got, _ := s.LinkedGroups(ctx, "jira1", "APP-2", []string{"acme"}); len(got) != 0 {
		t.Errorf("APP-2 has groups %+v", got)
	}
}

func TestAssignGroups(t *testing.T) {
	s := open(t)
	seed(t, s)
	ctx := context.Background()
	n, err := s.AssignGroups(ctx, "jira1", 7, []Assignment{{Group: "g1", Assignee: ptr("alice")}, {Group: "g2", Assignee: ptr("alice")}})
	must(t, err)
	if n != 1 {
		t.Errorf("changed %d, want 1 (g2 already had alice)", n)
	}
	// g3 is linked, but through an organization jira1 does not serve: the
	// whole call is refused and g1's unassignment rolled back.
	_, err = s.AssignGroups(ctx, "jira1", 8, []Assignment{{Group: "g1"}, {Group: "g3", Assignee: ptr("alice")}})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("assigning g3: %v, want ErrDenied", err)
	}
	g1, err := s.Group(ctx, "g1")
	must(t, err)
	if g1.Assignee == nil || *g1.Assignee != "alice" {
		t.Errorf("g1 = %v after a refused batch, want alice (rolled back)", g1.Assignee)
	}
	var changes int
	must(t, s.db.QueryRow(`SELECT count(*) FROM assignee_changes WHERE delivery_id = 7`).Scan(&changes))
	if changes != 1 {
		t.Errorf("%d audit rows for delivery 7, want 1", changes)
	}
}

func TestState(t *testing.T) {
	s := open(t)
	seed(t, s)
	ctx := context.Background()
	now := time.Now()
	s.now = func() time.Time { return now }
	must(t, s.StatePut(ctx, "jira1", "k", "v", time.Minute))
	if v, ok, err := s.StateGet(ctx, "jira1", "k"); err != nil || !ok || v != "v" {
		t.Fatalf("StateGet = %q, %v, %v", v, ok, err)
	}
	s.now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, ok, _ := s.StateGet(ctx, "jira1", "k"); ok {
		t.Error("an expired key is still found")
	}
	must(t, s.StatePut(ctx, "jira1", "k", "w", 0))
	must(t, s.StateDelete(ctx, "jira1", "k"))
	if _, ok, _ := s.StateGet(ctx, "jira1", "k"); ok {
		t.Error("a deleted key is still found")
	}
}

func TestDeliveries(t *testing.T) {
	s := open(t)
	seed(t, s)
	ctx := context.Background()
	id, err := s.CreateDelivery(ctx, "jira1", []byte(`{}`))
	must(t, err)
	must(t, s.FinishDelivery(ctx, Delivery{ID: id, Status: DeliveryFailed, HTTPStatus: 503, Error: "unavailable: jira down"}))
	d, err := s.Delivery(ctx, id)
	must(t, err)
	if d.Status != DeliveryFailed || d.HTTPStatus != 503 || string(d.Body) != `{}` || d.FinishedAt == 0 {
		t.Errorf("delivery = %+v", d)
	}
	if _, err := s.Delivery(ctx, id+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing delivery: %v", err)
	}
}
