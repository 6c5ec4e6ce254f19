package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/store"
)

// TestRetentionLoop runs the host with retention short enough to watch:
// the background loop drops an ignored delivery's body, then removes the
// delivery; the log shows the body as null, a replay is refused with 410
// saying why, and /metrics counts what went, by table.
func TestRetentionLoop(t *testing.T) {
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Retention = store.Retention{Settled: 400 * time.Millisecond, IgnoredBody: time.Millisecond}
		c.RetentionEvery = 20 * time.Millisecond
	})
	status, ans := post(t, srv.URL+WebhookPath+tok, `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"APP-1"}}`)
	if status != http.StatusOK || ans["outcome"] != "ignored" {
		t.Fatalf("ignored delivery: %d %v", status, ans)
	}
	id := int64(ans["delivery"].(float64))
	ctx := context.Background()
	waitFor(t, "the ignored delivery's body dropped", func() bool {
		d, err := a.Store().Delivery(ctx, id)
		return err == nil && len(d.Body) == 0
	})
	admin := a.cfg.AdminToken
	url := srv.URL + DeliveriesPath + "/" + strconv.FormatInt(id, 10)
	if resp, body := adminGet(t, url, admin, ""); resp.StatusCode != 200 || !strings.Contains(body, `"body":null`) {
		t.Errorf("detail without a body: %d %.300s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/replay", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusGone {
		t.Errorf("replay without a body: %v %v, want 410", resp.StatusCode, err)
	}
	waitFor(t, "the settled delivery removed", func() bool {
		_, err := a.Store().Delivery(ctx, id)
		return err != nil
	})
	// The loop counts a batch once it has committed: the delivery may be
	// gone a moment before /metrics says so.
	wants := []string{`jirasync_retention_removed_total{table="deliveries"} 1`,
		`jirasync_retention_removed_total{table="delivery_attempts"} 1`, `jirasync_retention_removed_total{table="deliveries.body"} 1`}
	waitFor(t, "/metrics counting what went: "+strings.Join(wants, ", "), func() bool {
		_, body := adminGet(t, srv.URL+"/metrics", "", "")
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	})
}

func TestRetentionRefusesNegative(t *testing.T) {
	for _, change := range []func(*Config){
		func(c *Config) { c.Retention.Settled = -time.Hour },
		func(c *Config) { c.Retention.IgnoredBody = -time.Hour },
		func(c *Config) { c.Retention.Dead = -time.Hour },
		func(c *Config) { c.RetentionEvery = -time.Hour },
	} {
		cfg := Config{DB: t.TempDir() + "/j.db", Engine: "native", Logger: testLogger(t)}
		change(&cfg)
		if a, err := New(context.Background(), cfg); err == nil {
			a.Close(context.Background())
			t.Errorf("%+v %v accepted", cfg.Retention, cfg.RetentionEvery)
		} else if !strings.Contains(err.Error(), "want a positive duration") {
			t.Errorf("error %q does not say what is wanted", err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
