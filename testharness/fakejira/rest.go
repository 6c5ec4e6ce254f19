package fakejira

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// serverInfoBody is GET /rest/api/2/serverInfo as Jira Server 9 and 10
// answer it. buildDate and scmInfo are left out rather than invented: they
// identify a real build, and nothing should come to depend on a made-up one.
type serverInfoBody struct {
	BaseURL        string `json:"baseUrl"`
	Version        string `json:"version"`
	VersionNumbers [3]int `json:"versionNumbers"`
	DeploymentType string `json:"deploymentType"`
	BuildNumber    int    `json:"buildNumber"`
	ServerTime     string `json:"serverTime"`
	ServerTitle    string `json:"serverTitle"`
}

// jiraTime is the timestamp layout of Jira's REST API.
const jiraTime = "2006-01-02T15:04:05.000-0700"

func (s *Server) serverInfo(x *exchange) {
	v := s.versionNumbers
	writeJSON(x.w, http.StatusOK, serverInfoBody{
		BaseURL:        s.url,
		Version:        s.version,
		VersionNumbers: v,
		// Data Center still reports "Server" here; only Cloud differs.
		DeploymentType: "Server",
		// Jira numbers builds major*100000 + minor*1000 + patch (8.20.10 is
		// 820010), so a client keying on buildNumber sees a consistent one.
		BuildNumber: v[0]*100000 + v[1]*1000 + v[2],
		ServerTime:  s.now().Format(jiraTime),
		ServerTitle: "Jira",
	})
}

// parseVersion turns "9.12.2" (or "10.3", or "9.12.2-SNAPSHOT") into Jira's
// three versionNumbers.
func parseVersion(v string) ([3]int, error) {
	var out [3]int
	core, _, _ := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return out, fmt.Errorf("fakejira: version %q has more than three numbers", v)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, fmt.Errorf("fakejira: version %q is not like 9.12.2", v)
		}
		out[i] = n
	}
	return out, nil
}

// userSummary is a user as Jira Server 9 shows one inside other answers
// (user search, an issue's assignee, a webhook's user). The emailAddress
// is omitted, not emptied, when empty: that is how Jira answers when the
// email visibility setting hides it, and clients must cope.
type userSummary struct {
	Self         string            `json:"self"`
	Key          string            `json:"key"`
	Name         string            `json:"name"`
	EmailAddress string            `json:"emailAddress,omitempty"`
	AvatarURLs   map[string]string `json:"avatarUrls"`
	DisplayName  string            `json:"displayName"`
	Active       bool              `json:"active"`
	Deleted      bool              `json:"deleted"`
	TimeZone     string            `json:"timeZone"`
	Locale       string            `json:"locale"`
}

// userBody is GET /rest/api/2/user as Jira Server 9 answers it.
type userBody struct {
	userSummary
	Groups           listWrapper `json:"groups"`
	ApplicationRoles listWrapper `json:"applicationRoles"`
	Expand           string      `json:"expand"`
}

// listWrapper is Jira's collapsed expandable list: a size and no items
// unless ?expand= asks for them.
type listWrapper struct {
	Size  int   `json:"size"`
	Items []any `json:"items"`
}

// defaultAvatarID is the avatar Jira gives accounts without their own.
const defaultAvatarID = "10122"

func (s *Server) user(x *exchange) {
	q := x.r.URL.Query()
	// Jira looks up by username when both are given.
	name, byName := q.Get("username"), q.Has("username")
	key, byKey := q.Get("key"), q.Has("key")
	if !byName && !byKey {
		s.writeError(x.w, http.StatusBadRequest, "Either the 'username' or the 'key' query parameter must be provided")
		return
	}
	var (
		u     User
		found bool
	)
	s.mu.Lock()
	for _, c := range s.users {
		if (byName && strings.EqualFold(c.Name, name)) || (!byName && c.Key == key) {
			u, found = c, true
			break
		}
	}
	s.mu.Unlock()
	if !found {
		if byName {
			s.writeError(x.w, http.StatusNotFound, fmt.Sprintf("The user named '%s' does not exist", name))
		} else {
			s.writeError(x.w, http.StatusNotFound, fmt.Sprintf("The user with the key '%s' does not exist", key))
		}
		return
	}
	writeJSON(x.w, http.StatusOK, userBody{
		userSummary:      s.userSummary(u),
		Groups:           listWrapper{Size: 1, Items: []any{}},
		ApplicationRoles: listWrapper{Size: 1, Items: []any{}},
		Expand:           "groups,applicationRoles",
	})
}

// userSummary is u as Jira shows it.
func (s *Server) userSummary(u User) userSummary {
	avatar := func(size string) string {
		v := url.Values{"avatarId": {defaultAvatarID}}
		if size != "" {
			v.Set("size", size)
		}
		return s.url + "/secure/useravatar?" + v.Encode()
	}
	return userSummary{
		Self:         s.url + "/rest/api/2/user?username=" + url.QueryEscape(u.Name),
		Key:          u.Key,
		Name:         u.Name,
		EmailAddress: u.EmailAddress,
		AvatarURLs: map[string]string{
			"48x48": avatar(""),
			"24x24": avatar("small"),
			"16x16": avatar("xsmall"),
			"32x32": avatar("medium"),
		},
		DisplayName: u.DisplayName,
		Active:      u.Active,
		TimeZone:    "Etc/UTC",
		Locale:      "en_US",
	}
}

// Status is a Jira workflow status. Category is its statusCategory key:
// "new" (To Do), "indeterminate" (In Progress) or "done" (Done); Jira
// has no other, save "undefined" for a status without one.
type Status struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// DefaultStatuses are those of a new Jira Server with its default
// workflows and a software project.
var DefaultStatuses = []Status{
	{ID: "1", Name: "Open", Category: "new"},
	{ID: "3", Name: "In Progress", Category: "indeterminate"},
	{ID: "4", Name: "Reopened", Category: "new"},
	{ID: "5", Name: "Resolved", Category: "done"},
	{ID: "6", Name: "Closed", Category: "done"},
	{ID: "10000", Name: "To Do", Category: "new"},
	{ID: "10001", Name: "Done", Category: "done"},
}

// statusCategories are Jira's four, as GET /rest/api/2/statuscategory
// lists them: id, key, colorName and name.
var statusCategories = map[string]struct {
	id          int
	color, name string
}{
	"undefined":     {1, "medium-gray", "No Category"},
	"new":           {2, "blue-gray", "To Do"},
	"done":          {3, "green", "Done"},
	"indeterminate": {4, "yellow", "In Progress"},
}

// statusBody is one status of GET /rest/api/2/status as Jira Server 9
// answers it.
type statusBody struct {
	Self           string             `json:"self"`
	Description    string             `json:"description"`
	IconURL        string             `json:"iconUrl"`
	Name           string             `json:"name"`
	ID             string             `json:"id"`
	StatusCategory statusCategoryBody `json:"statusCategory"`
}

type statusCategoryBody struct {
	Self      string `json:"self"`
	ID        int    `json:"id"`
	Key       string `json:"key"`
	ColorName string `json:"colorName"`
	Name      string `json:"name"`
}

// SetStatuses replaces the workflow statuses GET /rest/api/2/status
// lists (DefaultStatuses until then). A category other than Jira's four
// is a bug in the caller.
func (s *Server) SetStatuses(statuses []Status) error {
	for _, st := range statuses {
		if _, ok := statusCategories[st.Category]; !ok || st.ID == "" {
			return fmt.Errorf("fakejira: status %+v: want an id and a category of new, indeterminate, done or undefined", st)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = append([]Status(nil), statuses...)
	return nil
}

func (s *Server) statusList(x *exchange) {
	s.mu.Lock()
	statuses := s.statuses
	s.mu.Unlock()
	out := make([]statusBody, 0, len(statuses))
	for _, st := range statuses {
		out = append(out, s.statusJSON(st))
	}
	writeJSON(x.w, http.StatusOK, out)
}

// statusJSON is st as Jira shows a status.
func (s *Server) statusJSON(st Status) statusBody {
	c := statusCategories[st.Category]
	return statusBody{
		Self:    s.url + "/rest/api/2/status/" + url.PathEscape(st.ID),
		IconURL: s.url + "/images/icons/statuses/generic.png",
		Name:    st.Name,
		ID:      st.ID,
		StatusCategory: statusCategoryBody{Self: s.url + "/rest/api/2/statuscategory/" + strconv.Itoa(c.id),
			ID: c.id, Key: st.Category, ColorName: c.color, Name: c.name},
	}
}
