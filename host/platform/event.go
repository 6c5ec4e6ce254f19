package platform

import (
	"bytes"
	"encoding/json"
	"time"
)

// Platform event types: what the platform tells jirasync happened to a
// group, to be carried to the Jira issues linked to it (two-way sync).
// They are the plugin ABI's (abi.EventGroupAssigned, …), spelt here so
// that the seam does not depend on the plugin's package.
const (
	EventAssigned   = "group.assigned"
	EventResolved   = "group.resolved"
	EventUnresolved = "group.unresolved"
)

// EventTypes lists every platform event type.
var EventTypes = []string{EventAssigned, EventResolved, EventUnresolved}

// IsEventType reports whether t is a platform event type; a delivery
// whose event is one is a platform event, any other a Jira webhook.
func IsEventType(t string) bool {
	for _, e := range EventTypes {
		if t == e {
			return true
		}
	}
	return false
}

// MaxEventIDBytes bounds an event's id: the platform's own identifier of
// the change (a UUID, an audit-log id), kept to deduplicate re-sends.
const MaxEventIDBytes = 255

// Event is something that happened to a group on the platform. Assignee
// is the new assignee's user id, nil for none; only EventAssigned
// carries one. OccurredAt orders a group's events: an older one arriving
// after a newer one was carried is stale.
type Event struct {
	ID         string
	Type       string
	Group      string
	Assignee   *string
	OccurredAt time.Time
}

// EventReceipt is what accepting an event stored: one delivery per
// installation, the platform's event carried to each installation's Jira
// on its own. Duplicate says the id was accepted before; Deliveries are
// then the earlier ones and nothing new is stored.
type EventReceipt struct {
	ID         string  `json:"id"`
	Deliveries []int64 `json:"deliveries"`
	Duplicate  bool    `json:"duplicate"`
}

// Validate checks an event's fields. Whether its group exists, and which
// Jira issues it concerns, is the plugin's to find out when the event is
// carried: the platform may send the event before jirasync could read the
// group, and the group may be gone by then.
func (e Event) Validate() error {
	if e.ID == "" {
		return fieldErr("id", "empty")
	}
	if err := validTextUpTo("id", e.ID, MaxEventIDBytes); err != nil {
		return err
	}
	if !IsEventType(e.Type) {
		return fieldErr("type", "want %q, %q or %q, got %q", EventAssigned, EventResolved, EventUnresolved, e.Type)
	}
	if err := ValidID("group", e.Group); err != nil {
		return err
	}
	if e.Assignee != nil {
		if e.Type != EventAssigned {
			return fieldErr("assignee", "only %s carries an assignee; leave it out or null", EventAssigned)
		}
		if err := ValidID("assignee", *e.Assignee); err != nil {
			return err
		}
	}
	if e.OccurredAt.IsZero() {
		return fieldErr("occurred_at", "required: when the change happened, RFC 3339")
	}
	return nil
}

// eventJSON is an event as the HTTP endpoint takes it. Assignee is raw so
// that an absent member can be told from null.
type eventJSON struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Group      string          `json:"group"`
	Assignee   json.RawMessage `json:"assignee"`
	OccurredAt string          `json:"occurred_at"`
}

// DecodeEvent reads an event from a JSON object strictly (DecodeObject:
// unknown members, trailing data and invalid UTF-8 are refused) and
// validates it. group.assigned must carry assignee, a user id or null
// (unassigned): a member left out is not taken to mean "unassign".
func DecodeEvent(body []byte) (Event, error) {
	var in eventJSON
	if err := DecodeObject(body, &in); err != nil {
		return Event{}, err
	}
	e := Event{ID: in.ID, Type: in.Type, Group: in.Group}
	switch raw := bytes.TrimSpace(in.Assignee); {
	case len(raw) == 0:
		if in.Type == EventAssigned {
			return Event{}, fieldErr("assignee", "required with %s: a user id, or null to unassign", EventAssigned)
		}
	case string(raw) == "null":
	default:
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return Event{}, fieldErr("assignee", "want a user id (a string) or null")
		}
		e.Assignee = &id
	}
	if in.OccurredAt == "" {
		return Event{}, fieldErr("occurred_at", "required: when the change happened, RFC 3339")
	}
	t, err := time.Parse(time.RFC3339, in.OccurredAt)
	if err != nil {
		return Event{}, fieldErr("occurred_at", "not an RFC 3339 time (like 2026-03-01T12:00:00Z)")
	}
	e.OccurredAt = t
	return e, e.Validate()
}

// GroupEvents are the events a change of a group from before to after
// raises: group.assigned when the assignee changed, group.resolved or
// group.unresolved when the status did, in that order, each with an id
// from newID and occurred at at. A group created (before nil) raises
// none: nothing can be linked to it yet.
func GroupEvents(before *Group, after Group, at time.Time, newID func() string) []Event {
	if before == nil {
		return nil
	}
	var out []Event
	if !sameAssignee(before.Assignee, after.Assignee) {
		out = append(out, Event{ID: newID(), Type: EventAssigned, Group: after.ID, Assignee: after.Assignee, OccurredAt: at})
	}
	if was, is := GroupStatus(before.Status), GroupStatus(after.Status); was != is {
		t := EventResolved
		if is == StatusUnresolved {
			t = EventUnresolved
		}
		out = append(out, Event{ID: newID(), Type: t, Group: after.ID, OccurredAt: at})
	}
	return out
}

func sameAssignee(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
