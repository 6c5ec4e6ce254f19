package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

const testPlatformToken = "platform-token-for-events"

// postEvent posts body to the events endpoint with a bearer token.
func postEvent(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+EventsPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, m := send(t, req)
	return resp.StatusCode, m
}

func eventJSON(id, typ, group, assignee string, at time.Time) string {
	a := ""
	if typ == platform.EventAssigned {
		a = `,"assignee":` + assignee
	}
	return `{"id":"` + id + `","type":"` + typ + `","group":"` + group + `"` + a + `,"occurred_at":"` + at.Format(time.RFC3339Nano) + `"}`
}

func ids(v any) []int64 {
	var out []int64
	list, _ := v.([]any)
	for _, x := range list {
		f, _ := x.(float64)
		out = append(out, int64(f))
	}
	return out
}

// TestEventEndpoint: POST /api/v1/events takes the admin or the platform
// token; a bad event is a 400 naming its field and stores nothing; a good
// one is one delivery per installation, 202; its id again is 200 with the
// same deliveries, nothing stored, on both databases.
func TestEventEndpoint(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			a, url, _ := newTestAppOn(t, kind, func(c *Config) { c.PlatformToken = testPlatformToken })
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			in, err := a.Store().Installation(ctx, "jira1")
			must(err)
			in.ID, in.ExternalID = "jira2", "jira.example.com:k2"
			must(a.Store().PutInstallation(ctx, in))

			now := time.Now().UTC()
			good := eventJSON("e1", platform.EventAssigned, "g1", `"alice"`, now)
			refusals := []struct {
				name, token, body string
				status            int
				field             string
			}{
				{"no token", "", good, 401, ""},
				{"wrong token", "not-the-token-at-all", good, 401, ""},
				{"not JSON", sharedTestAdminToken, `{`, 400, ""},
				{"unknown member", sharedTestAdminToken, strings.Replace(good, `"id"`, `"extra":1,"id"`, 1), 400, ""},
				{"id too long", sharedTestAdminToken, eventJSON(strings.Repeat("x", 256), platform.EventResolved, "g1", "", now), 400, "id"},
				{"NUL in id", sharedTestAdminToken, eventJSON(`e\u0000`, platform.EventResolved, "g1", "", now), 400, "id"},
				{"invalid UTF-8 in id", sharedTestAdminToken, eventJSON("e\xff", platform.EventResolved, "g1", "", now), 400, ""},
				{"unknown type", sharedTestAdminToken, eventJSON("e1", "group.deleted", "g1", "", now), 400, "type"},
				{"assignee on resolved", sharedTestAdminToken, strings.Replace(eventJSON("e1", platform.EventResolved, "g1", "", now),
					`"group":"g1"`, `"group":"g1","assignee":"alice"`, 1), 400, "assignee"},
				{"assigned without assignee", sharedTestAdminToken, strings.Replace(good, `,"assignee":"alice"`, "", 1), 400, "assignee"},
				{"bad time", sharedTestAdminToken, strings.Replace(good, now.Format(time.RFC3339Nano), "yesterday", 1), 400, "occurred_at"},
			}
			for _, tt := range refusals {
				status, ans := postEvent(t, url, tt.token, tt.body)
				if status != tt.status || (tt.field != "" && ans["field"] != tt.field) || ans["error"] == nil {
					t.Errorf("%s: %d %v, want %d naming %q", tt.name, status, ans, tt.status, tt.field)
				}
			}
			if n, _ := a.Store().DeliveryCounts(ctx); len(n) != 0 {
				t.Fatalf("refused events stored deliveries: %v", n)
			}

			status, ans := postEvent(t, url, testPlatformToken, good)
			stored := ids(ans["deliveries"])
			if status != 202 || ans["id"] != "e1" || ans["duplicate"] != false || len(stored) != 2 {
				t.Fatalf("platform token: %d %v, want 202 and two deliveries", status, ans)
			}
			for _, id := range stored {
				d, err := a.Store().Delivery(ctx, id)
				must(err)
				var body abi.PlatformEvent
				must(json.Unmarshal(d.Body, &body))
				if d.Kind != store.KindEvent || d.IssueID != "group:g1:assignee" || body.ID != "e1" || body.Assignee == nil || *body.Assignee != "alice" ||
					body.OccurredAt != now.Format(time.RFC3339Nano) || d.JiraTimestamp != now.UnixMilli() {
					t.Errorf("stored %+v with body %s", d, d.Body)
				}
			}
			status, ans = postEvent(t, url, sharedTestAdminToken, good)
			if status != 200 || ans["duplicate"] != true || !slices.Equal(ids(ans["deliveries"]), stored) {
				t.Errorf("the same id again: %d %v, want 200, duplicate, deliveries %v", status, ans, stored)
			}
			// From the future: ordered at the allowed skew, kept as sent.
			future := now.Add(24 * time.Hour)
			status, ans = postEvent(t, url, sharedTestAdminToken, eventJSON("e2", platform.EventResolved, "g1", "", future))
			if status != 202 {
				t.Fatalf("future event: %d %v", status, ans)
			}
			d, err := a.Store().Delivery(ctx, ids(ans["deliveries"])[0])
			must(err)
			if limit := time.Now().Add(DefaultMaxClockSkew).UnixMilli(); d.JiraTimestamp > limit || d.JiraTimestamp < now.UnixMilli() {
				t.Errorf("future event ordered at %d, want at most now + skew (%d)", d.JiraTimestamp, limit)
			}
			if !strings.Contains(string(d.Body), future.Format(time.RFC3339Nano)) {
				t.Errorf("body %s lost the time as sent", d.Body)
			}
			if status, _ := postEvent(t, url, sharedTestAdminToken, ""); status != 400 {
				t.Errorf("empty body: %d, want 400", status)
			}
			req, _ := http.NewRequest(http.MethodGet, url+EventsPath, nil)
			req.Header.Set("Authorization", "Bearer "+sharedTestAdminToken)
			if resp, _ := send(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("GET: %d, want 405", resp.StatusCode)
			}
			metrics := scrape(t, url)
			for _, want := range []string{`jirasync_events_received_total{result="stored"} 2`, `jirasync_events_received_total{result="duplicate"} 1`,
				`jirasync_events_received_total{result="refused_token"} 2`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestPublishEvent: the Go path validates as the endpoint does, and stores
// the same deliveries.
func TestPublishEvent(t *testing.T) {
	a, _, _ := newTestApp(t)
	ctx := context.Background()
	_, err := a.PublishEvent(ctx, platform.Event{ID: "e1", Type: platform.EventResolved, Group: "g1"})
	var fe *platform.FieldError
	if !errors.As(err, &fe) || fe.Field != "occurred_at" {
		t.Fatalf("event without a time: %v, want a FieldError naming occurred_at", err)
	}
	rec, err := a.PublishEvent(ctx, platform.Event{ID: "e1", Type: platform.EventResolved, Group: "g1", OccurredAt: time.Now()})
	if err != nil || rec.Duplicate || len(rec.Deliveries) != 1 {
		t.Fatalf("publish: %+v %v", rec, err)
	}
	again, err := a.PublishEvent(ctx, platform.Event{ID: "e1", Type: platform.EventResolved, Group: "g1", OccurredAt: time.Now()})
	if err != nil || !again.Duplicate || !slices.Equal(again.Deliveries, rec.Deliveries) {
		t.Fatalf("publish again: %+v %v, want duplicate of %v", again, err, rec.Deliveries)
	}
	// The platform's event types are the ABI's.
	if !slices.Equal(platform.EventTypes, []string{abi.EventGroupAssigned, abi.EventGroupResolved, abi.EventGroupUnresolved}) {
		t.Errorf("platform.EventTypes %v differ from the ABI's", platform.EventTypes)
	}
}

// TestGroupPutRaisesEvents: the built-in platform's PUT of a group that
// changes its assignee or status stores the matching event, id
// "builtin:…", for every installation; a PUT that changes neither stores
// none.
func TestGroupPutRaisesEvents(t *testing.T) {
	a, srv, _ := newTestAppConfig(t, func(c *Config) { c.AdminToken = sharedTestAdminToken })
	ctx := context.Background()
	put := func(body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, srv.URL+APIPrefix+"/groups/g1", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sharedTestAdminToken)
		if resp, ans := send(t, req); resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %d %v", body, resp.StatusCode, ans)
		}
	}
	events := func() []abi.PlatformEvent {
		t.Helper()
		ds, err := a.Store().Deliveries(ctx, store.DeliveryFilter{Kind: store.KindEvent})
		if err != nil {
			t.Fatal(err)
		}
		var out []abi.PlatformEvent
		for _, d := range slices.Backward(ds) {
			full, err := a.Store().Delivery(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			var e abi.PlatformEvent
			if err := json.Unmarshal(full.Body, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	put(`{"project":"backend","title":"t"}`) // unchanged
	put(`{"project":"backend","assignee":"alice"}`)
	put(`{"project":"backend","assignee":"alice","title":"renamed"}`) // unchanged
	put(`{"project":"backend","assignee":"alice","status":"resolved"}`)
	put(`{"project":"backend","status":"unresolved"}`)
	var got []string
	for _, e := range events() {
		if !strings.HasPrefix(e.ID, BuiltinEventPrefix) || e.Group != "g1" {
			t.Errorf("event %+v", e)
		}
		who := "-"
		if e.Assignee != nil {
			who = *e.Assignee
		}
		got = append(got, e.Type+"/"+who)
	}
	want := []string{"group.assigned/alice", "group.resolved/-", "group.assigned/-", "group.unresolved/-"}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// eventsPlugin builds the test plugin that answers handle_platform_event
// (testdata/events: it records its runs in plugin state).
func eventsPlugin(t *testing.T) string {
	t.Helper()
	path := pluginbuild.Out("events.wasm")
	eventsPluginOnce.Do(func() {
		eventsPluginErr = pluginbuild.Build("github.com/jirasync/jirasync/host/internal/engine/testdata/events", path)
	})
	if eventsPluginErr != nil {
		t.Fatal(eventsPluginErr)
	}
	return path
}

var (
	eventsPluginOnce sync.Once
	eventsPluginErr  error
)

// TestEventsRunInGroupOrder runs events through the pipeline and a plugin
// that answers handle_platform_event, on both databases: the group's hold
// is taken before the plugin runs, so an event older than one carried is
// stale without running, two events of one group never run at once and
// run in their order; a retryable failure is retried until dead, a
// refusal fails at once; a replay runs the event again; the log and the
// metrics tell events apart.
func TestEventsRunInGroupOrder(t *testing.T) {
	plugin := eventsPlugin(t)
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			a, url, _ := newTestAppOn(t, kind, func(c *Config) {
				c.Engine, c.PluginPath, c.PoolSize, c.Workers = "wasm", plugin, 2, 2
				c.CacheDir = pluginbuild.CacheDir()
				c.Retry = RetryConfig{MaxAttempts: 3, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
					PollInterval: 20 * time.Millisecond}
			})
			state := func(key string) string {
				t.Helper()
				v, _, err := a.Store().StateGet(ctx, "jira1", key)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			t0 := time.Now().Add(-time.Hour)
			publish := func(id, group string, at time.Duration) int64 {
				t.Helper()
				status, ans := postEvent(t, url, sharedTestAdminToken, eventJSON(id, platform.EventResolved, group, "", t0.Add(at)))
				if status != 202 || len(ids(ans["deliveries"])) != 1 {
					t.Fatalf("publish %s: %d %v", id, status, ans)
				}
				return ids(ans["deliveries"])[0]
			}

			// Newer first, then older: the older is stale, never run.
			waitStatus(t, a.Store(), publish("new", "g1", 2*time.Second), store.DeliveryDone)
			waitStatus(t, a.Store(), publish("old", "g1", time.Second), store.DeliveryStale)
			if state("runs:new") != "1" || state("runs:old") != "" || state("order:g1") != "new" {
				t.Errorf("runs new %q old %q, order %q; want new once, old never", state("runs:new"), state("runs:old"), state("order:g1"))
			}

			// Two slow events of one group at once, on two workers: one
			// at a time, never the older after the newer.
			var wg sync.WaitGroup
			slow := make([]int64, 4)
			for i := range slow {
				wg.Add(1)
				go func() {
					defer wg.Done()
					slow[i] = publish("slow"+strconv.Itoa(i), "slow1", time.Duration(i)*time.Second)
				}()
			}
			wg.Wait()
			for _, id := range slow {
				waitStatus(t, a.Store(), id, store.DeliveryDone, store.DeliveryStale)
			}
			if state("overlap:slow1") != "" {
				t.Error("two events of one group ran at once")
			}
			order := strings.Fields(state("order:slow1"))
			if !slices.IsSorted(order) || len(order) == 0 || order[len(order)-1] != "slow3" {
				t.Errorf("slow events ran in the order %v; want ascending, ending with the newest", order)
			}

			// Retryable: retried until dead, run once per attempt.
			d := waitStatus(t, a.Store(), publish("down", "unavailable1", 0), store.DeliveryDead)
			if state("runs:down") != "3" || d.Attempts != 3 {
				t.Errorf("unavailable: %d attempts, %q runs; want 3", d.Attempts, state("runs:down"))
			}
			// A refusal fails at once, and leaves the group free: a newer
			// event of it runs.
			waitStatus(t, a.Store(), publish("no", "rejected1", 0), store.DeliveryFailed)
			waitStatus(t, a.Store(), publish("no2", "rejected1", time.Second), store.DeliveryFailed)
			if state("runs:no") != "1" || state("runs:no2") != "1" {
				t.Errorf("rejected: runs %q and %q, want 1 each", state("runs:no"), state("runs:no2"))
			}

			// A replay is a new decision: the event runs again.
			first := waitStatus(t, a.Store(), publish("again", "g2", 0), store.DeliveryDone)
			req, _ := http.NewRequest(http.MethodPost, url+DeliveriesPath+"/"+strconv.FormatInt(first.ID, 10)+"/replay", nil)
			req.Header.Set("Authorization", "Bearer "+sharedTestAdminToken)
			resp, ans := send(t, req)
			sum, _ := ans["event_summary"].(map[string]any)
			if resp.StatusCode != 200 || ans["status"] != store.DeliveryDone || sum["group"] != "g2" || state("runs:again") != "2" {
				t.Errorf("replay: %d %v, runs %q; want done with the event's summary, run twice", resp.StatusCode, ans, state("runs:again"))
			}

			// The log lists events by kind; an unknown kind is refused.
			req, _ = http.NewRequest(http.MethodGet, url+DeliveriesPath+"?kind=event&limit=500", nil)
			req.Header.Set("Authorization", "Bearer "+sharedTestAdminToken)
			resp, ans = send(t, req)
			list, _ := ans["deliveries"].([]any)
			if resp.StatusCode != 200 || len(list) != 10 {
				t.Errorf("kind=event: %d, %d deliveries, want 10", resp.StatusCode, len(list))
			}
			req, _ = http.NewRequest(http.MethodGet, url+DeliveriesPath+"?kind=mail", nil)
			req.Header.Set("Authorization", "Bearer "+sharedTestAdminToken)
			if resp, _ := send(t, req); resp.StatusCode != 400 {
				t.Errorf("kind=mail: %d, want 400", resp.StatusCode)
			}
			for _, p := range []struct{ path, want string }{
				{DeliveriesPath + "/" + strconv.FormatInt(first.ID, 10) + "?format=html", "Platform event"},
				{DeliveriesPath + "?kind=event&format=html", "synced: 0 Jira issues"},
			} {
				req, _ = http.NewRequest(http.MethodGet, url+p.path, nil)
				req.Header.Set("Authorization", "Bearer "+sharedTestAdminToken)
				page, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				html, _ := io.ReadAll(page.Body)
				page.Body.Close()
				if page.StatusCode != 200 || !strings.Contains(string(html), "group:g2") || !strings.Contains(string(html), p.want) {
					t.Errorf("%s: %d, does not show the event (%q):\n%s", p.path, page.StatusCode, p.want, html)
				}
			}
			if m := scrape(t, url); !strings.Contains(m, `jirasync_deliveries_processed_total{kind="event",status="stale"}`) {
				t.Errorf("metrics lack the stale event")
			}
		})
	}
}
