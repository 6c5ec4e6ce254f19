package fakeplatform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Event is what the platform tells jirasync about a change it made to a
// group (docs/API.md, POST /api/v1/events). Assignee is set for
// group.assigned only (nil there is unassigned).
type Event struct {
	ID         string  `json:"id"`
	Type       string  `json:"type"`
	Group      string  `json:"group"`
	Assignee   *string `json:"assignee"`
	OccurredAt string  `json:"occurred_at"`
}

// MarshalJSON leaves assignee out of the status events, which do not
// carry one.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	if e.Type == "group.assigned" {
		return json.Marshal(plain(e))
	}
	return json.Marshal(struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Group      string `json:"group"`
		OccurredAt string `json:"occurred_at"`
	}{e.ID, e.Type, e.Group, e.OccurredAt})
}

// SentEvent is one event the platform sent and how jirasync answered.
type SentEvent struct {
	Event
	Attempts int
	Status   int    // the last answer's status; 0 without one
	Err      string // why the last attempt failed; "" when answered 2xx
}

// Event delivery: retried on 5xx and transport failures, a few times
// with a short backoff (the simulated platform is for tests), in order.
const (
	eventAttempts     = 8
	eventFirstBackoff = 25 * time.Millisecond
	eventTimeout      = 5 * time.Second
)

// events sends the platform's events, one at a time in the order of the
// changes, from its own goroutine: a platform's webhook leaves after the
// change is committed, never inside the request that made it (jirasync's
// apply would otherwise wait on its own event intake).
type events struct {
	url, token string
	client     *http.Client
	prefix     string // of event ids, random per platform: two platforms' ids never meet

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Event
	busy    bool
	sent    []SentEvent
	seq     int
	last    time.Time
	stopped bool
	stop    context.CancelFunc
	ctx     context.Context
	done    chan struct{}
}

// SendEvents makes the platform POST an event to eventsURL (jirasync's
// /api/v1/events) with "Authorization: Bearer token" after each change
// it makes to a group: an assignment or status applied for jirasync, or
// one made through Assign or SetStatus (a person on the platform).
// Changes that change nothing send nothing. Call it before serving.
func (s *Server) SendEvents(eventsURL, token string) error {
	u, err := url.Parse(eventsURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("events URL %q: want an absolute http(s) URL", eventsURL)
	}
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return fmt.Errorf("events token: empty or holding a line break")
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	ev := &events{url: eventsURL, token: token, prefix: "fakeplatform-" + hex.EncodeToString(id[:]) + "-",
		client: &http.Client{Timeout: eventTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		done:   make(chan struct{})}
	ev.cond = sync.NewCond(&ev.mu)
	ev.ctx, ev.stop = context.WithCancel(context.Background())
	go ev.run(s)
	s.mu.Lock()
	s.events = ev
	s.mu.Unlock()
	return nil
}

// raise queues an event for a change just made; under s.mu, so that
// events leave in the order of the changes.
func (s *Server) raise(typ, group string, assignee *string) {
	ev := s.events
	if ev == nil {
		return
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.stopped {
		return
	}
	ev.seq++
	// Strictly increasing times: jirasync orders a group's events by
	// occurred_at, in milliseconds.
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(ev.last) {
		now = ev.last.Add(time.Millisecond)
	}
	ev.last = now
	e := Event{ID: fmt.Sprintf("%s%d", ev.prefix, ev.seq), Type: typ, Group: group, OccurredAt: now.Format("2006-01-02T15:04:05.000Z07:00")}
	if typ == "group.assigned" && assignee != nil {
		a := *assignee
		e.Assignee = &a
	}
	ev.queue = append(ev.queue, e)
	ev.cond.Broadcast()
}

func (ev *events) run(s *Server) {
	defer close(ev.done)
	for {
		ev.mu.Lock()
		for len(ev.queue) == 0 && !ev.stopped {
			ev.cond.Wait()
		}
		if ev.stopped {
			ev.mu.Unlock()
			return
		}
		e := ev.queue[0]
		ev.queue = ev.queue[1:]
		ev.busy = true
		ev.mu.Unlock()

		sent := ev.send(e)
		s.log.Debug("event sent", "id", e.ID, "type", e.Type, "group", e.Group, "status", sent.Status, "attempts", sent.Attempts, "error", sent.Err)
		ev.mu.Lock()
		ev.sent = append(ev.sent, sent)
		ev.busy = false
		ev.cond.Broadcast()
		ev.mu.Unlock()
	}
}

// send posts one event until it is answered 2xx or 4xx, or the attempts
// run out.
func (ev *events) send(e Event) SentEvent {
	body, _ := json.Marshal(e)
	out := SentEvent{Event: e}
	backoff := eventFirstBackoff
	for out.Attempts < eventAttempts {
		out.Attempts++
		out.Status, out.Err = ev.post(body)
		if out.Err == "" || (out.Status >= 400 && out.Status < 500) {
			return out
		}
		select {
		case <-ev.ctx.Done():
			return out
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return out
}

func (ev *events) post(body []byte) (status int, problem string) {
	req, err := http.NewRequestWithContext(ev.ctx, http.MethodPost, ev.url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+ev.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ev.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Sprintf("answered %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return resp.StatusCode, ""
}

// SentEvents lists the events sent so far, in order, with jirasync's
// answers.
func (s *Server) SentEvents() []SentEvent {
	s.mu.Lock()
	ev := s.events
	s.mu.Unlock()
	if ev == nil {
		return nil
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]SentEvent(nil), ev.sent...)
}

// WaitEvents waits until every event raised so far was sent (or given
// up on), or ctx ends.
func (s *Server) WaitEvents(ctx context.Context) error {
	s.mu.Lock()
	ev := s.events
	s.mu.Unlock()
	if ev == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		ev.mu.Lock()
		ev.cond.Broadcast()
		ev.mu.Unlock()
	})
	defer stop()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for (len(ev.queue) > 0 || ev.busy) && !ev.stopped {
		if ctx.Err() != nil {
			return fmt.Errorf("%d events not sent yet: %w", len(ev.queue), ctx.Err())
		}
		ev.cond.Wait()
	}
	return nil
}

// closeEvents stops sending: events still queued are dropped.
func (ev *events) close() {
	ev.mu.Lock()
	ev.stopped = true
	ev.cond.Broadcast()
	ev.mu.Unlock()
	ev.stop()
	<-ev.done
}
