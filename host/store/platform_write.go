package store

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jirasync/jirasync/host/platform"
)

// writer writes platform objects in one transaction, each checked
// (platform's Validate, and that what it names exists) before it is
// written. It is the platform.Sink an import streams into, and holds up
// to batchSize objects back to write them with a few multi-row statements:
// one statement per object made a 100,000-user import on PostgreSQL take
// minutes of round trips. No object names one of its own section, so a
// batch's references are all written already when it is checked.
type writer struct {
	ctx   context.Context
	s     *Store
	tx    runner
	stats ImportStats

	orgs     []held[Organization]
	projects []held[Project]
	users    []held[User]
	groups   []held[Group]
	links    []held[Link]
}

// held is an object waiting in a batch, with its place in the file.
type held[T any] struct {
	at string
	v  T
}

// batchSize bounds the objects held back; with up to 100 emails a user,
// it keeps a statement's parameters under PostgreSQL's 65,535.
const batchSize = 250

// ImportStats counts what an import wrote.
type ImportStats struct {
	Organizations, Projects, Users, Groups, Links int
}

// write runs fn with a writer in one transaction, flushing it at the end:
// all of it or nothing.
func (s *Store) write(ctx context.Context, fn func(w *writer) error) error {
	return s.tx(ctx, func(tx runner) error {
		w := &writer{ctx: ctx, s: s, tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		return w.Flush()
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
		err := platform.Decode(r, w)
		stats = w.stats
		return err
	})
	if err == nil && s.Dialect() == "postgres" && stats.Users+stats.Groups+stats.Links >= analyzeAfter {
		// PostgreSQL plans by statistics, which autovacuum refreshes only
		// some time after a bulk load: until then the sync's lookups may
		// be planned for empty tables.
		if _, aerr := s.exec(ctx, `ANALYZE users, user_emails, project_members, projects, issue_groups, group_links`); aerr != nil {
			return stats, fmt.Errorf("imported, but refreshing statistics failed: %w", aerr)
		}
	}
	return stats, err
}

// analyzeAfter is how many rows an import writes before it refreshes
// PostgreSQL's statistics.
const analyzeAfter = 1000

// ImportData writes d as Import writes a file: a scenario's platform.
func (s *Store) ImportData(ctx context.Context, d *platform.Data) error {
	return s.write(ctx, func(w *writer) error { return d.Each(w) })
}

// PutOrganization creates or replaces an organization.
func (s *Store) PutOrganization(ctx context.Context, o Organization) error {
	return s.put(ctx, o, func(w *writer) error { return w.Organization("", o) })
}

// PutProject creates or replaces a project of an existing organization.
func (s *Store) PutProject(ctx context.Context, p Project) error {
	return s.put(ctx, p, func(w *writer) error { return w.Project("", p) })
}

// PutUser creates or replaces a user, with its emails and memberships. A
// replaced user keeps its place in creation order ("the oldest user with
// that email").
func (s *Store) PutUser(ctx context.Context, u User) error {
	return s.put(ctx, u, func(w *writer) error { return w.User("", u) })
}

// PutGroup creates or replaces a group of an existing project, assigned
// to an existing user or to no one.
func (s *Store) PutGroup(ctx context.Context, g Group) error {
	return s.put(ctx, g, func(w *writer) error { return w.Group("", g) })
}

// LinkGroup links an existing group to a Jira issue of an existing
// installation; linking twice is linking once.
func (s *Store) LinkGroup(ctx context.Context, groupID, installationID, issueKey string) error {
	l := Link{Group: groupID, Installation: installationID, IssueKey: issueKey}
	return s.put(ctx, l, func(w *writer) error { return w.Link("", l) })
}

func (s *Store) put(ctx context.Context, v interface{ Validate() error }, fn func(w *writer) error) error {
	if err := v.Validate(); err != nil {
		return err
	}
	return s.write(ctx, fn)
}

// hold adds an object to its batch and writes the batch when it is full.
func hold[T any](w *writer, batch *[]held[T], at string, v T) error {
	*batch = append(*batch, held[T]{at, v})
	if len(*batch) < batchSize {
		return nil
	}
	return w.Flush()
}

func (w *writer) Organization(at string, o Organization) error { return hold(w, &w.orgs, at, o) }
func (w *writer) Project(at string, p Project) error           { return hold(w, &w.projects, at, p) }
func (w *writer) User(at string, u User) error                 { return hold(w, &w.users, at, u) }
func (w *writer) Group(at string, g Group) error               { return hold(w, &w.groups, at, g) }
func (w *writer) Link(at string, l Link) error                 { return hold(w, &w.links, at, l) }

// Flush writes every object held back.
func (w *writer) Flush() error {
	for _, f := range []func() error{w.flushOrgs, w.flushProjects, w.flushUsers, w.flushGroups, w.flushLinks} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// lastOfEach keeps, of objects with the same key in a batch, the last
// one: later in a file replaces earlier, and one statement must not
// write a row twice.
func lastOfEach[T any](batch []held[T], key func(T) string) []held[T] {
	last := make(map[string]int, len(batch))
	for i, h := range batch {
		last[key(h.v)] = i
	}
	out := batch[:0:0]
	for i, h := range batch {
		if last[key(h.v)] == i {
			out = append(out, h)
		}
	}
	return out
}

// existing returns which of ids are in table.
func (w *writer) existing(table string, ids map[string]bool) (map[string]bool, error) {
	found := make(map[string]bool, len(ids))
	list := make([]any, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	for len(list) > 0 {
		n := min(len(list), 1000)
		rows, err := w.tx.QueryContext(w.ctx, `SELECT id FROM `+table+` WHERE id IN (`+placeholders(n)+`)`, list[:n]...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			found[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		list = list[n:]
	}
	return found, nil
}

// ref is one reference an object makes: the field naming it, and the id.
type ref struct{ field, id string }

// checkRefs checks that every reference of a batch's objects names a row
// of table, and returns a FieldError for the first (in file order) that
// does not.
func checkRefs[T any](w *writer, batch []held[T], table, kind string, refs func(T) []ref) error {
	ids := map[string]bool{}
	for _, h := range batch {
		for _, r := range refs(h.v) {
			ids[r.id] = true
		}
	}
	if len(ids) == 0 {
		return nil
	}
	found, err := w.existing(table, ids)
	if err != nil {
		return err
	}
	for _, h := range batch {
		for _, r := range refs(h.v) {
			if !found[r.id] {
				return &platform.FieldError{Field: platform.Field(h.at, r.field), Msg: fmt.Sprintf("unknown %s %q", kind, r.id)}
			}
		}
	}
	return nil
}

// insert writes rows (each len(columns) values) with one statement per
// chunk: "INSERT INTO table(columns) VALUES (…), (…) suffix".
func (w *writer) insert(table string, columns []string, rows [][]any, suffix string) error {
	row := "(" + placeholders(len(columns)) + ")"
	per := max(1, 30000/len(columns))
	for len(rows) > 0 {
		n := min(len(rows), per)
		args := make([]any, 0, n*len(columns))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		q := `INSERT INTO ` + table + `(` + strings.Join(columns, ", ") + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + ` ` + suffix
		if _, err := w.tx.ExecContext(w.ctx, q, args...); err != nil {
			return fmt.Errorf("writing %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// deleteWhereIn deletes the rows of table whose column is one of ids.
func (w *writer) deleteWhereIn(table, column string, ids []any) error {
	_, err := w.tx.ExecContext(w.ctx, `DELETE FROM `+table+` WHERE `+column+` IN (`+placeholders(len(ids))+`)`, ids...)
	return err
}

func (w *writer) flushOrgs() error {
	batch := lastOfEach(w.orgs, func(o Organization) string { return o.ID })
	w.orgs = w.orgs[:0]
	if len(batch) == 0 {
		return nil
	}
	rows := make([][]any, len(batch))
	for i, h := range batch {
		rows[i] = []any{h.v.ID, h.v.Name}
	}
	w.stats.Organizations += len(batch)
	return w.insert("organizations", []string{"id", "name"}, rows, `ON CONFLICT(id) DO UPDATE SET name = excluded.name`)
}

func (w *writer) flushProjects() error {
	batch := lastOfEach(w.projects, func(p Project) string { return p.ID })
	w.projects = w.projects[:0]
	if len(batch) == 0 {
		return nil
	}
	if err := checkRefs(w, batch, "organizations", "organization", func(p Project) []ref {
		return []ref{{"organization", p.Organization}}
	}); err != nil {
		return err
	}
	rows := make([][]any, len(batch))
	for i, h := range batch {
		rows[i] = []any{h.v.ID, h.v.Organization, h.v.Name}
	}
	w.stats.Projects += len(batch)
	return w.insert("projects", []string{"id", "organization_id", "name"}, rows,
		`ON CONFLICT(id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name`)
}

// flushUsers writes users and replaces their emails and memberships with
// the ones given.
func (w *writer) flushUsers() error {
	batch := lastOfEach(w.users, func(u User) string { return u.ID })
	w.users = w.users[:0]
	if len(batch) == 0 {
		return nil
	}
	if err := checkRefs(w, batch, "projects", "project", func(u User) []ref {
		refs := make([]ref, len(u.Projects))
		for i, p := range u.Projects {
			refs[i] = ref{fmt.Sprintf("projects[%d]", i), p}
		}
		return refs
	}); err != nil {
		return err
	}
	ids := make([]any, len(batch))
	users := make([][]any, len(batch))
	var emails, members [][]any
	for i, h := range batch {
		u := h.v
		ids[i] = u.ID
		users[i] = []any{u.ID, u.Name}
		for _, e := range u.Emails {
			emails = append(emails, []any{u.ID, e.Address, platform.NormalizeEmail(e.Address), boolInt(e.Verified)})
		}
		for _, p := range u.Projects {
			members = append(members, []any{p, u.ID})
		}
	}
	w.stats.Users += len(batch)
	if err := w.insert("users", []string{"id", "name"}, users, `ON CONFLICT(id) DO UPDATE SET name = excluded.name`); err != nil {
		return err
	}
	if err := w.deleteWhereIn("user_emails", "user_id", ids); err != nil {
		return err
	}
	if err := w.insert("user_emails", []string{"user_id", "email", "email_lower", "verified"}, emails, ""); err != nil {
		return err
	}
	if err := w.deleteWhereIn("project_members", "user_id", ids); err != nil {
		return err
	}
	return w.insert("project_members", []string{"project_id", "user_id"}, members, "")
}

func (w *writer) flushGroups() error {
	batch := lastOfEach(w.groups, func(g Group) string { return g.ID })
	w.groups = w.groups[:0]
	if len(batch) == 0 {
		return nil
	}
	if err := checkRefs(w, batch, "projects", "project", func(g Group) []ref { return []ref{{"project", g.Project}} }); err != nil {
		return err
	}
	if err := checkRefs(w, batch, "users", "user", func(g Group) []ref {
		if g.Assignee == nil {
			return nil
		}
		return []ref{{"assignee", *g.Assignee}}
	}); err != nil {
		return err
	}
	now := w.s.now().UnixMilli()
	rows := make([][]any, len(batch))
	for i, h := range batch {
		rows[i] = []any{h.v.ID, h.v.Project, h.v.Title, h.v.Assignee, platform.GroupStatus(h.v.Status), now}
	}
	w.stats.Groups += len(batch)
	return w.insert("issue_groups", []string{"id", "project_id", "title", "assignee_id", "status", "updated_at"}, rows,
		`ON CONFLICT(id) DO UPDATE SET project_id = excluded.project_id, title = excluded.title,
			assignee_id = excluded.assignee_id, status = excluded.status, updated_at = excluded.updated_at`)
}

func (w *writer) flushLinks() error {
	batch := w.links
	w.links = w.links[:0]
	if len(batch) == 0 {
		return nil
	}
	if err := checkRefs(w, batch, "issue_groups", "group", func(l Link) []ref { return []ref{{"group", l.Group}} }); err != nil {
		return err
	}
	if err := checkRefs(w, batch, "installations", "installation", func(l Link) []ref {
		return []ref{{"installation", l.Installation}}
	}); err != nil {
		return err
	}
	rows := make([][]any, len(batch))
	for i, h := range batch {
		rows[i] = []any{h.v.Group, h.v.Installation, h.v.IssueKey}
	}
	w.stats.Links += len(batch)
	return w.insert("group_links", []string{"group_id", "installation_id", "issue_key"}, rows, `ON CONFLICT DO NOTHING`)
}

var _ platform.Sink = (*writer)(nil)
