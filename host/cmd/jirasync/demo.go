package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
)

func openStoreOnly(path, keyFile string) (*store.Store, error) {
	if store.IsPostgres(path) {
		if keyFile == "" && os.Getenv(secrets.EnvKey) == "" {
			return nil, fmt.Errorf("with PostgreSQL, give the hosts' secret key: %s or -secret-key-file", secrets.EnvKey)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	box, err := secrets.Load(keyFile)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return store.Open(context.Background(), path, box)
}

// Demo installation facts, shared with the simulated Jira the README starts.
const (
	demoJiraURL     = "http://127.0.0.1:8090"
	demoConsumerKey = "jirasync-demo"
	demoAccessToken = "demo-access-token"
)

// seedDemo fills an empty platform with one organization, two users, two
// groups linked to Jira issue APP-1 and an installation pointing at a
// simulated Jira on 127.0.0.1:8090, then prints how to send it webhooks.
// Running it again keeps the installation's key and changes nothing else.
func seedDemo(ctx context.Context, a *app.App, baseURL, dataDir string) error {
	st := a.Store()
	alice, bob := "alice", "bob"
	keyPEM, pubFile, usersFile, err := demoJiraFiles(ctx, st, dataDir)
	if err != nil {
		return err
	}
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
			return st.PutInstallation(ctx, store.Installation{ID: "demo", ExternalID: "127.0.0.1:8090:" + demoConsumerKey,
				BaseURL: demoJiraURL, ConsumerKey: demoConsumerKey, PrivateKeyPEM: keyPEM, AccessToken: demoAccessToken,
				WebhookSecret: "demo-webhook-secret", VerifyTLS: true,
				Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}})
		},
		func() error { return st.LinkGroup(ctx, "grp-api-timeouts", "demo", "APP-1") },
		func() error { return st.LinkGroup(ctx, "grp-login-crash", "demo", "APP-1") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	tok, err := webhooktoken.Mint("127.0.0.1:8090:"+demoConsumerKey, []byte("demo-webhook-secret"))
	if err != nil {
		return err
	}
	url := baseURL + app.WebhookPath + tok
	fmt.Printf(`
Demo data is in place: organization acme, users alice and bob, groups
grp-api-timeouts (assigned to bob) and grp-login-crash, both linked to APP-1.
Send Jira's "APP-1 assigned to alice" webhook (email in the payload) with:

  curl -sS -X POST -H 'Content-Type: application/json' \
    --data @fixtures/payloads/assigned.json %s

When Jira hides the assignee's email, the plugin asks Jira's REST API with a
signed request. Start the simulated Jira in another terminal:

  go run ./testharness/cmd/fakejira -consumer-key %s -token %s \
    -public-key %s -users %s

then send "APP-1 assigned to bob, email hidden" (without it: a 503, recorded):

  curl -sS -X POST -H 'Content-Type: application/json' \
    --data @fixtures/payloads/assigned-no-email.json %s

`, url, demoConsumerKey, demoAccessToken, pubFile, usersFile, url)
	return nil
}

// demoJiraFiles returns the demo installation's private key (made once and
// kept), and writes the public key and user list the simulated Jira needs.
func demoJiraFiles(ctx context.Context, st *store.Store, dataDir string) (keyPEM, pubFile, usersFile string, err error) {
	if in, err := st.Installation(ctx, "demo"); err == nil && in.PrivateKeyPEM != "" {
		keyPEM = in.PrivateKeyPEM
	} else {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", "", err
		}
		keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	}
	block, _ := pem.Decode([]byte(keyPEM))
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return "", "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", "", "", err
	}
	pubFile = filepath.Join(dataDir, "demo-jira-public.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return "", "", "", err
	}
	usersFile = filepath.Join(dataDir, "demo-jira-users.json")
	users := `[{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com","displayName":"Alice Adams","active":true},
 {"name":"bob","key":"JIRAUSER10001","emailAddress":"bob@example.com","displayName":"Bob Builder","active":true}]
`
	if err := os.WriteFile(usersFile, []byte(users), 0o644); err != nil {
		return "", "", "", err
	}
	return keyPEM, pubFile, usersFile, nil
}
