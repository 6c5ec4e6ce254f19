package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/plugin/abi"
)

// newTestApp serves a host on the native engine (the wasm engine is
// covered by the engine tests and the scenarios) with one installation.
func newTestApp(t *testing.T) (*App, *httptest.Server, string) {
	t.Helper()
	return newTestAppConfig(t, nil)
}

func newTestAppConfig(t *testing.T, change func(*Config)) (*App, *httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	cfg := Config{DB: filepath.Join(t.TempDir(), "j.db"), Engine: "native", MaxBodyBytes: 4096, Logger: testLogger(t)}
	if change != nil {
		change(&cfg)
	}
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(ctx) })
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	st := a.Store()
	for _, err := range []error{
		st.PutOrganization(ctx, store.Organization{ID: "acme"}),
		st.PutProject(ctx, store.Project{ID: "backend", Organization: "acme"}),
		st.PutUser(ctx, store.User{ID: "alice", Emails: []store.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend"}}),
		st.PutGroup(ctx, store.Group{ID: "g1", Project: "backend"}),
		st.PutInstallation(ctx, store.Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: "http://127.0.0.1:1",
			ConsumerKey: "k", PrivateKeyPEM: keyPEM, WebhookSecret: "s3cret", Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}}),
		st.LinkGroup(ctx, "g1", "jira1", "APP-1"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	tok, err := webhooktoken.Mint("jira.example.com:k", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	return a, srv, tok
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, m := send(t, req)
	return resp.StatusCode, m
}

// send sends req and decodes its JSON answer; the body is closed.
func send(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

func TestDeliveriesAreRecordedOnlyPastTheChecks(t *testing.T) {
	a, srv, tok := newTestApp(t)
	base := srv.URL + WebhookPath
	assign := `{"webhookEvent":"jira:issue_updated","issue":{"key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"items":[{"field":"assignee"}]}}`
	lookup := `{"webhookEvent":"jira:issue_updated","issue":{"key":"APP-1","fields":{"assignee":{"name":"alice"}}},"changelog":{"items":[{"field":"assignee"}]}}`
	steps := []struct {
		url, body string
		status    int
	}{
		{base + "bad-token", assign, 400},
		{base + tok + "/extra", assign, 404},
		{base + tok, "[]", 400},
		{base + tok, strings.Repeat(" ", 5000) + "{}", 413},
		{base + tok, assign, 200},
		// Nothing listens at the installation's Jira: the lookup fails,
		// the delivery is kept for a retry with the reason, 503.
		{base + tok, lookup, 503},
	}
	for _, s := range steps {
		if got, body := post(t, s.url, s.body); got != s.status {
			t.Fatalf("POST %s: %d %v, want %d", s.url, got, body, s.status)
		}
	}
	counts, err := a.Store().DeliveryCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[store.DeliveryDone] != 1 || counts[store.DeliveryRetrying] != 1 || len(counts) != 2 {
		t.Fatalf("delivery counts = %v, want one done and one retrying (refused requests are not recorded)", counts)
	}
	d, err := a.Store().Delivery(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if d.HTTPStatus != 503 || !strings.Contains(d.Error, "unavailable") || string(d.Body) != lookup || d.NextAttemptAt == 0 {
		t.Errorf("failed delivery = status %d error %q body %q", d.HTTPStatus, d.Error, d.Body)
	}
}

func TestContentLengthOverLimitIsRefusedUnread(t *testing.T) {
	_, srv, tok := newTestApp(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath+tok, strings.NewReader(strings.Repeat("x", 5000)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

func TestMethodNotAllowedSaysWhatIs(t *testing.T) {
	_, srv, tok := newTestApp(t)
	resp, err := http.Get(srv.URL + WebhookPath + tok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow=%q, want 405 Allow=POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestHealth(t *testing.T) {
	_, srv, _ := newTestApp(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestUnknownEngineAndMissingPlugin(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{DB: filepath.Join(t.TempDir(), "a.db"), Engine: "jvm"}); err == nil {
		t.Error("engine jvm accepted")
	}
	_, err := New(ctx, Config{DB: filepath.Join(t.TempDir(), "b.db"), PluginPath: filepath.Join(t.TempDir(), "none.wasm")})
	if err == nil || !strings.Contains(err.Error(), "make plugin") {
		t.Errorf("missing plugin: %v, want a hint to build it", err)
	}
}

func adminGet(t *testing.T, url, token, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestDeliveryLogAndReplay(t *testing.T) {
	a, srv, tok := newTestApp(t)
	lookup := `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"APP-1","fields":{"assignee":{"name":"alice"}}},"changelog":{"id":"9","items":[{"field":"assignee"}]}}`
	assign := `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"id":"8","items":[{"field":"assignee"}]}}`
	post(t, srv.URL+WebhookPath+tok, assign)
	post(t, srv.URL+WebhookPath+tok, lookup) // Jira unreachable: retrying

	if resp, _ := adminGet(t, srv.URL+DeliveriesPath, "", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d, want 401 with a Basic challenge", resp.StatusCode)
	}
	if resp, _ := adminGet(t, srv.URL+DeliveriesPath, "wrong", ""); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	admin := a.cfg.AdminToken
	resp, body := adminGet(t, srv.URL+DeliveriesPath+"?status=retrying", admin, "")
	var list struct {
		Deliveries []store.Delivery `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if len(list.Deliveries) != 1 || list.Deliveries[0].IssueKey != "APP-1" || list.Deliveries[0].Attempts != 1 {
		t.Fatalf("retrying deliveries = %+v", list.Deliveries)
	}
	id := list.Deliveries[0].ID
	resp, body = adminGet(t, srv.URL+DeliveriesPath+"?limit=1", admin, "")
	if !strings.Contains(body, `"next_before"`) {
		t.Errorf("a full page has no next_before: %s", body)
	}
	resp, body = adminGet(t, srv.URL+DeliveriesPath, admin, "text/html")
	if resp.StatusCode != 200 || !strings.Contains(body, "<table>") || !strings.Contains(body, "retrying") {
		t.Errorf("HTML list: %d %.300s", resp.StatusCode, body)
	}
	_, body = adminGet(t, srv.URL+DeliveriesPath+"/"+strconv.FormatInt(id, 10), admin, "")
	if !strings.Contains(body, `"body":{"webhookEvent"`) || !strings.Contains(body, `"attempt_log":[{"attempt":1`) {
		t.Errorf("detail lacks body or attempts: %.400s", body)
	}

	// A form post without the page's CSRF token is refused; a bearer
	// client needs none.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+DeliveriesPath+"/"+strconv.FormatInt(id, 10)+"/replay", strings.NewReader("csrf=forged"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("admin", admin)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("forged CSRF: %v %v, want 403", resp.StatusCode, err)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+DeliveriesPath+"/"+strconv.FormatInt(id, 10)+"/replay", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans map[string]any
	json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != 200 || ans["status"] != store.DeliveryRetrying {
		t.Fatalf("replay: %d %v, want 200 and the delivery retrying again (Jira still down)", resp.StatusCode, ans)
	}
	if d, _ := a.Store().Delivery(context.Background(), id); d.Attempts != 2 || d.AttemptBase != 1 {
		t.Errorf("replayed delivery: attempt %d from %d, want 2 from 1 (a fresh budget)", d.Attempts, d.AttemptBase)
	}
	if resp, _ := adminGet(t, srv.URL+DeliveriesPath+"/999/replay", admin, ""); resp.StatusCode != 405 {
		t.Errorf("GET replay: %d, want 405", resp.StatusCode)
	}
}

func TestDuplicateIsAnsweredFromTheRecord(t *testing.T) {
	a, srv, tok := newTestApp(t)
	assign := `{"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"id":"8","items":[{"field":"assignee"}]}}`
	_, first := post(t, srv.URL+WebhookPath+tok, assign)
	status, second := post(t, srv.URL+WebhookPath+tok, assign)
	if status != 200 || second["duplicate"] != true || second["delivery"] != first["delivery"] || second["assigned"] != 1.0 {
		t.Fatalf("duplicate answered %d %v (first %v)", status, second, first)
	}
	counts, _ := a.Store().DeliveryCounts(context.Background())
	if counts[store.DeliveryDone] != 1 || len(counts) != 1 {
		t.Fatalf("counts = %v, want one stored delivery", counts)
	}
}

func TestMetrics(t *testing.T) {
	_, srv, tok := newTestApp(t)
	post(t, srv.URL+WebhookPath+"nope", "{}")
	post(t, srv.URL+WebhookPath+tok, `{"webhookEvent":"jira:issue_updated"}`)
	resp, body := adminGet(t, srv.URL+"/metrics", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{`jirasync_deliveries_received_total{result="refused_token"} 1`,
		`jirasync_deliveries_received_total{result="stored"} 1`, `jirasync_deliveries_processed_total{kind="webhook",status="done"} 1`,
		`jirasync_queue_depth 0`, `jirasync_delivery_processing_seconds_count 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestBodySignature: Jira 10 signs deliveries with the webhook secret; a
// signature that does not match is refused even with a valid token, and an
// installation whose webhook was registered on Jira 10's API (with a
// secret) refuses a delivery without one: a leaked URL token is not enough.
func TestBodySignature(t *testing.T) {
	m := hmac.New(sha256.New, []byte("s3cret"))
	body := `{"webhookEvent":"jira:issue_updated"}`
	m.Write([]byte(body))
	valid := "sha256=" + hex.EncodeToString(m.Sum(nil))
	const none = "(no header)"
	tests := []struct {
		api    string
		sig    string
		status int
		metric string // the received counter's label for this request
		logs   string // what the refusal's log line says
	}{
		{api: "", sig: valid, status: 200, metric: "stored"},
		{api: "", sig: none, status: 200, metric: "stored"},
		{api: "", sig: "", status: 200, metric: "stored"},
		{api: abi.WebhookAPILegacy, sig: none, status: 200, metric: "stored"},
		{api: abi.WebhookAPILegacy, sig: "sha256=00", status: 401, metric: "refused_signature"},
		{api: "", sig: "sha1=abc", status: 401, metric: "refused_signature"},
		{api: "", sig: "sha256=" + strings.Repeat("ab", 32), status: 401, metric: "refused_signature"},
		{api: abi.WebhookAPIJira10, sig: valid, status: 200, metric: "stored"},
		{api: abi.WebhookAPIJira10, sig: none, status: 401, metric: "refused_signature_missing", logs: "X-Hub-Signature) missing"},
		{api: abi.WebhookAPIJira10, sig: "", status: 401, metric: "refused_signature_missing", logs: "X-Hub-Signature) missing"},
		{api: abi.WebhookAPIJira10, sig: "sha256=00", status: 401, metric: "refused_signature", logs: "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.api+" "+tt.sig, func(t *testing.T) {
			logs := &lockedBuffer{}
			a, srv, tok := newTestAppConfig(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
			ctx := context.Background()
			in, err := a.Store().Installation(ctx, "jira1")
			if err != nil {
				t.Fatal(err)
			}
			in.WebhookAPI = tt.api
			if err := a.Store().PutInstallation(ctx, in); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath+tok, strings.NewReader(body))
			if tt.sig != none {
				req.Header["X-Hub-Signature"] = []string{tt.sig}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			ans, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, ans, tt.status)
			}
			counts, err := a.Store().DeliveryCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if stored := counts[store.DeliveryDone]; (tt.status == 200) != (stored == 1) || len(counts) > 1 {
				t.Errorf("stored %v after a %d", counts, tt.status)
			}
			_, metrics := adminGet(t, srv.URL+"/metrics", "", "")
			if want := `jirasync_deliveries_received_total{result="` + tt.metric + `"} 1`; !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
			if tt.logs != "" && !strings.Contains(logs.String(), tt.logs) {
				t.Errorf("no log line saying %q:\n%s", tt.logs, logs)
			}
		})
	}
}

// lockedBuffer collects log output written from the host's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
