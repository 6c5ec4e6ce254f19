// Package fakeplatform is a simulated integration platform that jirasync
// reaches over HTTP: an independent implementation of the contract in
// docs/PLATFORM.md, with its own in-memory data (it shares no code with
// the host's store or its HTTP client), so that running jirasync against
// it tests the contract as a platform's developers would implement it.
//
// It checks the Bearer token on every call, records every idempotency key
// (how often it was posted, how often it changed data) and can be told to
// misbehave (Server.Intercept) for tests of jirasync's error handling.
// Told where (SendEvents), it sends jirasync an event after each change
// to a group's assignee or status, as a platform with two-way sync does.
package fakeplatform

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jirasync/jirasync/host/platform"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

type user struct {
	id, name string
	emails   map[string]email // by address as platform.NormalizeEmail folds it
	projects []string
}

type email struct {
	address  string // as given
	verified bool
}

type group struct {
	project, title, status string
	assignee               *string
}

// KeyRecord is what happened to one idempotency key.
type KeyRecord struct {
	Posts   int // requests that carried it
	Applied int // times its assignments changed the data: at most one
	Changed int // groups its apply changed
}

// Server is a simulated platform. Use Start, or New and Handler.
type Server struct {
	token string
	log   *slog.Logger

	mu        sync.Mutex
	orgs      map[string]string // id → name
	projects  map[string]string // id → organization
	users     []*user           // oldest first
	groups    map[string]*group
	links     map[string]map[string]bool // installation + "\x00" + issue key → groups
	linkedTo  map[string]map[string]bool // group → installations
	keys      map[string]*KeyRecord
	intercept func(w http.ResponseWriter, r *http.Request) bool
	events    *events // nil: no events sent (SendEvents)

	srv *httptest.Server
}

// New makes a platform holding no data, which accepts token.
func New(token string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{token: token, log: log, orgs: map[string]string{}, projects: map[string]string{},
		groups: map[string]*group{}, links: map[string]map[string]bool{}, linkedTo: map[string]map[string]bool{},
		keys: map[string]*KeyRecord{}}
}

// Start serves a new platform on a loopback port.
func Start(token string, log *slog.Logger) *Server {
	s := New(token, log)
	s.srv = httptest.NewServer(s.Handler())
	return s
}

// URL is where a started platform listens.
func (s *Server) URL() string { return s.srv.URL }

// Close stops a started platform, and its events (SendEvents): those not
// sent yet are dropped.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.mu.Lock()
	ev := s.events
	s.mu.Unlock()
	if ev != nil {
		ev.close()
	}
}

// Load adds data, as an operator would create it on the platform: each
// object may only name objects that exist already or come earlier.
func (s *Server) Load(d *platform.Data) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range d.Organizations {
		s.orgs[o.ID] = o.Name
	}
	for _, p := range d.Projects {
		if _, ok := s.orgs[p.Organization]; !ok {
			return fmt.Errorf("project %s: no organization %s", p.ID, p.Organization)
		}
		s.projects[p.ID] = p.Organization
	}
	for _, u := range d.Users {
		nu := &user{id: u.ID, name: u.Name, emails: map[string]email{}, projects: slices.Clone(u.Projects)}
		for _, e := range u.Emails {
			nu.emails[strings.ToLower(strings.TrimSpace(e.Address))] = email{e.Address, e.Verified}
		}
		s.users = append(s.users, nu)
	}
	for _, g := range d.Groups {
		if _, ok := s.projects[g.Project]; !ok {
			return fmt.Errorf("group %s: no project %s", g.ID, g.Project)
		}
		s.groups[g.ID] = &group{project: g.Project, title: g.Title, status: platform.GroupStatus(g.Status), assignee: g.Assignee}
	}
	for _, l := range d.Links {
		if _, ok := s.groups[l.Group]; !ok {
			return fmt.Errorf("link: no group %s", l.Group)
		}
		k := l.Installation + "\x00" + l.IssueKey
		if s.links[k] == nil {
			s.links[k] = map[string]bool{}
		}
		s.links[k][l.Group] = true
		if s.linkedTo[l.Group] == nil {
			s.linkedTo[l.Group] = map[string]bool{}
		}
		s.linkedTo[l.Group][l.Installation] = true
	}
	return nil
}

// Assignee is a group's assignee; ok is false for an unknown group.
func (s *Server) Assignee(id string) (assignee *string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return nil, false
	}
	return g.assignee, true
}

// Status is a group's status; ok is false for an unknown group.
func (s *Server) Status(id string) (status string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return "", false
	}
	return g.status, true
}

// Keys is every idempotency key posted so far.
func (s *Server) Keys() map[string]KeyRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]KeyRecord, len(s.keys))
	for k, r := range s.keys {
		out[k] = *r
	}
	return out
}

// Intercept installs f, which sees every request first (the token
// unchecked): if it answers (returns true), the platform does nothing
// more. Nil removes it. Tests use it to make the platform misbehave.
func (s *Server) Intercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.intercept = f
	s.mu.Unlock()
}

// Handler serves the contract's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/organizations", s.organizations)
	mux.HandleFunc("GET /v1/linked-groups", s.linkedGroups)
	mux.HandleFunc("GET /v1/users", s.usersByEmail)
	mux.HandleFunc("GET /v1/groups/{id}", s.group)
	mux.HandleFunc("GET /v1/users/{id}", s.user)
	mux.HandleFunc("POST /v1/assignments/check", s.check)
	mux.HandleFunc("POST /v1/assignments", s.apply)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.intercept
		s.mu.Unlock()
		if f != nil && f(w, r) {
			return
		}
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(given), []byte(s.token)) != 1 {
			fail(w, http.StatusUnauthorized, "unauthorized", "token refused")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (s *Server) organizations(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []map[string]string{}
	for id, name := range s.orgs {
		out = append(out, map[string]string{"id": id, "name": name})
	}
	s.mu.Unlock()
	reply(w, map[string]any{"organizations": out})
}

func (s *Server) linkedGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	inst, key, orgs := q.Get("installation"), q.Get("issue_key"), q["organization"]
	if inst == "" || key == "" {
		fail(w, http.StatusBadRequest, "invalid_request", "installation and issue_key are required")
		return
	}
	s.mu.Lock()
	out := []map[string]any{}
	for id := range s.links[inst+"\x00"+key] {
		g := s.groups[id]
		org := s.projects[g.project]
		if slices.Contains(orgs, org) {
			out = append(out, map[string]any{"id": id, "project": g.project, "title": g.title, "assignee": g.assignee,
				"status": g.status, "organization": org})
		}
	}
	s.mu.Unlock()
	reply(w, map[string]any{"groups": out})
}

func (s *Server) usersByEmail(w http.ResponseWriter, r *http.Request) {
	address := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("email")))
	if address == "" {
		fail(w, http.StatusBadRequest, "invalid_request", "email is required")
		return
	}
	s.mu.Lock()
	out := []map[string]any{}
	for _, u := range s.users {
		if e, ok := u.emails[address]; ok {
			out = append(out, map[string]any{"id": u.id, "verified": e.verified, "projects": nonNil(u.projects)})
		}
	}
	s.mu.Unlock()
	reply(w, map[string]any{"users": out})
}

// group answers one group with the issue keys linked to it through the
// installation asked for.
func (s *Server) group(w http.ResponseWriter, r *http.Request) {
	id, inst := r.PathValue("id"), r.URL.Query().Get("installation")
	if inst == "" {
		fail(w, http.StatusBadRequest, "invalid_request", "installation is required")
		return
	}
	s.mu.Lock()
	g, ok := s.groups[id]
	var out map[string]any
	keys := []string{}
	if ok {
		out = map[string]any{"id": id, "project": g.project, "title": g.title, "assignee": g.assignee,
			"status": g.status, "organization": s.projects[g.project]}
		for k, groups := range s.links {
			if installation, key, _ := strings.Cut(k, "\x00"); installation == inst && groups[id] {
				keys = append(keys, key)
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusNotFound, "not_found", fmt.Sprintf("no group %q", id))
		return
	}
	// Any order: the contract lets the client sort.
	reply(w, map[string]any{"group": out, "issue_keys": keys})
}

// user answers one user with its addresses and memberships.
func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	var out map[string]any
	for _, u := range s.users {
		if u.id == id {
			emails := []map[string]any{}
			for _, e := range u.emails {
				emails = append(emails, map[string]any{"email": e.address, "verified": e.verified})
			}
			out = map[string]any{"id": u.id, "name": u.name, "emails": emails, "projects": nonNil(u.projects)}
		}
	}
	s.mu.Unlock()
	if out == nil {
		fail(w, http.StatusNotFound, "not_found", fmt.Sprintf("no user %q", id))
		return
	}
	reply(w, map[string]any{"user": out})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// assignments is the body of both assignment endpoints.
type assignments struct {
	Installation  string   `json:"installation"`
	Organizations []string `json:"organizations"`
	Delivery      int64    `json:"delivery"`
	Round         *int     `json:"round"`
	IssueKey      string   `json:"issue_key"`
	Assignments   []struct {
		Group    string  `json:"group"`
		Assignee *string `json:"assignee"`
	} `json:"assignments"`
	// Statuses are optional (added within v1).
	Statuses []platform.StatusChange `json:"statuses"`
}

func readAssignments(w http.ResponseWriter, r *http.Request) (assignments, bool) {
	var a assignments
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("body over %d bytes", maxBody)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(&a)
	}
	if err == nil && (a.Installation == "" || a.Assignments == nil || a.Organizations == nil) {
		err = fmt.Errorf("installation, organizations and assignments are required")
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return a, false
	}
	return a, true
}

// reach checks, under s.mu, that every group is linked to the
// installation and belongs to one of the organizations it serves, and
// counts the changes, in order (a group named twice changes from what
// the first set); an unknown assignee is refused too.
func (s *Server) reach(a assignments) (changed int, code, msg string) {
	now := map[string]*string{}
	for i, as := range a.Assignments {
		g, ok := s.groups[as.Group]
		if !ok || !s.linkedTo[as.Group][a.Installation] || !slices.Contains(a.Organizations, s.projects[g.project]) {
			return 0, "denied", fmt.Sprintf("assignments[%d]: group %q is not linked to installation %q through an organization it serves", i, as.Group, a.Installation)
		}
		if as.Assignee != nil && !s.hasUser(*as.Assignee) {
			return 0, "unknown_user", fmt.Sprintf("assignments[%d]: no user %q", i, *as.Assignee)
		}
		current, seen := now[as.Group]
		if !seen {
			current = g.assignee
		}
		if !same(current, as.Assignee) {
			changed++
		}
		now[as.Group] = as.Assignee
	}
	status := map[string]string{}
	for i, sc := range a.Statuses {
		g, ok := s.groups[sc.Group]
		if !ok || !s.linkedTo[sc.Group][a.Installation] || !slices.Contains(a.Organizations, s.projects[g.project]) {
			return 0, "denied", fmt.Sprintf("statuses[%d]: group %q is not linked to installation %q through an organization it serves", i, sc.Group, a.Installation)
		}
		if sc.Status != platform.StatusResolved && sc.Status != platform.StatusUnresolved {
			return 0, "invalid_status", fmt.Sprintf("statuses[%d].status: %q is not unresolved or resolved", i, sc.Status)
		}
		current, seen := status[sc.Group]
		if !seen {
			current = g.status
		}
		if current != sc.Status {
			changed++
		}
		status[sc.Group] = sc.Status
	}
	return changed, "", ""
}

func (s *Server) hasUser(id string) bool {
	return slices.ContainsFunc(s.users, func(u *user) bool { return u.id == id })
}

func same(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func refuse(w http.ResponseWriter, code, msg string) {
	status := http.StatusForbidden
	if code != "denied" {
		status = http.StatusUnprocessableEntity
	}
	fail(w, status, code, msg)
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	a, ok := readAssignments(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	changed, code, msg := s.reach(a)
	s.mu.Unlock()
	if code != "" {
		refuse(w, code, msg)
		return
	}
	reply(w, map[string]int{"changed": changed})
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		fail(w, http.StatusBadRequest, "invalid_request", "Idempotency-Key is required")
		return
	}
	a, ok := readAssignments(w, r)
	if !ok {
		return
	}
	if a.Delivery <= 0 || a.Round == nil {
		fail(w, http.StatusBadRequest, "invalid_request", "delivery and round are required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.keys[key]
	if rec == nil {
		rec = &KeyRecord{}
		s.keys[key] = rec
	}
	rec.Posts++
	if rec.Applied > 0 {
		// Whatever the body: a host that died after applying runs the
		// delivery again, and its second decision is not taken.
		reply(w, map[string]int{"changed": rec.Changed})
		return
	}
	changed, code, msg := s.reach(a)
	if code != "" {
		// Refused: the key is not spent.
		refuse(w, code, msg)
		return
	}
	for _, as := range a.Assignments {
		s.setAssignee(as.Group, as.Assignee)
	}
	for _, sc := range a.Statuses {
		s.setStatus(sc.Group, sc.Status)
	}
	rec.Applied++
	rec.Changed = changed
	s.log.Debug("applied", "key", key, "issue_key", a.IssueKey, "changed", changed)
	reply(w, map[string]int{"changed": changed})
}

// setAssignee changes a group's assignee under s.mu, raising the event
// when it changed.
func (s *Server) setAssignee(id string, assignee *string) {
	g := s.groups[id]
	if same(g.assignee, assignee) {
		return
	}
	g.assignee = assignee
	s.raise("group.assigned", id, assignee)
}

// setStatus changes a group's status under s.mu, raising the event when
// it changed.
func (s *Server) setStatus(id, status string) {
	g := s.groups[id]
	if g.status == status {
		return
	}
	g.status = status
	s.raise("group."+status, id, nil)
}

// Assign sets a group's assignee as a person on the platform would (nil
// unassigns), raising the event when it changed.
func (s *Server) Assign(group string, assignee *string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[group]; !ok {
		return fmt.Errorf("no group %q", group)
	}
	if assignee != nil && !s.hasUser(*assignee) {
		return fmt.Errorf("no user %q", *assignee)
	}
	s.setAssignee(group, assignee)
	return nil
}

// SetStatus resolves or unresolves a group as a person on the platform
// would, raising the event when it changed.
func (s *Server) SetStatus(group, status string) error {
	if status != platform.StatusResolved && status != platform.StatusUnresolved {
		return fmt.Errorf("status %q: want %q or %q", status, platform.StatusUnresolved, platform.StatusResolved)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[group]; !ok {
		return fmt.Errorf("no group %q", group)
	}
	s.setStatus(group, status)
	return nil
}

// ClosedURL is an http URL on loopback where nothing listens: calls to it
// are refused, as to a platform that is down.
func ClosedURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}
