package fakejira

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is webhook administration over REST. Jira before 10 offers the
// webhooks plugin's API (/rest/webhooks/1.0/webhook); Jira 10 removed it for
// /rest/jira-webhook/1.0/webhooks, which also takes a secret and signs
// deliveries with it. A server offers exactly the API of its version.

const (
	legacyWebhooksPath = "/rest/webhooks/1.0/webhook"
	jira10WebhooksPath = "/rest/jira-webhook/1.0/webhooks"

	// WebhookAPILegacy and WebhookAPIJira10 name the API a Webhook was
	// registered through.
	WebhookAPILegacy = "webhooks-1.0"
	WebhookAPIJira10 = "jira-webhook-1.0"

	// maxJSONBody bounds a webhook registration body; real ones are a few
	// hundred bytes.
	maxJSONBody = 1 << 20
)

// Webhook is a registered webhook.
type Webhook struct {
	ID          string
	Name, URL   string
	Events      []string
	ExcludeBody bool
	// Secret is Jira 10's configuration.SECRET; the legacy API has none.
	Secret string
	// API is WebhookAPILegacy or WebhookAPIJira10.
	API string
	// Active is the legacy API's "enabled" or Jira 10's "active". Fire
	// delivers to active webhooks only.
	Active bool
}

// webhookRecord is a Webhook with what only its REST form needs.
type webhookRecord struct {
	Webhook
	filters       map[string]string // legacy
	configuration map[string]string // Jira 10, without SECRET
	updated       time.Time
}

// SetWebhookPermission decides whether the caller may register webhooks;
// it starts allowed. Registering needs Jira administrator rights, which the
// user behind an application link's access token may lack.
func (s *Server) SetWebhookPermission(allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookDenied = !allowed
}

// Webhooks returns the registered webhooks in registration order.
func (s *Server) Webhooks() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Webhook, len(s.webhooks))
	for i, w := range s.webhooks {
		out[i] = w.Webhook
		out[i].Events = slices.Clone(w.Events)
	}
	return out
}

// legacyWebhookBody is the webhooks plugin's representation, in and out.
type legacyWebhookBody struct {
	Name        string            `json:"name"`
	URL         string            `json:"url"`
	Events      []string          `json:"events"`
	ExcludeBody bool              `json:"excludeBody"`
	Filters     map[string]string `json:"filters"`
	Enabled     *bool             `json:"enabled,omitempty"`

	// Answer only.
	Self                   string `json:"self,omitempty"`
	LastUpdatedUser        string `json:"lastUpdatedUser,omitempty"`
	LastUpdatedDisplayName string `json:"lastUpdatedDisplayName,omitempty"`
	LastUpdated            int64  `json:"lastUpdated,omitempty"`
}

// jira10WebhookBody is Jira 10's representation, in and out. Configuration
// values are strings, "false" included, as Jira 10 keeps them.
type jira10WebhookBody struct {
	ID            int               `json:"id,omitempty"`
	Name          string            `json:"name"`
	URL           string            `json:"url"`
	Events        []string          `json:"events"`
	Configuration map[string]string `json:"configuration"`
	Active        *bool             `json:"active,omitempty"`

	// Answer only.
	CreatedDate int64  `json:"createdDate,omitempty"`
	UpdatedDate int64  `json:"updatedDate,omitempty"`
	Self        string `json:"self,omitempty"`
}

func (s *Server) legacyWebhooks(x *exchange) {
	if x.r.Method == http.MethodGet {
		writeJSON(x.w, http.StatusOK, s.listWebhooks(WebhookAPILegacy, s.legacyBody))
		return
	}
	var in legacyWebhookBody
	if !s.readWebhookBody(x, &in) {
		return
	}
	w := webhookRecord{
		Webhook: Webhook{Name: in.Name, URL: in.URL, Events: in.Events, ExcludeBody: in.ExcludeBody,
			API: WebhookAPILegacy, Active: in.Enabled == nil || *in.Enabled},
		filters: in.Filters,
	}
	if w, ok := s.addWebhook(x, w); ok {
		writeJSON(x.w, http.StatusCreated, s.legacyBody(w))
	}
}

func (s *Server) legacyWebhook(x *exchange) {
	s.oneWebhook(x, WebhookAPILegacy, s.legacyBody)
}

func (s *Server) legacyBody(w webhookRecord) any {
	enabled := w.Active
	filters := w.filters
	if filters == nil {
		filters = map[string]string{}
	}
	return legacyWebhookBody{
		Name: w.Name, URL: w.URL, Events: nonNil(w.Events), ExcludeBody: w.ExcludeBody, Filters: filters,
		Enabled: &enabled, Self: s.url + legacyWebhooksPath + "/" + w.ID,
		LastUpdatedUser: adminKey, LastUpdatedDisplayName: adminName, LastUpdated: w.updated.UnixMilli(),
	}
}

func (s *Server) jira10Webhooks(x *exchange) {
	if x.r.Method == http.MethodGet {
		writeJSON(x.w, http.StatusOK, s.listWebhooks(WebhookAPIJira10, s.jira10Body))
		return
	}
	var in jira10WebhookBody
	if !s.readWebhookBody(x, &in) {
		return
	}
	config := maps.Clone(in.Configuration)
	if config == nil {
		config = map[string]string{}
	}
	secret := config["SECRET"]
	// The secret is write-only: Jira 10 never shows it again.
	delete(config, "SECRET")
	w := webhookRecord{
		Webhook: Webhook{Name: in.Name, URL: in.URL, Events: in.Events,
			ExcludeBody: strings.EqualFold(config["EXCLUDE_BODY"], "true"),
			Secret:      secret, API: WebhookAPIJira10, Active: in.Active == nil || *in.Active},
		configuration: config,
	}
	if w, ok := s.addWebhook(x, w); ok {
		writeJSON(x.w, http.StatusCreated, s.jira10Body(w))
	}
}

func (s *Server) jira10Webhook(x *exchange) {
	s.oneWebhook(x, WebhookAPIJira10, s.jira10Body)
}

func (s *Server) jira10Body(w webhookRecord) any {
	id, _ := strconv.Atoi(w.ID)
	active := w.Active
	return jira10WebhookBody{
		ID: id, Name: w.Name, URL: w.URL, Events: nonNil(w.Events), Configuration: maps.Clone(w.configuration),
		Active: &active, CreatedDate: w.updated.UnixMilli(), UpdatedDate: w.updated.UnixMilli(),
		Self: s.url + jira10WebhooksPath + "/" + w.ID,
	}
}

func nonNil(events []string) []string {
	if events == nil {
		return []string{}
	}
	return events
}

func (s *Server) listWebhooks(api string, body func(webhookRecord) any) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, w := range s.webhooks {
		if w.API == api {
			out = append(out, body(*w))
		}
	}
	return out
}

// oneWebhook answers GET and DELETE of /{id}.
func (s *Server) oneWebhook(x *exchange, api string, body func(webhookRecord) any) {
	s.mu.Lock()
	i := slices.IndexFunc(s.webhooks, func(w *webhookRecord) bool { return w.API == api && w.ID == x.id })
	var found webhookRecord
	if i >= 0 {
		found = *s.webhooks[i]
		if x.r.Method == http.MethodDelete {
			s.webhooks = slices.Delete(s.webhooks, i, i+1)
		}
	}
	s.mu.Unlock()
	switch {
	case i < 0:
		s.writeError(x.w, http.StatusNotFound, fmt.Sprintf("WebHook with id %s does not exist", x.id))
	case x.r.Method == http.MethodDelete:
		s.log.Info("webhook deleted", "api", api, "webhook_id", x.id)
		x.w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(x.w, http.StatusOK, body(found))
	}
}

// readWebhookBody checks the caller may register webhooks and decodes a
// registration body, answering the error itself when it returns false.
// Unknown keys are ignored, as Jira's Jackson configuration does.
func (s *Server) readWebhookBody(x *exchange, into any) bool {
	s.mu.Lock()
	denied := s.webhookDenied
	s.mu.Unlock()
	if denied {
		// Jira checks administrator rights before it reads the body.
		s.writeError(x.w, http.StatusForbidden, "You do not have permission to create WebHook")
		return false
	}
	return s.readJSON(x, into, "Unable to parse the request body as a WebHook: ")
}

// readJSON decodes a JSON request body, answering Jira's 415, 413 or 400
// itself when it returns false; unparsable says what the body was meant
// to be. Unknown keys are ignored, as Jira's Jackson configuration does.
func (s *Server) readJSON(x *exchange, into any, unparsable string) bool {
	if mt, _, err := mime.ParseMediaType(x.r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		// Jersey refuses a body it has no reader for before the resource runs.
		s.writeError(x.w, http.StatusUnsupportedMediaType, "Unsupported Media Type")
		return false
	}
	data, err := io.ReadAll(io.LimitReader(x.r.Body, maxJSONBody+1))
	if err != nil {
		s.writeError(x.w, http.StatusBadRequest, "Could not read the request body: "+err.Error())
		return false
	}
	if len(data) > maxJSONBody {
		s.writeError(x.w, http.StatusRequestEntityTooLarge, "Request body too large")
		return false
	}
	if err := json.Unmarshal(data, into); err != nil {
		s.writeError(x.w, http.StatusBadRequest, unparsable+err.Error())
		return false
	}
	return true
}

// addWebhook validates and stores w, answering 400 itself when it is not
// valid. The errors are per field, in Jira's ErrorCollection.
func (s *Server) addWebhook(x *exchange, w webhookRecord) (webhookRecord, bool) {
	errs := map[string]string{}
	if strings.TrimSpace(w.Name) == "" {
		errs["name"] = "The name of the WebHook must be specified."
	}
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs["url"] = "The URL of the WebHook must be an absolute http or https URL."
	}
	if len(errs) > 0 {
		writeJSON(x.w, http.StatusBadRequest, errorBody{ErrorMessages: []string{}, Errors: errs})
		return w, false
	}
	return s.storeWebhook(w), true
}

// storeWebhook gives w the next id and keeps it.
func (s *Server) storeWebhook(w webhookRecord) webhookRecord {
	w.Events = slices.Clone(w.Events)
	w.updated = s.now()
	s.mu.Lock()
	s.webhookSeq++
	w.ID = strconv.Itoa(s.webhookSeq)
	stored := w
	s.webhooks = append(s.webhooks, &stored)
	s.mu.Unlock()
	s.log.Info("webhook registered", "api", w.API, "webhook_id", w.ID, "url", w.URL, "events", strings.Join(w.Events, ","))
	return w
}

// FireResult is the outcome of delivering an event to one webhook.
type FireResult struct {
	Webhook Webhook
	// Status is the receiver's HTTP status, 0 when there was no answer.
	Status int
	// Identifier is the X-Atlassian-Webhook-Identifier that was sent.
	Identifier string
	// Err is the transport error, if the delivery got no answer.
	Err error
}

// fireClient delivers webhooks. Redirects are not followed: a receiver that
// redirects a POST is misconfigured, and the test should see the 3xx.
var fireClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Fire delivers event to every active webhook, one after the other in
// registration order, as Jira would for an issue event. A webhook
// registered with excludeBody gets an empty POST, as from Jira. Jira 10
// webhooks with a secret carry X-Hub-Signature: sha256=<hex HMAC-SHA256 of
// the body keyed with the secret>. The User-Agent names this server's Jira
// version.
func (s *Server) Fire(ctx context.Context, event []byte) []FireResult {
	v := s.versionNumbers
	ua := fmt.Sprintf("Atlassian HttpClient 4.0.1 / JIRA-%s (%d) / Default", s.version, v[0]*100000+v[1]*1000+v[2])
	var results []FireResult
	for _, w := range s.Webhooks() {
		if !w.Active {
			continue
		}
		body := event
		if w.ExcludeBody {
			body = nil
		}
		hdr := http.Header{"User-Agent": {ua}}
		if w.API == WebhookAPIJira10 && w.Secret != "" {
			mac := hmac.New(sha256.New, []byte(w.Secret))
			mac.Write(body)
			hdr.Set("X-Hub-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		}
		res := FireResult{Webhook: w}
		resp, err := sendWebhook(ctx, fireClient, w.URL, body, hdr)
		if err != nil {
			res.Err = err
		} else {
			res.Status = resp.StatusCode
			res.Identifier = resp.Request.Header.Get("X-Atlassian-Webhook-Identifier")
			// Drain a bounded amount so the connection can be reused.
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		s.log.Info("webhook fired", "webhook_id", w.ID, "api", w.API, "url", w.URL, "status", res.Status, "error", res.Err)
		results = append(results, res)
	}
	return results
}
