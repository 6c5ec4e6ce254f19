package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
)

func openStoreOnly(path string) (*store.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return store.Open(context.Background(), path)
}

// seedDemo fills an empty platform with one organization, two users, two
// groups linked to Jira issue APP-1 and an installation, then prints how to
// send it a webhook. Running it again changes nothing but the printout.
func seedDemo(ctx context.Context, a *app.App, baseURL string) error {
	st := a.Store()
	alice, bob := "alice", "bob"
	steps := []func() error{
		func() error { return st.PutOrganization(ctx, store.Organization{ID: "acme", Name: "Acme Corp"}) },
		func() error {
			return st.PutProject(ctx, store.Project{ID: "backend", Organization: "acme", Name: "Backend"})
		},
		func() error {
			return st.PutProject(ctx, store.Project{ID: "frontend", Organization: "acme", Name: "Frontend"})
		},
		func() error {
			return st.PutUser(ctx, store.User{ID: alice, Name: "Alice Adams",
				Emails: []store.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend", "frontend"}})
		},
		func() error {
			return st.PutUser(ctx, store.User{ID: bob, Name: "Bob Builder",
				Emails: []store.Email{{Address: "bob@example.com", Verified: true}}, Projects: []string{"backend"}})
		},
		func() error {
			return st.PutGroup(ctx, store.Group{ID: "grp-api-timeouts", Project: "backend", Title: "API timeouts", Assignee: &bob})
		},
		func() error {
			return st.PutGroup(ctx, store.Group{ID: "grp-login-crash", Project: "frontend", Title: "Login page crash"})
		},
		func() error {
			return st.PutInstallation(ctx, store.Installation{ID: "demo", ExternalID: "jira.example.com:jirasync-demo",
				BaseURL: "https://jira.example.com", ConsumerKey: "jirasync-demo", WebhookSecret: "demo-webhook-secret",
				VerifyTLS: true, Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}})
		},
		func() error { return st.LinkGroup(ctx, "grp-api-timeouts", "demo", "APP-1") },
		func() error { return st.LinkGroup(ctx, "grp-login-crash", "demo", "APP-1") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	tok, err := webhooktoken.Mint("jira.example.com:jirasync-demo", []byte("demo-webhook-secret"))
	if err != nil {
		return err
	}
	fmt.Printf(`
Demo data is in place: organization acme, users alice and bob, groups
grp-api-timeouts (assigned to bob) and grp-login-crash, both linked to APP-1.
Send Jira's "APP-1 assigned to alice" webhook with:

  curl -sS -X POST -H 'Content-Type: application/json' \
    --data @fixtures/payloads/assigned.json \
    %s%s%s

`, baseURL, app.WebhookPath, tok)
	return nil
}
