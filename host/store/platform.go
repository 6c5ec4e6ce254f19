package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jirasync/jirasync/host/platform"
)

// The platform's objects are host/platform's: the store is the built-in
// platform, one implementation of platform.Platform, over the host's own
// tables.
type (
	Organization = platform.Organization
	Project      = platform.Project
	User         = platform.User
	Email        = platform.Email
	Group        = platform.Group
	Link         = platform.Link
	LinkedGroup  = platform.LinkedGroup
	UserMatch    = platform.UserMatch
	Assignment   = platform.Assignment
)

var _ platform.Platform = (*Store)(nil)

// Organizations lists every organization, by id.
func (s *Store) Organizations(ctx context.Context) ([]Organization, error) {
	var out []Organization
	err := s.eachOrganization(ctx, func(o Organization) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

const usersByEmailQuery = `
		SELECT u.id, e.verified, m.project_id
		FROM user_emails e
		JOIN users u ON u.id = e.user_id
		LEFT JOIN project_members m ON m.user_id = u.id
		WHERE e.email_lower = ?
		ORDER BY u.seq, m.project_id`

// linkedGroupsQuery reads the groups linked to an issue through an
// installation in one of n organizations.
func linkedGroupsQuery(n int) string {
	return `
		SELECT g.id, g.project_id, g.title, g.assignee_id, g.status, p.organization_id
		FROM group_links l
		JOIN issue_groups g ON g.id = l.group_id
		JOIN projects p ON p.id = g.project_id
		JOIN installation_organizations io ON io.installation_id = l.installation_id AND io.organization_id = p.organization_id
		WHERE l.installation_id = ? AND l.issue_key = ? AND p.organization_id IN (` + placeholders(n) + `)
		ORDER BY g.id`
}

// UsersByEmail finds the users having an address equal to email, ignoring
// case, oldest user first.
func (s *Store) UsersByEmail(ctx context.Context, email string) ([]UserMatch, error) {
	// One row per user and project (or none): aggregating into one row per
	// user is spelt differently in each dialect, and is as easy here.
	rows, err := s.db.QueryContext(ctx, usersByEmailQuery, platform.NormalizeEmail(email))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []UserMatch
	for rows.Next() {
		var m UserMatch
		var project sql.NullString
		if err := rows.Scan(&m.ID, &m.Verified, &project); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != m.ID {
			out = append(out, m)
		}
		if project.Valid {
			last := &out[len(out)-1]
			last.Projects = append(last.Projects, project.String)
		}
	}
	return out, rows.Err()
}

// Group reads a group with its organization and the keys of the Jira
// issues linked to it through installationID (sorted; none for "").
func (s *Store) Group(ctx context.Context, installationID, id string) (platform.GroupLinks, error) {
	g := platform.GroupLinks{LinkedGroup: LinkedGroup{Group: Group{ID: id}}}
	var assignee sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT g.project_id, g.title, g.assignee_id, g.status, p.organization_id
		FROM issue_groups g JOIN projects p ON p.id = g.project_id WHERE g.id = ?`, id).
		Scan(&g.Project, &g.Title, &assignee, &g.Status, &g.Organization)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return g, err
	}
	if assignee.Valid {
		g.Assignee = &assignee.String
	}
	if installationID == "" {
		return g, nil
	}
	g.IssueKeys, err = queryAll(ctx, s.db, `SELECT issue_key FROM group_links WHERE group_id = ? AND installation_id = ?`,
		[]any{id, installationID}, func(sc scanner) (k string, err error) {
			err = sc.Scan(&k)
			return k, err
		})
	// Sorted here, not by the database: PostgreSQL's collation may not
	// be byte order, and the contract is.
	slices.Sort(g.IssueKeys)
	return g, err
}

// LinkedGroups lists the groups linked to issueKey through installationID
// whose project belongs to one of orgs, by group id.
func (s *Store) LinkedGroups(ctx context.Context, installationID, issueKey string, orgs []string) ([]LinkedGroup, error) {
	if len(orgs) == 0 {
		return nil, nil
	}
	args := []any{installationID, issueKey}
	for _, o := range orgs {
		args = append(args, o)
	}
	rows, err := s.db.QueryContext(ctx, linkedGroupsQuery(len(orgs)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LinkedGroup
	for rows.Next() {
		var g LinkedGroup
		var assignee sql.NullString
		if err := rows.Scan(&g.ID, &g.Project, &g.Title, &assignee, &g.Status, &g.Organization); err != nil {
			return nil, err
		}
		if assignee.Valid {
			g.Assignee = &assignee.String
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Check reports how many of the changes would change a group, or
// ErrDenied if one names a group the installation may not touch: the
// plugin is sandboxed, and this is where its reach ends. It changes
// nothing: Finish applies staged changes when it commits the delivery.
func (s *Store) Check(ctx context.Context, installationID string, ch platform.Changes) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, err
	}
	changed := 0
	for _, a := range ch.Assignments {
		current, _, err := s.assignable(ctx, s.db, installationID, a.Group, false)
		if err != nil {
			return 0, err
		}
		if !sameAssignee(current, a.Assignee) {
			changed++
		}
	}
	for _, sc := range ch.Statuses {
		_, status, err := s.assignable(ctx, s.db, installationID, sc.Group, false)
		if err != nil {
			return 0, err
		}
		if status != sc.Status {
			changed++
		}
	}
	return changed, nil
}

// Apply applies one delivery's changes on their own, for a pipeline
// whose deliveries are kept in another database than this platform's data
// (the built-in platform's own pipeline applies inside Finish instead).
// The key is recorded in the same transaction: applying it again changes
// nothing and reports the first apply's count.
func (s *Store) Apply(ctx context.Context, key platform.ApplyKey, ch platform.Changes) (int, error) {
	changed := 0
	err := s.tx(ctx, func(tx runner) error {
		err := tx.QueryRowContext(ctx, `SELECT changed FROM platform_applies
			WHERE installation_id = ? AND delivery_id = ? AND round = ?`, key.Installation, key.Delivery, key.Round).Scan(&changed)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if changed, err = s.applyChanges(ctx, tx, key.Installation, key.Delivery, ch); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO platform_applies(installation_id, delivery_id, round, changed, applied_at)
			VALUES (?, ?, ?, ?, ?)`, key.Installation, key.Delivery, key.Round, changed, s.now().UnixMilli())
		return err
	})
	return changed, err
}

// assignable returns a group's assignee and status if the installation
// may change it. With lock, the group's row stays locked until the
// transaction q is in ends, so that what it read is what it replaces.
func (s *Store) assignable(ctx context.Context, q runner, installationID, groupID string, lock bool) (*string, string, error) {
	suffix := ""
	if lock {
		suffix = s.dialect.lockRows("g")
	}
	var current sql.NullString
	var status string
	err := q.QueryRowContext(ctx, `
		SELECT g.assignee_id, g.status FROM issue_groups g
		JOIN projects p ON p.id = g.project_id
		WHERE g.id = ? AND EXISTS (
			SELECT 1 FROM group_links l
			JOIN installation_organizations io ON io.installation_id = l.installation_id
			WHERE l.group_id = g.id AND l.installation_id = ? AND io.organization_id = p.organization_id)`+suffix,
		groupID, installationID).Scan(&current, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("group %s is not linked to installation %s: %w", groupID, installationID, ErrDenied)
	}
	if err != nil || !current.Valid {
		return nil, status, err
	}
	return &current.String, status, nil
}

// applyChanges makes one delivery's changes in tx, assignees first, and
// counts those that changed a group.
func (s *Store) applyChanges(ctx context.Context, tx runner, installationID string, deliveryID int64, ch platform.Changes) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, err
	}
	changed, err := s.applyAssignments(ctx, tx, installationID, deliveryID, ch.Assignments)
	if err != nil {
		return 0, err
	}
	now := s.now().UnixMilli()
	for _, sc := range ch.Statuses {
		_, current, err := s.assignable(ctx, tx, installationID, sc.Group, true)
		if err != nil {
			return 0, err
		}
		if current == sc.Status {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issue_groups SET status = ?, updated_at = ? WHERE id = ?`,
			sc.Status, now, sc.Group); err != nil {
			return 0, fmt.Errorf("group %s: %w", sc.Group, err)
		}
		changed++
	}
	return changed, nil
}

func (s *Store) applyAssignments(ctx context.Context, tx runner, installationID string, deliveryID int64, as []Assignment) (int, error) {
	changed := 0
	now := s.now().UnixMilli()
	var delivery any
	if deliveryID > 0 {
		delivery = deliveryID
	}
	for _, a := range as {
		current, _, err := s.assignable(ctx, tx, installationID, a.Group, true)
		if err != nil {
			return 0, err
		}
		if sameAssignee(current, a.Assignee) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issue_groups SET assignee_id = ?, updated_at = ? WHERE id = ?`,
			a.Assignee, now, a.Group); err != nil {
			return 0, fmt.Errorf("group %s: %w", a.Group, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO assignee_changes(group_id, delivery_id, from_user_id, to_user_id, changed_at)
			VALUES (?, ?, ?, ?, ?)`, a.Group, delivery, current, a.Assignee, now); err != nil {
			return 0, err
		}
		changed++
	}
	return changed, nil
}

func sameAssignee(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
