package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/host/store/storetest"
)

// newTestAppOn is newTestAppConfig on a fresh database of the given kind.
func newTestAppOn(t *testing.T, kind string, change func(*Config)) (*App, string, string) {
	t.Helper()
	dsn := storetest.DSN(t, kind)
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.DB, c.SecretKeyFile = dsn, filepath.Join(t.TempDir(), "secret.key")
		if change != nil {
			change(c)
		}
	})
	return a, srv.URL, tok
}

// TestUnstorableIdentifyingTextIsRefused: the identifying fields the inbox
// stores as text (event, issue id and key, changelog id) holding a NUL or
// invalid UTF-8 are a 400 naming the field, nothing stored, on both
// databases: not a 503 "storage unavailable" for a body that could never be
// stored.
func TestUnstorableIdentifyingTextIsRefused(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"NUL in issue.key", `{"issue":{"id":"1","key":"APP-\u00001"},"changelog":{"id":"2","items":[{"field":"assignee"}]}}`, "issue.key"},
		{"invalid UTF-8 in issue.key", "{\"issue\":{\"id\":\"1\",\"key\":\"APP-\xff1\"},\"changelog\":{\"id\":\"2\",\"items\":[]}}", "issue.key"},
		{"NUL in issue.id", `{"issue":{"id":"1\u0000","key":"APP-1"},"changelog":{"id":"2","items":[]}}`, "issue.id"},
		{"invalid UTF-8 in changelog.id", "{\"issue\":{\"id\":\"1\",\"key\":\"APP-1\"},\"changelog\":{\"id\":\"\xc3\",\"items\":[]}}", "changelog.id"},
		{"NUL in webhookEvent", `{"webhookEvent":"jira:issue_updated\u0000","issue":{"id":"1","key":"APP-1"}}`, "webhookEvent"},
	}
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			a, url, tok := newTestAppOn(t, kind, nil)
			for _, tt := range tests {
				status, ans := post(t, url+WebhookPath+tok, tt.body)
				msg, _ := ans["error"].(string)
				if status != 400 || !strings.HasPrefix(msg, tt.field+" ") {
					t.Errorf("%s: %d %v, want 400 naming %s", tt.name, status, ans, tt.field)
				}
			}
			counts, err := a.Store().DeliveryCounts(context.Background())
			if err != nil || len(counts) != 0 {
				t.Errorf("stored %v, %v; want nothing", counts, err)
			}
			// Text the identifying fields do not hold is the plugin's to
			// judge: a NUL in the summary is stored with the body.
			if status, ans := post(t, url+WebhookPath+tok, `{"issue":{"id":"1","key":"APP-1","fields":{"summary":"a\u0000b"}}}`); status != 200 {
				t.Errorf("NUL outside the identifying fields: %d %v, want 200", status, ans)
			}
		})
	}
}
