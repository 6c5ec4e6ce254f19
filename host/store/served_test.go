package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
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
