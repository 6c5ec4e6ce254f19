package app

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
)

// TestPoisonDeliverySettles posts a body whose timestamp is a string with a
// NUL in it. The plugin refuses it, quoting the value in its error; on
// PostgreSQL that error could not be stored, the outcome was never
// recorded, and the delivery was claimed again every lease for ever. It is
// now settled failed on both databases, with the NUL replaced.
func TestPoisonDeliverySettles(t *testing.T) {
	const poison = `{"webhookEvent":"jira:issue_updated","timestamp":"\u0000x","issue":{"id":"1","key":"APP-1","fields":{}},"changelog":{"id":"3","items":[{"field":"assignee"}]}}`
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := storetest.DSN(t, kind)
			a, srv, tok := newTestAppConfig(t, func(c *Config) {
				c.DB, c.SecretKeyFile, c.AdminToken = dsn, filepath.Join(t.TempDir(), "secret.key"), sharedTestAdminToken
				c.AnswerWait = 5 * time.Second
				c.Retry = pipeline.Config{BaseBackoff: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond}
			})
			status, ans := post(t, srv.URL+WebhookPath+tok, poison)
			if status != http.StatusBadRequest || ans["status"] != store.DeliveryFailed {
				t.Fatalf("poison delivery: %d %v; want 400, failed", status, ans)
			}
			d, err := a.Store().Delivery(context.Background(), int64(ans["delivery"].(float64)))
			if err != nil {
				t.Fatal(err)
			}
			if d.Attempts != 1 || strings.ContainsRune(d.Error, 0) || !strings.Contains(d.Error, "\uFFFD") {
				t.Errorf("stored %+v; want failed after one attempt, the NUL replaced in %q", d, d.Error)
			}
		})
	}
}

// TestOutOfAttemptsWithoutOutcome: a delivery whose attempts all ended
// without a recorded outcome (here claimed by "hosts" that never finish)
// is settled dead by the next claim, and Jira re-sending it is answered
// with that, 500 and the reason, instead of another attempt.
func TestOutOfAttemptsWithoutOutcome(t *testing.T) {
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Retry = pipeline.Config{MaxAttempts: 2, PollInterval: time.Hour}
	})
	ctx := context.Background()
	const body = `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"APP-1"}}`
	id, _, err := a.Store().AcceptDelivery(ctx, mustIdentify(t, a, body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, ok, err := a.Store().Claim(ctx, id, time.Millisecond, 2, true); err != nil || !ok {
			t.Fatalf("claim %d: %v %v", i+1, ok, err)
		}
		time.Sleep(5 * time.Millisecond) // the lease expires, no outcome recorded
	}
	status, ans := post(t, srv.URL+WebhookPath+tok, body)
	if status != http.StatusInternalServerError || ans["status"] != store.DeliveryDead || ans["duplicate"] != true {
		t.Fatalf("re-sent after its attempts were used up: %d %v; want 500, dead", status, ans)
	}
	if d, _ := a.Store().Delivery(ctx, id); d.Attempts != 2 || d.Error != store.OutOfAttempts {
		t.Errorf("stored %+v; want 2 attempts and the reason", d)
	}
	_, metrics := adminGet(t, srv.URL+"/metrics", "", "")
	if !strings.Contains(metrics, `jirasync_deliveries_processed_total{kind="webhook",status="dead"} 1`) {
		t.Error("/metrics does not count the delivery settled dead")
	}
}

// mustIdentify reads a body the way the webhook endpoint does, for tests
// that store a delivery without sending it.
func mustIdentify(t *testing.T, a *App, body string) store.NewDelivery {
	t.Helper()
	d, err := a.identify(a.log, "jira1", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
