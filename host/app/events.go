package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
)

// Platform events in (two-way sync): the platform says a group was
// assigned, resolved or unresolved, and the plugin carries that to the
// Jira issues linked to the group. An event is stored as one delivery per
// installation, in one transaction, before it is acknowledged; from then
// on it is a delivery like a webhook (retried, ordered per group, in the
// delivery log, replayable, pruned). docs/API.md, "Platform events".

// EventsPath is where the platform posts its events.
const EventsPath = APIPrefix + "/events"

// BuiltinEventPrefix starts the id of an event the built-in platform
// raises itself, when PUT /api/v1/groups/{id} changes a group.
const BuiltinEventPrefix = "builtin:"

func (a *App) eventRoutes() {
	a.mux.HandleFunc("POST "+EventsPath, a.eventAuth(a.handleEvent))
}

// eventAuth guards the events endpoint: a bearer token that is the admin
// token or the platform's (Config.PlatformToken, the token jirasync
// presents to a platform over HTTP and accepts back from it). A wrong
// token counts towards the sign-in throttle, as on the API.
func (a *App) eventAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.throttled(w, r) {
			return
		}
		got, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if bearer && (sameToken(got, a.cfg.AdminToken) || sameToken(got, a.cfg.PlatformToken)) {
			h(w, r)
			return
		}
		a.credentialsRefused(r)
		a.metrics.events.WithLabelValues("refused_token").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="jirasync"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "the admin token or the platform token is required: Authorization: Bearer <token>"})
	}
}

// sameToken compares a presented token with an expected one in constant
// time; an expected "" (no such token configured) matches nothing.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// handleEvent is POST /api/v1/events: 202 with the deliveries stored, 200
// with the earlier ones for an id accepted before, 400 naming the field
// of a bad event (nothing stored), 503 when it could not be stored.
func (a *App) handleEvent(w http.ResponseWriter, r *http.Request) {
	body, ok := readAPIBody(w, r)
	if !ok {
		a.metrics.events.WithLabelValues("refused_body").Inc()
		return
	}
	e, err := platform.DecodeEvent(body)
	if err != nil {
		a.metrics.events.WithLabelValues("refused_body").Inc()
		var fe *platform.FieldError
		errors.As(err, &fe) // DecodeEvent's errors are all FieldErrors
		a.log.Warn("platform event refused", "remote", r.RemoteAddr, "field", fe.Field, "reason", fe.Msg)
		writeJSON(w, http.StatusBadRequest, apiError{Field: fe.Field, Error: fe.Error()})
		return
	}
	rec, err := a.publish(r.Context(), e)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "storage unavailable; the event was not stored"})
		return
	}
	status := http.StatusAccepted
	if rec.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, rec)
}

// PublishEvent hands jirasync a platform event, for a platform that embeds
// the host in Go: what POST /api/v1/events does. It returns once the event
// is stored, one delivery per installation (none when there is no
// installation), to be carried to each installation's Jira by the
// delivery workers. An id accepted before stores nothing and returns the
// earlier deliveries with Duplicate set. A bad event is a
// *platform.FieldError naming the field; any other error means it was not
// stored and may be sent again.
func (a *App) PublishEvent(ctx context.Context, e platform.Event) (platform.EventReceipt, error) {
	if err := e.Validate(); err != nil {
		a.metrics.events.WithLabelValues("refused_body").Inc()
		return platform.EventReceipt{ID: e.ID}, err
	}
	return a.publish(ctx, e)
}

// publish stores a valid event and asks the workers to carry it.
func (a *App) publish(ctx context.Context, e platform.Event) (platform.EventReceipt, error) {
	log := a.log.With("event", e.ID, "type", e.Type, "group", e.Group)
	ids, dup, err := a.store.AcceptEvent(ctx, a.newEvent(log, e, time.Now()))
	if err != nil {
		a.metrics.events.WithLabelValues("store_failed").Inc()
		log.Error("storing platform event", "error", err)
		return platform.EventReceipt{ID: e.ID}, err
	}
	rec := platform.EventReceipt{ID: e.ID, Deliveries: ids, Duplicate: dup}
	if dup {
		a.metrics.events.WithLabelValues("duplicate").Inc()
		log.Info("platform event accepted before; nothing stored", "deliveries", ids)
		return rec, nil
	}
	a.accepted(log, ids)
	return rec, nil
}

// accepted counts and logs a stored event and asks for its attempts.
func (a *App) accepted(log *slog.Logger, ids []int64) {
	a.metrics.events.WithLabelValues("stored").Inc()
	if len(ids) == 0 {
		log.Info("platform event accepted; no installation to carry it to")
		return
	}
	log.Info("platform event accepted", "deliveries", ids)
	a.pipeline.Submit(ids...)
}

// newEvent is e as it is stored: the body the plugin gets
// (abi.PlatformEvent, its time in UTC) and the time its group's events
// are ordered by, bounded as a webhook's Jira timestamp is (orderedAt).
func (a *App) newEvent(log *slog.Logger, e platform.Event, now time.Time) store.NewEvent {
	body := EventBody(e)
	ts, clamped := a.orderedAt(e.OccurredAt.UnixMilli(), now)
	if clamped {
		log.Warn("platform event occurred in the future; ordered as if at the allowed clock skew",
			"occurred_at", e.OccurredAt, "ordered_at", time.UnixMilli(ts).UTC(), "max_clock_skew", a.cfg.MaxClockSkew)
	}
	return store.NewEvent{ID: e.ID, Type: e.Type, Group: e.Group, Body: body, Timestamp: ts}
}

// EventBody is the body a valid event is stored with and the plugin's
// handle_platform_event gets: abi.PlatformEvent, its time in UTC. The
// conformance kit builds the same from a scenario's event.
func EventBody(e platform.Event) []byte {
	body, _ := json.Marshal(abi.PlatformEvent{ID: e.ID, Type: e.Type, Group: e.Group, Assignee: e.Assignee,
		OccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano)}) // plain strings: cannot fail
	return body
}

// putGroup is the built-in platform's PUT /api/v1/groups/{id}: a change
// of the group's assignee or status raises its event (ids
// "builtin:<random>", occurred now) in the same transaction as the
// write, so that the change and its carrying to Jira are stored together
// or not at all.
func (a *App) putGroup(ctx context.Context, g platform.Group) error {
	now := time.Now()
	raised, err := a.store.PutGroupRaising(ctx, g, func(before *platform.Group, after platform.Group) ([]store.NewEvent, error) {
		events := platform.GroupEvents(before, after, now, func() string { return BuiltinEventPrefix + rand.Text() })
		out := make([]store.NewEvent, len(events))
		for i, e := range events {
			out[i] = a.newEvent(a.log, e, now)
		}
		return out, nil
	})
	for _, e := range raised {
		a.accepted(a.log.With("event", e.ID, "type", e.Type, "group", e.Group), e.Deliveries)
	}
	return err
}
