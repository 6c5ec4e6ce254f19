package store

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/host/platform"
)

// TestInstallationServesOrganizationsElsewhere: with a platform reached
// over HTTP the organizations are not in this database; an installation
// may still serve them (migration 7 dropped the foreign key), and its
// reach reads back. The built-in platform's own rule holds: an
// organization an installation serves cannot be deleted.
func TestInstallationServesOrganizationsElsewhere(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must(t, s.PutOrganization(ctx, Organization{ID: "acme"}))
		must(t, s.PutInstallation(ctx, Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: "https://jira.example.com",
			ConsumerKey: "k", WebhookSecret: "s", Organizations: []InstallationOrg{{ID: "remote-org", InboundAssignee: true}, {ID: "acme"}}}))
		got, err := s.ServedOrganizations(ctx, "jira1")
		if err != nil || !reflect.DeepEqual(got, []string{"acme", "remote-org"}) {
			t.Fatalf("ServedOrganizations = %v, %v; want [acme remote-org]", got, err)
		}
		if got, err := s.ServedOrganizations(ctx, "nope"); err != nil || got != nil {
			t.Fatalf("ServedOrganizations(unknown) = %v, %v; want none", got, err)
		}
		if err := s.DeleteOrganization(ctx, "acme"); !errors.Is(err, ErrConflict) {
			t.Fatalf("deleting a served organization: %v, want ErrConflict", err)
		}
	})
}

// TestInstallationOrgSettings: every per-organization setting is kept as
// written, and settings that cannot work are refused naming the field,
// changing nothing.
func TestInstallationOrgSettings(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: "https://jira.example.com", ConsumerKey: "k"}
		in := base
		in.Organizations = []InstallationOrg{
			{ID: "acme", InboundAssignee: true, OutboundAssignee: true, InboundStatus: true, OutboundStatus: true,
				StatusMappings: []StatusMapping{{JiraProject: "APP", ResolveStatus: "Done", UnresolveStatus: "Reopened"},
					{JiraProject: "OPS_2", ResolveStatus: "Closed", UnresolveStatus: "To Do"}}},
			{ID: "globex", InboundStatus: true, StatusMappings: []StatusMapping{{JiraProject: "GLX", ResolveStatus: "Done"}}},
			{ID: "initech"},
		}
		must(t, s.PutInstallation(ctx, in))
		got, err := s.Installation(ctx, "jira1")
		must(t, err)
		if !reflect.DeepEqual(got.Organizations, in.Organizations) {
			t.Fatalf("organizations read back as\n%+v\nwant\n%+v", got.Organizations, in.Organizations)
		}
		for _, tc := range []struct {
			name  string
			org   InstallationOrg
			field string
		}{
			{"outbound status without mappings", InstallationOrg{ID: "acme", OutboundStatus: true}, "organizations[0].status_mappings"},
			{"outbound status, resolve missing", InstallationOrg{ID: "acme", OutboundStatus: true,
				StatusMappings: []StatusMapping{{JiraProject: "APP", UnresolveStatus: "Reopened"}}}, "organizations[0].status_mappings[0].resolve_status"},
			{"outbound status, unresolve missing", InstallationOrg{ID: "acme", OutboundStatus: true,
				StatusMappings: []StatusMapping{{JiraProject: "APP", ResolveStatus: "Done"}}}, "organizations[0].status_mappings[0].unresolve_status"},
			{"not a project key", InstallationOrg{ID: "acme", StatusMappings: []StatusMapping{{JiraProject: "app"}}}, "organizations[0].status_mappings[0].jira_project"},
			{"project twice", InstallationOrg{ID: "acme", StatusMappings: []StatusMapping{{JiraProject: "APP"}, {JiraProject: "APP"}}},
				"organizations[0].status_mappings[1].jira_project"},
			{"status with a NUL", InstallationOrg{ID: "acme", StatusMappings: []StatusMapping{{JiraProject: "APP", ResolveStatus: "Do\x00ne"}}},
				"organizations[0].status_mappings[0].resolve_status"},
			{"status with surrounding space", InstallationOrg{ID: "acme", StatusMappings: []StatusMapping{{JiraProject: "APP", UnresolveStatus: " Open"}}},
				"organizations[0].status_mappings[0].unresolve_status"},
			{"organization id empty", InstallationOrg{}, "organizations[0].organization"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bad := base
				bad.Organizations = []InstallationOrg{tc.org}
				err := s.PutInstallation(ctx, bad)
				var fe *platform.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("PutInstallation: %v; want an error on %s", err, tc.field)
				}
				again, err := s.Installation(ctx, "jira1")
				must(t, err)
				if !reflect.DeepEqual(again.Organizations, in.Organizations) {
					t.Errorf("a refused write changed the settings: %+v", again.Organizations)
				}
			})
		}
	})
}
