package platform

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDecodeEvent: a good event is read and normalised; each bad one is
// refused with the field it is about.
func TestDecodeEvent(t *testing.T) {
	long := strings.Repeat("x", MaxEventIDBytes+1)
	tests := []struct {
		name, body string
		valid      bool
		field      string // the field a refusal names
		assignee   *string
	}{
		{name: "assigned", valid: true, body: `{"id":"e1","type":"group.assigned","group":"g1","assignee":"alice","occurred_at":"2026-03-01T12:00:00.5+01:00"}`,
			assignee: ptr("alice")},
		{name: "unassigned", valid: true, body: `{"id":"e1","type":"group.assigned","group":"g1","assignee":null,"occurred_at":"2026-03-01T12:00:00Z"}`},
		{name: "resolved without assignee", valid: true, body: `{"id":"e1","type":"group.resolved","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`},
		{name: "unresolved with null assignee", valid: true, body: `{"id":"e1","type":"group.unresolved","group":"g1","assignee":null,"occurred_at":"2026-03-01T12:00:00Z"}`},
		{name: "unknown member", body: `{"id":"e1","type":"group.resolved","group":"g1","occurred_at":"2026-03-01T12:00:00Z","extra":1}`, field: ""},
		{name: "no id", body: `{"type":"group.resolved","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`, field: "id"},
		{name: "id too long", body: `{"id":"` + long + `","type":"group.resolved","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`, field: "id"},
		{name: "NUL in id", body: `{"id":"e\u00001","type":"group.resolved","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`, field: "id"},
		{name: "invalid UTF-8", body: "{\"id\":\"e\xff\",\"type\":\"group.resolved\",\"group\":\"g1\",\"occurred_at\":\"2026-03-01T12:00:00Z\"}", field: ""},
		{name: "unknown type", body: `{"id":"e1","type":"group.deleted","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`, field: "type"},
		{name: "no group", body: `{"id":"e1","type":"group.resolved","occurred_at":"2026-03-01T12:00:00Z"}`, field: "group"},
		{name: "assignee on resolved", body: `{"id":"e1","type":"group.resolved","group":"g1","assignee":"alice","occurred_at":"2026-03-01T12:00:00Z"}`, field: "assignee"},
		{name: "assigned without assignee", body: `{"id":"e1","type":"group.assigned","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`, field: "assignee"},
		{name: "assignee not a string", body: `{"id":"e1","type":"group.assigned","group":"g1","assignee":7,"occurred_at":"2026-03-01T12:00:00Z"}`, field: "assignee"},
		{name: "no time", body: `{"id":"e1","type":"group.resolved","group":"g1"}`, field: "occurred_at"},
		{name: "time not RFC 3339", body: `{"id":"e1","type":"group.resolved","group":"g1","occurred_at":"1 March 2026"}`, field: "occurred_at"},
		{name: "id of the wrong type", body: `{"id":1,"type":"group.resolved","group":"g1","occurred_at":"2026-03-01T12:00:00Z"}`, field: "id"},
		{name: "not an object", body: `[]`, field: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent([]byte(tt.body))
			if tt.valid {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if (e.Assignee == nil) != (tt.assignee == nil) || (e.Assignee != nil && *e.Assignee != *tt.assignee) {
					t.Errorf("assignee %v, want %v", e.Assignee, tt.assignee)
				}
				if e.OccurredAt.IsZero() || e.ID != "e1" || e.Group != "g1" {
					t.Errorf("decoded %+v", e)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("error %q names field %q, want %q", err, fe.Field, tt.field)
			}
		})
	}
}

// TestGroupEvents: what a group's change raises, in order.
func TestGroupEvents(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := func(assignee *string, status string) *Group {
		return &Group{ID: "g1", Project: "p", Assignee: assignee, Status: status}
	}
	tests := []struct {
		name          string
		before, after *Group
		want          []string // type/assignee
	}{
		{"new group", nil, g(ptr("alice"), StatusResolved), nil},
		{"nothing changed", g(ptr("alice"), ""), g(ptr("alice"), StatusUnresolved), nil},
		{"assigned", g(nil, ""), g(ptr("alice"), ""), []string{"group.assigned/alice"}},
		{"reassigned", g(ptr("bob"), ""), g(ptr("alice"), ""), []string{"group.assigned/alice"}},
		{"unassigned", g(ptr("bob"), ""), g(nil, ""), []string{"group.assigned/"}},
		{"resolved", g(nil, ""), g(nil, StatusResolved), []string{"group.resolved/"}},
		{"unresolved", g(nil, StatusResolved), g(nil, ""), []string{"group.unresolved/"}},
		{"both", g(ptr("bob"), StatusUnresolved), g(nil, StatusResolved), []string{"group.assigned/", "group.resolved/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			evs := GroupEvents(tt.before, *tt.after, at, func() string { n++; return "id" + string(rune('0'+n)) })
			var got []string
			for i, e := range evs {
				a := ""
				if e.Assignee != nil {
					a = *e.Assignee
				}
				got = append(got, e.Type+"/"+a)
				if e.Group != "g1" || !e.OccurredAt.Equal(at) || e.ID != "id"+string(rune('1'+i)) {
					t.Errorf("event %+v", e)
				}
				if err := e.Validate(); err != nil {
					t.Errorf("raised an invalid event: %v", err)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("raised %v, want %v", got, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }
