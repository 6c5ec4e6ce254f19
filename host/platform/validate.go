package platform

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what the platform stores. They keep one object small enough
// to move in one request and one row.
const (
	MaxIDBytes       = 200
	MaxNameBytes     = 1000
	MaxEmailBytes    = 320 // RFC 3696's longest address
	MaxEmailsPerUser = 100
	MaxProjectsUser  = 10000
	MaxIssueKeyBytes = 255
)

// ValidID checks an object id: 1 to MaxIDBytes bytes of UTF-8, no control
// characters, no surrounding space. Ids travel in URL paths and in logs.
func ValidID(field, id string) error {
	switch {
	case id == "":
		return fieldErr(field, "empty")
	case len(id) > MaxIDBytes:
		return fieldErr(field, "%d bytes, over the limit of %d", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fieldErr(field, "not valid UTF-8")
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fieldErr(field, "contains a control character (NUL, newline, …)")
	case strings.TrimSpace(id) != id:
		return fieldErr(field, "has leading or trailing space")
	}
	return nil
}

// validText checks a name or title: UTF-8, no NUL, at most MaxNameBytes.
func validText(field, s string) error { return validTextUpTo(field, s, MaxNameBytes) }

// validTextUpTo checks text stored as it is: UTF-8, no NUL, at most max
// bytes.
func validTextUpTo(field, s string, max int) error {
	switch {
	case len(s) > max:
		return fieldErr(field, "%d bytes, over the limit of %d", len(s), max)
	case !utf8.ValidString(s):
		return fieldErr(field, "not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return fieldErr(field, "contains NUL")
	}
	return nil
}

// ValidEmail checks an address: a bare addr-spec (no display name, no
// angle brackets), as net/mail parses it.
func ValidEmail(field, s string) error {
	if err := validText(field, s); err != nil {
		return err
	}
	if len(s) > MaxEmailBytes {
		return fieldErr(field, "%d bytes, over the limit of %d", len(s), MaxEmailBytes)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return fieldErr(field, "not an email address")
	}
	return nil
}

// issueKeyRE is a Jira issue key as Jira sends it: the project key (an
// upper-case letter, then upper-case letters, digits or underscores), a
// dash and the issue number.
var issueKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*-[0-9]+$`)

// ValidIssueKey checks a Jira issue key such as APP-12.
func ValidIssueKey(field, key string) error {
	if len(key) > MaxIssueKeyBytes || !issueKeyRE.MatchString(key) {
		return fieldErr(field, "not a Jira issue key (like APP-12)")
	}
	return nil
}

// Validate checks an organization's fields.
func (o Organization) Validate() error {
	if err := ValidID("id", o.ID); err != nil {
		return err
	}
	return validText("name", o.Name)
}

// Validate checks a project's fields; that its organization exists is the
// store's to check.
func (p Project) Validate() error {
	if err := ValidID("id", p.ID); err != nil {
		return err
	}
	if err := ValidID("organization", p.Organization); err != nil {
		return err
	}
	return validText("name", p.Name)
}

// Validate checks a user's fields: every address an email, none twice
// (ignoring case), no project twice.
func (u User) Validate() error {
	if err := ValidID("id", u.ID); err != nil {
		return err
	}
	if err := validText("name", u.Name); err != nil {
		return err
	}
	if len(u.Emails) > MaxEmailsPerUser {
		return fieldErr("emails", "%d addresses, over the limit of %d", len(u.Emails), MaxEmailsPerUser)
	}
	seen := map[string]int{}
	for i, e := range u.Emails {
		f := fmt.Sprintf("emails[%d].email", i)
		if err := ValidEmail(f, e.Address); err != nil {
			return err
		}
		low := NormalizeEmail(e.Address)
		if j, dup := seen[low]; dup {
			return fieldErr(f, "the same address as emails[%d]", j)
		}
		seen[low] = i
	}
	if len(u.Projects) > MaxProjectsUser {
		return fieldErr("projects", "%d projects, over the limit of %d", len(u.Projects), MaxProjectsUser)
	}
	member := map[string]int{}
	for i, p := range u.Projects {
		f := fmt.Sprintf("projects[%d]", i)
		if err := ValidID(f, p); err != nil {
			return err
		}
		if j, dup := member[p]; dup {
			return fieldErr(f, "the same project as projects[%d]", j)
		}
		member[p] = i
	}
	return nil
}

// Validate checks a group's fields; that its project and assignee exist
// is the store's to check.
func (g Group) Validate() error {
	if err := ValidID("id", g.ID); err != nil {
		return err
	}
	if err := ValidID("project", g.Project); err != nil {
		return err
	}
	if err := validText("title", g.Title); err != nil {
		return err
	}
	if err := ValidGroupStatus("status", g.Status); err != nil {
		return err
	}
	if g.Assignee != nil {
		return ValidID("assignee", *g.Assignee)
	}
	return nil
}

// ValidGroupStatus checks a group status: unresolved, resolved, or ""
// (unresolved).
func ValidGroupStatus(field, s string) error {
	switch s {
	case "", StatusUnresolved, StatusResolved:
		return nil
	}
	return fieldErr(field, "want %q or %q, got %q", StatusUnresolved, StatusResolved, s)
}

// Validate checks a link's fields.
func (l Link) Validate() error {
	if err := ValidID("group", l.Group); err != nil {
		return err
	}
	if err := ValidID("installation", l.Installation); err != nil {
		return err
	}
	return ValidIssueKey("issue_key", l.IssueKey)
}

// NormalizeEmail is the form addresses are compared in: trimmed, lower
// case.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
