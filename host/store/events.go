package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jirasync/jirasync/host/platform"
)

// Platform events (two-way sync) are stored as deliveries, one per
// installation, so that they are durable, retried, ordered, logged,
// replayed and pruned exactly as Jira's webhooks are (host/RATIONALE.md,
// "Platform events"). Which installations an event concerns is the
// plugin's to decide when it is carried: the group's links can change
// between the accept and the attempt, and reading them here would put
// the platform on the accept path.

// Delivery kinds, as the delivery log shows and filters them.
const (
	KindWebhook = "webhook" // a Jira webhook
	KindEvent   = "event"   // a platform event
)

// kindOf is the kind of a delivery with the given event.
func kindOf(event string) string {
	if platform.IsEventType(event) {
		return KindEvent
	}
	return KindWebhook
}

// EventIssueKey is the issue_key of a group's event deliveries: the
// delivery log lists a group's events under it.
func EventIssueKey(group string) string { return "group:" + group }

// EventIssueID is the issue_id of a group's event deliveries of one type:
// their watermark and hold, per installation, are those of the group's
// field the event changes (assignee, or status), as a Jira issue's are the
// issue's. An event carries one field: were a group's events ordered as
// one, a group.assigned reaching its hold after a newer group.resolved
// would be stale and its assignment never reach Jira (found by
// BenchmarkEventsEndToEnd with both kinds on one group).
func EventIssueID(group, eventType string) string {
	field := "assignee"
	if eventType != platform.EventAssigned {
		field = "status"
	}
	return EventIssueKey(group) + ":" + field
}

// EventDedupeKey is the dedupe key of an event's deliveries.
func EventDedupeKey(id string) string { return "event:" + id }

// NewEvent is an accepted platform event as it is stored.
type NewEvent struct {
	ID    string
	Type  string
	Group string
	// Body is the event as the plugin gets it (abi.PlatformEvent, as
	// normalised by the accept path).
	Body []byte
	// Timestamp orders the group's events: unix milliseconds, already
	// bounded by the host's clock skew rule.
	Timestamp int64
}

// errEventDuplicate rolls back an accept that met a delivery of the same
// event.
var errEventDuplicate = errors.New("event already accepted")

// AcceptEvent stores a platform event as one pending delivery per
// installation not uninstalled, all in one transaction that commits
// before it returns. An event whose id was accepted before stores
// nothing: it returns the earlier deliveries with duplicate set. With no
// installation it stores nothing and returns no deliveries.
func (s *Store) AcceptEvent(ctx context.Context, e NewEvent) (ids []int64, duplicate bool, err error) {
	// Intake, as AcceptDelivery: first in line to write.
	err = s.txAs(ctx, urgent, func(tx runner) error {
		ids, err = s.acceptEvent(ctx, tx, e)
		return err
	})
	if errors.Is(err, errEventDuplicate) {
		ids, err = s.eventDeliveries(ctx, e.ID)
		return ids, true, err
	}
	s.noteWrite(err)
	return ids, false, err
}

// acceptEvent inserts e's deliveries in tx. One that meets a stored
// delivery of the same event (a re-send, or the same event accepted at
// this moment by another host, whose commit the unique index waits for)
// returns errEventDuplicate: the caller rolls back, so that a re-send
// stores nothing, not even for an installation added since.
func (s *Store) acceptEvent(ctx context.Context, tx runner, e NewEvent) ([]int64, error) {
	insts, err := installationIDs(ctx, tx, true)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	issueID, issueKey := EventIssueID(e.Group, e.Type), EventIssueKey(e.Group)
	ids := []int64{}
	for _, inst := range insts {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO deliveries(installation_id, received_at, body, status, event,
				issue_id, issue_key, changelog_id, jira_timestamp, dedupe_key, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)
			ON CONFLICT(installation_id, dedupe_key) WHERE dedupe_key != '' DO NOTHING
			RETURNING id`, inst, now, e.Body, DeliveryPending, e.Type, issueID, issueKey, e.Timestamp,
			EventDedupeKey(e.ID), now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errEventDuplicate
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// eventDeliveries are the stored deliveries of an event, by id. Each
// installation's is looked up on its own, through the dedupe index.
func (s *Store) eventDeliveries(ctx context.Context, eventID string) ([]int64, error) {
	insts, err := installationIDs(ctx, s.db, false)
	if err != nil {
		return nil, err
	}
	ids := []int64{}
	for _, inst := range insts {
		var id int64
		err := s.db.QueryRowContext(ctx, `SELECT id FROM deliveries WHERE installation_id = ? AND dedupe_key = ?`,
			inst, EventDedupeKey(eventID)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// installationIDs lists installations by id; installed only, those not
// uninstalled.
func installationIDs(ctx context.Context, q runner, installed bool) ([]string, error) {
	query := `SELECT id FROM installations`
	if installed {
		query += ` WHERE uninstalled_at = 0`
	}
	return queryStrings(ctx, q, query+` ORDER BY id`)
}

// RaisedEvent is an event a group's write raised, with the deliveries
// that carry it.
type RaisedEvent struct {
	NewEvent
	Deliveries []int64
}

// PutGroupRaising writes a group as PutGroup does and, in the same
// transaction, accepts the events the change raises: the built-in
// platform tells jirasync of its own changes, as an external platform
// does with POST /api/v1/events. raise turns the group before (nil if it
// is new) and after into the events to store (the caller's rule,
// platform.GroupEvents); a failure of either writes neither. jirasync's
// own applies (a delivery's changes, applyChanges) do not come here and
// raise nothing.
func (s *Store) PutGroupRaising(ctx context.Context, g Group, raise func(before *Group, after Group) ([]NewEvent, error)) ([]RaisedEvent, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	var raised []RaisedEvent
	err := s.write(ctx, func(w *writer) error {
		raised = nil
		before, err := s.groupInTx(ctx, w.tx, g.ID)
		if err != nil {
			return err
		}
		// Written first, so that a group refused (an unknown project or
		// assignee) raises nothing.
		if err := w.Group("", g); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		events, err := raise(before, g)
		if err != nil {
			return err
		}
		for _, e := range events {
			ids, err := s.acceptEvent(ctx, w.tx, e)
			if errors.Is(err, errEventDuplicate) {
				// A fresh random id met a stored one: not a re-send.
				return fmt.Errorf("event id %q is already taken: %w", e.ID, err)
			}
			if err != nil {
				return err
			}
			raised = append(raised, RaisedEvent{NewEvent: e, Deliveries: ids})
		}
		return nil
	})
	return raised, err
}

// groupInTx reads a group in tx, locked until tx ends (two writes of one
// group on PostgreSQL compare against each other's result), nil if there
// is none.
func (s *Store) groupInTx(ctx context.Context, tx runner, id string) (*Group, error) {
	g := Group{ID: id}
	var assignee sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT project_id, title, assignee_id, status FROM issue_groups WHERE id = ?`+
		s.dialect.lockRows(""), id).Scan(&g.Project, &g.Title, &assignee, &g.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if assignee.Valid {
		g.Assignee = &assignee.String
	}
	return &g, err
}
