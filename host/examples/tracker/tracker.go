package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver jirasync uses too

	"github.com/jirasync/jirasync/host/platform"
)

// Tracker is the example's issue tracker: its own tables in its own
// SQLite file, and jirasync's platform.Platform over them.
type Tracker struct {
	db *sql.DB
}

// schema is the tracker's. jira_reach says which organizations' groups a
// Jira installation may change: Check and Apply name only the
// installation, so the platform keeps this itself. jira_applies makes
// Apply idempotent by its key.
const schema = `
CREATE TABLE IF NOT EXISTS organizations (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, organization TEXT NOT NULL REFERENCES organizations(id), name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emails (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, address TEXT NOT NULL,
	folded TEXT NOT NULL, verified INTEGER NOT NULL, PRIMARY KEY (user_id, folded));
CREATE INDEX IF NOT EXISTS emails_by_address ON emails(folded);
CREATE TABLE IF NOT EXISTS members (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id TEXT NOT NULL REFERENCES projects(id), PRIMARY KEY (user_id, project_id));
CREATE TABLE IF NOT EXISTS issue_groups (id TEXT PRIMARY KEY, project TEXT NOT NULL REFERENCES projects(id), title TEXT NOT NULL,
	assignee TEXT REFERENCES users(id), status TEXT NOT NULL DEFAULT 'unresolved');
CREATE TABLE IF NOT EXISTS jira_links (group_id TEXT NOT NULL REFERENCES issue_groups(id), installation TEXT NOT NULL,
	issue_key TEXT NOT NULL, PRIMARY KEY (installation, issue_key, group_id));
CREATE TABLE IF NOT EXISTS jira_reach (installation TEXT NOT NULL, organization TEXT NOT NULL REFERENCES organizations(id),
	PRIMARY KEY (installation, organization));
CREATE TABLE IF NOT EXISTS jira_applies (apply_key TEXT PRIMARY KEY, changed INTEGER NOT NULL);
`

// Open opens (creating if needed) the tracker's database at path.
func Open(ctx context.Context, path string) (*Tracker, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, err
	}
	// One connection: every change is serialized, which keeps Apply's
	// check-then-write simple and SQLite free of busy errors.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("tracker schema: %w", err)
	}
	return &Tracker{db: db}, nil
}

// Close closes the database.
func (t *Tracker) Close() error { return t.db.Close() }

// Load adds data (a platform data file's content), validated as jirasync
// validates an import.
func (t *Tracker) Load(ctx context.Context, d platform.Data) error {
	return d.Each(&loader{ctx: ctx, t: t})
}

// loader writes each object as it comes; a Sink may hold objects back,
// this one has no need to.
type loader struct {
	ctx context.Context
	t   *Tracker
}

func (l *loader) exec(query string, args ...any) error {
	_, err := l.t.db.ExecContext(l.ctx, query, args...)
	return err
}

func (l *loader) Organization(_ string, o platform.Organization) error {
	return l.exec(`INSERT INTO organizations(id, name) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name`, o.ID, o.Name)
}

func (l *loader) Project(_ string, p platform.Project) error {
	return l.exec(`INSERT INTO projects(id, organization, name) VALUES (?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET organization = excluded.organization, name = excluded.name`, p.ID, p.Organization, p.Name)
}

func (l *loader) User(_ string, u platform.User) error {
	return l.t.tx(l.ctx, func(tx *sql.Tx) error {
		// An update keeps the user's seq: its age decides ties by email.
		if _, err := tx.ExecContext(l.ctx, `INSERT INTO users(id, name) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name`,
			u.ID, u.Name); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM emails WHERE user_id = ?`, `DELETE FROM members WHERE user_id = ?`} {
			if _, err := tx.ExecContext(l.ctx, q, u.ID); err != nil {
				return err
			}
		}
		for _, e := range u.Emails {
			if _, err := tx.ExecContext(l.ctx, `INSERT INTO emails(user_id, address, folded, verified) VALUES (?, ?, ?, ?)`,
				u.ID, e.Address, fold(e.Address), e.Verified); err != nil {
				return err
			}
		}
		for _, p := range u.Projects {
			if _, err := tx.ExecContext(l.ctx, `INSERT INTO members(user_id, project_id) VALUES (?, ?)`, u.ID, p); err != nil {
				return err
			}
		}
		return nil
	})
}

func (l *loader) Group(_ string, g platform.Group) error {
	return l.exec(`INSERT INTO issue_groups(id, project, title, assignee, status) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET project = excluded.project, title = excluded.title, assignee = excluded.assignee,
			status = excluded.status`,
		g.ID, g.Project, g.Title, g.Assignee, platform.GroupStatus(g.Status))
}

func (l *loader) Link(_ string, k platform.Link) error {
	return l.exec(`INSERT INTO jira_links(group_id, installation, issue_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		k.Group, k.Installation, k.IssueKey)
}

func (l *loader) Flush() error { return nil }

// Grant lets a Jira installation change the groups of an organization.
func (t *Tracker) Grant(ctx context.Context, installation, organization string) error {
	if err := platform.ValidID("installation", installation); err != nil {
		return err
	}
	_, err := t.db.ExecContext(ctx, `INSERT INTO jira_reach(installation, organization) VALUES (?, ?) ON CONFLICT DO NOTHING`,
		installation, organization)
	return err
}

// fold is how emails compare: ignoring case and surrounding space.
func fold(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (t *Tracker) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Organizations implements platform.Platform.
func (t *Tracker) Organizations(ctx context.Context) ([]platform.Organization, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT id, name FROM organizations ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []platform.Organization
	for rows.Next() {
		var o platform.Organization
		if err := rows.Scan(&o.ID, &o.Name); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// LinkedGroups implements platform.Platform.
func (t *Tracker) LinkedGroups(ctx context.Context, installation, issueKey string, orgs []string) ([]platform.LinkedGroup, error) {
	if len(orgs) == 0 {
		return nil, nil
	}
	args := []any{installation, issueKey}
	for _, o := range orgs {
		args = append(args, o)
	}
	rows, err := t.db.QueryContext(ctx, `SELECT g.id, g.project, g.title, g.assignee, g.status, p.organization
		FROM jira_links l
		JOIN issue_groups g ON g.id = l.group_id
		JOIN projects p ON p.id = g.project
		JOIN jira_reach r ON r.installation = l.installation AND r.organization = p.organization
		WHERE l.installation = ? AND l.issue_key = ? AND p.organization IN (?`+strings.Repeat(", ?", len(orgs)-1)+`)
		ORDER BY g.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []platform.LinkedGroup
	for rows.Next() {
		var g platform.LinkedGroup
		if err := rows.Scan(&g.ID, &g.Project, &g.Title, &g.Assignee, &g.Status, &g.Organization); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Group implements platform.Platform.
func (t *Tracker) Group(ctx context.Context, installation, id string) (platform.GroupLinks, error) {
	g := platform.GroupLinks{LinkedGroup: platform.LinkedGroup{Group: platform.Group{ID: id}}}
	err := t.db.QueryRowContext(ctx, `SELECT g.project, g.title, g.assignee, g.status, p.organization
		FROM issue_groups g JOIN projects p ON p.id = g.project WHERE g.id = ?`, id).
		Scan(&g.Project, &g.Title, &g.Assignee, &g.Status, &g.Organization)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("group %q: %w", id, platform.ErrNotFound)
	}
	if err != nil {
		return g, err
	}
	rows, err := t.db.QueryContext(ctx, `SELECT issue_key FROM jira_links WHERE group_id = ? AND installation = ? ORDER BY issue_key`,
		id, installation)
	if err != nil {
		return g, err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			return g, err
		}
		g.IssueKeys = append(g.IssueKeys, key)
	}
	return g, rows.Err()
}

// User implements platform.Platform.
func (t *Tracker) User(ctx context.Context, id string) (platform.User, error) {
	u := platform.User{ID: id}
	err := t.db.QueryRowContext(ctx, `SELECT name FROM users WHERE id = ?`, id).Scan(&u.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %q: %w", id, platform.ErrNotFound)
	}
	if err != nil {
		return u, err
	}
	rows, err := t.db.QueryContext(ctx, `SELECT address, verified, NULL FROM emails WHERE user_id = ?
		UNION ALL SELECT NULL, 0, project_id FROM members WHERE user_id = ?`, id, id)
	if err != nil {
		return u, err
	}
	defer rows.Close()
	for rows.Next() {
		var address, project sql.NullString
		var verified bool
		if err := rows.Scan(&address, &verified, &project); err != nil {
			return u, err
		}
		if address.Valid {
			u.Emails = append(u.Emails, platform.Email{Address: address.String, Verified: verified})
		} else {
			u.Projects = append(u.Projects, project.String)
		}
	}
	return u.Sorted(), rows.Err()
}

// UsersByEmail implements platform.Platform.
func (t *Tracker) UsersByEmail(ctx context.Context, email string) ([]platform.UserMatch, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT u.id, e.verified, m.project_id FROM emails e
		JOIN users u ON u.id = e.user_id
		LEFT JOIN members m ON m.user_id = u.id
		WHERE e.folded = ? ORDER BY u.seq, m.project_id`, fold(email))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []platform.UserMatch
	for rows.Next() {
		var id string
		var verified bool
		var project sql.NullString
		if err := rows.Scan(&id, &verified, &project); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, platform.UserMatch{ID: id, Verified: verified})
		}
		if project.Valid {
			last := &out[len(out)-1]
			last.Projects = append(last.Projects, project.String)
		}
	}
	return out, rows.Err()
}

// queryer is what check needs: the database, or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reachable reads a group's assignee and status, or refuses one that is
// not linked to the installation through an organization it may change.
func reachable(ctx context.Context, q queryer, installation, group string) (assignee sql.NullString, status string, err error) {
	err = q.QueryRowContext(ctx, `SELECT g.assignee, g.status FROM issue_groups g
		JOIN projects p ON p.id = g.project
		JOIN jira_reach r ON r.organization = p.organization AND r.installation = ?
		WHERE g.id = ? AND EXISTS (SELECT 1 FROM jira_links l WHERE l.group_id = g.id AND l.installation = r.installation)`,
		installation, group).Scan(&assignee, &status)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("group %q is not linked to installation %q: %w", group, installation, platform.ErrDenied)
	}
	return assignee, status, err
}

// check counts how many of the changes would change a group, or refuses
// them all if one names a group out of the installation's reach.
func check(ctx context.Context, q queryer, installation string, ch platform.Changes) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, err
	}
	changed := 0
	for _, a := range ch.Assignments {
		assignee, _, err := reachable(ctx, q, installation, a.Group)
		if err != nil {
			return 0, err
		}
		if assignee.Valid != (a.Assignee != nil) || (a.Assignee != nil && assignee.String != *a.Assignee) {
			changed++
		}
	}
	for _, sc := range ch.Statuses {
		_, status, err := reachable(ctx, q, installation, sc.Group)
		if err != nil {
			return 0, err
		}
		if status != sc.Status {
			changed++
		}
	}
	return changed, nil
}

// Check implements platform.Platform.
func (t *Tracker) Check(ctx context.Context, installation string, ch platform.Changes) (int, error) {
	return check(ctx, t.db, installation, ch)
}

// Apply implements platform.Platform: all or nothing, once per key.
func (t *Tracker) Apply(ctx context.Context, key platform.ApplyKey, ch platform.Changes) (changed int, err error) {
	err = t.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT changed FROM jira_applies WHERE apply_key = ?`, key.String()).Scan(&changed)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err // applied before (nothing to do), or failed
		}
		if changed, err = check(ctx, tx, key.Installation, ch); err != nil {
			return err
		}
		for _, a := range ch.Assignments {
			if _, err := tx.ExecContext(ctx, `UPDATE issue_groups SET assignee = ? WHERE id = ?`, a.Assignee, a.Group); err != nil {
				return err
			}
		}
		for _, sc := range ch.Statuses {
			if _, err := tx.ExecContext(ctx, `UPDATE issue_groups SET status = ? WHERE id = ?`, sc.Status, sc.Group); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO jira_applies(apply_key, changed) VALUES (?, ?)`, key.String(), changed)
		return err
	})
	return changed, err
}

// GroupRow is a group as the tracker's page shows it.
type GroupRow struct {
	ID, Title, Project, Organization string
	Assignee                         string // "" when unassigned
	Issues                           []string
}

// Groups lists every group with its assignee and linked Jira issues.
func (t *Tracker) Groups(ctx context.Context) ([]GroupRow, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT g.id, g.title, g.project, p.organization, COALESCE(g.assignee, ''),
			COALESCE(l.installation || ' ' || l.issue_key, '')
		FROM issue_groups g JOIN projects p ON p.id = g.project
		LEFT JOIN jira_links l ON l.group_id = g.id
		ORDER BY p.organization, g.id, l.installation, l.issue_key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GroupRow
	for rows.Next() {
		var g GroupRow
		var issue string
		if err := rows.Scan(&g.ID, &g.Title, &g.Project, &g.Organization, &g.Assignee, &issue); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != g.ID {
			out = append(out, g)
		}
		if issue != "" {
			last := &out[len(out)-1]
			last.Issues = append(last.Issues, issue)
		}
	}
	return out, rows.Err()
}

// assignee reads a group's assignee, for tests.
func (t *Tracker) assignee(ctx context.Context, group string) (*string, error) {
	var a sql.NullString
	if err := t.db.QueryRowContext(ctx, `SELECT assignee FROM issue_groups WHERE id = ?`, group).Scan(&a); err != nil {
		return nil, err
	}
	if !a.Valid {
		return nil, nil
	}
	return &a.String, nil
}
