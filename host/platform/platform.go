// Package platform is the seam between jirasync and the integration
// platform it is loaded into. The platform owns the organizations,
// projects, users (with their verified emails and project memberships),
// issue groups and the links between groups and Jira issues; jirasync
// only reads them and sets group assignees. Every read and write of that
// data goes through Platform.
//
// The host ships one implementation, the built-in platform (host/store,
// in the host's own database, managed over /api/v1 and `jirasync platform
// import`). Another implementation (a platform reached over HTTP, or one
// embedding jirasync in Go) must pass platformtest's conformance suite.
package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrNotFound is returned when a named object does not exist.
var ErrNotFound = errors.New("not found")

// ErrDenied is returned when an assignment names a group the installation
// may not change: one not linked to it through an organization it serves.
var ErrDenied = errors.New("denied")

// ErrRefused is returned when the platform refused a request (an HTTP
// platform's 4xx answer, a wrong token): retrying will not mend it until
// someone acts, so the delivery fails, with the platform's words.
var ErrRefused = errors.New("refused")

// ErrBadAnswer is returned when the platform answered outside its
// contract (docs/PLATFORM.md): a bug on its side, handled as the ABI's
// "internal", never taken for a success.
var ErrBadAnswer = errors.New("answer breaks the contract")

// ErrConflict is returned when a change would leave the data incoherent
// (e.g. deleting a project that still has groups).
var ErrConflict = errors.New("conflict")

// Organization is a tenant of the platform.
type Organization struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Project belongs to an organization; groups belong to projects.
type Project struct {
	ID           string `json:"id"`
	Organization string `json:"organization"`
	Name         string `json:"name"`
}

// User is a platform user with its email addresses and the projects it is
// a member of.
type User struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Emails   []Email  `json:"emails"`
	Projects []string `json:"projects"`
}

// Sorted is u with its emails in the order User answers them (by address
// as NormalizeEmail folds it) and its projects sorted, neither nil: every
// implementation answers alike, whatever order its storage keeps.
func (u User) Sorted() User {
	u.Emails = append([]Email{}, u.Emails...)
	slices.SortStableFunc(u.Emails, func(a, b Email) int {
		return strings.Compare(NormalizeEmail(a.Address), NormalizeEmail(b.Address))
	})
	u.Projects = append([]string{}, u.Projects...)
	slices.Sort(u.Projects)
	return u
}

// Email is one of a user's addresses. Only a verified address may make
// the user a group's assignee.
type Email struct {
	Address  string `json:"email"`
	Verified bool   `json:"verified"`
}

// Group is a platform issue group. A nil Assignee is unassigned. Status
// is StatusUnresolved or StatusResolved; "" is taken as unresolved on
// input (a group written before groups had a status, or by a client that
// does not know of it), and is never answered.
type Group struct {
	ID       string  `json:"id"`
	Project  string  `json:"project"`
	Title    string  `json:"title"`
	Assignee *string `json:"assignee"`
	Status   string  `json:"status,omitempty"`
}

// A group's statuses.
const (
	StatusUnresolved = "unresolved"
	StatusResolved   = "resolved"
)

// GroupStatus is the status s stands for: "" is unresolved.
func GroupStatus(s string) string {
	if s == "" {
		return StatusUnresolved
	}
	return s
}

// Link ties a group to a Jira issue of one installation.
type Link struct {
	Group        string `json:"group"`
	Installation string `json:"installation"`
	IssueKey     string `json:"issue_key"`
}

// LinkedGroup is a group linked to a Jira issue, with its organization.
type LinkedGroup struct {
	Group
	Organization string
}

// GroupLinks is one group with its organization and the keys of the Jira
// issues it is linked to through one installation: sorted, maybe none.
type GroupLinks struct {
	LinkedGroup
	IssueKeys []string
}

// UserMatch is a user found by email: whether that address is verified,
// and the projects the user is a member of.
type UserMatch struct {
	ID       string
	Verified bool
	Projects []string
}

// Assignment sets one group's assignee; nil unassigns.
type Assignment struct {
	Group    string  `json:"group"`
	Assignee *string `json:"assignee"`
}

// StatusChange sets one group's status: StatusResolved or
// StatusUnresolved.
type StatusChange struct {
	Group  string `json:"group"`
	Status string `json:"status"`
}

// Changes are what one delivery changes of groups: assignees and
// statuses, applied together.
type Changes struct {
	Assignments []Assignment
	Statuses    []StatusChange
}

// Len is the number of changes, each counted on its own.
func (c Changes) Len() int { return len(c.Assignments) + len(c.Statuses) }

// Validate checks the statuses' values; reach and existence are the
// platform's to check.
func (c Changes) Validate() error {
	for i, sc := range c.Statuses {
		if sc.Status != StatusResolved && sc.Status != StatusUnresolved {
			return fieldErr(fmt.Sprintf("statuses[%d].status", i), "want %q or %q, got %q", StatusUnresolved, StatusResolved, sc.Status)
		}
	}
	return nil
}

// ApplyKey identifies one delivery's assignments: applying under a key
// that was applied before changes nothing, so that an apply repeated after
// a crash (the host died between applying and recording it) takes effect
// once. Round counts the operator's replays of the delivery (its attempts
// before the last replay): a replay is a new decision, with a new key.
type ApplyKey struct {
	Installation string
	Delivery     int64
	Round        int
	// IssueKey is the Jira issue the delivery is about, for the
	// platform's records; it is not part of the key.
	IssueKey string
}

// String is the key as an Idempotency-Key header carries it.
func (k ApplyKey) String() string {
	return k.Installation + "/" + strconv.FormatInt(k.Delivery, 10) + "/" + strconv.Itoa(k.Round)
}

// Platform is the platform's data as the sync needs it. Implementations
// are safe for concurrent use. Errors other than ErrDenied, ErrNotFound,
// ErrRefused and ErrBadAnswer are taken as passing (the platform is
// unreachable or busy): the delivery is retried.
type Platform interface {
	// Organizations lists every organization, by id, for the setup form.
	Organizations(ctx context.Context) ([]Organization, error)
	// LinkedGroups lists the groups linked to issueKey through
	// installation whose project belongs to one of orgs and which the
	// installation serves, by group id.
	LinkedGroups(ctx context.Context, installation, issueKey string, orgs []string) ([]LinkedGroup, error)
	// UsersByEmail finds the users having an address equal to email,
	// ignoring case and surrounding space, oldest user first.
	UsersByEmail(ctx context.Context, email string) ([]UserMatch, error)
	// Group reads one group with its organization, and the keys of the
	// Jira issues linked to it through installation (sorted; none for an
	// installation without links to it, whatever organizations it serves:
	// whether it may act on them is the caller's to check). ErrNotFound
	// if there is no such group. Platform events name a group by id, and
	// the plugin carries them to the group's issues.
	Group(ctx context.Context, installation, id string) (GroupLinks, error)
	// User reads one user with its email addresses (each with its
	// verified flag, sorted by address as NormalizeEmail folds it) and the
	// projects it is a member of (sorted). ErrNotFound if there is no
	// such user.
	User(ctx context.Context, id string) (User, error)
	// Check reports how many of the changes would change a group (each
	// assignment and status counted on its own), or ErrDenied if one names
	// a group the installation may not change. It changes nothing: the
	// plugin's request is staged, and applied once the delivery is known
	// not to be stale.
	Check(ctx context.Context, installation string, ch Changes) (changed int, err error)
	// Apply makes the changes of one delivery, all or none, and reports
	// how many changed a group, counted as in Check. A key applied before
	// changes nothing and reports what its first apply did.
	// key.Installation's reach is checked as in Check.
	Apply(ctx context.Context, key ApplyKey, ch Changes) (changed int, err error)
}

// FieldError is bad input, with where it was found: a JSON path such as
// "users[3].emails[0].email".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// fieldErr builds a FieldError.
func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Field is where field of the object at "at" is: "users[3]" and
// "emails[0].email" make "users[3].emails[0].email"; at "" is the object
// of a single request.
func Field(at, field string) string {
	switch {
	case at == "":
		return field
	case field == "":
		return at
	case field[0] == '[':
		return at + field
	}
	return at + "." + field
}

// In prefixes a FieldError's field with where its object sits; other
// errors are returned as they are.
func In(prefix string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return &FieldError{Field: Field(prefix, fe.Field), Msg: fe.Msg}
}
