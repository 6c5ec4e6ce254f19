// Package app assembles the host: storage, the plugin engine, the host
// functions and the HTTP endpoints. The jirasync command and the scenario
// runner both build their host with it, so tests exercise what operators
// run.
//
// # Embedding
//
// A Go program embeds jirasync with this package: New with its own
// platform.Platform in Config.Platform, then Handler mounted on its own
// mux, served by its own http.Server; see the package's example and the
// runnable host/examples/tracker. New opens the database, compiles the
// plugin and starts the delivery workers; Close stops them, after the
// program has stopped its server (http.Server.Shutdown), so that no
// webhook is taken while the workers go. The package owns no process:
// it parses no flags, never exits, logs only to Config.Logger, and reads
// and writes only the files Config names (DB, the secret key beside a
// SQLite DB or SecretKeyFile, PluginPath, CacheDir); the one variable of
// the environment it reads is $JIRASYNC_SECRET_KEY, which wins over the
// key file.
//
// The handler expects to be mounted at the root of the address PublicURL
// names: Jira is given PublicURL + WebhookPath + token, and its redirects
// and session cookie are root-relative. Mount its prefixes,
// /extensions/jira-server/ (the webhook, setup, installations, delivery
// log, sign-in) and, with the built-in platform only, /api/v1/; /healthz,
// /readyz and /metrics are there too if the program wants them. Serving
// it under a path prefix (http.StripPrefix) is not supported.
//
// The program tells jirasync of its own changes of a group (assigned,
// resolved, unresolved) with PublishEvent, which another platform does
// with POST /api/v1/events; the workers carry them to Jira.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/host/internal/jiraclient"
	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/platform/platformhttp"
	"github.com/jirasync/jirasync/host/store"
)

// RetryConfig tunes the delivery workers: attempts, backoff, polling.
// It names the pipeline's own type, so that a program embedding the host
// can spell it.
type RetryConfig = pipeline.Config

// Config is everything the host can be told.
type Config struct {
	// DB names the database: the path of a SQLite file this host owns, or
	// the postgres:// URL of a database several hosts share.
	DB          string
	PluginPath  string // the plugin .wasm; ignored by the native engine
	Engine      string // "wasm" (default) or "native"
	CacheDir    string // wazero compilation cache; "" for none
	PoolSize    int
	CallTimeout time.Duration
	// DeliveryTimeout bounds one processing attempt, host functions and
	// Jira lookups included.
	DeliveryTimeout time.Duration
	// AnswerWait is how long a webhook request waits for its delivery's
	// first attempt before it is answered 202 (stored, queued).
	AnswerWait   time.Duration
	MaxBodyBytes int64
	// MaxClockSkew is how far in the future of its arrival a delivery's
	// Jira timestamp may be. The timestamp orders an issue's deliveries
	// (an older one arriving later is stale), so one from far ahead, a
	// broken clock or a forged 9e18, would make every later delivery of
	// that issue stale; it is ordered as if sent this long after it
	// arrived. Jira's and this host's clocks are NTP-synchronised in any
	// sane setup: minutes are plenty. Zero means DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	JiraTimeout  time.Duration
	// Workers process deliveries; 0 means one per plugin instance.
	Workers int
	// Retry tunes retries (attempts, backoff); zero fields take defaults.
	Retry RetryConfig
	// PublicURL is where Jira and browsers reach this host, for the OAuth
	// callback and the webhook URL (e.g. https://jirasync.example.com).
	PublicURL string
	// SetupTimeout is how long an operator has to approve a setup on Jira.
	SetupTimeout time.Duration
	// SecretKeyFile holds the key that seals secrets at rest, created on
	// first run; $JIRASYNC_SECRET_KEY takes precedence. Default: beside a
	// SQLite database; with PostgreSQL one of the two must be given, since
	// every host sharing the database needs the same key.
	SecretKeyFile string
	// Retention says how long settled deliveries, their bodies, dead ones
	// and the audit trail are kept; zero fields take the defaults, and
	// Setups is SetupTimeout.
	Retention store.Retention
	// RetentionEvery is how often expired rows are looked for.
	RetentionEvery time.Duration
	// AdminToken guards the operator pages and endpoints; at least
	// MinAdminTokenBytes long. Empty, with SQLite: a random one is made
	// once and kept in AdminTokenFile beside the database (0600); with
	// PostgreSQL it is required, since every replica needs the same.
	AdminToken string
	// MetricsAuth makes /metrics need the admin token too.
	MetricsAuth bool
	// Platform is where the platform's data lives; nil for the built-in
	// platform, in DB, managed with /api/v1.
	Platform platform.Platform
	// PlatformURL, when set, is a platform reached over HTTP through
	// jirasync's REST contract (docs/PLATFORM.md), with PlatformToken as
	// its bearer token; an installation's reach is read from DB.
	PlatformURL   string
	PlatformToken string
	Logger        *slog.Logger
}

// AdminTokenFile is where a host on SQLite keeps the admin token it made
// when given none, beside the database.
const AdminTokenFile = "admin.token"

// Defaults for Config fields left zero.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultDeliveryTimeout = 60 * time.Second
	DefaultAnswerWait      = 10 * time.Second
	DefaultMaxClockSkew    = 5 * time.Minute
)

// App is a running host.
type App struct {
	cfg      Config
	store    *store.Store
	platform platform.Platform
	engine   engine.Engine
	pipeline *pipeline.Pipeline
	metrics  *metrics
	jira     *jiraclient.Client
	log      *slog.Logger
	mux      *http.ServeMux
	stop     chan struct{} // stops the retention loop
	stopOnce sync.Once
	loops    sync.WaitGroup
	// Operator sign-in: the key sessions are signed with, failed
	// sign-ins per client, and the same-origin check of form posts.
	sessionKey  []byte
	signins     *throttle
	crossOrigin *http.CrossOriginProtection
}

// New opens the database, loads the plugin, wires the endpoints and starts
// the delivery workers.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if cfg.AnswerWait <= 0 {
		cfg.AnswerWait = DefaultAnswerWait
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if problem := publicURLProblem(cfg.PublicURL); problem != "" {
		cfg.Logger.Warn("Jira cannot reach this host's public URL; the setup page will not start a setup until -public-url is set",
			"public_url", cfg.PublicURL)
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = DefaultSetupTimeout
	}
	if err := retentionDefaults(&cfg); err != nil {
		return nil, err
	}
	if cfg.SecretKeyFile == "" {
		if store.IsPostgres(cfg.DB) && os.Getenv(secrets.EnvKey) == "" {
			return nil, fmt.Errorf("with PostgreSQL, every host must seal secrets with the same key: set %s or give a key file (-secret-key-file) that each host has a copy of", secrets.EnvKey)
		}
		cfg.SecretKeyFile = filepath.Join(filepath.Dir(cfg.DB), "secret.key")
	}
	box, err := secrets.Load(cfg.SecretKeyFile)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if cfg.AdminToken, err = adminToken(cfg); err != nil {
		return nil, err
	}
	sessionKey, err := sessionKey(box, cfg.AdminToken)
	if err != nil {
		return nil, err
	}
	crossOrigin := http.NewCrossOriginProtection()
	// Behind a proxy that rewrites Host, the browser's Origin is the
	// public URL's; Sec-Fetch-Site, which browsers send, decides first.
	if u, err := url.Parse(cfg.PublicURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		if err := crossOrigin.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("public URL %s: %w", cfg.PublicURL, err)
		}
	}
	st, err := store.Open(ctx, cfg.DB, box)
	if err != nil {
		return nil, err
	}
	jc := jiraclient.New()
	if cfg.JiraTimeout > 0 {
		jc.Timeout = cfg.JiraTimeout
	}
	// The built-in platform, the host's own tables, unless another is
	// given.
	var plat platform.Platform = st
	switch {
	case cfg.Platform != nil && cfg.PlatformURL != "":
		st.Close()
		return nil, errors.New("a platform is given twice: in Go and by URL")
	case cfg.Platform != nil:
		plat = cfg.Platform
	case cfg.PlatformURL != "":
		c, err := platformhttp.New(platformhttp.Config{URL: cfg.PlatformURL, Token: cfg.PlatformToken,
			Reach: st.ServedOrganizations, Logger: cfg.Logger.With("component", "platform")})
		if err != nil {
			st.Close()
			return nil, err
		}
		plat = c
	}
	caps := &capabilities.Set{Store: st, Platform: plat, Jira: jc}
	m := newMetrics(st)
	var eng engine.Engine
	switch cfg.Engine {
	case "", "wasm":
		module, err := os.ReadFile(cfg.PluginPath)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("reading plugin: %w (build it with `make plugin`)", err)
		}
		start := time.Now()
		eng, err = engine.NewWasm(ctx, caps, engine.WasmConfig{Module: module, CacheDir: cfg.CacheDir,
			PoolSize: cfg.PoolSize, CallTimeout: cfg.CallTimeout, Logger: cfg.Logger, Observe: m.observeCall})
		if err != nil {
			st.Close()
			return nil, err
		}
		cfg.Logger.Info("plugin loaded", "path", cfg.PluginPath, "bytes", len(module), "elapsed", time.Since(start).Round(time.Millisecond))
	case "native":
		eng = &engine.Native{Caps: caps}
		cfg.Logger.Warn("running the plugin natively, without a sandbox: for debugging and benchmarks only")
	default:
		st.Close()
		return nil, fmt.Errorf("unknown engine %q (want wasm or native)", cfg.Engine)
	}
	m.registerEngine(eng)
	workers := cfg.Workers
	if workers <= 0 {
		workers = cfg.PoolSize
		if w, ok := eng.(*engine.Wasm); ok {
			workers = w.PoolSize()
		}
	}
	rc := cfg.Retry
	rc.Workers, rc.AttemptTimeout = max(workers, 1), cfg.DeliveryTimeout
	pl, err := pipeline.New(st, plat, eng, cfg.Logger, m, rc)
	if err == nil {
		err = pl.Start(ctx)
	}
	if err != nil {
		eng.Close(ctx)
		st.Close()
		return nil, fmt.Errorf("starting delivery workers: %w", err)
	}
	a := &App{cfg: cfg, store: st, platform: plat, engine: eng, pipeline: pl, metrics: m, jira: jc, log: cfg.Logger, mux: http.NewServeMux(),
		stop: make(chan struct{}), sessionKey: sessionKey, signins: newThrottle(), crossOrigin: crossOrigin}
	a.loops.Add(1)
	go func() { defer a.loops.Done(); a.retentionLoop(a.stop) }()
	a.routes()
	a.eventRoutes()
	a.deliveryRoutes()
	a.watermarkRoutes()
	a.loginRoutes()
	a.installRoutes()
	if plat == platform.Platform(st) {
		// Managing the data is the built-in platform's; another platform
		// is managed where it lives.
		a.platformRoutes()
		a.platformPages()
	}
	return a, nil
}

// adminToken is the operator's token, checked, or the one a host on
// SQLite made for itself: written once to a 0600 file beside the
// database, whose path (never the token) is logged.
func adminToken(cfg Config) (string, error) {
	token := cfg.AdminToken
	if token == "" {
		if store.IsPostgres(cfg.DB) {
			return "", errors.New("with PostgreSQL, every host must accept the same admin token: set -admin-token or JIRASYNC_ADMIN_TOKEN " +
				"(at least 16 bytes, e.g. the output of: head -c 24 /dev/urandom | base64)")
		}
		file := filepath.Join(filepath.Dir(cfg.DB), AdminTokenFile)
		var made bool
		var err error
		token, made, err = secrets.ReadOrCreateFile(file, func() (string, error) {
			b := make([]byte, 24)
			_, err := rand.Read(b)
			return base64.RawURLEncoding.EncodeToString(b), err
		})
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		if made {
			cfg.Logger.Warn("no admin token set (Config.AdminToken; jirasync serve: -admin-token or JIRASYNC_ADMIN_TOKEN); made a random one: sign in with the token in this file", "file", file)
		} else {
			cfg.Logger.Info("no admin token set; using the one kept in this file", "file", file)
		}
	}
	if len(token) < MinAdminTokenBytes {
		return "", fmt.Errorf("the admin token is %d bytes; use at least %d (e.g. the output of: head -c 24 /dev/urandom | base64)", len(token), MinAdminTokenBytes)
	}
	return token, nil
}

// Handler serves the host's endpoints.
func (a *App) Handler() http.Handler { return a.mux }

// Store is the host's database, for seeding and inspection.
func (a *App) Store() *store.Store { return a.store }

// Platform is where the host reads and writes platform data.
func (a *App) Platform() platform.Platform { return a.platform }

// Close stops the workers, waiting for attempts in flight until ctx is
// done, then releases the engine and the database. A delivery not finished
// by then stays stored and is taken up on the next start.
func (a *App) Close(ctx context.Context) error {
	a.stopOnce.Do(func() { close(a.stop) })
	a.loops.Wait()
	return errors.Join(a.pipeline.Stop(ctx), a.engine.Close(context.WithoutCancel(ctx)), a.store.Close())
}
