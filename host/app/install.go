package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/host/internal/jiraclient"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/plugin/abi"
)

// Paths of the install flow (a public contract: Jira admins bookmark them).
const (
	SetupPath         = "/extensions/jira-server/setup"
	SetupCallbackPath = "/extensions/jira-server/setup/callback"
	InstallationsPath = "/extensions/jira-server/installations"
)

// DefaultSetupTimeout is how long an operator has to approve on Jira.
const DefaultSetupTimeout = 10 * time.Minute

// WebhookName is the name of the webhook jirasync registers on Jira.
const WebhookName = "jirasync: issue updated"

func (a *App) installRoutes() {
	a.mux.HandleFunc("GET "+SetupPath, a.admin(a.setupForm))
	a.mux.HandleFunc("POST "+SetupPath, a.admin(a.setupSubmit))
	a.mux.HandleFunc("GET "+SetupCallbackPath, a.admin(a.setupCallback))
	a.mux.HandleFunc("GET "+InstallationsPath, a.admin(a.listInstallations))
	a.mux.HandleFunc("GET "+InstallationsPath+"/{id}", a.admin(a.showInstallation))
	a.mux.HandleFunc("POST "+InstallationsPath+"/{id}/organizations", a.admin(a.setInstallationOrg))
	a.mux.HandleFunc("POST "+InstallationsPath+"/{id}/uninstall", a.admin(a.uninstall))
}

type setupPage struct {
	URL, ConsumerKey, Organization string
	VerifyTLS                      bool
	PrivateKey                     string // a key the page generated, or the operator's on the step showing its public key
	PublicKey                      string
	// KeyShown fingerprints the public key the page shows; the form
	// sends it back, and a setup starts only for a key whose public key
	// the operator has seen (it goes into the Application Link first).
	KeyShown      string
	KeyNotice     bool
	Organizations []store.Organization
	Errors        map[string]string // by field; "" for the form as a whole
	CallbackURL   string
	// PublicURLProblem says why Jira could not reach this host's public
	// URL; no setup starts while it is set.
	PublicURLProblem string
	CSRF             string
}

func (a *App) setupPageFor(r *http.Request) (setupPage, error) {
	orgs, err := a.platform.Organizations(r.Context())
	return setupPage{VerifyTLS: true, Organizations: orgs, Errors: map[string]string{},
		CallbackURL: a.cfg.PublicURL + SetupCallbackPath, PublicURLProblem: publicURLProblem(a.cfg.PublicURL), CSRF: a.CSRF(r)}, err
}

// publicURLProblem says why Jira could not call back or post webhooks to
// publicURL, "" when it could: a listen address such as 0.0.0.0:8080
// (what -public-url defaults to with -addr 0.0.0.0:8080) names no host.
func publicURLProblem(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil || !ip.IsUnspecified() {
			return ""
		}
	}
	return fmt.Sprintf("This host's public URL is %q, which Jira cannot reach, so a setup cannot start: Jira would be given "+
		"callback and webhook URLs on it. Restart jirasync with -public-url (or JIRASYNC_PUBLIC_URL) set to the URL "+
		"Jira and your browser use to reach this host, for example https://jirasync.example.com.", publicURL)
}

// keyFingerprint names a public key (PEM) on the setup form.
func keyFingerprint(publicKeyPEM string) string {
	sum := sha256.Sum256([]byte(publicKeyPEM))
	return hex.EncodeToString(sum[:16])
}

// setupForm serves the form. With ?generate=1 it makes a key pair for the
// operator, so the public key to paste into Jira is on the page.
func (a *App) setupForm(w http.ResponseWriter, r *http.Request) {
	p, err := a.setupPageFor(r)
	if err != nil {
		a.storeDown(w, err)
		return
	}
	if r.URL.Query().Get("generate") != "" {
		priv, pub, err := generateKeyPair()
		if err != nil {
			http.Error(w, "generating a key: "+err.Error(), http.StatusInternalServerError)
			return
		}
		p.PrivateKey, p.PublicKey, p.KeyShown = priv, pub, keyFingerprint(pub)
	}
	render(w, http.StatusOK, "setup.html", p)
}

func (a *App) setupSubmit(w http.ResponseWriter, r *http.Request) {
	p, err := a.setupPageFor(r)
	if err != nil {
		a.storeDown(w, err)
		return
	}
	if p.PublicURLProblem != "" {
		render(w, http.StatusServiceUnavailable, "setup.html", p)
		return
	}
	p.URL = strings.TrimSpace(r.PostFormValue("url"))
	p.ConsumerKey = strings.TrimSpace(r.PostFormValue("consumer_key"))
	p.Organization = r.PostFormValue("organization")
	p.VerifyTLS = r.PostFormValue("verify_ssl") != ""
	keyPEM := strings.TrimSpace(r.PostFormValue("private_key"))

	base, msg := validateBaseURL(p.URL)
	if msg != "" {
		p.Errors["url"] = msg
	}
	if n := utf8.RuneCountInString(p.ConsumerKey); n < 1 || n > 200 {
		p.Errors["consumer_key"] = "Enter the consumer key of the Application Link (1 to 200 characters)."
	}
	if pub, msg := validateKey(keyPEM); msg != "" {
		p.Errors["private_key"] = msg
	} else {
		p.PublicKey, p.KeyShown = pub, keyFingerprint(pub)
	}
	found := false
	for _, o := range p.Organizations {
		found = found || o.ID == p.Organization
	}
	if !found {
		p.Errors["organization"] = "Choose the organization this Jira will serve."
	}
	if len(p.Errors) > 0 {
		render(w, http.StatusBadRequest, "setup.html", p)
		return
	}
	// A pasted key's public key must be in the Application Link before
	// Jira is asked: show it, and go on when the form comes back with it.
	// The form keeps the key for the next step; a form refused for an
	// error does not echo it (the operator may need another key anyway).
	if r.PostFormValue("key_shown") != p.KeyShown || r.PostFormValue("show_key") != "" {
		p.PrivateKey, p.KeyNotice = keyPEM, true
		render(w, http.StatusOK, "setup.html", p)
		return
	}
	creds := jiraclient.Credentials{BaseURL: base, ConsumerKey: p.ConsumerKey, PrivateKeyPEM: keyPEM, VerifyTLS: p.VerifyTLS}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	token, secret, err := a.jira.RequestToken(ctx, creds, a.cfg.PublicURL+SetupCallbackPath)
	if err != nil {
		status, text := explainOAuth(err, base, p.ConsumerKey, "request-token")
		a.log.Warn("setup: request token refused", "jira", base, "consumer_key", p.ConsumerKey, "error", err)
		p.Errors[""] = text
		render(w, status, "setup.html", p)
		return
	}
	// Setups abandoned on Jira's page would otherwise keep their sealed
	// private keys forever; none older than the timeout can finish.
	if err := a.store.DeletePendingSetupsBefore(r.Context(), time.Now().Add(-a.cfg.SetupTimeout)); err != nil {
		a.log.Warn("setup: forgetting abandoned setups", "error", err)
	}
	if err := a.store.PutPendingSetup(r.Context(), store.PendingSetup{RequestToken: token, RequestTokenSecret: secret,
		BaseURL: base, ConsumerKey: p.ConsumerKey, PrivateKeyPEM: keyPEM, VerifyTLS: p.VerifyTLS, Organization: p.Organization}); err != nil {
		a.storeDown(w, err)
		return
	}
	a.log.Info("setup: sending the operator to Jira to approve", "jira", base, "consumer_key", p.ConsumerKey)
	http.Redirect(w, r, jiraclient.AuthorizeURL(base, token), http.StatusFound)
}

// validateBaseURL wants an absolute http(s) URL without query or fragment.
func validateBaseURL(raw string) (string, string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", "Enter the base URL of your Jira, for example https://jira.example.com."
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", "Enter an absolute http:// or https:// URL."
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", "The base URL cannot have a query (?…) or a fragment (#…)."
	case u.User != nil:
		return "", "The base URL cannot carry a user name or password."
	}
	return strings.TrimSuffix(u.String(), "/"), ""
}

// validateKey wants an RSA private key of at least 2048 bits and returns
// its public key in PEM, for the Application Link.
func validateKey(keyPEM string) (string, string) {
	if keyPEM == "" {
		return "", "Paste the RSA private key (PEM) whose public key is in the Application Link."
	}
	k, err := jiraclient.ParsePrivateKey(keyPEM)
	if err != nil {
		return "", "This is not an RSA private key in PEM (PKCS#1 or PKCS#8): " + err.Error() + "."
	}
	if k.N.BitLen() < 2048 {
		return "", fmt.Sprintf("This key has %d bits; use an RSA key of at least 2048 bits.", k.N.BitLen())
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", err.Error()
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), ""
}

// explainOAuth turns a failed step of the dance into a status and words
// an operator can act on.
func explainOAuth(err error, base, consumerKey, step string) (int, string) {
	var oe *jiraclient.OAuthError
	switch {
	case errors.Is(err, jiraclient.ErrTLS):
		return http.StatusBadGateway, "Could not make a trusted TLS connection to " + base + ": " + err.Error() +
			". If Jira uses a certificate this host does not trust, fix that, or untick “Verify TLS”."
	case errors.Is(err, jiraclient.ErrUnreachable):
		return http.StatusBadGateway, "Could not reach Jira at " + base + ": " + err.Error() + ". Check the URL and that this host can reach it."
	case errors.As(err, &oe):
		switch oe.Problem {
		case "consumer_key_unknown":
			return http.StatusBadRequest, "Jira does not know the consumer key “" + consumerKey + "”. Create the Application Link " +
				"(incoming authentication) with this consumer key and the public key shown here, or fix the key."
		case "signature_invalid":
			return http.StatusBadRequest, "Jira could not verify our signature: the public key in the Application Link " +
				"does not belong to this private key. Paste the public key shown here into the Application Link."
		case "timestamp_refused":
			return http.StatusBadRequest, "Jira refused the time of our request: the clocks of Jira and of this host differ " +
				"by more than five minutes. Set both with NTP."
		case "nonce_used":
			return http.StatusBadRequest, "Jira saw this request before (oauth_problem=nonce_used). Try again."
		case "permission_denied", "permission_unknown":
			return http.StatusBadRequest, "Jira says access was not approved (oauth_problem=" + oe.Problem + "). Start again and choose Allow."
		case "token_rejected", "token_used", "token_expired":
			return http.StatusBadRequest, "Jira no longer accepts this approval (oauth_problem=" + oe.Problem + "). Start again."
		case "":
			if oe.Status == http.StatusOK {
				return http.StatusBadGateway, "Jira's answer at the " + step + " endpoint had no token: " + oe.Body
			}
			return http.StatusBadGateway, fmt.Sprintf("Jira answered HTTP %d at its OAuth %s endpoint. Is %s the base URL of a Jira Server or Data Center?", oe.Status, step, base)
		}
		return http.StatusBadRequest, "Jira refused the request: oauth_problem=" + oe.Problem + "."
	}
	return http.StatusBadRequest, "The private key cannot sign: " + err.Error()
}

type messagePage struct {
	Title, Text string
	Link, Label string
}

func (a *App) message(w http.ResponseWriter, status int, title, text string) {
	render(w, status, "message.html", messagePage{Title: title, Text: text, Link: SetupPath, Label: "Back to setup"})
}

// setupCallback is where Jira sends the operator back: exchange the
// verifier, register the webhook, store the installation.
func (a *App) setupCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("oauth_token")
	if token == "" {
		a.message(w, http.StatusBadRequest, "Nothing to finish", "This address is where Jira sends you back during a setup; it came without a request token.")
		return
	}
	pending, err := a.store.TakePendingSetup(r.Context(), token)
	if errors.Is(err, store.ErrNotFound) {
		a.message(w, http.StatusBadRequest, "Unknown or used approval",
			"This approval is unknown here, or it was already used. Nothing was stored. Start the setup again.")
		return
	}
	if err != nil {
		a.storeDown(w, err)
		return
	}
	if problem := q.Get("oauth_problem"); problem != "" {
		a.log.Info("setup: operator did not approve on Jira", "jira", pending.BaseURL, "oauth_problem", problem)
		text := "Access was denied on Jira, so nothing was stored."
		if problem != "permission_denied" {
			text = "Jira ended the approval with oauth_problem=" + problem + "; nothing was stored."
		}
		a.message(w, http.StatusBadRequest, "Access not approved", text+" Start again and choose Allow to connect this Jira.")
		return
	}
	if time.Since(time.UnixMilli(pending.CreatedAt)) > a.cfg.SetupTimeout {
		a.message(w, http.StatusBadRequest, "The approval took too long",
			"More than ten minutes passed between starting the setup and approving it on Jira. Nothing was stored. Start again.")
		return
	}
	verifier := q.Get("oauth_verifier")
	if verifier == "" {
		a.message(w, http.StatusBadRequest, "No verifier", "Jira sent you back without an oauth_verifier. Nothing was stored.")
		return
	}
	creds := jiraclient.Credentials{BaseURL: pending.BaseURL, ConsumerKey: pending.ConsumerKey,
		PrivateKeyPEM: pending.PrivateKeyPEM, VerifyTLS: pending.VerifyTLS}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	access, accessSecret, err := a.jira.AccessToken(ctx, creds, token, pending.RequestTokenSecret, verifier)
	if err != nil {
		status, text := explainOAuth(err, pending.BaseURL, pending.ConsumerKey, "access-token")
		a.log.Warn("setup: access token refused", "jira", pending.BaseURL, "error", err)
		a.message(w, status, "Jira did not grant access", text+" Nothing was stored.")
		return
	}

	in, previous, err := a.installationFor(ctx, pending)
	if err != nil {
		a.storeDown(w, err)
		return
	}
	in.AccessToken, in.AccessTokenSecret = access, accessSecret
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	in.WebhookSecret = base64.RawURLEncoding.EncodeToString(secret)
	hookToken, err := webhooktoken.Mint(in.ExternalID, []byte(in.WebhookSecret))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	log := a.log.With("installation", in.ID, "jira", in.BaseURL)
	b := &capabilities.Binding{Installation: in, Logger: log, WebhookURL: a.cfg.PublicURL + WebhookPath + hookToken}
	reg, err := engine.RegisterWebhook(ctx, a.engine, b, abi.RegisterWebhookRequest{Name: WebhookName, Previous: previous})
	if err != nil {
		log.Warn("setup: webhook registration failed", "error", err)
		text := err.Error()
		var ae *abi.Error
		if errors.As(err, &ae) {
			text = ae.Message
		}
		a.message(w, http.StatusBadGateway, "Jira did not register the webhook",
			"Access was granted, but registering the issue-updated webhook failed: "+text+
				". Nothing was stored. The Jira user who approved needs the Jira Administrators permission.")
		return
	}
	in.JiraVersion, in.WebhookAPI, in.WebhookID, in.UninstalledAt = reg.JiraVersion, reg.Webhook.API, reg.Webhook.ID, 0
	if err := a.PutInstallation(r.Context(), in); err != nil {
		// The webhook exists on Jira but we could not keep its secret:
		// remove it rather than leave one that can only fail.
		_ = engine.UnregisterWebhook(context.WithoutCancel(ctx), a.engine, b, *reg.Webhook)
		a.storeDown(w, err)
		return
	}
	log.Info("installation connected", "external_id", in.ExternalID, "jira_version", in.JiraVersion, "webhook_api", in.WebhookAPI)
	http.Redirect(w, r, InstallationsPath+"/"+in.ID+"?connected=1", http.StatusSeeOther)
}

// installationFor returns the installation a finished setup makes: the
// existing one with this external id (reinstalling updates it, and its old
// webhook is replaced), or a new one.
func (a *App) installationFor(ctx context.Context, p store.PendingSetup) (store.Installation, *abi.WebhookRef, error) {
	u, _ := url.Parse(p.BaseURL)
	externalID := u.Host + ":" + p.ConsumerKey
	in, err := a.store.InstallationByExternalID(ctx, externalID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		id := make([]byte, 4)
		if _, err := rand.Read(id); err != nil {
			return in, nil, err
		}
		in = store.Installation{ID: "jira-" + hex.EncodeToString(id), ExternalID: externalID}
	case err != nil:
		return in, nil, err
	}
	var previous *abi.WebhookRef
	if in.WebhookID != "" && in.UninstalledAt == 0 {
		previous = &abi.WebhookRef{API: in.WebhookAPI, ID: in.WebhookID}
	}
	in.BaseURL, in.ConsumerKey, in.PrivateKeyPEM, in.VerifyTLS = p.BaseURL, p.ConsumerKey, p.PrivateKeyPEM, p.VerifyTLS
	served := false
	for _, o := range in.Organizations {
		served = served || o.ID == p.Organization
	}
	if !served {
		in.Organizations = append(in.Organizations, store.InstallationOrg{ID: p.Organization, InboundAssignee: true})
	}
	return in, previous, nil
}

type installationPage struct {
	store.Installation
	Connected     bool
	Organizations []store.Organization // all, for adding
	CSRF          string
	Error         string
}

func (a *App) listInstallations(w http.ResponseWriter, r *http.Request) {
	ins, err := a.store.Installations(r.Context())
	if err != nil {
		a.storeDown(w, err)
		return
	}
	if wantsHTML(r) {
		render(w, http.StatusOK, "installations.html", ins)
		return
	}
	type view struct {
		ID, ExternalID, BaseURL, JiraVersion, WebhookAPI, WebhookID string
		Organizations                                               []store.InstallationOrg
		Uninstalled                                                 bool
	}
	out := []view{}
	for _, in := range ins {
		out = append(out, view{in.ID, in.ExternalID, in.BaseURL, in.JiraVersion, in.WebhookAPI, in.WebhookID, in.Organizations, in.UninstalledAt != 0})
	}
	writeJSON(w, http.StatusOK, map[string]any{"installations": out})
}

func (a *App) installationPageFor(r *http.Request) (installationPage, bool, error) {
	in, err := a.store.Installation(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return installationPage{}, false, nil
	}
	if err != nil {
		return installationPage{}, false, err
	}
	orgs, err := a.platform.Organizations(r.Context())
	if err != nil {
		return installationPage{}, false, err
	}
	in.PrivateKeyPEM, in.AccessToken, in.AccessTokenSecret, in.WebhookSecret = "", "", "", ""
	return installationPage{Installation: in, Organizations: orgs, CSRF: a.CSRF(r)}, true, nil
}

func (a *App) showInstallation(w http.ResponseWriter, r *http.Request) {
	p, ok, err := a.installationPageFor(r)
	switch {
	case err != nil:
		a.storeDown(w, err)
	case !ok:
		a.message(w, http.StatusNotFound, "No such installation", "There is no installation "+r.PathValue("id")+".")
	default:
		p.Connected = r.URL.Query().Get("connected") != ""
		render(w, http.StatusOK, "installation.html", p)
	}
}

// setInstallationOrg adds an organization to those an installation serves,
// or switches its inbound assignee sync.
func (a *App) setInstallationOrg(w http.ResponseWriter, r *http.Request) {
	in, ok := a.installationOrAnswer(w, r)
	if !ok {
		return
	}
	org, inbound := r.PostFormValue("organization"), r.PostFormValue("inbound_assignee") != ""
	orgs, err := a.platform.Organizations(r.Context())
	if err != nil {
		a.storeDown(w, err)
		return
	}
	known := false
	for _, o := range orgs {
		known = known || o.ID == org
	}
	if !known {
		a.message(w, http.StatusBadRequest, "Unknown organization", "There is no organization "+org+".")
		return
	}
	found := false
	for i := range in.Organizations {
		if in.Organizations[i].ID == org {
			in.Organizations[i].InboundAssignee, found = inbound, true
		}
	}
	if !found {
		in.Organizations = append(in.Organizations, store.InstallationOrg{ID: org, InboundAssignee: inbound})
	}
	if err := a.PutInstallation(r.Context(), in); err != nil {
		a.storeDown(w, err)
		return
	}
	http.Redirect(w, r, InstallationsPath+"/"+in.ID, http.StatusSeeOther)
}

// uninstall removes the webhook on Jira, then the credentials. If Jira
// cannot be told, the page says so and offers to forget the installation
// anyway (force).
func (a *App) uninstall(w http.ResponseWriter, r *http.Request) {
	in, ok := a.installationOrAnswer(w, r)
	if !ok {
		return
	}
	log := a.log.With("installation", in.ID, "jira", in.BaseURL)
	if in.WebhookID != "" && in.UninstalledAt == 0 && r.PostFormValue("force") == "" {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		b := &capabilities.Binding{Installation: in, Logger: log}
		if err := engine.UnregisterWebhook(ctx, a.engine, b, abi.WebhookRef{API: in.WebhookAPI, ID: in.WebhookID}); err != nil {
			log.Warn("uninstall: removing the webhook on Jira failed", "error", err)
			p, _, perr := a.installationPageFor(r)
			if perr != nil {
				a.storeDown(w, perr)
				return
			}
			p.Error = "Jira could not be told to remove the webhook: " + err.Error() +
				". Uninstall anyway to forget the credentials here; then delete the webhook on Jira by hand."
			render(w, http.StatusBadGateway, "installation.html", p)
			return
		}
	}
	in.PrivateKeyPEM, in.AccessToken, in.AccessTokenSecret, in.WebhookSecret = "", "", "", ""
	in.WebhookAPI, in.WebhookID, in.UninstalledAt = "", "", time.Now().UnixMilli()
	if err := a.PutInstallation(r.Context(), in); err != nil {
		a.storeDown(w, err)
		return
	}
	log.Info("installation uninstalled")
	if r.Header.Get("Authorization") != "" && !strings.Contains(r.Header.Get("Accept"), "text/html") {
		writeJSON(w, http.StatusOK, map[string]string{"status": "uninstalled", "installation": in.ID})
		return
	}
	http.Redirect(w, r, InstallationsPath+"/"+in.ID, http.StatusSeeOther)
}

// installationOrAnswer loads the installation a path names, or answers
// the request itself (404, or 503 when storage fails).
func (a *App) installationOrAnswer(w http.ResponseWriter, r *http.Request) (store.Installation, bool) {
	in, err := a.store.Installation(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.message(w, http.StatusNotFound, "No such installation", "There is no installation "+r.PathValue("id")+".")
		return in, false
	case err != nil:
		a.storeDown(w, err)
		return in, false
	}
	return in, true
}

func (a *App) storeDown(w http.ResponseWriter, err error) {
	a.log.Error("storage failed", "error", err)
	http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
}

// PutInstallation stores an installation, as connecting a Jira on the
// setup page does; embedders and demos that connect one by other means
// call it too. The organizations it serves may be the built-in platform's
// or another platform's: the host records only their ids (migration 7
// dropped the reference to its own organizations table).
func (a *App) PutInstallation(ctx context.Context, in store.Installation) error {
	return a.store.PutInstallation(ctx, in)
}
