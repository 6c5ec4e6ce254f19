package app

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
)

// DeliveriesPath is the delivery log; admin only.
const DeliveriesPath = "/extensions/jira-server/deliveries"

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"mappings": formatMappings,
	"time": func(ms int64) string {
		if ms == 0 {
			return ""
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000")
	},
	"summary": func(js string) *abi.Summary {
		var s abi.Summary
		if json.Unmarshal([]byte(js), &s) != nil {
			return nil
		}
		return &s
	},
	"eventSummary": func(js string) *abi.EventSummary {
		var s abi.EventSummary
		if json.Unmarshal([]byte(js), &s) != nil {
			return nil
		}
		return &s
	},
}).ParseFS(templateFS, "templates/*.html"))

func (a *App) deliveryRoutes() {
	a.mux.HandleFunc("GET "+DeliveriesPath, a.admin(a.listDeliveries))
	a.mux.HandleFunc("GET "+DeliveriesPath+"/{id}", a.admin(a.showDelivery))
	a.mux.HandleFunc("POST "+DeliveriesPath+"/{id}/replay", a.admin(a.replayDelivery))
}

func wantsHTML(r *http.Request) bool {
	return r.URL.Query().Get("format") == "html" ||
		(r.URL.Query().Get("format") == "" && strings.Contains(r.Header.Get("Accept"), "text/html"))
}

type deliveryList struct {
	Deliveries []store.Delivery `json:"deliveries"`
	// NextBefore pages on: pass it as before= for older deliveries.
	NextBefore int64                `json:"next_before,omitempty"`
	Filter     store.DeliveryFilter `json:"-"`
	NextURL    string               `json:"-"`
	Statuses   []string             `json:"-"`
	Kinds      []string             `json:"-"`
}

func (a *App) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.DeliveryFilter{Installation: q.Get("installation"), Status: q.Get("status"), IssueKey: q.Get("issue_key"),
		Kind: q.Get("kind")}
	if f.Kind != "" && f.Kind != store.KindEvent && f.Kind != store.KindWebhook {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "kind: want event or webhook"})
		return
	}
	var err error
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "before: not a delivery id"})
			return
		}
	}
	var ok bool
	if f.Limit, ok = parseLimit(w, r); !ok {
		return
	}
	ds, err := a.store.Deliveries(r.Context(), f)
	if err != nil {
		a.log.Error("listing deliveries", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable"})
		return
	}
	list := deliveryList{Deliveries: ds, Filter: f, Statuses: []string{store.DeliveryPending, store.DeliveryProcessing,
		store.DeliveryRetrying, store.DeliveryDone, store.DeliveryStale, store.DeliveryFailed, store.DeliveryDead},
		Kinds: []string{store.KindWebhook, store.KindEvent}}
	if ds == nil {
		list.Deliveries = []store.Delivery{}
	}
	if len(ds) == f.Limit {
		list.NextBefore = ds[len(ds)-1].ID
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(list.NextBefore, 10))
		next.Set("format", "html")
		list.NextURL = DeliveriesPath + "?" + next.Encode()
	}
	if wantsHTML(r) {
		render(w, http.StatusOK, "deliveries.html", list)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// parseLimit reads a list's limit= (1 to 500, default 50), answering 400
// for anything else.
func parseLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "limit: a number from 1 to 500"})
		return 0, false
	}
	return n, true
}

type deliveryDetail struct {
	store.Delivery
	Body       json.RawMessage `json:"body"`
	Attempts   []store.Attempt `json:"attempt_log"`
	ReplayCSRF string          `json:"-"`
}

func (a *App) showDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such delivery"})
		return
	}
	d, err := a.store.Delivery(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such delivery"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable"})
		return
	}
	attempts, err := a.store.Attempts(r.Context(), id)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable"})
		return
	}
	detail := deliveryDetail{Delivery: d, Attempts: attempts, ReplayCSRF: a.CSRF(r)}
	if len(d.Body) > 0 { // empty once retention dropped it: null, not invalid JSON
		detail.Body = json.RawMessage(d.Body)
	}
	if wantsHTML(r) {
		render(w, http.StatusOK, "delivery.html", detail)
		return
	}
	writeJSON(w, http.StatusOK, detail)
}

// replayDelivery processes a stored delivery again. A form post from the
// delivery page must carry the page's CSRF token: a browser sends Basic
// credentials with any site's request.
func (a *App) replayDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such delivery"})
		return
	}
	switch err := a.store.Replay(r.Context(), id); {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such delivery"})
		return
	case errors.Is(err, store.ErrBusy):
		writeJSON(w, http.StatusConflict, errorBody{Error: "the delivery is being processed", Delivery: id})
		return
	case errors.Is(err, store.ErrBodyDropped):
		writeJSON(w, http.StatusGone, errorBody{Error: "the delivery's body was dropped by retention; it cannot be replayed", Delivery: id})
		return
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable"})
		return
	}
	a.log.Info("delivery replayed", "delivery", id)
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.AnswerWait)
	defer cancel()
	res, ok := a.pipeline.Wait(ctx, id, true)
	if r.PostFormValue("csrf") != "" {
		http.Redirect(w, r, DeliveriesPath+"/"+strconv.FormatInt(id, 10)+"?format=html", http.StatusSeeOther)
		return
	}
	if !ok {
		writeJSON(w, http.StatusAccepted, deliveryAnswer{Delivery: id, Status: "queued"})
		return
	}
	status, ans := answerFor(res, false)
	if status != http.StatusAccepted {
		status = http.StatusOK // the replay itself worked; the delivery's own status is in the body
	}
	writeJSON(w, status, ans)
}

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Browsers apply form-action to the redirects after a submission too,
	// and the setup form's answer redirects to the operator's Jira, at an
	// origin not known when the page is made.
	formAction := "'self'"
	if name == "setup.html" {
		formAction = "'self' http: https:"
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction)
	w.Header().Set("X-Frame-Options", "DENY")
	// Pages carry CSRF tokens, and the setup page private keys: no cache
	// keeps them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
