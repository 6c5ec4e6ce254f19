package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Page selects part of a list ordered by id: the ids after After (all
// when ""), at most Limit of them (DefaultPageLimit when 0).
type Page struct {
	After string
	Limit int
}

// Page sizes.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

func (p Page) limit() int {
	if p.Limit <= 0 {
		return DefaultPageLimit
	}
	return min(p.Limit, MaxPageLimit)
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(...any) error }

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, q runner, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// one returns the only element of a query's result, or ErrNotFound.
func one[T any](list []T, err error, kind, id string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(list) == 0 {
		return zero, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
	}
	return list[0], nil
}

func scanOrganization(sc scanner) (o Organization, err error) {
	err = sc.Scan(&o.ID, &o.Name)
	return o, err
}

func scanProject(sc scanner) (p Project, err error) {
	err = sc.Scan(&p.ID, &p.Organization, &p.Name)
	return p, err
}

func scanGroup(sc scanner) (g Group, err error) {
	var assignee sql.NullString
	err = sc.Scan(&g.ID, &g.Project, &g.Title, &assignee, &g.Status)
	if assignee.Valid {
		g.Assignee = &assignee.String
	}
	return g, err
}

func scanLink(sc scanner) (l Link, err error) {
	err = sc.Scan(&l.Group, &l.Installation, &l.IssueKey)
	return l, err
}

// ListOrganizations lists a page of organizations.
func (s *Store) ListOrganizations(ctx context.Context, p Page) ([]Organization, error) {
	return queryAll(ctx, s.db, `SELECT id, name FROM organizations WHERE id > ? ORDER BY id LIMIT ?`,
		[]any{p.After, p.limit()}, scanOrganization)
}

func (s *Store) eachOrganization(ctx context.Context, fn func(Organization) error) error {
	return eachPage(ctx, s.ListOrganizations, func(o Organization) string { return o.ID }, fn)
}

// eachPage calls fn on every element of a list, a page at a time.
func eachPage[T any](ctx context.Context, list func(context.Context, Page) ([]T, error), id func(T) string, fn func(T) error) error {
	p := Page{Limit: MaxPageLimit}
	for {
		page, err := list(ctx, p)
		if err != nil {
			return err
		}
		for _, v := range page {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(page) < p.Limit {
			return nil
		}
		p.After = id(page[len(page)-1])
	}
}

// Organization reads an organization.
func (s *Store) Organization(ctx context.Context, id string) (Organization, error) {
	list, err := queryAll(ctx, s.db, `SELECT id, name FROM organizations WHERE id = ?`, []any{id}, scanOrganization)
	return one(list, err, "organization", id)
}

// ListProjects lists a page of projects.
func (s *Store) ListProjects(ctx context.Context, p Page) ([]Project, error) {
	return queryAll(ctx, s.db, `SELECT id, organization_id, name FROM projects WHERE id > ? ORDER BY id LIMIT ?`,
		[]any{p.After, p.limit()}, scanProject)
}

// Project reads a project.
func (s *Store) Project(ctx context.Context, id string) (Project, error) {
	list, err := queryAll(ctx, s.db, `SELECT id, organization_id, name FROM projects WHERE id = ?`, []any{id}, scanProject)
	return one(list, err, "project", id)
}

// ListUsers lists a page of users with their emails and memberships.
func (s *Store) ListUsers(ctx context.Context, p Page) ([]User, error) {
	users, err := queryAll(ctx, s.db, `SELECT id, name FROM users WHERE id > ? ORDER BY id LIMIT ?`,
		[]any{p.After, p.limit()}, func(sc scanner) (u User, err error) {
			err = sc.Scan(&u.ID, &u.Name)
			return u, err
		})
	if err != nil || len(users) == 0 {
		return users, err
	}
	return users, s.fillUsers(ctx, users)
}

// fillUsers reads the emails and memberships of users, with one query
// each for all of them.
func (s *Store) fillUsers(ctx context.Context, users []User) error {
	at := make(map[string]int, len(users))
	ids := make([]any, len(users))
	for i, u := range users {
		at[u.ID] = i
		ids[i] = u.ID
		users[i].Emails, users[i].Projects = []Email{}, []string{}
	}
	in := `(` + placeholders(len(ids)) + `)`
	_, err := queryAll(ctx, s.db, `SELECT user_id, email, verified FROM user_emails WHERE user_id IN `+in+`
		ORDER BY user_id, email_lower`, ids, func(sc scanner) (struct{}, error) {
		var id string
		var e Email
		err := sc.Scan(&id, &e.Address, &e.Verified)
		u := &users[at[id]]
		u.Emails = append(u.Emails, e)
		return struct{}{}, err
	})
	if err != nil {
		return err
	}
	_, err = queryAll(ctx, s.db, `SELECT user_id, project_id FROM project_members WHERE user_id IN `+in+`
		ORDER BY user_id, project_id`, ids, func(sc scanner) (struct{}, error) {
		var id, project string
		err := sc.Scan(&id, &project)
		u := &users[at[id]]
		u.Projects = append(u.Projects, project)
		return struct{}{}, err
	})
	return err
}

// User reads a user with its emails and memberships.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	list, err := queryAll(ctx, s.db, `SELECT id, name FROM users WHERE id = ?`, []any{id}, func(sc scanner) (u User, err error) {
		err = sc.Scan(&u.ID, &u.Name)
		return u, err
	})
	u, err := one(list, err, "user", id)
	if err != nil {
		return u, err
	}
	users := []User{u}
	err = s.fillUsers(ctx, users)
	return users[0].Sorted(), err
}

// ListGroups lists a page of groups; with issueKey, only those linked to
// that Jira issue (through any installation).
func (s *Store) ListGroups(ctx context.Context, p Page, issueKey string) ([]Group, error) {
	if issueKey != "" {
		return queryAll(ctx, s.db, `SELECT g.id, g.project_id, g.title, g.assignee_id, g.status FROM issue_groups g
			WHERE g.id > ? AND EXISTS (SELECT 1 FROM group_links l WHERE l.group_id = g.id AND l.issue_key = ?)
			ORDER BY g.id LIMIT ?`, []any{p.After, issueKey, p.limit()}, scanGroup)
	}
	return queryAll(ctx, s.db, `SELECT id, project_id, title, assignee_id, status FROM issue_groups WHERE id > ? ORDER BY id LIMIT ?`,
		[]any{p.After, p.limit()}, scanGroup)
}

// ListLinks lists links after the link after (zero: from the start),
// ordered by group, installation and issue key; with group set, only that
// group's.
func (s *Store) ListLinks(ctx context.Context, group string, after Link, limit int) ([]Link, error) {
	limit = Page{Limit: limit}.limit()
	if group != "" {
		return queryAll(ctx, s.db, `SELECT group_id, installation_id, issue_key FROM group_links
			WHERE group_id = ? AND (installation_id > ? OR (installation_id = ? AND issue_key > ?))
			ORDER BY installation_id, issue_key LIMIT ?`,
			[]any{group, after.Installation, after.Installation, after.IssueKey, limit}, scanLink)
	}
	return queryAll(ctx, s.db, `SELECT group_id, installation_id, issue_key FROM group_links
		WHERE group_id > ? OR (group_id = ? AND (installation_id > ? OR (installation_id = ? AND issue_key > ?)))
		ORDER BY group_id, installation_id, issue_key LIMIT ?`,
		[]any{after.Group, after.Group, after.Installation, after.Installation, after.IssueKey, limit}, scanLink)
}

// GroupLinks returns the links of the given groups, by group.
func (s *Store) GroupLinks(ctx context.Context, groups []string) (map[string][]Link, error) {
	out := map[string][]Link{}
	if len(groups) == 0 {
		return out, nil
	}
	ids := make([]any, len(groups))
	for i, g := range groups {
		ids[i] = g
	}
	links, err := queryAll(ctx, s.db, `SELECT group_id, installation_id, issue_key FROM group_links
		WHERE group_id IN (`+placeholders(len(ids))+`) ORDER BY group_id, installation_id, issue_key`, ids, scanLink)
	for _, l := range links {
		out[l.Group] = append(out[l.Group], l)
	}
	return out, err
}

// DeleteOrganization deletes an organization. It is refused (ErrConflict)
// while the organization has projects or an installation serves it: those
// must be deleted or changed first, so that nothing disappears unasked.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	return s.deleteRow(ctx, "organization", `DELETE FROM organizations WHERE id = ?`, id,
		refusal{`SELECT count(*) FROM projects WHERE organization_id = ?`, "it has %d projects; delete them first"},
		refusal{`SELECT count(*) FROM installation_organizations WHERE organization_id = ?`,
			"%d installations serve it; change them on their pages first"})
}

// DeleteProject deletes a project and its memberships. It is refused
// (ErrConflict) while the project has groups: deleting them (and their
// links) is a decision of its own.
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	return s.deleteRow(ctx, "project", `DELETE FROM projects WHERE id = ?`, id,
		refusal{`SELECT count(*) FROM issue_groups WHERE project_id = ?`, "it has %d groups; delete them first"})
}

// DeleteUser deletes a user with its emails and memberships; the groups
// assigned to it become unassigned.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.deleteRow(ctx, "user", `DELETE FROM users WHERE id = ?`, id)
}

// DeleteGroup deletes a group with its links.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.deleteRow(ctx, "group", `DELETE FROM issue_groups WHERE id = ?`, id)
}

// Unlink removes one link.
func (s *Store) Unlink(ctx context.Context, l Link) error {
	return s.tx(ctx, func(tx runner) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM group_links WHERE group_id = ? AND installation_id = ? AND issue_key = ?`,
			l.Group, l.Installation, l.IssueKey)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("link of group %q to %s on installation %q: %w", l.Group, l.IssueKey, l.Installation, ErrNotFound)
		}
		return nil
	})
}

// refusal is a count that must be zero for a delete to go ahead.
type refusal struct {
	count, why string
}

func (s *Store) deleteRow(ctx context.Context, kind, del, id string, refusals ...refusal) error {
	return s.tx(ctx, func(tx runner) error {
		for _, r := range refusals {
			var n int
			if err := tx.QueryRowContext(ctx, r.count, id).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%s %q: %s: %w", kind, id, fmt.Sprintf(r.why, n), ErrConflict)
			}
		}
		res, err := tx.ExecContext(ctx, del, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
		}
		return nil
	})
}

// Export writes every platform object to w in platform.Data's shape, a
// page at a time: what Import reads. It is not a snapshot: objects
// changed while it runs may be written as they were or as they are.
func (s *Store) Export(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	first := true
	section := func(name string) {
		if !first {
			bw.WriteString("],\n")
		}
		first = false
		bw.WriteString(`"` + name + `": [`)
	}
	n := 0
	item := func(v any) error {
		if n > 0 {
			bw.WriteString(",")
		}
		n++
		bw.WriteString("\n  ")
		return enc.Encode(v)
	}
	bw.WriteString("{")
	section("organizations")
	n = 0
	err := s.eachOrganization(ctx, func(o Organization) error { return item(o) })
	section("projects")
	n = 0
	err = errors.Join(err, eachPage(ctx, s.ListProjects, func(p Project) string { return p.ID }, func(p Project) error { return item(p) }))
	section("users")
	n = 0
	err = errors.Join(err, eachPage(ctx, s.ListUsers, func(u User) string { return u.ID }, func(u User) error { return item(u) }))
	section("groups")
	n = 0
	err = errors.Join(err, eachPage(ctx, func(ctx context.Context, p Page) ([]Group, error) { return s.ListGroups(ctx, p, "") },
		func(g Group) string { return g.ID }, func(g Group) error { return item(g) }))
	section("links")
	n = 0
	var after Link
	for err == nil {
		links, e := s.ListLinks(ctx, "", after, MaxPageLimit)
		for _, l := range links {
			e = errors.Join(e, item(l))
		}
		err = e
		if len(links) < MaxPageLimit {
			break
		}
		after = links[len(links)-1]
	}
	if err != nil {
		return err
	}
	bw.WriteString("]\n}\n")
	return bw.Flush()
}
