package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

// Runner runs scenarios. One Runner can run many; each scenario gets a
// fresh database, host and simulated Jira.
type Runner struct {
	// Engine is "wasm" (the product) or "native".
	Engine     string
	PluginPath string
	CacheDir   string
	// Postgres, a postgres:// URL, runs each scenario in a fresh schema of
	// that database; empty, in a fresh SQLite file.
	Postgres string
	// Platform is where the platform's data lives: "" or "builtin" for
	// the host's own tables, "http" for the simulated platform reached
	// over HTTP (testharness/fakeplatform, docs/PLATFORM.md).
	Platform string
	// Log receives the host's and the simulated Jira's logs; nil drops them.
	Log io.Writer
	// Trace, when set, gets one line per delivery.
	Trace io.Writer

	key *rsa.PrivateKey
}

// Result is the outcome of one scenario.
type Result struct {
	Name     string
	Failures []string
	Elapsed  time.Duration
}

// Passed reports whether every expectation held.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Run runs one scenario. An error means the scenario could not be run at
// all (its setup failed); a failed expectation is a Result failure.
func (r *Runner) Run(ctx context.Context, sc *Scenario) (res Result, err error) {
	start := time.Now()
	res.Name = sc.Name
	defer func() { res.Elapsed = time.Since(start) }()
	if err := r.ensureKey(); err != nil {
		return res, err
	}
	logger := slog.New(slog.DiscardHandler)
	if r.Log != nil {
		logger = slog.New(slog.NewTextHandler(r.Log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("scenario", sc.Name)
	}

	jira, err := fakejira.Start(fakejira.Config{Version: sc.Jira.Version, Logger: logger.With("component", "fakejira")})
	if err != nil {
		return res, fmt.Errorf("starting simulated Jira: %w", err)
	}
	defer jira.Close()
	for _, u := range sc.Jira.Users {
		jira.AddUser(fakejira.User{Name: u.Name, Key: u.Key, EmailAddress: u.EmailAddress, DisplayName: u.DisplayName, Active: u.Active == nil || *u.Active})
	}
	if err := setStatuses(jira, sc.Jira.Statuses); err != nil {
		return res, err
	}
	if err := setIssues(jira, sc.Jira); err != nil {
		return res, err
	}

	dir, err := os.MkdirTemp("", "jirasync-scenario-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "jirasync.db")
	if r.Postgres != "" {
		dsn, drop, err := storetest.NewSchema(ctx, r.Postgres)
		if err != nil {
			return res, err
		}
		defer drop()
		db = dsn
	}
	// Scenarios use no operator endpoints, but a host on PostgreSQL needs
	// an admin token; a fresh random one each run.
	adminToken := make([]byte, 24)
	if _, err := rand.Read(adminToken); err != nil {
		return res, err
	}
	cfg := app.Config{DB: db, PluginPath: r.PluginPath, SecretKeyFile: filepath.Join(dir, "secret.key"),
		AdminToken: base64.RawURLEncoding.EncodeToString(adminToken), Engine: r.Engine, CacheDir: r.CacheDir, PoolSize: 2, Logger: logger.With("component", "host")}
	var groups func(id string) (*string, string, error) // reads a group's assignee and status, where the platform keeps them
	switch r.Platform {
	case "", "builtin":
	case "http":
		// The scenario's platform section seeds the simulated platform,
		// and the groups are read back from it.
		fp := fakeplatform.Start(platformToken, logger.With("component", "fakeplatform"))
		defer fp.Close()
		if err := fp.Load(&sc.Platform.Data); err != nil {
			return res, fmt.Errorf("seeding the simulated platform: %w", err)
		}
		cfg.PlatformURL, cfg.PlatformToken = fp.URL(), platformToken
		groups = func(id string) (*string, string, error) {
			a, ok := fp.Assignee(id)
			status, _ := fp.Status(id)
			if !ok {
				return nil, "", fmt.Errorf("no group %s on the simulated platform", id)
			}
			return a, status, nil
		}
	default:
		return res, fmt.Errorf("unknown platform %q (want builtin or http)", r.Platform)
	}
	host, err := app.New(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("starting host: %w", err)
	}
	defer host.Close(context.WithoutCancel(ctx))
	if groups == nil {
		groups = func(id string) (*string, string, error) {
			g, err := host.Store().Group(ctx, "", id)
			return g.Assignee, g.Status, err
		}
	}
	if err := r.seed(ctx, host.Store(), jira, sc, cfg.PlatformURL == ""); err != nil {
		return res, fmt.Errorf("seeding: %w", err)
	}
	if err := jira.SetDown(sc.Jira.Down); err != nil {
		return res, err
	}
	srv := httptest.NewServer(host.Handler())
	defer srv.Close()

	secrets := map[string]Installation{}
	for _, in := range sc.Platform.Installations {
		secrets[in.ID] = in
	}
	if sc.Jira.Echo {
		if err := registerEcho(jira, sc, srv.URL); err != nil {
			return res, err
		}
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	st := &stepper{r: r, sc: sc, jira: jira, store: host.Store(), base: srv.URL, admin: cfg.AdminToken, client: client}
	runEvents := func(after int) error {
		for i, e := range sc.Events {
			if e.After != after {
				continue
			}
			fails, err := st.event(ctx, i, e)
			if err != nil {
				return fmt.Errorf("event %d: %w", i+1, err)
			}
			res.Failures = append(res.Failures, fails...)
		}
		return nil
	}
	for i, d := range sc.Deliveries {
		if err := runEvents(i); err != nil {
			return res, err
		}
		if d.JiraDown != nil {
			if err := jira.SetDown(*d.JiraDown); err != nil {
				return res, err
			}
		}
		if d.JiraStatus != nil {
			jira.SetFailure(*d.JiraStatus)
		}
		fail := func(format string, args ...any) {
			res.Failures = append(res.Failures, fmt.Sprintf("delivery %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		req, err := r.request(ctx, sc, d, srv.URL, secrets)
		if err != nil {
			return res, fmt.Errorf("delivery %d: %w", i+1, err)
		}
		r.send(client, req, fmt.Sprintf("delivery %d: %s", i+1, req.Method), d.ExpectStatus, d.ExpectSummary, fail)
	}
	if err := runEvents(len(sc.Deliveries)); err != nil {
		return res, err
	}

	// Retries and deliveries answered 202 go on after the answers; what
	// is checked is the settled state.
	if err := settle(ctx, host.Store(), jira); err != nil {
		return res, err
	}
	if sc.Expect.Deliveries != nil {
		res.Failures = append(res.Failures, checkDeliveries(ctx, host.Store(), sc.Expect.Deliveries)...)
	}
	for _, g := range sc.Expect.Groups {
		got, status, err := groups(g.ID)
		if err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("group %s: %v", g.ID, err))
			continue
		}
		if !sameAssignee(got, g.Assignee) {
			res.Failures = append(res.Failures, fmt.Sprintf("group %s: assignee %s, want %s", g.ID, show(got), show(g.Assignee)))
		}
		if g.Status != "" && status != g.Status {
			res.Failures = append(res.Failures, fmt.Sprintf("group %s: status %s, want %s", g.ID, status, g.Status))
		}
	}
	res.Failures = append(res.Failures, checkJira(jira.Requests(), sc.Expect.JiraLookups, sc.Expect.JiraStatusLookups)...)
	if sc.Expect.Jira != nil {
		res.Failures = append(res.Failures, checkJiraSide(jira, *sc.Expect.Jira)...)
	}
	return res, nil
}

// setStatuses gives the simulated Jira a scenario's workflow statuses,
// when it names them.
func setStatuses(jira *fakejira.Server, want []JiraStatus) error {
	if want == nil {
		return nil
	}
	statuses := make([]fakejira.Status, 0, len(want))
	for _, st := range want {
		statuses = append(statuses, fakejira.Status{ID: st.ID, Name: st.Name, Category: st.Category})
	}
	return jira.SetStatuses(statuses)
}

// ensureKey makes the runner's RSA key: one per runner, since generating
// a 2048-bit key costs more than a whole scenario.
// send sends one request of a scenario's steps and checks the answer
// against the step's expected status and summary, tracing it under label.
func (r *Runner) send(client *http.Client, req *http.Request, label string, expectStatus json.RawMessage,
	expectSummary map[string]any, fail func(string, ...any)) {
	resp, err := client.Do(req)
	if err != nil {
		fail("request failed: %v", err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if r.Trace != nil {
		fmt.Fprintf(r.Trace, "    %s %d %s\n", label, resp.StatusCode, bytes.TrimSpace(body))
	}
	want, _ := parseStatus(expectStatus)
	if !want.match(resp.StatusCode) {
		fail("status %d, want %s (answer %s)", resp.StatusCode, want, truncate(body))
	}
	if len(expectSummary) > 0 {
		for _, diff := range matchSummary(body, expectSummary) {
			fail("%s", diff)
		}
	}
}

func (r *Runner) ensureKey() (err error) {
	if r.key == nil {
		r.key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	return err
}

func (r *Runner) keyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(r.key)}))
}

// oauthCredentials are an installation's OAuth credentials on the
// simulated Jira.
type oauthCredentials struct{ consumer, token, secret string }

// credentials registers in's consumer and an access token on jira.
func (r *Runner) credentials(jira *fakejira.Server, in Installation) oauthCredentials {
	c := oauthCredentials{consumer: in.ConsumerKey, token: "access-" + in.ID, secret: "access-secret-" + in.ID}
	if c.consumer == "" {
		c.consumer = "jirasync-" + in.ID
	}
	jira.AddConsumer(c.consumer, &r.key.PublicKey)
	jira.AddAccessToken(c.consumer, c.token, c.secret)
	return c
}

// checkJira checks that every user lookup and status list read the
// simulated Jira received was signed, and counts them against want and
// wantStatus (nil: not checked).
func checkJira(reqs []fakejira.Request, want, wantStatus *int) []string {
	var fails []string
	lookups, statusLookups, unsigned := 0, 0, 0
	for _, rq := range reqs {
		switch {
		case rq.Path == "/rest/api/2/user":
			lookups++
		case rq.Path == "/rest/api/2/status":
			statusLookups++
		case rq.Path == "/rest/api/2/user/search" || strings.HasPrefix(rq.Path, "/rest/api/2/issue/"):
		default:
			continue
		}
		if !rq.Verified {
			unsigned++
		}
	}
	if wantStatus != nil && statusLookups != *wantStatus {
		fails = append(fails, fmt.Sprintf("Jira status list reads: %d, want %d", statusLookups, *wantStatus))
	}
	if unsigned > 0 {
		fails = append(fails, fmt.Sprintf("%d Jira user, status, search and issue requests were refused by the OAuth check", unsigned))
	}
	if want != nil && lookups != *want {
		fails = append(fails, fmt.Sprintf("Jira user lookups: %d, want %d", lookups, *want))
	}
	return fails
}

// waitSettled waits until no delivery is pending or being processed.
func waitSettled(ctx context.Context, st *store.Store, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := st.DeliveryCounts(ctx)
		if err != nil {
			return err
		}
		if c[store.DeliveryPending]+c[store.DeliveryProcessing] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deliveries not settled after %s: %v", limit, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkDeliveries(ctx context.Context, st *store.Store, want []ExpectDelivery) []string {
	got, err := st.Deliveries(ctx, store.DeliveryFilter{Limit: 500})
	if err != nil {
		return []string{"listing deliveries: " + err.Error()}
	}
	slices.Reverse(got) // oldest first, as sent
	return compareStored(got, want)
}

// compareStored holds stored deliveries, oldest first, to the scenario's
// expectation: the host's store for the runner, the records the Go
// host's pipeline would have made for the conformance kit.
func compareStored(got []store.Delivery, want []ExpectDelivery) []string {
	var fails []string
	if len(got) != len(want) {
		var statuses []string
		for _, d := range got {
			statuses = append(statuses, d.Status)
		}
		return []string{fmt.Sprintf("%d deliveries stored %v, want %d", len(got), statuses, len(want))}
	}
	for i, w := range want {
		d := got[i]
		if d.Status != w.Status {
			fails = append(fails, fmt.Sprintf("stored delivery %d: status %s, want %s (error %q)", i+1, d.Status, w.Status, d.Error))
		}
		if w.Attempts != nil && d.Attempts != *w.Attempts {
			fails = append(fails, fmt.Sprintf("stored delivery %d: %d attempts, want %d", i+1, d.Attempts, *w.Attempts))
		}
		if w.IssueKey != "" && d.IssueKey != w.IssueKey {
			fails = append(fails, fmt.Sprintf("stored delivery %d: issue %s, want %s", i+1, d.IssueKey, w.IssueKey))
		}
		if w.Event != "" && d.Event != w.Event {
			fails = append(fails, fmt.Sprintf("stored delivery %d: event %s, want %s", i+1, d.Event, w.Event))
		}
		if w.IssueID != "" && d.IssueID != w.IssueID {
			fails = append(fails, fmt.Sprintf("stored delivery %d: issue id %s, want %s", i+1, d.IssueID, w.IssueID))
		}
		if w.Error != "" && !strings.Contains(d.Error, w.Error) {
			fails = append(fails, fmt.Sprintf("stored delivery %d: error %q does not say %q", i+1, d.Error, w.Error))
		}
		if w.Summary != nil {
			for _, diff := range matchStored(d.Summary, w.Summary) {
				fails = append(fails, fmt.Sprintf("stored delivery %d: %s", i+1, diff))
			}
		}
	}
	return fails
}

// platformToken is the simulated platform's bearer token.
const platformToken = "scenario-platform-token"

// seed writes the scenario's installations into the host, and with
// builtin its platform data, and gives every installation real OAuth
// credentials on the simulated Jira.
func (r *Runner) seed(ctx context.Context, st *store.Store, jira *fakejira.Server, sc *Scenario, builtin bool) error {
	// Through the built-in platform's import, as an operator's file:
	// everything but the links, which name installations.
	p := sc.Platform
	objects := p.Data
	objects.Links = nil
	if builtin {
		if err := st.ImportData(ctx, &objects); err != nil {
			return err
		}
	}
	keyPEM := r.keyPEM()
	for _, in := range p.Installations {
		c := r.credentials(jira, in)
		si := store.Installation{ID: in.ID, ExternalID: in.ExternalID, BaseURL: jira.URL(), ConsumerKey: c.consumer,
			PrivateKeyPEM: keyPEM, AccessToken: c.token, AccessTokenSecret: c.secret, WebhookSecret: in.WebhookSecret, VerifyTLS: true}
		for _, o := range in.Organizations {
			si.Organizations = append(si.Organizations, store.InstallationOrg{ID: o.ID, InboundAssignee: o.InboundAssignee == nil || *o.InboundAssignee,
				InboundStatus: o.InboundStatus, OutboundAssignee: o.OutboundAssignee, OutboundStatus: o.OutboundStatus, StatusMappings: o.StatusMappings})
		}
		if err := st.PutInstallation(ctx, si); err != nil {
			return fmt.Errorf("installation %s: %w", in.ID, err)
		}
	}
	if !builtin {
		return nil
	}
	return st.ImportData(ctx, &platform.Data{Links: p.Links})
}

// request builds the HTTP request of one delivery.
func (r *Runner) request(ctx context.Context, sc *Scenario, d Delivery, base string, installs map[string]Installation) (*http.Request, error) {
	var token string
	switch {
	case d.Token != nil:
		token = *d.Token
	case d.Forge != nil:
		t, err := forge(*d.Forge)
		if err != nil {
			return nil, err
		}
		token = t
	default:
		in, ok := installs[d.Installation]
		if !ok {
			return nil, fmt.Errorf("installation %q is not in the scenario", d.Installation)
		}
		t, err := webhooktoken.Mint(in.ExternalID, []byte(in.WebhookSecret))
		if err != nil {
			return nil, err
		}
		token = t
	}
	body, err := sc.Body(d)
	if err != nil {
		return nil, err
	}
	url := base + app.WebhookPath + token
	if d.TrailingSlash {
		url += "/"
	}
	method := d.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("User-Agent", "Atlassian HttpClient 4.2.1 / JIRA-9.12.2 (scenario runner)")
	return req, nil
}

// Body is the body delivery d sends: its payload file, inline payload or
// raw body, with its padding.
func (sc *Scenario) Body(d Delivery) ([]byte, error) {
	var body []byte
	switch {
	case d.Body != nil:
		body = []byte(*d.Body)
	case len(d.Payload) > 0 && d.Payload[0] == '"':
		var rel string
		if err := json.Unmarshal(d.Payload, &rel); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(sc.Path), rel))
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		body = b
	default:
		body = d.Payload
	}
	if d.PadBytes > 0 {
		body = append(append([]byte{}, body...), bytes.Repeat([]byte(" "), d.PadBytes)...)
	}
	return body, nil
}

// forge builds a JWT from exactly the given parts.
func forge(f Forge) (string, error) {
	claims := jwt.MapClaims(f.Claims)
	switch f.Alg {
	case "none":
		enc := base64.RawURLEncoding
		h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
		c, err := json.Marshal(f.Claims)
		if err != nil {
			return "", err
		}
		return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + ".", nil
	case "HS256", "HS384", "HS512":
		return jwt.NewWithClaims(jwt.GetSigningMethod(f.Alg), claims).SignedString([]byte(f.Secret))
	}
	return "", fmt.Errorf("forge: alg %q: want none, HS256, HS384 or HS512", f.Alg)
}

// matchSummary compares the given keys of a JSON answer.
func matchSummary(body []byte, want map[string]any) []string {
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		return []string{fmt.Sprintf("answer is not a JSON object: %s", truncate(body))}
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("summary has no %q (answer %s)", k, truncate(body)))
			continue
		}
		if !reflect.DeepEqual(g, want[k]) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(want[k])
			diffs = append(diffs, fmt.Sprintf("summary %s = %s, want %s", k, gj, wj))
		}
	}
	return diffs
}

func sameAssignee(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func show(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
