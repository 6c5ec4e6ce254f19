// Package e2e drives the product the way an operator does: a real headless
// Chromium signs in, fills the setup form against the simulated Jira on
// loopback, approves on Jira's authorize page, lands on the installation
// page; then Jira's webhook assigns a group. Screenshots of every step go
// to testharness/artifacts (or $JIRASYNC_ARTIFACTS).
package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

const adminToken = "e2e-operator-token"

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed; .ci/run installs Debian's chromium package")
	}
	t.Skip("Chromium not installed (apt-get install chromium); skipping the browser test")
	return ""
}

type env struct {
	public     string
	host       *app.App
	jira       *fakejira.Server
	goodKey    string
	goodPublic string // PEM
	wrongKey   string
	artifacts  string
}

func keyPEM(t *testing.T) (*rsa.PrivateKey, string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func start(t *testing.T) *env {
	ctx := context.Background()
	plugin, err := pluginbuild.Path()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{public: "http://" + ln.Addr().String()}
	dir := t.TempDir()
	e.host, err = app.New(ctx, app.Config{DB: filepath.Join(dir, "j.db"), PluginPath: plugin, PublicURL: e.public,
		CacheDir: pluginbuild.CacheDir(), AdminToken: adminToken,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.host.Close(context.Background()) })
	srv := &http.Server{Handler: e.host.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	st := e.host.Store()
	alice := "alice"
	for _, err := range []error{
		st.PutOrganization(ctx, store.Organization{ID: "acme", Name: "Acme Corp"}),
		st.PutProject(ctx, store.Project{ID: "backend", Organization: "acme"}),
		st.PutUser(ctx, store.User{ID: alice, Emails: []store.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend"}}),
		st.PutGroup(ctx, store.Group{ID: "g1", Project: "backend", Title: "API timeouts"}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.jira, err = fakejira.Start(fakejira.Config{Version: "9.12.2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.jira.Close() })
	good, goodPEM := keyPEM(t)
	_, e.wrongKey = keyPEM(t)
	e.goodKey = goodPEM
	pub, _ := x509.MarshalPKIXPublicKey(&good.PublicKey)
	e.goodPublic = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	e.jira.AddConsumer("jirasync-e2e", &good.PublicKey)

	e.artifacts = os.Getenv("JIRASYNC_ARTIFACTS")
	if e.artifacts == "" {
		e.artifacts = filepath.Join("..", "artifacts")
	}
	if err := os.MkdirAll(e.artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return e
}

// browser starts a headless Chromium. Host names resolve only as extra
// rules map them: everything else fails, so no test reaches the network.
func browser(t *testing.T, resolve ...string) context.Context {
	// Not t.TempDir: Chromium may still be writing its profile when the
	// test's cleanup runs, and a failed removal would fail the test.
	profile, err := os.MkdirTemp("", "jirasync-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("host-resolver-rules", strings.Join(append(resolve, "MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1"), ", ")),
		chromedp.WindowSize(1200, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

func (e *env) shot(name string, buf *[]byte) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if err := chromedp.FullScreenshot(buf, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(e.artifacts, name+".png"), *buf, 0o644)
	})
}

// fill signs in when asked and submits the setup form with key.
func (e *env) fill(key string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(e.public + app.SetupPath),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var onLogin bool
			if err := chromedp.Evaluate(`!!document.querySelector('#token')`, &onLogin).Do(ctx); err != nil || !onLogin {
				return err
			}
			return chromedp.Tasks{
				chromedp.SendKeys("#token", adminToken, chromedp.ByID),
				chromedp.Click("#sign-in", chromedp.ByID),
			}.Do(ctx)
		}),
		chromedp.WaitVisible("#setup", chromedp.ByID),
		chromedp.SetValue("#url", e.jira.URL(), chromedp.ByID),
		chromedp.SetValue("#consumer_key", "jirasync-e2e", chromedp.ByID),
		chromedp.SetValue("#private_key", key, chromedp.ByID),
		chromedp.SetValue("#organization", "acme", chromedp.ByID),
		// A pasted key: the page shows its public key, for the
		// Application Link, before Jira is asked.
		chromedp.Click("#show-public-key", chromedp.ByID),
		chromedp.WaitVisible("#key-notice", chromedp.ByID),
	}
}

func TestInstallInChromium(t *testing.T) {
	e := start(t)
	ctx := browser(t)
	var buf []byte
	var version, state, shown string

	// Approve: sign in, fill the form, see the public key, approve on
	// Jira, see the installation.
	err := chromedp.Run(ctx,
		e.fill(e.goodKey),
		chromedp.Text("#public-key", &shown, chromedp.ByID),
		e.shot("01-setup-form", &buf),
		chromedp.Click("#connect", chromedp.ByID),
		chromedp.WaitVisible("#approve", chromedp.ByID),
		e.shot("02-jira-authorize", &buf),
		chromedp.Click("#approve", chromedp.ByID),
		chromedp.WaitVisible("#connected", chromedp.ByID),
		chromedp.Text("#jira-version", &version, chromedp.ByID),
		chromedp.Text("#state", &state, chromedp.ByID),
		e.shot("03-installation", &buf),
	)
	if err != nil {
		t.Fatalf("approve path: %v", err)
	}
	if strings.TrimSpace(shown) != strings.TrimSpace(e.goodPublic) {
		t.Errorf("the setup page showed the public key\n%s\nwant the pasted private key's\n%s", shown, e.goodPublic)
	}
	if version != "9.12.2" || !strings.Contains(state, "connected") {
		t.Fatalf("installation page: version %q state %q", version, state)
	}

	// Jira's webhook, sent to the URL the install registered, assigns a group.
	bg := context.Background()
	ins, err := e.host.Store().Installations(bg)
	if err != nil || len(ins) != 1 {
		t.Fatalf("installations %+v, %v", ins, err)
	}
	if err := e.host.Store().LinkGroup(bg, "g1", ins[0].ID, "APP-1"); err != nil {
		t.Fatal(err)
	}
	// The payload hides the email: the plugin looks it up with the access
	// token the browser flow obtained.
	e.jira.AddUser(fakejira.User{Name: "alice", Key: "JIRAUSER10000", EmailAddress: "alice@example.com", Active: true})
	res := e.jira.Fire(bg, []byte(`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10001","key":"APP-1","fields":{"assignee":{"name":"alice","key":"JIRAUSER10000"}}},
		"changelog":{"id":"1","items":[{"field":"assignee","fieldtype":"jira","from":null,"to":"alice"}]}}`))
	if len(res) != 1 || res[0].Status != 200 {
		t.Fatalf("webhook from Jira: %+v", res)
	}
	g, _ := e.host.Store().Group(bg, "", "g1")
	if g.Assignee == nil || *g.Assignee != "alice" {
		t.Fatalf("g1 = %v after Jira's webhook, want alice", g.Assignee)
	}

	// Deny: nothing stored, a clear page.
	var title string
	err = chromedp.Run(ctx,
		e.fill(e.goodKey),
		chromedp.Click("#connect", chromedp.ByID),
		chromedp.WaitVisible("#deny", chromedp.ByID),
		chromedp.Click("#deny", chromedp.ByID),
		chromedp.WaitVisible("#message-title", chromedp.ByID),
		chromedp.Text("#message-title", &title, chromedp.ByID),
		e.shot("04-denied", &buf),
	)
	if err != nil {
		t.Fatalf("deny path: %v", err)
	}
	if title != "Access not approved" {
		t.Errorf("deny page title %q", title)
	}

	// Wrong key: Jira refuses the signature; the form says why.
	var msg string
	err = chromedp.Run(ctx,
		e.fill(e.wrongKey),
		chromedp.Click("#connect", chromedp.ByID),
		chromedp.WaitVisible("#form-error", chromedp.ByID),
		chromedp.Text("#form-error", &msg, chromedp.ByID),
		e.shot("05-wrong-key", &buf),
	)
	if err != nil {
		t.Fatalf("wrong-key path: %v", err)
	}
	if !strings.Contains(msg, "could not verify our signature") {
		t.Errorf("wrong-key message %q", msg)
	}
	if ins, _ := e.host.Store().Installations(bg); len(ins) != 1 {
		t.Errorf("%d installations after the deny and wrong-key paths, want still 1", len(ins))
	}

	// Sign out from the menu: the setup page asks for the token again.
	err = chromedp.Run(ctx,
		chromedp.Navigate(e.public+app.InstallationsPath+"?format=html"),
		chromedp.Click("#nav-sign-out", chromedp.ByID),
		chromedp.WaitVisible("#sign-out", chromedp.ByID),
		chromedp.Click("#sign-out", chromedp.ByID),
		chromedp.WaitVisible("#login-notice", chromedp.ByID),
		e.shot("06-signed-out", &buf),
		chromedp.Navigate(e.public+app.SetupPath),
		chromedp.WaitVisible("#token", chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("sign-out: %v", err)
	}
}

// TestSignInStaysOnThisHost: a sign-in link whose next= leads elsewhere
// (a tab browsers drop, a backslash they read as a slash, a scheme) lands
// on this host's setup page. evil.example resolves to a loopback server
// that counts visits, so a redirect that escaped would be seen.
func TestSignInStaysOnThisHost(t *testing.T) {
	e := start(t)
	var visits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		visits.Add(1)
		w.Write([]byte("<!doctype html><title>evil</title><p id=evil>another site</p>"))
	}))
	t.Cleanup(evil.Close)
	evilAddr := strings.TrimPrefix(evil.URL, "http://")
	ctx := browser(t, "MAP evil.example "+evilAddr)

	// The rule works: the browser does reach the evil server by name.
	if err := chromedp.Run(ctx, network.Enable(), chromedp.Navigate("http://evil.example/"), chromedp.WaitVisible("#evil", chromedp.ByID)); err != nil {
		t.Fatalf("evil.example does not resolve to the loopback server: %v", err)
	}
	visits.Store(0)
	// Every redirect the host answers: the pages' form-action policy stops
	// Chromium following one to another site after a form, so the test
	// also resolves each Location the way the browser does (dropping tabs
	// and newlines, reading \ as /) and wants this host's origin.
	var mu sync.Mutex
	var redirects []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventResponseReceivedExtraInfo); ok && ev.StatusCode/100 == 3 {
			if loc, ok := ev.Headers["Location"].(string); ok {
				mu.Lock()
				redirects = append(redirects, loc)
				mu.Unlock()
			}
		}
	})
	origin := func(ctx context.Context, loc string) (string, error) {
		js, _ := json.Marshal(loc)
		var o string
		err := chromedp.Run(ctx, chromedp.Evaluate(`new URL(`+string(js)+`, document.baseURI).origin`, &o))
		return o, err
	}

	for _, next := range []string{"/%09/evil.example", "/%09%09/evil.example", "/%0A/evil.example", "/%5Cevil.example",
		"//evil.example", "http://evil.example/", "/%09/" + evilAddr} {
		login := e.public + app.LoginPath + "?next=" + next
		var location string
		err := chromedp.Run(ctx,
			chromedp.Navigate(login),
			chromedp.WaitVisible("#token", chromedp.ByID),
			chromedp.SendKeys("#token", adminToken, chromedp.ByID),
			chromedp.Click("#sign-in", chromedp.ByID),
			chromedp.ActionFunc(func(ctx context.Context) error {
				// Wait until the browser has left the sign-in page and
				// finished loading wherever it went.
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					var ready string
					if err := chromedp.Location(&location).Do(ctx); err != nil {
						return err
					}
					if err := chromedp.Evaluate(`document.readyState`, &ready).Do(ctx); err == nil && location != login && ready == "complete" {
						return nil
					}
				}
				return fmt.Errorf("still on %s after signing in", location)
			}),
		)
		if err != nil {
			t.Errorf("next=%s: %v", next, err)
		}
		mu.Lock()
		sent := redirects
		redirects = nil
		mu.Unlock()
		if len(sent) == 0 {
			t.Errorf("next=%s: no redirect after signing in", next)
		}
		for _, loc := range sent {
			o, err := origin(ctx, loc)
			if err != nil || o != e.public {
				t.Errorf("next=%s: the host redirected to %q, which the browser reads as origin %q (%v), want %s", next, loc, o, err, e.public)
			}
		}
		if !strings.HasPrefix(location, e.public+"/") || visits.Load() != 0 {
			t.Errorf("next=%s: the browser landed on %s (%d visits to evil.example), want a page of %s", next, location, visits.Load(), e.public)
		} else if location != e.public+app.SetupPath {
			t.Errorf("next=%s: landed on %s, want the setup page", next, location)
		}
	}
}
