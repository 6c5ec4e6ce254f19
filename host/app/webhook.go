package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jirasync/jirasync/host/internal/pipeline"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// WebhookPath is where Jira posts issue-updated events; the token follows.
const WebhookPath = "/extensions/jira-server/issue-updated/"

func (a *App) routes() {
	a.mux.HandleFunc(WebhookPath, a.handleWebhook)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Ready: the database answers and can store a delivery (a full disk
	// or a read-only database answers pings), the plugin is compiled (New
	// fails otherwise) and the workers run.
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.store.Ping(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
			return
		}
		if err := a.store.Writable(r.Context()); err != nil {
			a.log.Warn("not ready: a delivery could not be stored", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "storage not writable"})
			return
		}
		if !a.pipeline.Running() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "workers stopped"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	a.mux.Handle("GET /metrics", a.metricsHandler())
}

// errorBody is the JSON answer to a refused or failed delivery.
type errorBody struct {
	Error    string `json:"error"`
	Code     string `json:"code,omitempty"`
	Delivery int64  `json:"delivery,omitempty"`
}

func (a *App) handleWebhook(w http.ResponseWriter, r *http.Request) {
	log := a.log.With("remote", r.RemoteAddr)
	if r.Method != http.MethodPost {
		a.metrics.received.WithLabelValues("refused_method").Inc()
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "only POST is accepted here"})
		return
	}
	// One path segment after the prefix, with the trailing slash Jira
	// admins often paste.
	token := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, WebhookPath), "/")
	if strings.Contains(token, "/") {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint"})
		return
	}

	inst, status, reason := a.authenticate(r.Context(), token)
	if status == http.StatusServiceUnavailable {
		a.metrics.received.WithLabelValues("store_failed").Inc()
		log.Error("webhook not taken", "reason", reason, "status", status)
		writeJSON(w, status, errorBody{Error: "storage unavailable; the delivery was not stored"})
		return
	}
	if status != 0 {
		a.metrics.received.WithLabelValues("refused_token").Inc()
		log.Warn("webhook refused", "reason", reason, "status", status)
		writeJSON(w, status, errorBody{Error: http.StatusText(status) + ": invalid webhook token"})
		return
	}
	log = log.With("installation", inst.ID)

	body, status, reason := a.readBody(w, r)
	if status != 0 {
		a.metrics.received.WithLabelValues("refused_body").Inc()
		log.Warn("webhook body refused", "reason", reason, "status", status)
		writeJSON(w, status, errorBody{Error: reason})
		return
	}
	if result, reason := checkBodySignature(inst, r.Header.Get("X-Hub-Signature"), body); result != "" {
		a.metrics.received.WithLabelValues(result).Inc()
		log.Warn("webhook refused", "reason", reason, "status", http.StatusUnauthorized, "webhook_api", inst.WebhookAPI)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "Unauthorized: " + reason})
		return
	}

	nd, err := a.identify(log, inst.ID, body)
	if err != nil {
		a.metrics.received.WithLabelValues("refused_body").Inc()
		log.Warn("webhook body refused", "reason", err.Error(), "status", http.StatusBadRequest)
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	id, dup, err := a.store.AcceptDelivery(r.Context(), nd)
	if err != nil {
		a.metrics.received.WithLabelValues("store_failed").Inc()
		log.Error("storing delivery", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable; the delivery was not stored"})
		return
	}
	log = log.With("delivery", id)
	if dup {
		a.metrics.received.WithLabelValues("duplicate").Inc()
	} else {
		a.metrics.received.WithLabelValues("stored").Inc()
	}
	status, answer := a.answer(r.Context(), log, id, dup)
	if ans, ok := answer.(deliveryAnswer); ok && ans.NextAttemptAt > 0 {
		// Well-behaved senders and proxies wait this long before sending
		// it again; sooner only earns the same answer.
		secs := (ans.NextAttemptAt - time.Now().UnixMilli() + 999) / 1000
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	writeJSON(w, status, answer)
}

// identify reads what the inbox needs to know of a delivery received now:
// its issue, its Jira timestamp (for ordering, at most MaxClockSkew after
// now) and what makes it the same delivery when Jira sends it twice. It
// uses the plugin's own inspect_delivery code (webhook.Inspect), natively:
// FuzzInspectAgrees proves the wasm export answers the same; a body it
// cannot read is still stored, and the plugin reports why it is refused.
// The identifying fields are stored as text and shown to operators, so one
// holding a NUL or invalid UTF-8 refuses the delivery (PostgreSQL would
// refuse the row, and the sender would learn "storage unavailable" for a
// body that can never be stored).
func (a *App) identify(log *slog.Logger, installationID string, body []byte) (store.NewDelivery, error) {
	in := webhook.Inspect(body)
	d := store.NewDelivery{Installation: installationID, Body: body, DedupeKey: in.DedupeKey}
	if in.Unreadable != "" {
		return d, nil
	}
	for _, f := range []struct{ name, value string }{{"webhookEvent", in.Event}, {"issue.id", in.IssueID},
		{"issue.key", in.IssueKey}, {"changelog.id", in.ChangelogID}} {
		if err := checkText(f.value); err != nil {
			return d, fmt.Errorf("%s %w", f.name, err)
		}
	}
	d.Event, d.IssueID, d.IssueKey, d.ChangelogID = in.Event, in.IssueID, in.IssueKey, in.ChangelogID
	// The clamp is the host's rule, not the plugin's: the dedupe key keeps
	// the timestamp as sent, ordering uses at most now plus the skew.
	var clamped bool
	if d.JiraTimestamp, clamped = a.orderedAt(in.Timestamp, time.Now()); clamped {
		log.Warn("delivery timestamp is in the future; ordered as if sent at the allowed clock skew",
			"issue_key", d.IssueKey, "timestamp", in.Timestamp, "ordered_at", d.JiraTimestamp, "max_clock_skew", a.cfg.MaxClockSkew)
	}
	return d, nil
}

// orderedAt is the time a delivery sent at ts (unix milliseconds) is
// ordered by: ts, or at most MaxClockSkew after now, so that one sender
// with a clock far ahead cannot make the later deliveries of its issue
// (or its group's events) stale for good. clamped says ts was over it.
func (a *App) orderedAt(ts int64, now time.Time) (at int64, clamped bool) {
	bound := now.Add(a.cfg.MaxClockSkew).UnixMilli()
	return min(ts, bound), ts > bound
}

// checkText says why s cannot be stored as text, if it cannot.
func checkText(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("holds a NUL character")
	}
	return nil
}

// answer waits, for a bounded time, for the attempt the delivery is due
// and answers with its outcome. A duplicate that is settled is answered
// from the record, and so is one waiting for a retry that is not due yet:
// its status, error and next attempt time. A re-send is no reason to try
// early: Jira or a proxy re-sending a failed delivery in a loop would
// otherwise spend the retry budget, meant to span about an hour, in a
// second. A duplicate that is due (or not yet tried) is attempted as
// scheduled.
func (a *App) answer(ctx context.Context, log *slog.Logger, id int64, dup bool) (int, any) {
	if dup {
		d, err := a.store.Delivery(ctx, id)
		if err != nil {
			log.Error("reading duplicate delivery", "error", err)
			return http.StatusServiceUnavailable, errorBody{Error: "storage unavailable", Delivery: id}
		}
		switch {
		case d.Status == store.DeliveryDone, d.Status == store.DeliveryStale, d.Status == store.DeliveryFailed,
			d.Status == store.DeliveryDead:
			log.Info("duplicate delivery answered from the record", "status", d.Status)
			return answerFor(pipeline.Stored(d), true)
		case d.Status == store.DeliveryRetrying && d.NextAttemptAt > time.Now().UnixMilli():
			log.Info("re-sent delivery waits for its retry; answered from the record", "status", d.Status,
				"attempts", d.Attempts, "next_attempt_at", time.UnixMilli(d.NextAttemptAt).UTC())
			return answerFor(pipeline.Stored(d), true)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.AnswerWait)
	defer cancel()
	// Never ahead of the schedule: a claim takes it only when it is due.
	res, ok := a.pipeline.Wait(wctx, id, false)
	if !ok {
		// Stored and queued: the answer may go; the work goes on.
		return http.StatusAccepted, deliveryAnswer{Delivery: id, Status: "queued"}
	}
	return answerFor(res, dup)
}

// answerFor turns an attempt's result into the webhook's answer.
func answerFor(r pipeline.Result, dup bool) (int, any) {
	ans := deliveryAnswer{Delivery: r.Delivery.ID, Status: r.Status, Duplicate: dup, Summary: r.Summary, StaleFields: r.StaleFields,
		EventSummary: r.EventSummary, Error: r.Error}
	if r.Status == store.DeliveryRetrying {
		ans.NextAttemptAt = r.Delivery.NextAttemptAt
	}
	status := r.HTTPStatus
	if r.Status == store.DeliveryStale {
		status = http.StatusOK
	}
	if status == 0 {
		status = http.StatusOK
	}
	return status, ans
}

// authenticate finds the installation a token names and checks its
// signature. On refusal it returns the status to answer and the reason to
// log; the caller learns nothing more than the status.
func (a *App) authenticate(ctx context.Context, token string) (store.Installation, int, string) {
	id, err := webhooktoken.Peek(token)
	if err != nil {
		return store.Installation{}, http.StatusBadRequest, err.Error()
	}
	inst, err := a.store.InstallationByExternalID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return inst, http.StatusUnauthorized, "unknown installation " + strconv.Quote(id)
	}
	if err == nil && inst.UninstalledAt != 0 {
		return inst, http.StatusUnauthorized, "installation " + inst.ID + " is uninstalled"
	}
	if err != nil {
		return inst, http.StatusServiceUnavailable, "looking up installation: " + err.Error()
	}
	if err := webhooktoken.Verify(token, inst.ExternalID, []byte(inst.WebhookSecret)); err != nil {
		return inst, http.StatusUnauthorized, err.Error()
	}
	return inst, 0, ""
}

// checkBodySignature checks a delivery's X-Hub-Signature header. Jira 10
// signs each delivery with the secret its webhook was registered with
// (jirasync registers one on the jira-webhook-1.0 API), so for such an
// installation the signature is required: the URL token also appears in
// proxy logs and on Jira's admin page, and the signature is what a leaked
// URL cannot forge. Installations on the older API (Jira before 10) get no
// signature; one sent anyway must match. It returns the metric label and
// the reason of a refusal, or "" to accept.
func checkBodySignature(inst store.Installation, header string, body []byte) (result, reason string) {
	switch {
	case header == "" && inst.WebhookAPI == abi.WebhookAPIJira10:
		return "refused_signature_missing", "body signature (X-Hub-Signature) missing; this installation's Jira 10 webhook signs every delivery"
	case header != "" && !validBodySignature(header, body, inst.WebhookSecret):
		return "refused_signature", "body signature does not verify"
	}
	return "", ""
}

// validBodySignature checks an X-Hub-Signature header, "sha256=<hex>",
// against the HMAC-SHA256 of the raw body.
func validBodySignature(header string, body []byte, secret string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// readBody reads a bounded body and checks that it is a JSON object.
func (a *App) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string) {
	max := a.cfg.MaxBodyBytes
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge, "body is over " + strconv.FormatInt(max, 10) + " bytes"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, "body is over " + strconv.FormatInt(max, 10) + " bytes"
	case err != nil:
		return nil, http.StatusBadRequest, "reading body: " + err.Error()
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, http.StatusBadRequest, "body is not a JSON object"
	}
	return body, 0, ""
}

// deliveryAnswer is the JSON answer to a stored delivery.
type deliveryAnswer struct {
	Delivery  int64  `json:"delivery"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// NextAttemptAt is when a delivery waiting for a retry is tried next
	// (unix milliseconds).
	NextAttemptAt int64 `json:"next_attempt_at,omitempty"`
	*abi.Summary
	// StaleFields is the host's, beside the plugin's summary: the fields
	// of a done delivery whose changes a newer delivery of the issue had
	// applied already (store.SummaryStaleFields).
	StaleFields []string `json:"stale_fields,omitempty"`
	// EventSummary is a platform event's summary (a replay's answer).
	EventSummary *abi.EventSummary `json:"event_summary,omitempty"`
	Error        *abi.Error        `json:"error,omitempty"`
}

// writeJSON is every JSON answer of the host. nosniff: a browser must
// never read one as HTML or script, whatever an echoed value contains.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
