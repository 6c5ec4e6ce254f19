package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/store/storetest"
)

// TestJSONAnswersAreNotSniffed: every JSON answer, refused or not, tells
// browsers not to guess another type from what an echoed value contains.
func TestJSONAnswersAreNotSniffed(t *testing.T) {
	a, srv, _ := newTestApp(t)
	for _, tt := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"health", "GET", "/healthz", "", 200},
		{"admin without a token", "GET", DeliveriesPath, "", 401},
		{"admin with the token", "GET", DeliveriesPath, a.cfg.AdminToken, 200},
		{"unknown delivery", "GET", DeliveriesPath + "/x", a.cfg.AdminToken, 404},
		{"webhook with a bad token", "POST", WebhookPath + "nope", "", 400},
		{"webhook with GET", "GET", WebhookPath + "nope", "", 405},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("{}"))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d JSON", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", tt.name, got)
		}
	}
}

// TestSafeNext: a sign-in sends the browser on only to a page of this
// host. Each hostile case below is a way browsers have been led to
// another site; they all end on the setup page.
func TestSafeNext(t *testing.T) {
	tests := []struct{ next, want string }{
		{"/extensions/jira-server/deliveries?format=html", "/extensions/jira-server/deliveries?format=html"},
		{"/extensions/jira-server/installations/jira-1a2b", "/extensions/jira-server/installations/jira-1a2b"},
		{"/extensions/jira-server/deliveries?status=dead&format=html", "/extensions/jira-server/deliveries?format=html&status=dead"},
		{"/extensions/jira-server/setup/", "/extensions/jira-server/setup/"},
		{"/extensions/jira-server/a/../deliveries", "/extensions/jira-server/deliveries"},
		{"/extensions/jira-server/%2F%2Fevil.example", "/extensions/jira-server/evil.example"},
		{"/api/v1/installations", "/api/v1/installations"},
		{"", SetupPath},
		{"/", SetupPath},
		{"/metrics", SetupPath},
		{"/extensions/jira-server", SetupPath},
		{"/extensions/jira-serverx/", SetupPath},
		{"/extensions/jira-server/../../evil", SetupPath},
		{"/extensions/jira-server/%2e%2e/%2e%2e/evil", SetupPath},
		{"/api", SetupPath},
		{"//evil.example", SetupPath},
		{"///evil.example", SetupPath},
		{"/\t/evil.example", SetupPath},
		{"/\t\t/evil.example", SetupPath},
		{"/\n/evil.example", SetupPath},
		{"/\r/evil.example", SetupPath},
		{"/%09/evil.example", SetupPath},
		{"/%0a/evil.example", SetupPath},
		{"/extensions/jira-server/%09", SetupPath},
		{"/extensions/jira-server/\x7f", SetupPath},
		{"/extensions/jira-server/%7F", SetupPath},
		{"/extensions/jira-server/\x00", SetupPath},
		{"/extensions/jira-server/deliveries?x=%0d%0aLocation:%20http://evil.example", SetupPath},
		{"\t//evil.example", SetupPath},
		{"/\\evil.example", SetupPath},
		{"\\\\evil.example", SetupPath},
		{"/%5Cevil.example", SetupPath},
		{"/extensions/jira-server/%5C%5Cevil.example", SetupPath},
		{"https://evil.example/extensions/jira-server/", SetupPath},
		{"http:/extensions/jira-server/", SetupPath},
		{"javascript:alert(1)", SetupPath},
		{"data:text/html,<script>alert(1)</script>", SetupPath},
		{"//evil.example/extensions/jira-server/", SetupPath},
		{"/@evil.example", SetupPath},
		{"evil.example", SetupPath},
		{"extensions/jira-server/setup", SetupPath},
		{"/extensions/jira-server/%zz", SetupPath},
		{"/extensions/jira-server/?a=%zz", SetupPath},
	}
	for _, tt := range tests {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}

// noRedirects is a client that answers with the redirect itself.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// signIn signs in at base with token and returns a client holding the
// session cookie (redirects not followed) and the cookie's value.
func signIn(t *testing.T, base, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+LoginPath, url.Values{"token": {token}, "next": {DeliveriesPath}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d, want 303", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			return c, ck.Value
		}
	}
	t.Fatal("sign-in set no session cookie")
	return nil, ""
}

// pageStatus is the status of an HTML GET of path with the given cookie.
func pageStatus(t *testing.T, base, path, session string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSessionsAreNotSignedWithTheAdminToken: a cookie made with the admin
// token as the key (how sessions were once signed; anyone who learns a
// session learns nothing, but anyone with the token could mint sessions
// offline) does not open a page. Sessions are keyed by the secret key.
func TestSessionsAreNotSignedWithTheAdminToken(t *testing.T) {
	a, srv, _ := newTestApp(t)
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	withToken := func(parts ...string) string {
		m := hmac.New(sha256.New, []byte(a.cfg.AdminToken))
		m.Write([]byte(strings.Join(parts, "|")))
		return hex.EncodeToString(m.Sum(nil))
	}
	_, good := signIn(t, srv.URL, a.cfg.AdminToken)
	for _, tt := range []struct {
		name, cookie string
		status       int
	}{
		{"signed in", good, http.StatusOK},
		{"old format, admin token as key", exp + "." + withToken("session", exp), http.StatusSeeOther},
		{"new format, admin token as key", exp + ".00." + withToken("session", exp, "00"), http.StatusSeeOther},
		{"tampered expiry", "9" + good, http.StatusSeeOther},
		{"empty", "", http.StatusSeeOther},
	} {
		if got := pageStatus(t, srv.URL, DeliveriesPath, tt.cookie); got != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.status)
		}
	}
}

// TestSessionKey: replicas (one database, one secret key, one admin
// token) and restarts accept each other's sessions; a new admin token or
// another secret key ends them. On SQLite the hosts run one after the
// other on one file; on PostgreSQL, at once.
func TestSessionKey(t *testing.T) {
	ctx := context.Background()
	const token, other = "session-test-admin-token", "another-admin-token-0123"
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			db := storetest.DSN(t, kind)
			dir := t.TempDir()
			key, otherKey := filepath.Join(dir, "secret.key"), filepath.Join(dir, "other.key")
			t.Setenv(secrets.EnvKey, "")
			host := func(token, keyFile string) string {
				a, err := New(ctx, Config{DB: db, Engine: "native", AdminToken: token, SecretKeyFile: keyFile, Logger: testLogger(t)})
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(a.Handler())
				t.Cleanup(func() { srv.Close(); a.Close(ctx) })
				return srv.URL
			}
			first := host(token, key)
			_, session := signIn(t, first, token)
			for _, tt := range []struct {
				name          string
				token, secret string
				status        int
			}{
				{"the same token and key", token, key, http.StatusOK},
				{"a new admin token", other, key, http.StatusSeeOther},
				{"another secret key", token, otherKey, http.StatusSeeOther},
			} {
				if got := pageStatus(t, host(tt.token, tt.secret), DeliveriesPath, session); got != tt.status {
					t.Errorf("%s: %d, want %d", tt.name, got, tt.status)
				}
			}
		})
	}
}

// TestSessionCookieIsSecureBehindHTTPS: a host reached over https through
// a TLS-terminating proxy sees plain HTTP; its public URL says https.
func TestSessionCookieIsSecureBehindHTTPS(t *testing.T) {
	for _, tt := range []struct {
		public string
		secure bool
	}{
		{"https://jirasync.example.com", true},
		{"HTTPS://jirasync.example.com/sub", true},
		{"http://127.0.0.1:8080", false},
	} {
		a, srv, _ := newTestAppConfig(t, func(c *Config) { c.PublicURL = tt.public })
		resp, err := noRedirects.PostForm(srv.URL+LoginPath, url.Values{"token": {a.cfg.AdminToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var got *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == sessionCookie {
				got = ck
			}
		}
		if got == nil || got.Secure != tt.secure || !got.HttpOnly || got.SameSite != http.SameSiteLaxMode {
			t.Errorf("public URL %s: cookie %+v, want Secure=%v, HttpOnly, SameSite=Lax", tt.public, got, tt.secure)
		}
	}
}

// TestSignOut: the admin pages link to a sign-out page whose form (POST,
// with the CSRF token) deletes the session cookie.
func TestSignOut(t *testing.T) {
	a, srv, _ := newTestApp(t)
	c, session := signIn(t, srv.URL, a.cfg.AdminToken)
	get := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, p := range []string{SetupPath, InstallationsPath + "?format=html", DeliveriesPath + "?format=html"} {
		if _, body := get(p); !strings.Contains(body, `href="`+LogoutPath+`"`) {
			t.Errorf("%s has no sign-out link", p)
		}
	}
	resp, body := get(LogoutPath)
	if resp.StatusCode != 200 || !strings.Contains(body, `value="`+a.csrfFor(session)+`"`) {
		t.Fatalf("sign-out page: %d\n%s", resp.StatusCode, body)
	}
	post := func(form url.Values) *http.Response {
		resp, err := c.PostForm(srv.URL+LogoutPath, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if pageStatus(t, srv.URL, SetupPath, session) != 200 {
		t.Fatal("a refused sign-out ended the session")
	}
	resp = post(url.Values{"csrf": {a.csrfFor(session)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != LoginPath+"?signed_out=1" {
		t.Fatalf("sign-out: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	cleared := false
	for _, ck := range resp.Cookies() {
		cleared = cleared || (ck.Name == sessionCookie && ck.Value == "" && ck.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("sign-out did not delete the cookie: %v", resp.Header["Set-Cookie"])
	}
	if resp, _ := get(SetupPath); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), LoginPath) {
		t.Errorf("after signing out, the setup page: %d %s, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := get(LoginPath + "?signed_out=1"); !strings.Contains(body, "You are signed out.") {
		t.Error("the sign-in page does not say the operator signed out")
	}
}

// TestSignInThrottle: ten failed sign-ins from one address in five
// minutes, by form, Basic or bearer, and that address gets 429 with
// Retry-After for the rest of the window, even with the right token;
// other addresses are not affected.
func TestSignInThrottle(t *testing.T) {
	a, srv, _ := newTestApp(t)
	var skew atomic.Int64
	a.signins.mu.Lock()
	a.signins.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a.signins.mu.Unlock()
	login := func(token string) *http.Response {
		resp, err := noRedirects.PostForm(srv.URL+LoginPath, url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range signInFailures {
		var resp *http.Response
		switch i % 3 {
		case 0:
			resp = login("wrong-token-wrong-token")
		case 1:
			resp, _ = adminGet(t, srv.URL+DeliveriesPath, "wrong-token-wrong-token", "")
		case 2:
			req, _ := http.NewRequest("GET", srv.URL+DeliveriesPath, nil)
			req.SetBasicAuth("admin", "wrong-token-wrong-token")
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			resp = r
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	for _, tt := range []struct {
		name string
		resp func() *http.Response
	}{
		{"sign-in with the right token", func() *http.Response { return login(a.cfg.AdminToken) }},
		{"bearer with the right token", func() *http.Response { r, _ := adminGet(t, srv.URL+DeliveriesPath, a.cfg.AdminToken, ""); return r }},
	} {
		resp := tt.resp()
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || err != nil || retry < 1 || retry > int(signInWindow.Seconds()) {
			t.Errorf("%s after %d failures: %d, Retry-After %q; want 429 and 1 to 300 s", tt.name, signInFailures, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	// Another address is not throttled.
	r := httptest.NewRequest("POST", LoginPath, strings.NewReader(url.Values{"token": {a.cfg.AdminToken}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "192.0.2.7:4711"
	w := httptest.NewRecorder()
	a.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Errorf("sign-in from another address: %d, want 303", w.Code)
	}
	// After the window, the right token works again, and clears the count.
	skew.Store(int64(signInWindow))
	if resp := login(a.cfg.AdminToken); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-in after the window: %d, want 303", resp.StatusCode)
	}
}

// TestThrottleIsBounded: however many addresses fail, the table holds at
// most its size plus the shared overflow entry; addresses past it are
// throttled together, and windows expire.
func TestThrottleIsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := newThrottle()
	th.clients, th.now = 8, func() time.Time { return now }
	for i := range 1000 {
		th.fail("198.51.100." + strconv.Itoa(i%250) + "/" + strconv.Itoa(i))
	}
	if n := len(th.seen); n > th.clients+1 {
		t.Fatalf("%d entries after 1000 addresses, want at most %d", n, th.clients+1)
	}
	if th.blocked("203.0.113.1") == 0 {
		t.Error("a new address is not throttled with the flood that overflowed the table")
	}
	if th.blocked("198.51.100.0/0") != 0 {
		t.Error("an address with one failure is throttled")
	}
	now = now.Add(signInWindow)
	if th.blocked("203.0.113.1") != 0 {
		t.Error("still throttled after the window")
	}
	th.fail("203.0.113.1")
	if n := len(th.seen); n > th.clients+1 {
		t.Errorf("%d entries after the window, want expired ones dropped", n)
	}
}

func TestClientOf(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:80", "2001:db8:1:2::/64"},
		{"@", "@"},
	} {
		r := &http.Request{RemoteAddr: tt.remote}
		if got := clientOf(r); got != tt.want {
			t.Errorf("clientOf(%s) = %s, want %s", tt.remote, got, tt.want)
		}
	}
}

// TestAdminTokenAtStart: an operator's token shorter than 16 bytes is
// refused; with none, a host on SQLite makes one, keeps it in a 0600 file
// beside the database and logs the file, never the token.
func TestAdminTokenAtStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "j.db")
	if a, err := New(ctx, Config{DB: db, Engine: "native", AdminToken: "fifteen-bytes!!", Logger: testLogger(t)}); err == nil {
		a.Close(ctx)
		t.Fatal("a 15-byte admin token was accepted")
	} else if !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("short token refused with %q, want it to say at least 16", err)
	}
	start := func() (*App, string) {
		var log bytes.Buffer
		a, err := New(ctx, Config{DB: db, Engine: "native", Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		a.Close(ctx)
		return a, log.String()
	}
	a, log := start()
	file := filepath.Join(dir, AdminTokenFile)
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, %v; want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(file)
	if strings.TrimSpace(string(b)) != a.cfg.AdminToken || len(a.cfg.AdminToken) < MinAdminTokenBytes {
		t.Errorf("file holds %q, the host uses %q", b, a.cfg.AdminToken)
	}
	if strings.Contains(log, a.cfg.AdminToken) || !strings.Contains(log, file) || !strings.Contains(log, "level=WARN") {
		t.Errorf("log should warn with the file's path and not the token:\n%s", log)
	}
	again, log := start()
	if again.cfg.AdminToken != a.cfg.AdminToken || strings.Contains(log, a.cfg.AdminToken) {
		t.Errorf("restart: token %q, want the kept %q; log:\n%s", again.cfg.AdminToken, a.cfg.AdminToken, log)
	}
}

// TestCrossOriginFormPostsAreRefused: with a session and the right CSRF
// token, a form post another site's page makes is still refused
// (Sec-Fetch-Site, or Origin when a browser sends only that); the host's
// own pages and API clients pass.
func TestCrossOriginFormPostsAreRefused(t *testing.T) {
	a, srv, _ := newTestAppConfig(t, func(c *Config) { c.PublicURL = "https://jirasync.example.com" })
	_, session := signIn(t, srv.URL, a.cfg.AdminToken)
	for _, tt := range []struct {
		name    string
		path    string
		headers map[string]string
		status  int
	}{
		{"same origin", DeliveriesPath + "/999/replay", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusNotFound},
		{"no browser headers", DeliveriesPath + "/999/replay", nil, http.StatusNotFound},
		{"the public URL's origin", DeliveriesPath + "/999/replay", map[string]string{"Origin": "https://jirasync.example.com"}, http.StatusNotFound},
		{"cross-site", DeliveriesPath + "/999/replay", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site, other origin", DeliveriesPath + "/999/replay", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"other origin", DeliveriesPath + "/999/replay", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"sign-in from another site", LoginPath, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	} {
		req, _ := http.NewRequest("POST", srv.URL+tt.path, strings.NewReader(url.Values{"csrf": {a.csrfFor(session)}, "token": {a.cfg.AdminToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
		for k, v := range tt.headers {
			req.Header.Set(k, v)
		}
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
}

// TestMetricsAuth: /metrics is open unless MetricsAuth asks for the
// admin token.
func TestMetricsAuth(t *testing.T) {
	for _, tt := range []struct {
		auth        bool
		token       bool
		status      int
		description string
	}{
		{false, false, 200, "open by default"},
		{true, false, 401, "token required"},
		{true, true, 200, "token given"},
	} {
		a, srv, _ := newTestAppConfig(t, func(c *Config) { c.MetricsAuth = tt.auth })
		token := ""
		if tt.token {
			token = a.cfg.AdminToken
		}
		resp, body := adminGet(t, srv.URL+"/metrics", token, "")
		if resp.StatusCode != tt.status || (tt.status == 200) != strings.Contains(body, "jirasync_queue_depth") {
			t.Errorf("%s: %d %.80s, want %d", tt.description, resp.StatusCode, body, tt.status)
		}
	}
}
