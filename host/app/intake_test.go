package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
)

// newTestAppOn is newTestAppConfig on a fresh database of the given kind.
// sharedTestAdminToken is the admin token of test hosts on PostgreSQL,
// where every host must be given one.
const sharedTestAdminToken = "shared-test-admin-token"

func newTestAppOn(t *testing.T, kind string, change func(*Config)) (*App, string, string) {
	t.Helper()
	dsn := storetest.DSN(t, kind)
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.DB, c.SecretKeyFile, c.AdminToken = dsn, filepath.Join(t.TempDir(), "secret.key"), sharedTestAdminToken
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

// TestResendWaitsForTheBackoff: Jira or a proxy re-sending a delivery that
// waits for a retry gets the record's answer (503, retrying, when it is
// tried next, Retry-After) and no attempt: eight re-sends in a row used to
// spend the whole retry budget in about a second and leave it dead. Once
// the retry is due, a re-send is attempted like the retry would be.
func TestResendWaitsForTheBackoff(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			a, url, tok := newTestAppOn(t, kind, func(c *Config) {
				// The poller looks rarely: only re-sends could attempt early.
				c.Retry = pipeline.Config{MaxAttempts: 8, BaseBackoff: time.Second, PollInterval: time.Hour}
			})
			jira := seedJira(t, a)
			jira.SetFailure(503)
			status, first := post(t, url+WebhookPath+tok, lookupAlice)
			if status != 503 || first["status"] != store.DeliveryRetrying {
				t.Fatalf("first delivery with Jira failing: %d %v", status, first)
			}
			id := int64(first["delivery"].(float64))
			d, err := a.Store().Delivery(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if first["next_attempt_at"] != float64(d.NextAttemptAt) {
				t.Errorf("first answer next_attempt_at %v, stored %d", first["next_attempt_at"], d.NextAttemptAt)
			}
			for i := 0; i < 8; i++ {
				req, _ := http.NewRequest(http.MethodPost, url+WebhookPath+tok, strings.NewReader(lookupAlice))
				resp, ans := send(t, req)
				if resp.StatusCode != 503 || ans["duplicate"] != true || ans["status"] != store.DeliveryRetrying ||
					ans["next_attempt_at"] != float64(d.NextAttemptAt) || !slices.Contains([]string{"1", "2"}, resp.Header.Get("Retry-After")) {
					t.Fatalf("re-send %d: %d Retry-After %q %v, want 503 retrying at %d, Retry-After the seconds until then", i+1,
						resp.StatusCode, resp.Header.Get("Retry-After"), ans, d.NextAttemptAt)
				}
			}
			if d, _ := a.Store().Delivery(context.Background(), id); d.Attempts != 1 || d.Status != store.DeliveryRetrying {
				t.Fatalf("after 8 re-sends: %s with %d attempts, want retrying with 1", d.Status, d.Attempts)
			}
			// Due now: the next re-send makes the scheduled attempt.
			time.Sleep(time.Until(time.UnixMilli(d.NextAttemptAt)) + 10*time.Millisecond)
			jira.SetFailure(0)
			status, ans := post(t, url+WebhookPath+tok, lookupAlice)
			if status != 200 || ans["status"] != store.DeliveryDone || ans["duplicate"] != true {
				t.Fatalf("re-send once due: %d %v, want 200 done", status, ans)
			}
			if d, _ := a.Store().Delivery(context.Background(), id); d.Attempts != 2 {
				t.Errorf("done after %d attempts, want 2", d.Attempts)
			}
		})
	}
}

// adminDo sends an admin request with the bearer token and decodes the
// JSON answer.
func adminDo(t *testing.T, method, url, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, m := send(t, req)
	return resp.StatusCode, m
}

// TestFutureTimestampDoesNotFreezeTheIssue: a delivery stamped 9e18 used to
// set the issue's watermark there, and every later delivery of the issue
// was stale. Its ordering timestamp is now at most the allowed clock skew
// after its arrival, so later deliveries apply once that has passed; an
// operator sees the watermark and can reset it at once.
func TestFutureTimestampDoesNotFreezeTheIssue(t *testing.T) {
	const skew = 300 * time.Millisecond
	assign := func(ts int64, changelog string, assignee string) string {
		return `{"timestamp":` + strconv.FormatInt(ts, 10) + `,"issue":{"id":"10042","key":"APP-1","fields":{"assignee":` +
			assignee + `}},"changelog":{"id":"` + changelog + `","items":[{"field":"assignee"}]}}`
	}
	const alice, nobody = `{"emailAddress":"alice@example.com"}`, `null`
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			a, url, tok := newTestAppOn(t, kind, func(c *Config) { c.MaxClockSkew = skew })
			admin := a.cfg.AdminToken
			ctx := context.Background()

			sent := time.Now()
			status, ans := post(t, url+WebhookPath+tok, assign(9_000_000_000_000_000_000, "1", alice))
			if status != 200 || ans["status"] != store.DeliveryDone {
				t.Fatalf("future delivery: %d %v", status, ans)
			}
			d, err := a.Store().Delivery(ctx, int64(ans["delivery"].(float64)))
			if err != nil {
				t.Fatal(err)
			}
			if lo, hi := sent.Add(skew).UnixMilli(), time.Now().Add(skew).UnixMilli(); d.JiraTimestamp < lo || d.JiraTimestamp > hi {
				t.Fatalf("ordered at %d, want arrival + %s (%d to %d)", d.JiraTimestamp, skew, lo, hi)
			}

			// Within the skew a delivery stamped when the first was sent is
			// older: stale, as the watermark shows. (Stamped with the time
			// the first was sent, not now: on a loaded machine the first
			// answer may take longer than the skew.)
			if status, ans := post(t, url+WebhookPath+tok, assign(sent.UnixMilli(), "2", nobody)); status != 200 || ans["status"] != store.DeliveryStale {
				t.Fatalf("delivery within the skew: %d %v, want stale", status, ans)
			}
			status, list := adminDo(t, http.MethodGet, url+WatermarksPath+"?installation=jira1&issue_key=APP-1", admin)
			marks, _ := list["watermarks"].([]any)
			if status != 200 || len(marks) != 1 || marks[0].(map[string]any)["jira_timestamp"] != float64(d.JiraTimestamp) ||
				marks[0].(map[string]any)["issue_id"] != "10042" {
				t.Fatalf("watermarks: %d %v, want APP-1 at %d", status, list, d.JiraTimestamp)
			}

			// Past the skew, a current delivery applies: the issue is not frozen.
			time.Sleep(time.Until(time.UnixMilli(d.JiraTimestamp)) + 10*time.Millisecond)
			if status, ans := post(t, url+WebhookPath+tok, assign(time.Now().UnixMilli(), "3", nobody)); status != 200 || ans["status"] != store.DeliveryDone {
				t.Fatalf("delivery after the skew: %d %v, want done", status, ans)
			}
			if g, _ := a.Store().Group(ctx, "", "g1"); g.Assignee != nil {
				t.Errorf("g1 = %v, want unassigned", *g.Assignee)
			}

			// Reset: admin only, names an issue, and the next delivery
			// applies whatever its timestamp.
			reset := url + WatermarksPath + "/reset?installation=jira1&issue_key=APP-1"
			for _, tt := range []struct {
				url, token string
				status     int
			}{
				{reset, "", http.StatusUnauthorized},
				{url + WatermarksPath + "/reset?installation=jira1", admin, http.StatusBadRequest},
				{url + WatermarksPath + "/reset?installation=jira1&issue_key=APP-9", admin, http.StatusNotFound},
				{reset, admin, http.StatusOK},
				{reset, admin, http.StatusNotFound},
			} {
				if status, ans := adminDo(t, http.MethodPost, tt.url, tt.token); status != tt.status {
					t.Errorf("POST %s: %d %v, want %d", tt.url, status, ans, tt.status)
				}
			}
			if status, ans := post(t, url+WebhookPath+tok, assign(1, "4", alice)); status != 200 || ans["status"] != store.DeliveryDone {
				t.Fatalf("old delivery after the reset: %d %v, want done", status, ans)
			}
			if status, list := adminDo(t, http.MethodGet, url+WatermarksPath+"?issue_id=10042", admin); status != 200 ||
				len(list["watermarks"].([]any)) != 1 || list["watermarks"].([]any)[0].(map[string]any)["jira_timestamp"] != 1.0 {
				t.Errorf("watermarks after the reset: %d %v, want the one set at 1", status, list)
			}
		})
	}
}

// TestPluginLinesCarryTheIssueKeyOnce: the pipeline's logger for a
// delivery carries its issue key, and the plugin adds it to its own lines
// too; the "groups synced" line used to have issue_key twice.
func TestPluginLinesCarryTheIssueKeyOnce(t *testing.T) {
	logs := &lockedBuffer{}
	_, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if status, ans := post(t, srv.URL+WebhookPath+tok, `{"issue":{"id":"1","key":"APP-1","fields":{"assignee":null}},"changelog":{"items":[{"field":"assignee"}]}}`); status != 200 {
		t.Fatalf("delivery: %d %v", status, ans)
	}
	var found bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, `"source":"plugin"`) {
			continue
		}
		found = found || strings.Contains(line, `"msg":"groups synced"`)
		if n := strings.Count(line, `"issue_key":`); n != 1 {
			t.Errorf("issue_key %d times in %s", n, line)
		}
	}
	if !found {
		t.Fatalf("no groups synced line in\n%s", logs)
	}
}
