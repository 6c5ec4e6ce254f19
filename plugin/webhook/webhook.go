// Package webhook reads Jira Server webhook bodies. It decodes only the
// fields that group sync acts on: a full issue can carry hundreds of custom
// fields, and decoding them inside the sandbox would cost more than the
// whole rest of a delivery.
package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// EventIssueUpdated is the only event group sync acts on.
const EventIssueUpdated = "jira:issue_updated"

// IssueUpdated is the part of a jira:issue_updated body that matters here.
type IssueUpdated struct {
	Event     string
	Timestamp int64 // milliseconds since the epoch, 0 if absent
	IssueID   string
	IssueKey  string
	// Assignee is the snapshot in issue.fields.assignee: nil when it is null
	// or absent. Changelog strings are not used for this: on Jira Server they
	// hold user names, which need not match anything on the platform.
	Assignee    *User
	ChangelogID string
	Items       []ChangelogItem
}

// User is a Jira Server user as it appears in payloads.
type User struct {
	Name         string `json:"name"`
	Key          string `json:"key"`
	EmailAddress string `json:"emailAddress"`
	DisplayName  string `json:"displayName"`
}

// ChangelogItem is one changed field.
type ChangelogItem struct {
	Field     string `json:"field"`
	FieldType string `json:"fieldtype"`
}

// ChangesField reports whether some changelog item changed the named field.
func (p *IssueUpdated) ChangesField(field string) bool {
	for _, it := range p.Items {
		if it.Field == field {
			return true
		}
	}
	return false
}

// ErrNotObject is returned for a body that is valid JSON but not an object.
var ErrNotObject = errors.New("webhook body is not a JSON object")

// wire mirrors the JSON layout; unknown fields are skipped by the decoder.
type wire struct {
	WebhookEvent string     `json:"webhookEvent"`
	Timestamp    flexNumber `json:"timestamp"`
	Issue        *struct {
		ID     flexString `json:"id"`
		Key    string     `json:"key"`
		Fields struct {
			Assignee *User `json:"assignee"`
		} `json:"fields"`
	} `json:"issue"`
	Changelog *struct {
		ID    flexString      `json:"id"`
		Items []ChangelogItem `json:"items"`
	} `json:"changelog"`
}

// Parse decodes a webhook body. It fails on malformed JSON, on a body that
// is not an object, and on fields of the wrong type; it does not judge
// whether the event is one to act on.
func Parse(body []byte) (*IssueUpdated, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("webhook body is empty")
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return nil, ErrNotObject
		}
		return nil, errors.New("webhook body is not valid JSON")
	}
	var w wire
	if err := json.Unmarshal(trimmed, &w); err != nil {
		return nil, fmt.Errorf("webhook body: %w", err)
	}
	p := &IssueUpdated{Event: w.WebhookEvent, Timestamp: int64(w.Timestamp)}
	if w.Issue != nil {
		p.IssueID = string(w.Issue.ID)
		p.IssueKey = w.Issue.Key
		p.Assignee = w.Issue.Fields.Assignee
	}
	if w.Changelog != nil {
		p.ChangelogID = string(w.Changelog.ID)
		p.Items = w.Changelog.Items
	}
	return p, nil
}

// flexString accepts a JSON string or number: Jira sends ids as strings,
// but tools that replay webhooks often turn them into numbers.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or number id, got %.20s", b)
	}
	*s = flexString(n.String())
	return nil
}

// flexNumber accepts a JSON number or a numeric string (the same replay
// tools again).
type flexNumber int64

func (n *flexNumber) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = 0
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer timestamp, got %.20s", b)
	}
	*n = flexNumber(v)
	return nil
}
