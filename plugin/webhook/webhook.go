// Package webhook reads Jira Server webhook bodies. It decodes only the
// fields that group sync acts on: a full issue can carry hundreds of custom
// fields, and decoding them inside the sandbox would cost more than the
// whole rest of a delivery.
package webhook

import (
	"encoding/json"
	"errors"

	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// EventIssueUpdated is the only event group sync acts on.
const EventIssueUpdated = "jira:issue_updated"

// IssueUpdated is the part of a jira:issue_updated body that matters here.
type IssueUpdated struct {
	// Event is webhookEvent, or EventIssueUpdated when the body has none
	// (absent or null): the webhook's URL already names the event, and
	// real senders leave the member out (Jira Automation's "send web
	// request", relays, older Jira plugins). An explicit other event,
	// even "", is kept as sent.
	Event     string
	Timestamp int64 // milliseconds since the epoch, 0 if absent
	IssueID   string
	IssueKey  string
	// Assignee is the snapshot in issue.fields.assignee: nil when it is null
	// or absent. Changelog strings are not used for this: on Jira Server they
	// hold user names, which need not match anything on the platform.
	Assignee *User
	// Status is the snapshot in issue.fields.status: nil when it is null
	// or absent. What to set is read here, not from the changelog.
	Status      *Status
	ChangelogID string
	Items       []ChangelogItem
}

// Status is a Jira workflow status as it appears in payloads.
type Status struct {
	ID   string
	Name string
	// CategoryKey is statusCategory.key: "new", "indeterminate", "done".
	CategoryKey string
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
	// From and To are the old and new values' ids (a status's id for the
	// status field), "" when null or absent.
	From string `json:"from"`
	To   string `json:"to"`
}

// Item returns the first changelog item of the named field.
func (p *IssueUpdated) Item(field string) (ChangelogItem, bool) {
	for _, it := range p.Items {
		if it.Field == field {
			return it, true
		}
	}
	return ChangelogItem{}, false
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

// Parse decodes a webhook body. It fails on malformed JSON, on a body that
// is not an object, and on fields of the wrong type; it does not judge
// whether the event is one to act on. Keys match exactly, as Jira sends
// them.
func Parse(body []byte) (*IssueUpdated, error) {
	s := jsonscan.New("webhook body", body)
	switch {
	case !s.More():
		return nil, errors.New("webhook body is empty")
	case s.Peek() == '{':
	default:
		if json.Valid(body) {
			return nil, ErrNotObject
		}
		return nil, errors.New("webhook body is not valid JSON")
	}
	p := &IssueUpdated{}
	var event *string
	err := s.Object(func(key []byte) error {
		switch string(key) {
		case "webhookEvent":
			event = nil
			if isNull, err := s.Null(); isNull || err != nil {
				return err
			}
			event = new(string)
			return stringField(s, "webhookEvent", event)
		case "timestamp":
			return intField(s, "timestamp", &p.Timestamp)
		case "issue":
			return readIssue(s, p)
		case "changelog":
			return readChangelog(s, p)
		}
		return s.Skip()
	})
	if err != nil {
		return nil, err
	}
	if err := s.End(); err != nil {
		return nil, err
	}
	p.Event = EventIssueUpdated
	if event != nil {
		p.Event = *event
	}
	return p, nil
}

func readIssue(s *jsonscan.Scanner, p *IssueUpdated) error {
	if isNull, err := s.Null(); isNull || err != nil {
		return err
	}
	if s.Peek() != '{' {
		return errors.New("webhook body: issue is not an object")
	}
	return s.Object(func(key []byte) error {
		switch string(key) {
		case "id":
			return idField(s, "issue.id", &p.IssueID)
		case "key":
			return stringField(s, "issue.key", &p.IssueKey)
		case "fields":
			if isNull, err := s.Null(); isNull || err != nil {
				return err
			}
			if s.Peek() != '{' {
				return errors.New("webhook body: issue.fields is not an object")
			}
			return s.Object(func(key []byte) error {
				if string(key) == "status" {
					return readStatus(s, p)
				}
				if string(key) != "assignee" {
					return s.Skip()
				}
				p.Assignee = nil
				if isNull, err := s.Null(); isNull || err != nil {
					return err
				}
				if s.Peek() != '{' {
					return errors.New("webhook body: issue.fields.assignee is not an object")
				}
				u := &User{}
				p.Assignee = u
				return s.Object(func(key []byte) error {
					switch string(key) {
					case "name":
						return stringField(s, "assignee.name", &u.Name)
					case "key":
						return stringField(s, "assignee.key", &u.Key)
					case "emailAddress":
						return stringField(s, "assignee.emailAddress", &u.EmailAddress)
					case "displayName":
						return stringField(s, "assignee.displayName", &u.DisplayName)
					}
					return s.Skip()
				})
			})
		}
		return s.Skip()
	})
}

// readStatus reads issue.fields.status.
func readStatus(s *jsonscan.Scanner, p *IssueUpdated) error {
	p.Status = nil
	if isNull, err := s.Null(); isNull || err != nil {
		return err
	}
	if s.Peek() != '{' {
		return errors.New("webhook body: issue.fields.status is not an object")
	}
	st := &Status{}
	p.Status = st
	return s.Object(func(key []byte) error {
		switch string(key) {
		case "id":
			return idField(s, "status.id", &st.ID)
		case "name":
			return stringField(s, "status.name", &st.Name)
		case "statusCategory":
			if isNull, err := s.Null(); isNull || err != nil {
				return err
			}
			if s.Peek() != '{' {
				return errors.New("webhook body: issue.fields.status.statusCategory is not an object")
			}
			return s.Object(func(key []byte) error {
				if string(key) == "key" {
					return stringField(s, "statusCategory.key", &st.CategoryKey)
				}
				return s.Skip()
			})
		}
		return s.Skip()
	})
}

func readChangelog(s *jsonscan.Scanner, p *IssueUpdated) error {
	if isNull, err := s.Null(); isNull || err != nil {
		return err
	}
	if s.Peek() != '{' {
		return errors.New("webhook body: changelog is not an object")
	}
	return s.Object(func(key []byte) error {
		switch string(key) {
		case "id":
			return idField(s, "changelog.id", &p.ChangelogID)
		case "items":
			p.Items = nil
			if isNull, err := s.Null(); isNull || err != nil {
				return err
			}
			if s.Peek() != '[' {
				return errors.New("webhook body: changelog.items is not an array")
			}
			p.Items = []ChangelogItem{}
			return s.Array(func() error {
				if isNull, err := s.Null(); isNull || err != nil {
					p.Items = append(p.Items, ChangelogItem{})
					return err
				}
				if s.Peek() != '{' {
					return errors.New("webhook body: a changelog item is not an object")
				}
				var it ChangelogItem
				err := s.Object(func(key []byte) error {
					switch string(key) {
					case "field":
						return stringField(s, "item.field", &it.Field)
					case "fieldtype":
						return stringField(s, "item.fieldtype", &it.FieldType)
					case "from":
						return idField(s, "item.from", &it.From)
					case "to":
						return idField(s, "item.to", &it.To)
					}
					return s.Skip()
				})
				p.Items = append(p.Items, it)
				return err
			})
		}
		return s.Skip()
	})
}
