package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Organization is a tenant of the platform.
type Organization struct {
	ID   string
	Name string
}

// Project belongs to an organization; groups belong to projects.
type Project struct {
	ID           string
	Organization string
	Name         string
}

// User is a platform user with its email addresses and the projects it is a
// member of.
type User struct {
	ID       string
	Name     string
	Emails   []Email
	Projects []string
}

// Email is one of a user's addresses.
type Email struct {
	Address  string
	Verified bool
}

// Group is a platform issue group.
type Group struct {
	ID       string
	Project  string
	Title    string
	Assignee *string
}

// PutOrganization creates or updates an organization.
func (s *Store) PutOrganization(ctx context.Context, o Organization) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO organizations(id, name) VALUES (?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name`, o.ID, o.Name)
	return err
}

// Organizations lists every organization, by id.
func (s *Store) Organizations(ctx context.Context) ([]Organization, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name FROM organizations ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Organization
	for rows.Next() {
		var o Organization
		if err := rows.Scan(&o.ID, &o.Name); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// PutProject creates or updates a project.
func (s *Store) PutProject(ctx context.Context, p Project) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO projects(id, organization_id, name) VALUES (?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name`,
		p.ID, p.Organization, p.Name)
	return err
}

// PutUser creates or updates a user, replacing its emails and memberships.
func (s *Store) PutUser(ctx context.Context, u User) error {
	return s.tx(ctx, func(tx runner) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users(id, name) VALUES (?, ?)
			ON CONFLICT(id) DO UPDATE SET name = excluded.name`, u.ID, u.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_emails WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		for _, e := range u.Emails {
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_emails(user_id, email, email_lower, verified)
				VALUES (?, ?, ?, ?) ON CONFLICT (user_id, email_lower) DO UPDATE
				SET verified = CASE WHEN excluded.verified > user_emails.verified THEN excluded.verified ELSE user_emails.verified END`,
				u.ID, e.Address, strings.ToLower(strings.TrimSpace(e.Address)), boolInt(e.Verified)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM project_members WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		for _, p := range u.Projects {
			if _, err := tx.ExecContext(ctx, `INSERT INTO project_members(project_id, user_id) VALUES (?, ?)
				ON CONFLICT DO NOTHING`, p, u.ID); err != nil {
				return fmt.Errorf("user %s, project %s: %w", u.ID, p, err)
			}
		}
		return nil
	})
}

// UserMatch is a user found by email.
type UserMatch struct {
	ID       string
	Verified bool
	Projects []string
}

// UsersByEmail finds the users having an address equal to email, ignoring
// case, oldest user first.
func (s *Store) UsersByEmail(ctx context.Context, email string) ([]UserMatch, error) {
	// One row per user and project (or none): aggregating into one row per
	// user is spelt differently in each dialect, and is as easy here.
	rows, err := s.db.QueryContext(ctx, `
		SELECT u.id, e.verified, m.project_id
		FROM user_emails e
		JOIN users u ON u.id = e.user_id
		LEFT JOIN project_members m ON m.user_id = u.id
		WHERE e.email_lower = ?
		ORDER BY u.seq, m.project_id`, strings.ToLower(strings.TrimSpace(email)))
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

// PutGroup creates or updates a group.
func (s *Store) PutGroup(ctx context.Context, g Group) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO issue_groups(id, project_id, title, assignee_id, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET project_id = excluded.project_id, title = excluded.title,
			assignee_id = excluded.assignee_id, updated_at = excluded.updated_at`,
		g.ID, g.Project, g.Title, g.Assignee, s.now().UnixMilli())
	return err
}

// Group reads a group.
func (s *Store) Group(ctx context.Context, id string) (Group, error) {
	g := Group{ID: id}
	var assignee sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT project_id, title, assignee_id FROM issue_groups WHERE id = ?`, id).
		Scan(&g.Project, &g.Title, &assignee)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("group %s: %w", id, ErrNotFound)
	}
	if assignee.Valid {
		g.Assignee = &assignee.String
	}
	return g, err
}

// LinkGroup links a group to a Jira issue of an installation.
func (s *Store) LinkGroup(ctx context.Context, groupID, installationID, issueKey string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO group_links(group_id, installation_id, issue_key) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, groupID, installationID, issueKey)
	return err
}

// LinkedGroup is a group linked to a Jira issue, with its organization.
type LinkedGroup struct {
	Group
	Organization string
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
	rows, err := s.db.QueryContext(ctx, `
		SELECT g.id, g.project_id, g.title, g.assignee_id, p.organization_id
		FROM group_links l
		JOIN issue_groups g ON g.id = l.group_id
		JOIN projects p ON p.id = g.project_id
		JOIN installation_organizations io ON io.installation_id = l.installation_id AND io.organization_id = p.organization_id
		WHERE l.installation_id = ? AND l.issue_key = ? AND p.organization_id IN (`+placeholders(len(orgs))+`)
		ORDER BY g.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LinkedGroup
	for rows.Next() {
		var g LinkedGroup
		var assignee sql.NullString
		if err := rows.Scan(&g.ID, &g.Project, &g.Title, &assignee, &g.Organization); err != nil {
			return nil, err
		}
		if assignee.Valid {
			g.Assignee = &assignee.String
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Assignment sets one group's assignee; nil unassigns.
type Assignment struct {
	Group    string
	Assignee *string
}

// CheckAssignments reports how many of as would change a group, or
// ErrDenied if one names a group the installation may not touch: the
// plugin is sandboxed, and this is where its reach ends. It changes
// nothing: Finish applies staged assignments when it commits the delivery.
func (s *Store) CheckAssignments(ctx context.Context, installationID string, as []Assignment) (int, error) {
	changed := 0
	for _, a := range as {
		current, err := s.assignable(ctx, s.db, installationID, a.Group, false)
		if err != nil {
			return 0, err
		}
		if !sameAssignee(current, a.Assignee) {
			changed++
		}
	}
	return changed, nil
}

// assignable returns a group's assignee if the installation may change it.
// With lock, the group's row stays locked until the transaction q is in
// ends, so that the assignee it read is the one it replaces.
func (s *Store) assignable(ctx context.Context, q runner, installationID, groupID string, lock bool) (*string, error) {
	suffix := ""
	if lock {
		suffix = s.dialect.lockRows("g")
	}
	var current sql.NullString
	err := q.QueryRowContext(ctx, `
		SELECT g.assignee_id FROM issue_groups g
		JOIN projects p ON p.id = g.project_id
		WHERE g.id = ? AND EXISTS (
			SELECT 1 FROM group_links l
			JOIN installation_organizations io ON io.installation_id = l.installation_id
			WHERE l.group_id = g.id AND l.installation_id = ? AND io.organization_id = p.organization_id)`+suffix,
		groupID, installationID).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %s is not linked to installation %s: %w", groupID, installationID, ErrDenied)
	}
	if err != nil || !current.Valid {
		return nil, err
	}
	return &current.String, nil
}

func (s *Store) applyAssignments(ctx context.Context, tx runner, installationID string, deliveryID int64, as []Assignment) (int, error) {
	changed := 0
	now := s.now().UnixMilli()
	var delivery any
	if deliveryID > 0 {
		delivery = deliveryID
	}
	for _, a := range as {
		current, err := s.assignable(ctx, tx, installationID, a.Group, true)
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
