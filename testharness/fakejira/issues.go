package fakejira

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file is the part of Jira that two-way sync writes to: user search,
// issues (read, assign), and workflow transitions. Every write that
// reaches a resource is recorded (Writes), and with echo on, a write that
// changed the issue fires the issue-updated webhook at the registered
// webhooks, as Jira does after its own transaction (echo.go).

// Issue is a Jira issue as far as the simulated Jira keeps one.
type Issue struct {
	Key string
	// ID is Jira's numeric issue id; AddIssue numbers issues from 10000
	// when it is empty.
	ID string
	// Assignee is the assignee's user name, "" for unassigned.
	Assignee string
	// Status is the workflow status id; "1" (Open) when empty.
	Status string
	// RefuseAssign, when 400 or 403, makes PUT .../assignee fail the way
	// Jira does for a user who cannot be assigned issues of the project
	// (400) and for a caller without the Assign Issues permission (403).
	RefuseAssign int
}

// Transition is one workflow transition: from any of From (every status
// but To when From is empty: a global transition) to To.
type Transition struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	From []string `json:"from,omitempty"`
	To   string   `json:"to"`
}

// DefaultTransitions are those of Jira's default workflow (Open, In
// Progress, Reopened, Resolved, Closed) and, for the To Do / Done
// statuses, the simplified workflow's global transitions.
var DefaultTransitions = []Transition{
	{ID: "4", Name: "Start Progress", From: []string{"1", "4"}, To: "3"},
	{ID: "301", Name: "Stop Progress", From: []string{"3"}, To: "1"},
	{ID: "5", Name: "Resolve Issue", From: []string{"1", "3", "4"}, To: "5"},
	{ID: "2", Name: "Close Issue", From: []string{"1", "3", "4", "5"}, To: "6"},
	{ID: "3", Name: "Reopen Issue", From: []string{"5", "6"}, To: "4"},
	{ID: "11", Name: "To Do", From: []string{"3", "10001"}, To: "10000"},
	{ID: "21", Name: "In Progress", From: []string{"10000", "10001"}, To: "3"},
	{ID: "31", Name: "Done", From: []string{"10000", "3"}, To: "10001"},
}

// Write is one write request that reached an issue resource.
type Write struct {
	Issue string
	// Field is "assignee" or "status".
	Field string
	// Value is the assignee's name ("" to unassign) or, for a
	// transition, the status it leads to ("" when the transition is
	// unknown).
	Value string
	// Transition is the transition id asked for (status writes).
	Transition string
	// Status is the HTTP status answered.
	Status int
	// ConsumerKey is who signed the request.
	ConsumerKey string
}

// Write fields.
const (
	FieldAssignee = "assignee"
	FieldStatus   = "status"
)

// AddIssue adds an issue or replaces the one with the same key. Its
// assignee must be a known user and its status a known one.
func (s *Server) AddIssue(is Issue) error {
	if !validIssueKey(is.Key) {
		return fmt.Errorf("fakejira: issue key %q is not like APP-1", is.Key)
	}
	if is.RefuseAssign != 0 && is.RefuseAssign != http.StatusBadRequest && is.RefuseAssign != http.StatusForbidden {
		return fmt.Errorf("fakejira: issue %s: RefuseAssign %d: want 0, 400 or 403", is.Key, is.RefuseAssign)
	}
	if is.Status == "" {
		is.Status = "1"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.statusByID(is.Status); !ok {
		return fmt.Errorf("fakejira: issue %s: unknown status %q", is.Key, is.Status)
	}
	if is.Assignee != "" {
		if _, ok := s.userByName(is.Assignee); !ok {
			return fmt.Errorf("fakejira: issue %s: unknown assignee %q", is.Key, is.Assignee)
		}
	}
	if s.issues == nil {
		s.issues = map[string]*Issue{}
	}
	if is.ID == "" {
		is.ID = strconv.Itoa(10000 + len(s.issues))
		if old, ok := s.issues[is.Key]; ok {
			is.ID = old.ID
		}
	}
	s.issues[is.Key] = &is
	return nil
}

// Issue returns the issue with that key as it is now.
func (s *Server) Issue(key string) (Issue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[key]
	if !ok {
		return Issue{}, false
	}
	return *is, true
}

// SetTransitions replaces the workflow's transitions (DefaultTransitions
// until then). Each needs an id and a known target status.
func (s *Server) SetTransitions(ts []Transition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		if t.ID == "" {
			return fmt.Errorf("fakejira: transition %+v has no id", t)
		}
		if _, ok := s.statusByID(t.To); !ok {
			return fmt.Errorf("fakejira: transition %s leads to unknown status %q", t.ID, t.To)
		}
	}
	s.transitions = slices.Clone(ts)
	return nil
}

// Writes returns the writes received, in the order they arrived.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// Edit changes an issue as a person would in Jira's UI: the assignee
// (when assignee is not nil; "" unassigns) and the status (when status is
// not ""; no transition is needed). With echo on, the change fires the
// issue-updated webhook. It is not a Write: nothing reached the REST API.
func (s *Server) Edit(key string, assignee *string, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[key]
	if !ok {
		return fmt.Errorf("fakejira: no issue %s", key)
	}
	var items []changeItem
	if assignee != nil {
		if *assignee != "" {
			if _, ok := s.userByName(*assignee); !ok {
				return fmt.Errorf("fakejira: no user %q", *assignee)
			}
		}
		if item, changed := s.setAssignee(is, *assignee); changed {
			items = append(items, item)
		}
	}
	if status != "" {
		if _, ok := s.statusByID(status); !ok {
			return fmt.Errorf("fakejira: no status %q", status)
		}
		if item, changed := s.setStatus(is, status); changed {
			items = append(items, item)
		}
	}
	s.echo(is, items)
	return nil
}

// statusByID and userByName are called with s.mu held.
func (s *Server) statusByID(id string) (Status, bool) {
	for _, st := range s.statuses {
		if st.ID == id {
			return st, true
		}
	}
	return Status{}, false
}

func (s *Server) userByName(name string) (User, bool) {
	for _, u := range s.users {
		if strings.EqualFold(u.Name, name) {
			return u, true
		}
	}
	return User{}, false
}

// validIssueKey: a project key (a letter, then letters, digits or _),
// "-", and a number.
func validIssueKey(key string) bool {
	i := strings.LastIndexByte(key, '-')
	if i < 1 || i == len(key)-1 {
		return false
	}
	if _, err := strconv.ParseUint(key[i+1:], 10, 32); err != nil {
		return false
	}
	for j, c := range key[:i] {
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !letter && (j == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// userSearch is GET /rest/api/2/user/search as Jira Server 9 answers it:
// the active users whose name, key, email or display name starts with
// username, case-insensitively, sorted by name; includeInactive=true adds
// the inactive ones. startAt and maxResults (default 50, at most 1000)
// page the list.
func (s *Server) userSearch(x *exchange) {
	q := x.r.URL.Query()
	term := strings.ToLower(q.Get("username"))
	if term == "" {
		s.writeError(x.w, http.StatusBadRequest, "The username query parameter was not provided")
		return
	}
	startAt, err1 := intParam(q, "startAt", 0)
	maxResults, err2 := intParam(q, "maxResults", 50)
	if err := errors.Join(err1, err2); err != nil {
		s.writeError(x.w, http.StatusBadRequest, err.Error())
		return
	}
	maxResults = min(maxResults, 1000)
	inactive := q.Get("includeInactive") == "true"
	s.mu.Lock()
	var found []User
	for _, u := range s.users {
		if !u.Active && !inactive {
			continue
		}
		for _, f := range []string{u.Name, u.Key, u.EmailAddress, u.DisplayName} {
			if f != "" && strings.HasPrefix(strings.ToLower(f), term) {
				found = append(found, u)
				break
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(found, func(a, b User) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	out := []userSummary{}
	for i, u := range found {
		if i >= startAt && len(out) < maxResults {
			out = append(out, s.userSummary(u))
		}
	}
	writeJSON(x.w, http.StatusOK, out)
}

func intParam(q url.Values, name string, def int) (int, error) {
	if !q.Has(name) {
		return def, nil
	}
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative number", name)
	}
	return n, nil
}

// issueBody is GET /rest/api/2/issue/{key}, with the fields two-way sync
// reads (assignee, status) and the few every issue has.
type issueBody struct {
	Expand string         `json:"expand,omitempty"`
	ID     string         `json:"id"`
	Self   string         `json:"self"`
	Key    string         `json:"key"`
	Fields map[string]any `json:"fields"`
}

// issueFields are an issue's fields as Jira names them; a ?fields= list
// keeps only those named.
func (s *Server) issueFields(is *Issue, only string) map[string]any {
	project := is.Key[:strings.LastIndexByte(is.Key, '-')]
	var assignee any
	if u, ok := s.userByName(is.Assignee); ok && is.Assignee != "" {
		assignee = s.userSummary(u)
	}
	st, _ := s.statusByID(is.Status)
	all := map[string]any{
		"assignee": assignee,
		"status":   s.statusJSON(st),
		"summary":  "Issue " + is.Key,
		"project":  map[string]string{"self": s.url + "/rest/api/2/project/" + project, "key": project, "name": project},
	}
	if only == "" || only == "*all" || only == "*navigable" {
		return all
	}
	out := map[string]any{}
	for _, f := range strings.Split(only, ",") {
		if v, ok := all[strings.TrimSpace(f)]; ok {
			out[strings.TrimSpace(f)] = v
		}
	}
	return out
}

// findIssue answers 404 itself when there is no such issue. Called with
// s.mu held.
func (s *Server) findIssue(x *exchange) (*Issue, bool) {
	is, ok := s.issues[x.id]
	if !ok {
		s.writeError(x.w, http.StatusNotFound, "Issue Does Not Exist")
	}
	return is, ok
}

func (s *Server) issue(x *exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.findIssue(x)
	if !ok {
		return
	}
	writeJSON(x.w, http.StatusOK, issueBody{
		Expand: "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
		ID:     is.ID, Self: s.url + "/rest/api/2/issue/" + is.ID, Key: is.Key,
		Fields: s.issueFields(is, x.r.URL.Query().Get("fields")),
	})
}

// assign is PUT /rest/api/2/issue/{key}/assignee with {"name": user} or
// {"name": null}: 204, or Jira's 400/403/404 with its words.
func (s *Server) assign(x *exchange) {
	var body struct {
		Name *string `json:"name"`
	}
	if !s.readJSON(x, &body, "Can not deserialize the request body: ") {
		return
	}
	name := ""
	if body.Name != nil {
		name = *body.Name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	status := s.assignLocked(x, name)
	s.writes = append(s.writes, Write{Issue: x.id, Field: FieldAssignee, Value: name, Status: status, ConsumerKey: x.rec.ConsumerKey})
}

// assignLocked answers the assignment and returns the status.
func (s *Server) assignLocked(x *exchange, name string) int {
	is, ok := s.findIssue(x)
	if !ok {
		return http.StatusNotFound
	}
	u, known := s.userByName(name)
	switch {
	case is.RefuseAssign == http.StatusForbidden:
		s.writeError(x.w, http.StatusForbidden, "You do not have permission to assign issues.")
		return http.StatusForbidden
	case name != "" && !known:
		writeJSON(x.w, http.StatusBadRequest, errorBody{ErrorMessages: []string{},
			Errors: map[string]string{"assignee": fmt.Sprintf("User '%s' does not exist.", name)}})
		return http.StatusBadRequest
	case name != "" && (!u.Active || is.RefuseAssign == http.StatusBadRequest):
		writeJSON(x.w, http.StatusBadRequest, errorBody{ErrorMessages: []string{},
			Errors: map[string]string{"assignee": fmt.Sprintf("User '%s' cannot be assigned issues.", name)}})
		return http.StatusBadRequest
	}
	if known {
		name = u.Name // Jira keeps the account's own spelling
	}
	if item, changed := s.setAssignee(is, name); changed {
		s.echo(is, []changeItem{item})
	}
	x.w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// transitionBody is one transition of GET .../transitions.
type transitionBody struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	To            statusBody `json:"to"`
	HasScreen     bool       `json:"hasScreen"`
	IsGlobal      bool       `json:"isGlobal"`
	IsInitial     bool       `json:"isInitial"`
	IsConditional bool       `json:"isConditional"`
}

// available is the transitions offered from status, in workflow order.
// Called with s.mu held.
func (s *Server) available(status string) []Transition {
	var out []Transition
	for _, t := range s.transitionList() {
		if (len(t.From) == 0 && t.To != status) || slices.Contains(t.From, status) {
			out = append(out, t)
		}
	}
	return out
}

func (s *Server) transitionList() []Transition {
	if s.transitions == nil {
		return DefaultTransitions
	}
	return s.transitions
}

// issueTransitions is GET and POST /rest/api/2/issue/{key}/transitions.
func (s *Server) issueTransitions(x *exchange) {
	if x.r.Method == http.MethodGet {
		s.mu.Lock()
		defer s.mu.Unlock()
		is, ok := s.findIssue(x)
		if !ok {
			return
		}
		out := []transitionBody{}
		for _, t := range s.available(is.Status) {
			st, _ := s.statusByID(t.To)
			out = append(out, transitionBody{ID: t.ID, Name: t.Name, To: s.statusJSON(st), IsGlobal: len(t.From) == 0})
		}
		writeJSON(x.w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": out})
		return
	}
	var body struct {
		Transition *struct {
			ID string `json:"id"`
		} `json:"transition"`
	}
	if !s.readJSON(x, &body, "Can not deserialize the request body: ") {
		return
	}
	if body.Transition == nil || body.Transition.ID == "" {
		s.writeError(x.w, http.StatusBadRequest, "Missing 'transition' identifier")
		return
	}
	id := body.Transition.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	w := Write{Issue: x.id, Field: FieldStatus, Transition: id, ConsumerKey: x.rec.ConsumerKey}
	w.Value, w.Status = s.transitionLocked(x, id)
	s.writes = append(s.writes, w)
}

// transitionLocked answers a transition and returns its target status
// and the HTTP status.
func (s *Server) transitionLocked(x *exchange, id string) (string, int) {
	is, ok := s.findIssue(x)
	if !ok {
		return "", http.StatusNotFound
	}
	i := slices.IndexFunc(s.transitionList(), func(t Transition) bool { return t.ID == id })
	if i < 0 {
		s.writeError(x.w, http.StatusBadRequest, fmt.Sprintf("Transition id '%s' is not valid for this issue.", id))
		return "", http.StatusBadRequest
	}
	t := s.transitionList()[i]
	if !slices.ContainsFunc(s.available(is.Status), func(a Transition) bool { return a.ID == id }) {
		s.writeError(x.w, http.StatusBadRequest, fmt.Sprintf("It seems that you have tried to perform a workflow operation (%s) that is not valid for the current state of this issue (%s). The likely cause is that somebody has changed the issue recently, please look at the issue history for details.", t.Name, is.Key))
		return t.To, http.StatusBadRequest
	}
	if item, changed := s.setStatus(is, t.To); changed {
		s.echo(is, []changeItem{item})
	}
	x.w.WriteHeader(http.StatusNoContent)
	return t.To, http.StatusNoContent
}
