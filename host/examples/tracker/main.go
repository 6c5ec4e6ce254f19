// Command tracker is an example of embedding jirasync in a Go platform: a
// tiny issue tracker with its own SQLite tables, which implements
// platform.Platform over them, mounts the jirasync host on its own mux
// beside its own page, and starts and stops it itself. A webhook from Jira
// assigns one of its groups, and its page shows it.
//
//	make plugin && go run ./host/examples/tracker -seed
//
// -seed loads demo data (organization acme, users alice and bob, two
// groups linked to APP-1 of a Jira installation) and prints a curl
// command that sends the webhook Jira would. To connect a real Jira, sign
// in on /extensions/jira-server/setup with the admin token, then link
// groups to the installation it made with -link.
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracker:", err)
		os.Exit(1)
	}
}

// config is what run is told.
type config struct {
	addr, dataDir, plugin, publicURL, adminToken string
	seed                                         bool
	links                                        []platform.Link
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tracker", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8081", "listen address")
	fs.StringVar(&c.dataDir, "data", filepath.Join("data", "tracker"), "folder of the tracker's and jirasync's databases")
	fs.StringVar(&c.plugin, "plugin", filepath.Join("build", "jirasync.wasm"), "jirasync's plugin (make plugin)")
	fs.StringVar(&c.publicURL, "public-url", "", "URL where Jira and browsers reach the tracker (default: http://ADDR)")
	fs.StringVar(&c.adminToken, "admin-token", "", "jirasync's admin token (setup page, delivery log); empty: a random one, logged")
	fs.BoolVar(&c.seed, "seed", false, "load demo data and a demo Jira installation, and print a webhook to send")
	fs.Func("link", "GROUP=INSTALLATION/ISSUE-KEY: link a group to a Jira issue of an installation, which may then change it (repeatable)",
		func(v string) error {
			l, err := parseLink(v)
			c.links = append(c.links, l)
			return err
		})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.publicURL == "" {
		c.publicURL = "http://" + c.addr
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := start(ctx, c, log)
	if err != nil {
		return err
	}
	defer s.close()
	for _, l := range c.links {
		if err := s.link(ctx, l); err != nil {
			return fmt.Errorf("-link %s=%s/%s: %w", l.Group, l.Installation, l.IssueKey, err)
		}
	}
	if c.seed {
		hook, err := s.seed(ctx)
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		fmt.Fprintf(out, `Demo data is in place. Open %s/ to see the groups, then send the webhook Jira would send
when APP-1 is assigned to alice:

  curl -sS -H 'Content-Type: application/json' -d '%s' \
    %s

and reload the page: both groups are alice's.
`, c.publicURL, demoWebhook, hook)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("tracker serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// The program's server stops first; the deferred close then stops
	// jirasync's workers.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// parseLink reads GROUP=INSTALLATION/ISSUE-KEY.
func parseLink(v string) (platform.Link, error) {
	group, rest, ok1 := strings.Cut(v, "=")
	inst, key, ok2 := strings.Cut(rest, "/")
	l := platform.Link{Group: group, Installation: inst, IssueKey: key}
	if !ok1 || !ok2 {
		return l, errors.New("want GROUP=INSTALLATION/ISSUE-KEY")
	}
	return l, l.Validate()
}

// server is the tracker with jirasync embedded.
type server struct {
	tracker *Tracker
	host    *app.App
	public  string
	log     *slog.Logger
}

// start opens the tracker's database and the embedded jirasync host, with
// the tracker as its platform.
func start(ctx context.Context, c config, log *slog.Logger) (*server, error) {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, err
	}
	tr, err := Open(ctx, filepath.Join(c.dataDir, "tracker.db"))
	if err != nil {
		return nil, err
	}
	host, err := app.New(ctx, app.Config{
		DB:         filepath.Join(c.dataDir, "jirasync.db"),
		PluginPath: c.plugin,
		CacheDir:   filepath.Join(c.dataDir, "cache"),
		PublicURL:  c.publicURL,
		AdminToken: c.adminToken,
		Platform:   tr,
		Logger:     log.With("component", "jirasync"),
	})
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &server{tracker: tr, host: host, public: strings.TrimSuffix(c.publicURL, "/"), log: log}, nil
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := errors.Join(s.host.Close(ctx), s.tracker.Close()); err != nil {
		s.log.Warn("closing", "error", err)
	}
}

// handler is the tracker's mux: its own page, and jirasync's endpoints
// under the prefix they expect, at the root.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.Handle("/extensions/jira-server/", s.host.Handler())
	return mux
}

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	groups, err := s.tracker.Groups(r.Context())
	if err != nil {
		http.Error(w, "the tracker's database failed", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, struct {
		Groups    []GroupRow
		SetupPath string
	}{groups, app.SetupPath}); err != nil {
		s.log.Warn("rendering the page", "error", err)
	}
}

// link links a group to a Jira issue and lets the installation change the
// groups of the group's organization.
func (s *server) link(ctx context.Context, l platform.Link) error {
	groups, err := s.tracker.Groups(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.ID == l.Group {
			if err := s.tracker.Grant(ctx, l.Installation, g.Organization); err != nil {
				return err
			}
			return s.tracker.Load(ctx, platform.Data{Links: []platform.Link{l}})
		}
	}
	return fmt.Errorf("no group %q", l.Group)
}

// Demo data: the same story as `jirasync serve -demo`.
const (
	demoInstallation = "tracker-demo"
	demoJira         = "http://127.0.0.1:8090"
	demoConsumerKey  = "tracker-demo"
	demoWebhook      = `{"timestamp":1795000000000,"webhookEvent":"jira:issue_updated","issue":{"id":"10001","key":"APP-1","fields":{"assignee":{"name":"alice","emailAddress":"alice@example.com"}}},"changelog":{"id":"1","items":[{"field":"assignee"}]}}`
)

func ptr(s string) *string { return &s }

// seed loads the demo data into the tracker, connects a demo Jira
// installation in jirasync (as the setup page would, without the OAuth
// dance) and returns the webhook URL Jira would be given.
func (s *server) seed(ctx context.Context) (string, error) {
	err := s.tracker.Load(ctx, platform.Data{
		Organizations: []platform.Organization{{ID: "acme", Name: "Acme Corp"}},
		Projects:      []platform.Project{{ID: "backend", Organization: "acme", Name: "Backend"}, {ID: "frontend", Organization: "acme", Name: "Frontend"}},
		Users: []platform.User{
			{ID: "alice", Name: "Alice", Emails: []platform.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend", "frontend"}},
			{ID: "bob", Name: "Bob", Emails: []platform.Email{{Address: "bob@example.com", Verified: true}}, Projects: []string{"backend"}},
		},
		Groups: []platform.Group{{ID: "grp-api-timeouts", Project: "backend", Title: "API timeouts", Assignee: ptr("bob")},
			{ID: "grp-login-crash", Project: "frontend", Title: "Login crash"}},
	})
	if err != nil {
		return "", err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	in := store.Installation{ID: demoInstallation, ExternalID: strings.TrimPrefix(demoJira, "http://") + ":" + demoConsumerKey,
		BaseURL: demoJira, ConsumerKey: demoConsumerKey, WebhookSecret: base64.RawURLEncoding.EncodeToString(secret), VerifyTLS: true,
		Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}}
	if err := s.host.PutInstallation(ctx, in); err != nil {
		return "", err
	}
	for _, g := range []string{"grp-api-timeouts", "grp-login-crash"} {
		if err := s.link(ctx, platform.Link{Group: g, Installation: demoInstallation, IssueKey: "APP-1"}); err != nil {
			return "", err
		}
	}
	token, err := webhooktoken.Mint(in.ExternalID, []byte(in.WebhookSecret))
	if err != nil {
		return "", err
	}
	return s.public + app.WebhookPath + token, nil
}
