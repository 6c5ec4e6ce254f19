package store

import (
	"context"
	"testing"

	"github.com/jirasync/jirasync/host/platform/platformtest"
	"github.com/jirasync/jirasync/host/store/storetest"
)

// TestPlatformConformance runs the platform conformance suite on the
// built-in platform, on each database.
func TestPlatformConformance(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			platformtest.Run(t, func(t *testing.T, seed platformtest.Seed) platformtest.Instance {
				s := open(t, storetest.DSN(t, kind))
				ctx := context.Background()
				orgs := seed.Data
				orgs.Projects, orgs.Users, orgs.Groups, orgs.Links = nil, nil, nil, nil
				if err := s.ImportData(ctx, &orgs); err != nil {
					t.Fatal(err)
				}
				for id, served := range seed.Installations {
					in := Installation{ID: id, ExternalID: "jira.example.com:" + id, BaseURL: "https://jira.example.com",
						ConsumerKey: id, WebhookSecret: "s"}
					for _, o := range served {
						in.Organizations = append(in.Organizations, InstallationOrg{ID: o, InboundAssignee: true})
					}
					if err := s.PutInstallation(ctx, in); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.ImportData(ctx, &seed.Data); err != nil {
					t.Fatal(err)
				}
				return platformtest.Instance{Platform: s, Assignee: func(ctx context.Context, group string) (*string, error) {
					g, err := s.Group(ctx, "", group)
					return g.Assignee, err
				}}
			})
		})
	}
}
