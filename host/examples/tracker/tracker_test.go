package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/platform/platformtest"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// TestConformance: the tracker's Platform is one jirasync can rely on.
func TestConformance(t *testing.T) {
	platformtest.Run(t, func(t *testing.T, s platformtest.Seed) platformtest.Instance {
		ctx := context.Background()
		tr, err := Open(ctx, filepath.Join(t.TempDir(), "tracker.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		// Links name installations the tracker knows only by id: what it
		// keeps is which organizations each may change.
		links := s.Data.Links
		s.Data.Links = nil
		if err := tr.Load(ctx, s.Data); err != nil {
			t.Fatal(err)
		}
		for inst, orgs := range s.Installations {
			for _, o := range orgs {
				if err := tr.Grant(ctx, inst, o); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tr.Load(ctx, platform.Data{Links: links}); err != nil {
			t.Fatal(err)
		}
		return platformtest.Instance{Platform: tr, Assignee: tr.assignee}
	})
}

// TestWebhookAssignsOnThePage runs the tracker with jirasync embedded, as
// `tracker -seed` does: the webhook Jira would send assigns both demo
// groups, and the tracker's own page shows it.
func TestWebhookAssignsOnThePage(t *testing.T) {
	ctx := context.Background()
	plugin, err := pluginbuild.Path()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	public := "http://" + hs.Listener.Addr().String()
	s, err := start(ctx, config{dataDir: t.TempDir(), plugin: plugin, publicURL: public, adminToken: "tracker-operator-token"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	hs.Config.Handler = s.handler()
	hs.Start()
	t.Cleanup(hs.Close)

	hook, err := s.seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hook, public+app.WebhookPath) {
		t.Fatalf("webhook URL %s is not the tracker's", hook)
	}
	// jirasync's pages are mounted, and list the tracker's organizations.
	req, _ := http.NewRequest("GET", public+app.SetupPath, nil)
	req.Header.Set("Authorization", "Bearer tracker-operator-token")
	if code, body := fetch(t, req); code != 200 || !strings.Contains(body, "Acme Corp") {
		t.Fatalf("setup page through the tracker's mux: %d\n%s", code, body)
	}

	for _, step := range []struct {
		name    string
		webhook bool
		want    map[string]string // group → assignee cell
	}{
		{"seeded", false, map[string]string{"grp-api-timeouts": "bob", "grp-login-crash": "unassigned"}},
		{"after Jira's webhook", true, map[string]string{"grp-api-timeouts": "alice", "grp-login-crash": "alice"}},
	} {
		if step.webhook {
			req, _ := http.NewRequest("POST", hook, strings.NewReader(demoWebhook))
			req.Header.Set("Content-Type", "application/json")
			if code, body := fetch(t, req); code != 200 || !strings.Contains(body, `"synced"`) {
				t.Fatalf("webhook: %d %s", code, body)
			}
		}
		req, _ := http.NewRequest("GET", public+"/", nil)
		code, page := fetch(t, req)
		if code != 200 {
			t.Fatalf("%s: page %d", step.name, code)
		}
		for group, want := range step.want {
			m := regexp.MustCompile(`id="assignee-` + group + `">([^<]*)<`).FindStringSubmatch(page)
			if m == nil || m[1] != want {
				t.Errorf("%s: page shows %s's assignee as %v, want %q\n%s", step.name, group, m, want, page)
			}
		}
	}
}

func fetch(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLinkFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want platform.Link
		err  bool
	}{
		{"grp-1=jira-ab12/APP-7", platform.Link{Group: "grp-1", Installation: "jira-ab12", IssueKey: "APP-7"}, false},
		{"grp-1=jira-ab12", platform.Link{}, true},
		{"grp-1/APP-7", platform.Link{}, true},
		{"grp-1=jira-ab12/app-7", platform.Link{}, true}, // not a Jira issue key
		{"=jira-ab12/APP-7", platform.Link{}, true},
	} {
		got, err := parseLink(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("parseLink(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	// run refuses a bad -link before it opens anything.
	dir := t.TempDir()
	if err := run(context.Background(), []string{"-data", dir, "-link", "grp-1"}, io.Discard); err == nil {
		t.Error("run accepted -link grp-1")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("run wrote %d files before refusing its flags", len(entries))
	}
}
