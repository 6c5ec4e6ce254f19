package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// seedJira gives the test app's installation real credentials on a
// simulated Jira that knows alice.
func seedJira(t *testing.T, a *App) *fakejira.Server {
	t.Helper()
	ctx := context.Background()
	jira, key := startJira(t, "", "k")
	jira.AddAccessToken("k", "tok", "")
	jira.AddUser(fakejira.User{Name: "alice", Key: "JIRAUSER10000", EmailAddress: "alice@example.com", Active: true})
	in, err := a.Store().Installation(ctx, "jira1")
	if err != nil {
		t.Fatal(err)
	}
	in.BaseURL, in.AccessToken = jira.URL(), "tok"
	in.PrivateKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	if err := a.Store().PutInstallation(ctx, in); err != nil {
		t.Fatal(err)
	}
	return jira
}

// startJira starts a simulated Jira that knows one consumer, whose key it
// returns.
func startJira(t *testing.T, version, consumer string) (*fakejira.Server, *rsa.PrivateKey) {
	t.Helper()
	jira, err := fakejira.Start(fakejira.Config{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jira.Close() })
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jira.AddConsumer(consumer, &key.PublicKey)
	return jira, key
}

// waitStatus waits for a delivery to reach one of the wanted statuses.
func waitStatus(t *testing.T, st *store.Store, id int64, want ...string) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := st.Delivery(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(want, d.Status) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %d is %s after 10s (attempts %d, error %q), want %v", id, d.Status, d.Attempts, d.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const lookupAlice = `{"timestamp":1,"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"APP-1","fields":{"assignee":{"name":"alice"}}},"changelog":{"id":"7","items":[{"field":"assignee"}]}}`

// TestRetryAfterJiraComesBack: the pipeline's own retry, not a re-send,
// applies the delivery once Jira answers again.
func TestRetryAfterJiraComesBack(t *testing.T) {
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Retry = pipeline.Config{BaseBackoff: 100 * time.Millisecond, PollInterval: 20 * time.Millisecond}
	})
	jira := seedJira(t, a)
	if err := jira.SetDown(true); err != nil {
		t.Fatal(err)
	}
	status, ans := post(t, srv.URL+WebhookPath+tok, lookupAlice)
	if status != 503 || ans["status"] != store.DeliveryRetrying {
		t.Fatalf("with Jira down: %d %v", status, ans)
	}
	id := int64(ans["delivery"].(float64))
	time.Sleep(150 * time.Millisecond) // at least one more failed attempt
	if err := jira.SetDown(false); err != nil {
		t.Fatal(err)
	}
	d := waitStatus(t, a.Store(), id, store.DeliveryDone)
	if d.Attempts < 2 {
		t.Errorf("done after %d attempts, want a retry", d.Attempts)
	}
	if g, _ := a.Store().Group(context.Background(), "", "g1"); g.Assignee == nil || *g.Assignee != "alice" {
		t.Errorf("g1 = %v after the retry, want alice", g.Assignee)
	}
	attempts, _ := a.Store().Attempts(context.Background(), id)
	for _, at := range attempts[:len(attempts)-1] {
		if at.Outcome != store.DeliveryRetrying || !strings.Contains(at.Error, "unreachable") {
			t.Errorf("attempt %+v, want retrying with the reason", at)
		}
	}
}

func TestOutOfRetriesIsDead(t *testing.T) {
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Retry = pipeline.Config{MaxAttempts: 3, BaseBackoff: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond}
	})
	jira := seedJira(t, a)
	jira.SetFailure(503)
	_, ans := post(t, srv.URL+WebhookPath+tok, lookupAlice)
	d := waitStatus(t, a.Store(), int64(ans["delivery"].(float64)), store.DeliveryDead)
	if d.Attempts != 3 {
		t.Errorf("dead after %d attempts, want 3", d.Attempts)
	}
}

// TestPluginFaultsFailOneAttempt runs the host on a plugin that panics,
// loops and hoards memory on request: each fault fails that attempt only,
// is recorded on its delivery, and the next delivery is served.
func TestPluginFaultsFailOneAttempt(t *testing.T) {
	faulty := pluginbuild.Out("faulty.wasm")
	if err := pluginbuild.Build("github.com/jirasync/jirasync/host/internal/engine/testdata/faulty", faulty); err != nil {
		t.Fatal(err)
	}
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Engine, c.PluginPath, c.PoolSize = "wasm", faulty, 1
		c.CacheDir = pluginbuild.CacheDir()
		c.CallTimeout = 3 * time.Second
	})
	// A memory bomb traps at the 64 MiB limit, unless the Go runtime's
	// garbage collection near the limit, on a loaded machine, outlasts the
	// call's time-out first: either way the attempt fails alone.
	for _, tt := range []struct{ fault, reason string }{{"panic", "trap"}, {"loop", "timeout"}, {"memory", "trap|timeout"}, {"bad_output", "bad_output"},
		{"internal", "internal: a bug"}} {
		status, ans := post(t, srv.URL+WebhookPath+tok, `{"fault":"`+tt.fault+`"}`)
		if status != 503 || ans["status"] != store.DeliveryRetrying {
			t.Fatalf("%s: %d %v, want 503 and a retry", tt.fault, status, ans)
		}
		d, _ := a.Store().Delivery(context.Background(), int64(ans["delivery"].(float64)))
		if !containsAny(d.Error, strings.Split(tt.reason, "|")) {
			t.Errorf("%s: recorded error %q, want it to say %s", tt.fault, d.Error, tt.reason)
		}
		if status, ans := post(t, srv.URL+WebhookPath+tok, `{"fault":"none","n":"`+tt.fault+`"}`); status != 200 {
			t.Fatalf("delivery after %s: %d %v", tt.fault, status, ans)
		}
	}
}

// panickyPlatform fails inside a host function, the way a bug in the host
// would: the plugin gets an internal error.
type panickyPlatform struct{ platform.Platform }

func (panickyPlatform) LinkedGroups(context.Context, string, string, []string) ([]platform.LinkedGroup, error) {
	panic("a bug in the host")
}

// TestInternalErrorIsRetried: an internal error is retryable (docs/ABI.md,
// Errors): answered 503 and kept for another attempt, on the Native engine
// as on the Wasm one (TestPluginFaultsFailOneAttempt), not failed for good.
func TestInternalErrorIsRetried(t *testing.T) {
	a, srv, tok := newTestAppConfig(t, func(c *Config) { c.Platform = panickyPlatform{} })
	status, ans := post(t, srv.URL+WebhookPath+tok, assignAlice)
	if status != 503 || ans["status"] != store.DeliveryRetrying {
		t.Fatalf("internal error answered %d %v, want 503 and a retry", status, ans)
	}
	d, _ := a.Store().Delivery(context.Background(), int64(ans["delivery"].(float64)))
	if !strings.HasPrefix(d.Error, "internal: ") {
		t.Errorf("recorded error %q, want the plugin's internal error", d.Error)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestAnswerWhenAnotherHostHasTheDelivery: Jira re-sends a delivery that
// another host sharing the database is processing (here the test claims
// it through the store). The answer waits for that host's outcome and
// reports it from the record, not a 202 when the wait runs out.
func TestAnswerWhenAnotherHostHasTheDelivery(t *testing.T) {
	// Without the record to watch, the re-send would wait all of
	// AnswerWait and get a 202.
	a, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.Retry = pipeline.Config{BaseBackoff: time.Hour}
		c.AnswerWait = 30 * time.Second
	})
	jira := seedJira(t, a)
	if err := jira.SetDown(true); err != nil {
		t.Fatal(err)
	}
	status, ans := post(t, srv.URL+WebhookPath+tok, lookupAlice)
	if status != 503 {
		t.Fatalf("with Jira down: %d %v", status, ans)
	}
	id := int64(ans["delivery"].(float64))
	ctx := context.Background()
	st := a.Store()
	d, ok, err := st.Claim(ctx, id, time.Minute, pipeline.DefaultMaxAttempts, true)
	if err != nil || !ok {
		t.Fatalf("the other host's claim: %v, %v", ok, err)
	}
	finished := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _, err := st.Finish(ctx, d, store.Outcome{Attempt: d.Attempts, StartedAt: time.Now(), Status: store.DeliveryDone,
			HTTPStatus: 200, Summary: `{"outcome":"synced","issue_key":"APP-1"}`})
		finished <- err
	}()
	status, ans = post(t, srv.URL+WebhookPath+tok, lookupAlice)
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
	if status != 200 || ans["status"] != store.DeliveryDone || ans["duplicate"] != true {
		t.Fatalf("re-sent while another host had it: %d %v, want 200, done, duplicate", status, ans)
	}
}
