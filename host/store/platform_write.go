package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/jirasync/jirasync/host/platform"
)

// writer writes platform objects in one transaction, each checked
// (platform's Validate, and that what it names exists) before it is
// written. It is the platform.Sink an import streams into, so statements
// are prepared once per transaction: an import runs each a million times.
type writer struct {
	ctx   context.Context
	s     *Store
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	stats ImportStats
}

// ImportStats counts what an import wrote.
type ImportStats struct {
	Organizations, Projects, Users, Groups, Links int
}

// write runs fn with a writer in one transaction: all of it or nothing.
func (s *Store) write(ctx context.Context, fn func(w *writer) error) error {
	return s.tx(ctx, func(tx runner) error {
		w := &writer{ctx: ctx, s: s, tx: tx.x.(*sql.Tx), stmts: map[string]*sql.Stmt{}}
		defer func() {
			for _, st := range w.stmts {
				st.Close()
			}
		}()
		return fn(w)
	})
}

// Import reads a platform data file (platform.Data's shape) from r and
// writes every object in it, in one transaction: a file with an error
// changes nothing, and the error says where (platform.FieldError). The
// file is streamed, never held whole. Objects are created or replaced, so
// importing a file twice is importing it once.
func (s *Store) Import(ctx context.Context, r io.Reader) (ImportStats, error) {
	var stats ImportStats
	err := s.write(ctx, func(w *writer) error {
		if err := platform.Decode(r, w); err != nil {
			return err
		}
		stats = w.stats
		return nil
	})
	return stats, err
}

// ImportData writes d as Import writes a file: a scenario's platform.
func (s *Store) ImportData(ctx context.Context, d *platform.Data) error {
	return s.write(ctx, func(w *writer) error { return d.Each(w) })
}

// prepare returns query prepared on the transaction, once.
func (w *writer) prepare(query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	st, err := w.tx.PrepareContext(w.ctx, w.s.dialect.rebind(query))
	if err == nil {
		w.stmts[query] = st
	}
	return st, err
}

func (w *writer) exec(query string, args ...any) error {
	st, err := w.prepare(query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(w.ctx, args...)
	return err
}

// exists checks that the object id names in table exists, or returns a
// FieldError for field.
func (w *writer) exists(table, field, kind, id string) error {
	st, err := w.prepare(`SELECT count(*) FROM ` + table + ` WHERE id = ?`)
	if err != nil {
		return err
	}
	var n int
	if err := st.QueryRowContext(w.ctx, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return &platform.FieldError{Field: field, Msg: fmt.Sprintf("unknown %s %q", kind, id)}
	}
	return nil
}

// Organization creates or replaces an organization.
func (w *writer) Organization(o Organization) error {
	if err := o.Validate(); err != nil {
		return err
	}
	w.stats.Organizations++
	return w.exec(`INSERT INTO organizations(id, name) VALUES (?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name`, o.ID, o.Name)
}

// Project creates or replaces a project of an existing organization.
func (w *writer) Project(p Project) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := w.exists("organizations", "organization", "organization", p.Organization); err != nil {
		return err
	}
	w.stats.Projects++
	return w.exec(`INSERT INTO projects(id, organization_id, name) VALUES (?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name`,
		p.ID, p.Organization, p.Name)
}

// User creates or replaces a user: its emails and memberships become the
// ones given. A user keeps its place in creation order ("the oldest user
// with that email") when replaced.
func (w *writer) User(u User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	for i, p := range u.Projects {
		if err := w.exists("projects", fmt.Sprintf("projects[%d]", i), "project", p); err != nil {
			return err
		}
	}
	w.stats.Users++
	if err := w.exec(`INSERT INTO users(id, name) VALUES (?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name`, u.ID, u.Name); err != nil {
		return err
	}
	if err := w.exec(`DELETE FROM user_emails WHERE user_id = ?`, u.ID); err != nil {
		return err
	}
	for _, e := range u.Emails {
		if err := w.exec(`INSERT INTO user_emails(user_id, email, email_lower, verified) VALUES (?, ?, ?, ?)`,
			u.ID, e.Address, platform.NormalizeEmail(e.Address), boolInt(e.Verified)); err != nil {
			return err
		}
	}
	if err := w.exec(`DELETE FROM project_members WHERE user_id = ?`, u.ID); err != nil {
		return err
	}
	for _, p := range u.Projects {
		if err := w.exec(`INSERT INTO project_members(project_id, user_id) VALUES (?, ?)`, p, u.ID); err != nil {
			return err
		}
	}
	return nil
}

// Group creates or replaces a group of an existing project, assigned to
// an existing user or to no one.
func (w *writer) Group(g Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if err := w.exists("projects", "project", "project", g.Project); err != nil {
		return err
	}
	if g.Assignee != nil {
		if err := w.exists("users", "assignee", "user", *g.Assignee); err != nil {
			return err
		}
	}
	w.stats.Groups++
	return w.exec(`INSERT INTO issue_groups(id, project_id, title, assignee_id, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET project_id = excluded.project_id, title = excluded.title,
			assignee_id = excluded.assignee_id, updated_at = excluded.updated_at`,
		g.ID, g.Project, g.Title, g.Assignee, w.s.now().UnixMilli())
}

// Link links an existing group to a Jira issue of an existing
// installation; linking twice is linking once.
func (w *writer) Link(l Link) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := w.exists("issue_groups", "group", "group", l.Group); err != nil {
		return err
	}
	if err := w.exists("installations", "installation", "installation", l.Installation); err != nil {
		return err
	}
	w.stats.Links++
	return w.exec(`INSERT INTO group_links(group_id, installation_id, issue_key) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, l.Group, l.Installation, l.IssueKey)
}

// PutOrganization creates or replaces an organization.
func (s *Store) PutOrganization(ctx context.Context, o Organization) error {
	return s.write(ctx, func(w *writer) error { return w.Organization(o) })
}

// PutProject creates or replaces a project of an existing organization.
func (s *Store) PutProject(ctx context.Context, p Project) error {
	return s.write(ctx, func(w *writer) error { return w.Project(p) })
}

// PutUser creates or replaces a user, with its emails and memberships.
func (s *Store) PutUser(ctx context.Context, u User) error {
	return s.write(ctx, func(w *writer) error { return w.User(u) })
}

// PutGroup creates or replaces a group.
func (s *Store) PutGroup(ctx context.Context, g Group) error {
	return s.write(ctx, func(w *writer) error { return w.Group(g) })
}

// LinkGroup links a group to a Jira issue of an installation.
func (s *Store) LinkGroup(ctx context.Context, groupID, installationID, issueKey string) error {
	return s.write(ctx, func(w *writer) error {
		return w.Link(Link{Group: groupID, Installation: installationID, IssueKey: issueKey})
	})
}
