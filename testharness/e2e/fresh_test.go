package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// freshHost is the jirasync binary serving an empty database, as an
// operator starts it the first time: no -demo, nothing seeded.
type freshHost struct {
	public  string
	cmd     *exec.Cmd
	logFile string
}

// log is what the host logged so far, for failure messages.
func (h *freshHost) log() string {
	b, err := os.ReadFile(h.logFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func startFreshHost(t *testing.T) *freshHost {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "jirasync")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/jirasync/jirasync/host/cmd/jirasync")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building jirasync: %v\n%s", err, out)
	}
	plugin, err := pluginbuild.Path()
	if err != nil {
		t.Fatal(err)
	}
	// A free loopback port: the host must know its public URL before it
	// listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &freshHost{public: "http://" + addr}
	h.cmd = exec.Command(bin, "serve", "-addr", addr, "-db", filepath.Join(dir, "data", "jirasync.db"), "-plugin", plugin,
		"-cache-dir", pluginbuild.CacheDir(), "-admin-token", adminToken)
	// Only flags configure it: no JIRASYNC_* variable of the test's
	// environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JIRASYNC_") {
			h.cmd.Env = append(h.cmd.Env, kv)
		}
	}
	h.logFile = filepath.Join(dir, "jirasync.log")
	logs, err := os.Create(h.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close() // the child has its own descriptor
	h.cmd.Stderr = logs
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(h.public + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jirasync not ready after a minute: %v\n%s", err, h.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api sends a management API request with the admin token and decodes
// the JSON answer into out (when not nil); it fails the test unless the
// status is want.
func (h *freshHost) api(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.public+path, r)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
}

// TestFreshHostInChromium sets up a fresh host end to end the way the
// README tells an operator to: the platform's data through the management
// API, the Jira connected on the setup page in a browser, then a webhook
// fired by Jira assigns the group, seen through the API and on the admin
// platform page; SIGTERM then stops the host cleanly.
func TestFreshHostInChromium(t *testing.T) {
	h := startFreshHost(t)
	jira, err := fakejira.Start(fakejira.Config{Version: "10.3.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jira.Close() })
	key, keyText := keyPEM(t)
	jira.AddConsumer("jirasync-e2e", &key.PublicKey)
	e := &env{public: h.public, jira: jira, goodKey: keyText, artifacts: os.Getenv("JIRASYNC_ARTIFACTS")}
	if e.artifacts == "" {
		e.artifacts = filepath.Join("..", "artifacts")
	}
	if err := os.MkdirAll(e.artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// The organization first: the setup form offers the organizations.
	h.api(t, "PUT", app.APIPrefix+"/organizations/acme", map[string]string{"name": "Acme Corp"}, 200, nil)

	ctx := browser(t)
	var buf []byte
	var version string
	if err := chromedp.Run(ctx,
		e.fill(e.goodKey),
		e.shot("fresh-01-setup-form", &buf),
		chromedp.Click("#connect", chromedp.ByID),
		chromedp.WaitVisible("#approve", chromedp.ByID),
		chromedp.Click("#approve", chromedp.ByID),
		chromedp.WaitVisible("#connected", chromedp.ByID),
		chromedp.Text("#jira-version", &version, chromedp.ByID),
		e.shot("fresh-02-installation", &buf),
	); err != nil {
		t.Fatalf("connecting Jira in the browser: %v\n%s", err, h.log())
	}
	if version != "10.3.1" {
		t.Fatalf("installation page shows Jira %q", version)
	}
	var list struct{ Installations []struct{ ID string } }
	h.api(t, "GET", app.InstallationsPath, nil, 200, &list)
	if len(list.Installations) != 1 {
		t.Fatalf("installations %+v, want the one just connected", list.Installations)
	}
	inst := list.Installations[0].ID

	// The rest of the platform's data, linked to the new installation.
	for _, step := range []struct {
		path string
		body any
	}{
		{"/projects/backend", map[string]string{"organization": "acme", "name": "Backend"}},
		{"/users/alice", map[string]any{"name": "Alice", "emails": []map[string]any{{"email": "alice@example.com", "verified": true}},
			"projects": []string{"backend"}}},
		{"/groups/g1", map[string]any{"project": "backend", "title": "API timeouts"}},
		{"/groups/g1/links/" + inst + "/APP-1", nil},
	} {
		h.api(t, "PUT", app.APIPrefix+step.path, step.body, 200, nil)
	}

	// Jira's webhook: the payload hides the email, so the plugin asks
	// Jira with the access token the browser's setup obtained.
	jira.AddUser(fakejira.User{Name: "alice", Key: "JIRAUSER10000", EmailAddress: "alice@example.com", Active: true})
	res := jira.Fire(context.Background(), []byte(`{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated",
		"issue":{"id":"10001","key":"APP-1","fields":{"assignee":{"name":"alice","key":"JIRAUSER10000"}}},
		"changelog":{"id":"1","items":[{"field":"assignee","fieldtype":"jira","from":null,"to":"alice"}]}}`))
	if len(res) != 1 || res[0].Status != 200 {
		t.Fatalf("webhook from Jira: %+v\n%s", res, h.log())
	}
	var g struct{ Assignee *string }
	h.api(t, "GET", app.APIPrefix+"/groups/g1", nil, 200, &g)
	if g.Assignee == nil || *g.Assignee != "alice" {
		t.Fatalf("g1's assignee %v after Jira's webhook, want alice", g.Assignee)
	}
	var cell string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(h.public+app.PlatformPath+"?issue_key=APP-1"),
		chromedp.WaitVisible("#issue_key", chromedp.ByID),
		chromedp.Evaluate(`[...document.querySelectorAll('tr')].filter(r => r.cells[0] && r.cells[0].textContent === 'g1')
			.map(r => r.cells[3].textContent).join('|')`, &cell),
		e.shot("fresh-03-platform", &buf),
	); err != nil {
		t.Fatalf("platform page: %v", err)
	}
	if cell != "alice" {
		t.Fatalf("platform page shows g1's assignee as %q, want alice", cell)
	}

	// SIGTERM: the host stops within its grace period and exits 0.
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("jirasync after SIGTERM: %v\n%s", err, h.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("jirasync still running 30s after SIGTERM\n%s", h.log())
	}
}
