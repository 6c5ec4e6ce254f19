package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// installEnv is a host on the real wasm plugin, reachable at its public
// URL, a simulated Jira that knows our consumer, and a signed-in operator.
type installEnv struct {
	t      *testing.T
	app    *App
	public string
	jira   *fakejira.Server
	keyPEM string
	client *http.Client // cookie jar, no redirects followed
	csrf   string
}

func newInstallEnv(t *testing.T, jiraVersion string, change ...func(*Config)) *installEnv {
	t.Helper()
	plugin, err := pluginbuild.Path()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	a, srv, _ := newTestAppConfig(t, func(c *Config) {
		c.Engine, c.PluginPath, c.PublicURL, c.AdminToken = "wasm", plugin, public, "operator-token-for-tests"
		c.CacheDir = pluginbuild.CacheDir()
		for _, f := range change {
			f(c)
		}
	})
	srv.Close() // serve on the listener whose address is the public URL
	hs := &http.Server{Handler: a.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	jira, key := startJira(t, jiraVersion, "jirasync-test")
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	e := &installEnv{t: t, app: a, public: public, jira: jira,
		keyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
	jar, _ := cookiejar.New(nil)
	e.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := e.do("POST", LoginPath, url.Values{"token": {"operator-token-for-tests"}, "next": {SetupPath}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	_, body := e.get(SetupPath)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("setup page has no CSRF token:\n%s", body)
	}
	e.csrf = m[1]
	return e
}

func (e *installEnv) do(method, path string, form url.Values) *http.Response {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	target := path
	if strings.HasPrefix(path, "/") {
		target = e.public + path
	}
	req, _ := http.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *installEnv) get(path string) (*http.Response, string) {
	e.t.Helper()
	resp := e.do("GET", path, nil)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *installEnv) setupForm(overrides map[string]string) url.Values {
	f := url.Values{"csrf": {e.csrf}, "url": {e.jira.URL()}, "consumer_key": {"jirasync-test"},
		"private_key": {e.keyPEM}, "verify_ssl": {"on"}, "organization": {"acme"}}
	for k, v := range overrides {
		if v == "\x00" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
	}
	// As the form sends it once the page showed the key's public key.
	if _, given := overrides["key_shown"]; !given {
		if pub, msg := validateKey(f.Get("private_key")); msg == "" {
			f.Set("key_shown", keyFingerprint(pub))
		}
	}
	return f
}

func (e *installEnv) submit(overrides map[string]string) (*http.Response, string) {
	e.t.Helper()
	resp := e.do("POST", SetupPath, e.setupForm(overrides))
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *installEnv) installations() []store.Installation {
	e.t.Helper()
	ins, err := e.app.Store().Installations(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Installation
	for _, in := range ins {
		if in.ID != "jira1" { // the fixture's own
			out = append(out, in)
		}
	}
	return out
}

// approve follows the setup to Jira, approves, and follows Jira's redirect
// back to the callback; it returns the callback's answer.
func (e *installEnv) approve(overrides map[string]string) (*http.Response, string) {
	e.t.Helper()
	resp, body := e.submit(overrides)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("setup: %d\n%s", resp.StatusCode, body)
	}
	authorize, _ := url.Parse(resp.Header.Get("Location"))
	verifier, err := e.jira.Approve(authorize.Query().Get("oauth_token"))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.get(SetupCallbackPath + "?oauth_token=" + url.QueryEscape(authorize.Query().Get("oauth_token")) +
		"&oauth_verifier=" + url.QueryEscape(verifier))
}

func TestInstallFlow(t *testing.T) {
	for _, version := range []string{"9.12.2", "10.3.1"} {
		t.Run("jira "+version, func(t *testing.T) {
			e := newInstallEnv(t, version)
			resp, body := e.approve(nil)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback: %d\n%s", resp.StatusCode, body)
			}
			ins := e.installations()
			if len(ins) != 1 {
				t.Fatalf("%d installations stored, want 1", len(ins))
			}
			in, err := e.app.Store().Installation(context.Background(), ins[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			wantAPI := "webhooks-1.0"
			if strings.HasPrefix(version, "10") {
				wantAPI = "jira-webhook-1.0"
			}
			hooks := e.jira.Webhooks()
			if in.WebhookAPI != wantAPI || len(hooks) != 1 || hooks[0].API != wantAPI || in.JiraVersion != version {
				t.Fatalf("installation %+v, webhooks %+v; want one on %s", in, hooks, wantAPI)
			}
			if !strings.HasPrefix(hooks[0].URL, e.public+WebhookPath) {
				t.Errorf("webhook URL %s is not ours", hooks[0].URL)
			}
			if wantAPI == "jira-webhook-1.0" && hooks[0].Secret != in.WebhookSecret {
				t.Errorf("Jira 10 webhook secret not set to the installation's")
			}
			if in.ExternalID != strings.TrimPrefix(e.jira.URL(), "http://")+":jirasync-test" {
				t.Errorf("external id %s", in.ExternalID)
			}
			_, page := e.get(resp.Header.Get("Location"))
			if !strings.Contains(page, `id="connected"`) || strings.Contains(page, in.WebhookSecret) {
				t.Errorf("installation page lacks the connected banner or shows the secret")
			}

			// A webhook from Jira reaches the plugin and assigns a group.
			ctx := context.Background()
			if err := e.app.Store().LinkGroup(ctx, "g1", in.ID, "APP-1"); err != nil {
				t.Fatal(err)
			}
			results := e.jira.Fire(ctx, []byte(`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated",
				"issue":{"id":"10001","key":"APP-1","fields":{"assignee":{"name":"alice","emailAddress":"alice@example.com"}}},
				"changelog":{"id":"1","items":[{"field":"assignee"}]}}`))
			if len(results) != 1 || results[0].Status != 200 {
				t.Fatalf("fired webhook: %+v", results)
			}
			if g, _ := e.app.Store().Group(ctx, "", "g1"); g.Assignee == nil || *g.Assignee != "alice" {
				t.Fatalf("g1 = %v after Jira's webhook, want alice", g.Assignee)
			}

			// Installing again updates the installation and replaces its webhook.
			if resp, body := e.approve(nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("reinstall: %d\n%s", resp.StatusCode, body)
			}
			again := e.installations()
			hooks2 := e.jira.Webhooks()
			if len(again) != 1 || again[0].ID != in.ID || len(hooks2) != 1 || hooks2[0].ID == hooks[0].ID {
				t.Fatalf("after reinstall: installations %+v, webhooks %+v", again, hooks2)
			}

			// Uninstall removes the webhook on Jira and the credentials.
			resp = e.do("POST", InstallationsPath+"/"+in.ID+"/uninstall", url.Values{"csrf": {e.csrf}})
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("uninstall: %d", resp.StatusCode)
			}
			gone, _ := e.app.Store().Installation(ctx, in.ID)
			if len(e.jira.Webhooks()) != 0 || gone.PrivateKeyPEM != "" || gone.AccessToken != "" || gone.UninstalledAt == 0 {
				t.Fatalf("after uninstall: webhooks %+v, installation %+v", e.jira.Webhooks(), gone)
			}
			if r := e.jira.Fire(ctx, []byte(`{"webhookEvent":"jira:issue_updated"}`)); len(r) != 0 {
				t.Errorf("Jira still has webhooks to fire: %+v", r)
			}
		})
	}
}

func TestSetupRefusesBadInput(t *testing.T) {
	e := newInstallEnv(t, "9.12.2")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	tlsJira := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsJira.Close()
	notJira := httptest.NewServer(http.NotFoundHandler())
	defer notJira.Close()
	noTokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer noTokens.Close()

	tests := []struct {
		name      string
		overrides map[string]string
		status    int
		message   string
	}{
		{"relative URL", map[string]string{"url": "jira.example.com"}, 400, "absolute http:// or https:// URL"},
		{"ftp URL", map[string]string{"url": "ftp://jira.example.com"}, 400, "absolute http:// or https:// URL"},
		{"URL with query", map[string]string{"url": e.jira.URL() + "?x=1"}, 400, "cannot have a query"},
		{"URL with fragment", map[string]string{"url": e.jira.URL() + "#top"}, 400, "cannot have a query"},
		{"empty consumer key", map[string]string{"consumer_key": ""}, 400, "1 to 200 characters"},
		{"long consumer key", map[string]string{"consumer_key": strings.Repeat("k", 201)}, 400, "1 to 200 characters"},
		{"key not PEM", map[string]string{"private_key": "not a key"}, 400, "not an RSA private key"},
		{"key too small", map[string]string{"private_key": smallPEM}, 400, "at least 2048 bits"},
		{"no organization", map[string]string{"organization": "\x00"}, 400, "Choose the organization"},
		{"unknown organization", map[string]string{"organization": "nope"}, 400, "Choose the organization"},
		{"jira unreachable", map[string]string{"url": closedURL}, 502, "Could not reach Jira"},
		{"TLS not trusted", map[string]string{"url": tlsJira.URL}, 502, "trusted TLS connection"},
		{"not a Jira", map[string]string{"url": notJira.URL}, 502, "answered HTTP 404"},
		{"no tokens in answer", map[string]string{"url": noTokens.URL}, 502, "had no token"},
		{"unknown consumer", map[string]string{"consumer_key": "someone-else"}, 400, "does not know the consumer key"},
		{"wrong key", map[string]string{"private_key": otherPEM}, 400, "could not verify our signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.submit(tt.overrides)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.message) {
				t.Fatalf("status %d, want %d with %q:\n%s", resp.StatusCode, tt.status, tt.message, body)
			}
			keyLine := strings.Split(e.setupForm(tt.overrides).Get("private_key"), "\n")
			if len(keyLine) > 1 && strings.Contains(body, keyLine[1]) {
				t.Error("the re-rendered form echoes the private key")
			}
			if u := e.setupForm(tt.overrides).Get("url"); !strings.Contains(body, `value="`+u+`"`) && tt.status == 400 && tt.name != "no organization" {
				t.Errorf("the form lost the URL that was typed")
			}
			if n := len(e.installations()); n != 0 {
				t.Errorf("%d installations stored", n)
			}
		})
	}
}

func TestSetupCallbackRefusals(t *testing.T) {
	e := newInstallEnv(t, "9.12.2")
	start := func() string {
		resp, body := e.submit(nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("setup: %d\n%s", resp.StatusCode, body)
		}
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query().Get("oauth_token")
	}
	t.Run("denied", func(t *testing.T) {
		tok := start()
		resp, body := e.get(SetupCallbackPath + "?oauth_token=" + url.QueryEscape(tok) + "&oauth_problem=permission_denied")
		if resp.StatusCode != 400 || !strings.Contains(body, "Access was denied") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
		// The token is gone: coming back again is "unknown or used".
		resp, body = e.get(SetupCallbackPath + "?oauth_token=" + url.QueryEscape(tok) + "&oauth_verifier=x")
		if resp.StatusCode != 400 || !strings.Contains(body, "unknown here, or it was already used") {
			t.Fatalf("reuse: %d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		resp, body := e.get(SetupCallbackPath + "?oauth_token=forged&oauth_verifier=x")
		if resp.StatusCode != 400 || !strings.Contains(body, "unknown here") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		tok := start()
		resp, body := e.get(SetupCallbackPath + "?oauth_token=" + url.QueryEscape(tok) + "&oauth_verifier=guessed")
		if resp.StatusCode/100 != 4 && resp.StatusCode/100 != 5 || !strings.Contains(body, "Nothing was stored") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e.app.cfg.SetupTimeout = time.Millisecond
		defer func() { e.app.cfg.SetupTimeout = DefaultSetupTimeout }()
		tok := start()
		time.Sleep(5 * time.Millisecond)
		verifier, err := e.jira.Approve(tok)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := e.get(SetupCallbackPath + "?oauth_token=" + url.QueryEscape(tok) + "&oauth_verifier=" + url.QueryEscape(verifier))
		if resp.StatusCode != 400 || !strings.Contains(body, "took too long") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	})
	t.Run("no permission to create the webhook", func(t *testing.T) {
		e.jira.SetWebhookPermission(false)
		defer e.jira.SetWebhookPermission(true)
		resp, body := e.approve(nil)
		if resp.StatusCode != 502 || !strings.Contains(body, "You do not have permission to create WebHook") {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	})
	if n := len(e.installations()); n != 0 {
		t.Errorf("%d installations stored after refused callbacks", n)
	}
}

func TestPagesNeedSignIn(t *testing.T) {
	_, srv, _ := newTestApp(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", srv.URL+SetupPath, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), LoginPath) {
		t.Fatalf("unsigned setup page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.PostForm(srv.URL+LoginPath, url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token sign-in: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(srv.URL+SetupPath, url.Values{"url": {"http://x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned POST: %d", resp.StatusCode)
	}
}

func TestCSRFIsChecked(t *testing.T) {
	e := newInstallEnv(t, "9.12.2")
	f := e.setupForm(nil)
	f.Set("csrf", "forged")
	resp := e.do("POST", SetupPath, f)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF: %d, want 403", resp.StatusCode)
	}
}

// TestSetupShowsThePublicKeyFirst: with a pasted private key, the form
// first shows its public key (for the Application Link) and keeps the
// key; Jira is asked only when the form comes back from that page, and
// a key changed after it was shown is shown again.
func TestSetupShowsThePublicKeyFirst(t *testing.T) {
	e := newInstallEnv(t, "9.12.2")
	pub, _ := validateKey(e.keyPEM)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
	otherPub, _ := validateKey(otherPEM)
	shownOn := func(body string) string {
		m := regexp.MustCompile(`name="key_shown" value="([0-9a-f]*)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no key_shown field:\n%s", body)
		}
		return m[1]
	}
	for _, tt := range []struct {
		name      string
		overrides map[string]string
		showing   string // the public key the page must show
	}{
		{"first submission", map[string]string{"key_shown": ""}, pub},
		{"key changed after it was shown", map[string]string{"private_key": otherPEM, "key_shown": keyFingerprint(pub)}, otherPub},
		{"show it again", map[string]string{"show_key": "1"}, pub},
	} {
		resp, body := e.submit(tt.overrides)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: %d to %q, want the form again (200), not Jira", tt.name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(body, `id="key-notice"`) || !strings.Contains(html.UnescapeString(body), tt.showing) || shownOn(body) != keyFingerprint(tt.showing) {
			t.Errorf("%s: the page does not show the public key to paste into Jira:\n%s", tt.name, body)
		}
		keyLine := strings.Split(e.setupForm(tt.overrides).Get("private_key"), "\n")[1]
		if !strings.Contains(html.UnescapeString(body), keyLine) || !strings.Contains(body, `id="connect"`) {
			t.Errorf("%s: the form lost the private key or has no Connect button", tt.name)
		}
	}
	// Back from that page, the setup goes to Jira.
	resp, body := e.submit(map[string]string{"key_shown": keyFingerprint(pub)})
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.jira.URL()) {
		t.Fatalf("after the public key was shown: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	// A generated key pair shows its public key at once.
	_, body = e.get(SetupPath + "?generate=1")
	if m := regexp.MustCompile(`(?s)<pre id="public-key">(.*?)</pre>`).FindStringSubmatch(body); m == nil || shownOn(body) != keyFingerprint(html.UnescapeString(m[1])) {
		t.Errorf("the generated key's page does not mark its public key shown:\n%s", body)
	}
}

// TestSetupNeedsAReachablePublicURL: a public URL that is a listen
// address (-addr 0.0.0.0:8080 and no -public-url) would register
// http://0.0.0.0:8080/... on Jira; the setup page says what to set and
// no setup starts.
func TestSetupNeedsAReachablePublicURL(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	pub, _ := validateKey(keyPEM)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	jira := "http://" + closed.Addr().String()
	closed.Close()
	for _, tt := range []struct {
		public    string
		reachable bool
	}{
		{"http://0.0.0.0:8080", false},
		{"http://[::]:8080", false},
		{"http://:8080", false},
		{"http://0.0.0.0", false},
		{"", false},
		{"0.0.0.0:8080", false},
		{"http://127.0.0.1:8080", true},
		{"https://jirasync.example.com", true},
		{"http://10.0.0.5:8080/jirasync", true},
	} {
		a, srv, _ := newTestAppConfig(t, func(c *Config) { c.PublicURL = tt.public })
		_, page := adminGet(t, srv.URL+SetupPath, a.cfg.AdminToken, "text/html")
		if got := strings.Contains(page, `id="public-url-error"`) && strings.Contains(page, "-public-url"); got == tt.reachable {
			t.Errorf("public URL %q: setup page says what to set: %v, want %v", tt.public, got, !tt.reachable)
		}
		form := url.Values{"url": {jira}, "consumer_key": {"k"}, "private_key": {keyPEM}, "organization": {"acme"},
			"key_shown": {keyFingerprint(pub)}}
		req, _ := http.NewRequest("POST", srv.URL+SetupPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+a.cfg.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Reachable: the setup starts and fails at the closed Jira (502).
		want := http.StatusBadGateway
		if !tt.reachable {
			want = http.StatusServiceUnavailable
		}
		if resp.StatusCode != want || tt.reachable == strings.Contains(string(b), "Jira cannot reach") {
			t.Errorf("public URL %q: setup %d, want %d\n%.300s", tt.public, resp.StatusCode, want, b)
		}
	}
}
