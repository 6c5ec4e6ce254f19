package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/plugin/abi"
)

// WebhookPath is where Jira posts issue-updated events; the token follows.
const WebhookPath = "/extensions/jira-server/issue-updated/"

func (a *App) routes() {
	a.mux.HandleFunc(WebhookPath, a.handleWebhook)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.store.Ping(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
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
	if status != 0 {
		log.Warn("webhook refused", "reason", reason, "status", status)
		writeJSON(w, status, errorBody{Error: http.StatusText(status) + ": invalid webhook token"})
		return
	}
	log = log.With("installation", inst.ID)

	body, status, reason := a.readBody(w, r)
	if status != 0 {
		log.Warn("webhook body refused", "reason", reason, "status", status)
		writeJSON(w, status, errorBody{Error: reason})
		return
	}

	// The delivery is processed to its end even if Jira hangs up: a half
	// applied delivery is worse than an answer nobody reads.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.cfg.DeliveryTimeout)
	defer cancel()
	id, err := a.store.CreateDelivery(ctx, inst.ID, body)
	if err != nil {
		log.Error("recording delivery", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable; the delivery was not recorded"})
		return
	}
	log = log.With("delivery", id)
	status, answer := a.process(ctx, log, inst, id, body)
	writeJSON(w, status, answer)
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
	if err != nil {
		return inst, http.StatusServiceUnavailable, "looking up installation: " + err.Error()
	}
	if err := webhooktoken.Verify(token, inst.ExternalID, []byte(inst.WebhookSecret)); err != nil {
		return inst, http.StatusUnauthorized, err.Error()
	}
	return inst, 0, ""
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
	return trimmed, 0, ""
}

// deliveryAnswer is the JSON answer to a processed delivery.
type deliveryAnswer struct {
	Delivery int64 `json:"delivery"`
	*abi.Summary
	Error *abi.Error `json:"error,omitempty"`
}

// process runs the plugin on a recorded delivery and records the outcome.
func (a *App) process(ctx context.Context, log *slog.Logger, inst store.Installation, id int64, body []byte) (int, any) {
	b := &capabilities.Binding{Installation: inst, Delivery: id, Logger: log}
	sum, err := engine.HandleIssueUpdated(ctx, a.engine, b, body)
	rec := store.Delivery{ID: id}
	var status int
	var answer any
	if err == nil {
		s, _ := json.Marshal(sum)
		rec.Status, rec.IssueKey, rec.Summary = store.DeliveryDone, sum.IssueKey, string(s)
		status, answer = http.StatusOK, deliveryAnswer{Delivery: id, Summary: sum}
		log.Info("delivery processed", "outcome", sum.Outcome, "issue_key", sum.IssueKey,
			"assigned", sum.Assigned, "unassigned", sum.Unassigned, "skipped", sum.Skipped)
	} else {
		var ae *abi.Error
		var fault *engine.Fault
		switch {
		case errors.As(err, &ae):
			status = statusFor(ae.Code)
		case errors.As(err, &fault):
			ae = abi.Errorf(abi.CodeInternal, fault.Error())
			status = http.StatusInternalServerError
			if fault.Reason == "timeout" || fault.Reason == "no_instance" {
				ae.Code, status = abi.CodeUnavailable, http.StatusServiceUnavailable
			}
		default:
			ae, status = abi.Errorf(abi.CodeInternal, err.Error()), http.StatusInternalServerError
		}
		rec.Status, rec.Error = store.DeliveryFailed, ae.Error()
		answer = deliveryAnswer{Delivery: id, Error: ae}
		log.Warn("delivery failed", "code", ae.Code, "error", ae.Message, "status", status)
	}
	rec.HTTPStatus = status
	if err := a.store.FinishDelivery(context.WithoutCancel(ctx), rec); err != nil {
		log.Error("recording delivery outcome", "error", err)
	}
	return status, answer
}

func statusFor(code abi.ErrorCode) int {
	switch code {
	case abi.CodeInvalidPayload, abi.CodeInvalidRequest:
		return http.StatusBadRequest
	case abi.CodeUnavailable:
		return http.StatusServiceUnavailable
	case abi.CodeJiraRejected:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
