// Command jirasync runs the host: it serves Jira's webhooks and runs the
// sync logic in the sandboxed plugin.
//
//	jirasync serve [flags]     serve HTTP
//	jirasync token [flags]     print the webhook URL token of an installation
//	jirasync platform import [flags] FILE   load the built-in platform's data
//	jirasync platform export [flags]        write it out
//
// Every flag has an environment variable (JIRASYNC_ plus the flag name in
// upper case, dashes as underscores); a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "token":
		err = token(os.Args[2:])
	case "platform":
		err = platformCmd(os.Args[2:], os.Stdout)
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "jirasync: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jirasync:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  jirasync serve [flags]   serve Jira webhooks (see jirasync serve -h)
  jirasync token [flags]   print an installation's webhook token (see jirasync token -h)
  jirasync platform import [flags] FILE   load organizations, projects, users, groups, links (docs/API.md)
  jirasync platform export [flags]        write them as JSON to standard output
`)
}

// envDefaults sets every flag not given on the command line from its
// JIRASYNC_* variable.
func envDefaults(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "JIRASYNC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

type common struct {
	db, secretKeyFile string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.db, "db", filepath.Join("data", "jirasync.db"), "database: a SQLite file (created if missing), or a postgres:// URL that several hosts may share")
	fs.StringVar(&c.secretKeyFile, "secret-key-file", "", "key sealing secrets at rest, created 0600 on first run (default: secret.key beside a SQLite -db; required with PostgreSQL unless $JIRASYNC_SECRET_KEY is set, which wins)")
}

// keyFile is the secret key file: given, or beside a SQLite database. ""
// with PostgreSQL, where the host refuses to start unless the key is in
// the environment.
func (c *common) keyFile() string {
	if c.secretKeyFile != "" || store.IsPostgres(c.db) {
		return c.secretKeyFile
	}
	return filepath.Join(filepath.Dir(c.db), "secret.key")
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var c common
	c.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	plugin := fs.String("plugin", filepath.Join("build", "jirasync.wasm"), "plugin module")
	eng := fs.String("engine", "wasm", "plugin engine: wasm, or native (no sandbox; debugging and benchmarks only)")
	cacheDir := fs.String("cache-dir", filepath.Join("data", "cache"), "compiled plugin cache (empty: none)")
	pool := fs.Int("pool", 0, "plugin instances (0: one per CPU, at least 2)")
	callTimeout := fs.Duration("call-timeout", 30*time.Second, "limit on one plugin call")
	maxBody := fs.Int64("max-body", app.DefaultMaxBodyBytes, "largest webhook body accepted, in bytes")
	jiraTimeout := fs.Duration("jira-timeout", 10*time.Second, "limit on one request to Jira")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	publicURL := fs.String("public-url", "", "URL where Jira and browsers reach this host (default: http://ADDR)")
	adminToken := fs.String("admin-token", "", "operators' token for the pages, the delivery log and replay (bearer, Basic password or sign-in form) and the management API /api/v1 (bearer only), at least 16 bytes; empty: with SQLite a random one kept in admin.token beside the database, with PostgreSQL required")
	metricsAuth := fs.Bool("metrics-auth", false, "make /metrics need the admin token")
	answerWait := fs.Duration("answer-wait", app.DefaultAnswerWait, "how long a webhook waits for its first attempt before a 202")
	maxAttempts := fs.Int("max-attempts", pipeline.DefaultMaxAttempts, "attempts a delivery gets before it is dead")
	retryBase := fs.Duration("retry-base", pipeline.DefaultBaseBackoff, "wait after the first failed attempt; doubles per attempt")
	deliveryTimeout := fs.Duration("delivery-timeout", app.DefaultDeliveryTimeout, "limit on one processing attempt; a claim on a delivery lasts twice this, after which another host may take it")
	retention := fs.Duration("retention", app.DefaultRetention, "how long settled deliveries (done, stale, failed) and their attempts are kept")
	retentionIgnoredBody := fs.Duration("retention-ignored-body", app.DefaultRetentionIgnoredBody, "how long the body of an ignored delivery is kept (the delivery stays for -retention)")
	retentionDead := fs.Duration("retention-dead", 0, "how long dead deliveries and the assignee audit trail are kept (0: 3 times -retention)")
	grace := fs.Duration("grace", 30*time.Second, "on SIGTERM, how long in-flight work may take to finish")
	platformURL := fs.String("platform", "", "URL of a platform reached over HTTP (docs/PLATFORM.md); empty: the built-in platform")
	platformTokenFile := fs.String("platform-token-file", "", "file holding the bearer token for -platform, which the platform also presents on POST /api/v1/events")
	demo := fs.Bool("demo", false, "seed demo data (an organization, users, groups and an installation) and print a curl command")
	fs.Parse(args)
	if err := envDefaults(fs); err != nil {
		return err
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	platformToken, err := readPlatformToken(*platformURL, *platformTokenFile, *demo)
	if err != nil {
		return err
	}
	// Beside a SQLite database: the database, its key and the demo's
	// files; with PostgreSQL, only the demo's.
	dataDir := filepath.Dir(c.db)
	if store.IsPostgres(c.db) {
		dataDir = "data"
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *publicURL == "" {
		*publicURL = "http://" + *addr
	}
	a, err := app.New(ctx, app.Config{PublicURL: *publicURL, DB: c.db, PluginPath: *plugin, Engine: *eng, CacheDir: *cacheDir,
		PlatformURL: *platformURL, PlatformToken: platformToken,
		PoolSize: *pool, CallTimeout: *callTimeout, MaxBodyBytes: *maxBody, JiraTimeout: *jiraTimeout,
		AnswerWait: *answerWait, DeliveryTimeout: *deliveryTimeout, AdminToken: *adminToken, MetricsAuth: *metricsAuth, SecretKeyFile: c.keyFile(),
		Retry:     pipeline.Config{MaxAttempts: *maxAttempts, BaseBackoff: *retryBase},
		Retention: store.Retention{Settled: *retention, IgnoredBody: *retentionIgnoredBody, Dead: *retentionDead},
		Logger:    log})
	if err != nil {
		return err
	}
	// Stop order on SIGTERM: stop taking requests (waiting for those in
	// flight), then let the workers finish their attempts, both within the
	// grace period. Whatever is left stays stored for the next start.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), *grace)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			log.Warn("closing", "error", err)
		}
	}()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *demo {
		if err := seedDemo(ctx, a, "http://"+ln.Addr().String(), dataDir); err != nil {
			return fmt.Errorf("seeding demo data: %w", err)
		}
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "db", store.Redact(c.db), "engine", *eng)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	var c common
	c.register(fs)
	inst := fs.String("installation", "", "installation id")
	fs.Parse(args)
	if err := envDefaults(fs); err != nil {
		return err
	}
	if *inst == "" {
		return errors.New("token: -installation is required")
	}
	a, err := openStoreOnly(c.db, c.keyFile())
	if err != nil {
		return err
	}
	defer a.Close()
	in, err := a.Installation(context.Background(), *inst)
	if err != nil {
		return err
	}
	t, err := webhooktoken.Mint(in.ExternalID, []byte(in.WebhookSecret))
	if err != nil {
		return err
	}
	fmt.Println(t)
	return nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
