package fakejira

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// This file is the webhook echo: like a real Jira, the simulated one fires
// the issue-updated webhook after every change to an issue, whoever made
// it, so jirasync sees its own writes come back (issue 12: echo loops).
// Echoes are sent one at a time, in the order of the changes, by one
// goroutine, after the write has been answered, as Jira sends webhooks
// after its transaction commits.

// changeItem is one changelog item of a webhook. Assignee items name user
// keys, status items status ids, as Jira 9's do.
type changeItem struct {
	Field      string  `json:"field"`
	FieldType  string  `json:"fieldtype"`
	From       *string `json:"from"`
	FromString *string `json:"fromString"`
	To         *string `json:"to"`
	ToString   *string `json:"toString"`
}

// Echo is one webhook the echo fired.
type Echo struct {
	Issue string
	// Fields are the changelog items' fields ("assignee", "status").
	Fields  []string
	Body    []byte
	Results []FireResult
}

// SetEcho turns the webhook echo on or off (off at start). With it on,
// every change to an issue, through the REST API or Edit, is delivered
// to the active registered webhooks.
func (s *Server) SetEcho(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echoOn = on
}

// Echoes returns the echoes sent so far, in order.
func (s *Server) Echoes() []Echo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Echo(nil), s.echoes...)
}

// WaitEchoes waits until every echo queued so far has been sent (whatever
// the receiver answered), or ctx ends.
func (s *Server) WaitEchoes(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := len(s.echoQueue) == 0 && !s.echoSending
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// AddWebhook registers a webhook as an administrator would in Jira's UI,
// without the REST API; it gets the next id and the API of the server's
// version.
func (s *Server) AddWebhook(w Webhook) Webhook {
	w.API = WebhookAPILegacy
	if s.versionNumbers[0] >= 10 {
		w.API = WebhookAPIJira10
	}
	return s.storeWebhook(webhookRecord{Webhook: w}).Webhook
}

// setAssignee and setStatus change an issue and return the changelog
// item, and whether anything changed. Called with s.mu held.
func (s *Server) setAssignee(is *Issue, name string) (changeItem, bool) {
	if strings.EqualFold(is.Assignee, name) {
		return changeItem{}, false
	}
	item := changeItem{Field: "assignee", FieldType: "jira"}
	if u, ok := s.userByName(is.Assignee); ok && is.Assignee != "" {
		item.From, item.FromString = &u.Key, &u.DisplayName
	}
	if u, ok := s.userByName(name); ok && name != "" {
		item.To, item.ToString = &u.Key, &u.DisplayName
	}
	is.Assignee = name
	return item, true
}

func (s *Server) setStatus(is *Issue, id string) (changeItem, bool) {
	if is.Status == id {
		return changeItem{}, false
	}
	from, _ := s.statusByID(is.Status)
	to, _ := s.statusByID(id)
	item := changeItem{Field: "status", FieldType: "jira", From: &from.ID, FromString: &from.Name, To: &to.ID, ToString: &to.Name}
	is.Status = id
	return item, true
}

// echo queues the issue-updated webhook for a change of is, when echo is
// on and something changed. Called with s.mu held, after the change.
func (s *Server) echo(is *Issue, items []changeItem) {
	if !s.echoOn || len(items) == 0 {
		return
	}
	s.changelogSeq++
	eventType := "issue_generic"
	var fields []string
	for _, it := range items {
		fields = append(fields, it.Field)
	}
	if len(items) == 1 && items[0].Field == "assignee" {
		eventType = "issue_assigned"
	}
	actor := User{Name: adminKey, Key: adminKey, DisplayName: adminName, Active: true}
	body, err := json.Marshal(map[string]any{
		"timestamp":             s.now().UnixMilli(),
		"webhookEvent":          "jira:issue_updated",
		"issue_event_type_name": eventType,
		"user":                  s.userSummary(actor),
		"issue": issueBody{ID: is.ID, Self: s.url + "/rest/api/2/issue/" + is.ID, Key: is.Key,
			Fields: s.issueFields(is, "")},
		"changelog": map[string]any{"id": strconv.Itoa(s.changelogSeq), "items": items},
	})
	if err != nil {
		panic(err) // only the fake's own types are marshalled
	}
	s.echoQueue = append(s.echoQueue, Echo{Issue: is.Key, Fields: fields, Body: body})
	if !s.echoSending {
		s.echoSending = true
		go s.sendEchoes()
	}
}

// sendEchoes sends the queued echoes in order until the queue is empty.
func (s *Server) sendEchoes() {
	for {
		s.mu.Lock()
		if len(s.echoQueue) == 0 {
			s.echoSending = false
			s.mu.Unlock()
			return
		}
		e := s.echoQueue[0]
		s.echoQueue = s.echoQueue[1:]
		s.mu.Unlock()
		e.Results = s.Fire(context.Background(), e.Body)
		s.log.Info("webhook echo sent", "issue", e.Issue, "fields", strings.Join(e.Fields, ","), "webhooks", len(e.Results))
		s.mu.Lock()
		s.echoes = append(s.echoes, e)
		s.mu.Unlock()
	}
}
