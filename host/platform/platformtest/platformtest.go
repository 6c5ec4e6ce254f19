// Package platformtest is the conformance suite for platform.Platform
// implementations: what the sync relies on, asserted the same way for the
// built-in platform (on SQLite and PostgreSQL) and for any other.
package platformtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/host/platform"
)

// Seed is the data an implementation under test starts with.
type Seed struct {
	Data platform.Data
	// Installations maps each installation id to the organizations it
	// serves; links name these installations.
	Installations map[string][]string
}

// Instance is an implementation under test, holding a Seed.
type Instance struct {
	Platform platform.Platform
	// Assignee reads a group's assignee as the platform holds it, to see
	// what Apply did.
	Assignee func(ctx context.Context, group string) (*string, error)
}

// New makes a fresh instance holding the seed; each call is independent.
type New func(t *testing.T, s Seed) Instance

func ptr(s string) *string { return &s }

// seed: two organizations served by installation "jira" (only acme) and
// "jira2" (both); users with addresses in several cases and states.
func seed() Seed {
	return Seed{
		Installations: map[string][]string{"jira": {"acme"}, "jira2": {"acme", "globex"}},
		Data: platform.Data{
			Organizations: []platform.Organization{{ID: "globex", Name: "Globex"}, {ID: "acme", Name: "Acme"}},
			Projects: []platform.Project{{ID: "backend", Organization: "acme"}, {ID: "frontend", Organization: "acme"},
				{ID: "ops", Organization: "globex"}},
			Users: []platform.User{
				{ID: "zed", Emails: []platform.Email{{Address: "Shared@Example.com", Verified: false}}, Projects: []string{"ops"}},
				{ID: "alice", Name: "Alice Liddell", Emails: []platform.Email{{Address: "shared@example.com", Verified: true},
					{Address: "alice@example.com", Verified: true}}, Projects: []string{"frontend", "backend"}},
				{ID: "bob", Emails: []platform.Email{{Address: "bob@example.com", Verified: true}}},
			},
			Groups: []platform.Group{
				{ID: "g2", Project: "backend", Title: "Timeouts", Assignee: ptr("bob"), Status: platform.StatusResolved},
				{ID: "g1", Project: "frontend", Title: "Crash"},
				{ID: "g3", Project: "ops", Title: "Disk full"},
				{ID: "g4", Project: "backend", Title: "Not linked"},
				// An id a URL path must escape.
				{ID: "g5/a?b#c d%20", Project: "ops", Title: "Escaped"},
			},
			Links: []platform.Link{
				{Group: "g1", Installation: "jira", IssueKey: "APP-1"},
				{Group: "g2", Installation: "jira", IssueKey: "APP-1"},
				{Group: "g3", Installation: "jira", IssueKey: "APP-1"}, // globex: jira does not serve it
				{Group: "g3", Installation: "jira2", IssueKey: "APP-1"},
				{Group: "g2", Installation: "jira", IssueKey: "APP-2"},
				{Group: "g2", Installation: "jira", IssueKey: "APP-10"},
				{Group: "g5/a?b#c d%20", Installation: "jira2", IssueKey: "OPS-7"},
			},
		},
	}
}

// Run runs every conformance test against instances made by newInstance.
func Run(t *testing.T, newInstance New) {
	ctx := context.Background()
	t.Run("Organizations", func(t *testing.T) {
		p := newInstance(t, seed()).Platform
		got, err := p.Organizations(ctx)
		want := []platform.Organization{{ID: "acme", Name: "Acme"}, {ID: "globex", Name: "Globex"}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Organizations = %v, %v; want %v by id", got, err, want)
		}
	})
	t.Run("LinkedGroups", func(t *testing.T) {
		p := newInstance(t, seed()).Platform
		for _, tc := range []struct {
			name, installation, key string
			orgs                    []string
			want                    []string // "group@organization:assignee/status"
		}{
			{"by id, with organization and assignee", "jira", "APP-1", []string{"acme", "globex"}, []string{"g1@acme:/unresolved", "g2@acme:bob/resolved"}},
			{"organization not served by the installation", "jira", "APP-1", []string{"globex"}, nil},
			{"served by another installation", "jira2", "APP-1", []string{"globex"}, []string{"g3@globex:/unresolved"}},
			{"only the organizations asked for", "jira2", "APP-1", []string{"acme"}, nil},
			{"other issue", "jira", "APP-2", []string{"acme"}, []string{"g2@acme:bob/resolved"}},
			{"no organizations", "jira", "APP-1", nil, nil},
			{"unknown issue", "jira", "APP-9", []string{"acme"}, nil},
			{"unknown installation", "nope", "APP-1", []string{"acme"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				groups, err := p.LinkedGroups(ctx, tc.installation, tc.key, tc.orgs)
				if err != nil {
					t.Fatal(err)
				}
				got := describe(groups)
				for _, g := range groups {
					if g.Project == "" {
						t.Errorf("group %s without its project", g.ID)
					}
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("LinkedGroups(%s, %s, %v) = %v, want %v", tc.installation, tc.key, tc.orgs, got, tc.want)
				}
			})
		}
	})
	t.Run("UsersByEmail", func(t *testing.T) {
		p := newInstance(t, seed()).Platform
		for _, tc := range []struct {
			email string
			want  []platform.UserMatch
		}{
			{"alice@example.com", []platform.UserMatch{{ID: "alice", Verified: true, Projects: []string{"backend", "frontend"}}}},
			{"  ALICE@Example.COM ", []platform.UserMatch{{ID: "alice", Verified: true, Projects: []string{"backend", "frontend"}}}},
			// Oldest user first; each with its own verified flag.
			{"shared@example.com", []platform.UserMatch{{ID: "zed", Verified: false, Projects: []string{"ops"}},
				{ID: "alice", Verified: true, Projects: []string{"backend", "frontend"}}}},
			{"bob@example.com", []platform.UserMatch{{ID: "bob", Verified: true}}},
			{"nobody@example.com", nil},
		} {
			got, err := p.UsersByEmail(ctx, tc.email)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if len(got[i].Projects) == 0 {
					got[i].Projects = nil
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("UsersByEmail(%q) = %+v, want %+v", tc.email, got, tc.want)
			}
		}
	})
	t.Run("Group", func(t *testing.T) {
		p := newInstance(t, seed()).Platform
		for _, tc := range []struct {
			name, installation, id string
			want                   string // "group@organization:assignee/status project title [keys]"
		}{
			{"with its issue keys through the installation, sorted", "jira", "g2", "g2@acme:bob/resolved backend Timeouts [APP-1 APP-10 APP-2]"},
			{"unassigned, unresolved", "jira", "g1", "g1@acme:/unresolved frontend Crash [APP-1]"},
			// Linked through jira, which does not serve globex: the keys
			// are the installation's; acting on them is the caller's to
			// decide.
			{"organization the installation does not serve", "jira", "g3", "g3@globex:/unresolved ops Disk full [APP-1]"},
			{"no links through this installation", "jira2", "g1", "g1@acme:/unresolved frontend Crash []"},
			{"linked to nothing", "jira", "g4", "g4@acme:/unresolved backend Not linked []"},
			{"unknown installation", "nope", "g2", "g2@acme:bob/resolved backend Timeouts []"},
			{"an id a path must escape", "jira2", "g5/a?b#c d%20", "g5/a?b#c d%20@globex:/unresolved ops Escaped [OPS-7]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				g, err := p.Group(ctx, tc.installation, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				got := fmt.Sprintf("%s %s %s %v", describe([]platform.LinkedGroup{g.LinkedGroup})[0], g.Project, g.Title, g.IssueKeys)
				if got != tc.want {
					t.Fatalf("Group(%s, %s) = %s, want %s", tc.installation, tc.id, got, tc.want)
				}
			})
		}
		for _, id := range []string{"nope", "g1/..", "G1"} {
			if g, err := p.Group(ctx, "jira", id); !errors.Is(err, platform.ErrNotFound) {
				t.Errorf("Group(%q) = %+v, %v; want ErrNotFound", id, g, err)
			}
		}
	})
	t.Run("User", func(t *testing.T) {
		p := newInstance(t, seed()).Platform
		for _, tc := range []struct {
			id   string
			want platform.User
		}{
			// Addresses as given, sorted as folded; projects sorted.
			{"alice", platform.User{ID: "alice", Name: "Alice Liddell", Emails: []platform.Email{{Address: "alice@example.com", Verified: true},
				{Address: "shared@example.com", Verified: true}}, Projects: []string{"backend", "frontend"}}},
			{"zed", platform.User{ID: "zed", Emails: []platform.Email{{Address: "Shared@Example.com", Verified: false}}, Projects: []string{"ops"}}},
			{"bob", platform.User{ID: "bob", Emails: []platform.Email{{Address: "bob@example.com", Verified: true}}}},
		} {
			got, err := p.User(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Projects) == 0 {
				got.Projects = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("User(%s) = %+v, want %+v", tc.id, got, tc.want)
			}
		}
		if u, err := p.User(ctx, "nobody"); !errors.Is(err, platform.ErrNotFound) {
			t.Errorf("User(nobody) = %+v, %v; want ErrNotFound", u, err)
		}
	})
	t.Run("CheckChangesNothing", func(t *testing.T) {
		in := newInstance(t, seed())
		n, err := in.Platform.Check(ctx, "jira", platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")},
			{Group: "g2", Assignee: ptr("bob")}}, Statuses: []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved},
			{Group: "g2", Status: platform.StatusResolved}}})
		if err != nil || n != 2 {
			t.Fatalf("Check = %d, %v; want 2 changes (g1's assignee and status)", n, err)
		}
		assertAssignee(t, in, "g1", nil)
		assertStatuses(t, in, "g1@acme:/unresolved", "g2@acme:bob/resolved")
		for _, tc := range []struct{ name, installation, group string }{
			{"group of an organization the installation does not serve", "jira", "g3"},
			{"group not linked", "jira", "g4"},
			{"group not linked to this installation", "jira2", "g1"},
			{"unknown group", "jira", "nope"},
		} {
			if _, err := in.Platform.Check(ctx, tc.installation, platform.Changes{Assignments: []platform.Assignment{{Group: tc.group}}}); !errors.Is(err, platform.ErrDenied) {
				t.Errorf("%s: %v, want ErrDenied", tc.name, err)
			}
			if _, err := in.Platform.Check(ctx, tc.installation, platform.Changes{Statuses: []platform.StatusChange{{Group: tc.group, Status: platform.StatusResolved}}}); !errors.Is(err, platform.ErrDenied) {
				t.Errorf("%s, a status: %v, want ErrDenied", tc.name, err)
			}
		}
	})
	t.Run("ApplyOncePerKey", func(t *testing.T) {
		in := newInstance(t, seed())
		p := in.Platform
		key := platform.ApplyKey{Installation: "jira", Delivery: 7}
		as := platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")}, {Group: "g2", Assignee: nil}},
			Statuses: []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved}, {Group: "g2", Status: platform.StatusUnresolved}}}
		if n, err := p.Apply(ctx, key, as); err != nil || n != 4 {
			t.Fatalf("Apply = %d, %v; want 4 changes", n, err)
		}
		assertAssignee(t, in, "g1", ptr("alice"))
		assertAssignee(t, in, "g2", nil)
		assertStatuses(t, in, "g1@acme:alice/resolved", "g2@acme:/unresolved")
		// Someone else changes g1 since; the same key again (a host that
		// died before recording its apply) must not undo that.
		if _, err := p.Apply(ctx, platform.ApplyKey{Installation: "jira", Delivery: 8}, platform.Changes{
			Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("bob")}},
			Statuses:    []platform.StatusChange{{Group: "g1", Status: platform.StatusUnresolved}}}); err != nil {
			t.Fatal(err)
		}
		if n, err := p.Apply(ctx, key, as); err != nil || n != 4 {
			t.Fatalf("repeated Apply = %d, %v; want the first apply's 4, nothing done", n, err)
		}
		assertAssignee(t, in, "g1", ptr("bob"))
		assertStatuses(t, in, "g1@acme:bob/unresolved", "g2@acme:/unresolved")
		// A replay is a new round: a new decision, applied.
		key.Round = 1
		if n, err := p.Apply(ctx, key, as); err != nil || n != 2 {
			t.Fatalf("Apply of round 1 = %d, %v; want 2 changes", n, err)
		}
		assertAssignee(t, in, "g1", ptr("alice"))
		assertStatuses(t, in, "g1@acme:alice/resolved", "g2@acme:/unresolved")
	})
	t.Run("ApplyAllOrNothing", func(t *testing.T) {
		in := newInstance(t, seed())
		key := platform.ApplyKey{Installation: "jira", Delivery: 9}
		_, err := in.Platform.Apply(ctx, key, platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")}},
			Statuses: []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved}, {Group: "g3", Status: platform.StatusResolved}}})
		if !errors.Is(err, platform.ErrDenied) {
			t.Fatalf("Apply naming a group out of reach: %v, want ErrDenied", err)
		}
		assertAssignee(t, in, "g1", nil)
		assertAssignee(t, in, "g3", nil)
		assertStatuses(t, in, "g1@acme:/unresolved", "g2@acme:bob/resolved")
		// A refused key is not spent: once the data allows it, it applies.
		if n, err := in.Platform.Apply(ctx, key, platform.Changes{Assignments: []platform.Assignment{{Group: "g1", Assignee: ptr("alice")}}}); err != nil || n != 1 {
			t.Fatalf("Apply after a refusal = %d, %v; want 1", n, err)
		}
	})
}

// assertStatuses reads installation "jira"'s groups of APP-1 as
// "group@organization:assignee/status".
func assertStatuses(t *testing.T, in Instance, want ...string) {
	t.Helper()
	groups, err := in.Platform.LinkedGroups(context.Background(), "jira", "APP-1", []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(groups); !reflect.DeepEqual(got, want) {
		t.Fatalf("groups of APP-1: %v, want %v", got, want)
	}
}

// describe writes groups as "group@organization:assignee/status".
func describe(groups []platform.LinkedGroup) []string {
	var out []string
	for _, g := range groups {
		a := ""
		if g.Assignee != nil {
			a = *g.Assignee
		}
		out = append(out, g.ID+"@"+g.Organization+":"+a+"/"+g.Status)
	}
	return out
}

func assertAssignee(t *testing.T, in Instance, group string, want *string) {
	t.Helper()
	got, err := in.Assignee(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	if (got == nil) != (want == nil) || (got != nil && *got != *want) {
		t.Fatalf("group %s: assignee %v, want %v", group, show(got), show(want))
	}
}

func show(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}
