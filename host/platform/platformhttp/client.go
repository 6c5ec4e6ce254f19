// Package platformhttp is a platform.Platform reached over HTTP: the
// client side of the REST contract jirasync defines in docs/PLATFORM.md
// (and docs/platform.openapi.json). A platform that implements the
// contract serves its organizations, linked groups and users to jirasync
// and takes the assignments of each delivery, once per idempotency key.
//
// Failures are sorted the way the pipeline needs them: a 5xx answer, a
// time-out or a connection that fails is passing (the delivery is
// retried with backoff and kept); a 4xx answer is a refusal
// (platform.ErrRefused, the delivery fails with the platform's words), but
// for 403 with code "denied", a group out of the installation's reach
// (platform.ErrDenied); an answer that breaks the contract is
// platform.ErrBadAnswer, saying what broke, and never taken for a success.
package platformhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jirasync/jirasync/host/platform"
)

// Version is the contract's version, the path prefix of every endpoint.
const Version = "v1"

// Defaults for Config fields left zero.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAnswerBytes = 4 << 20
)

// maxWordsBytes bounds the platform's words carried in an error.
const maxWordsBytes = 500

// ErrUnavailable marks a failure that may pass: a 5xx answer, a time-out,
// a refused or broken connection.
var ErrUnavailable = errors.New("unavailable")

// ReachFunc lists the organizations an installation serves, by id: the
// installation's configuration is jirasync's, and each call that needs
// the installation's reach sends it to the platform.
type ReachFunc func(ctx context.Context, installation string) ([]string, error)

// Config configures a Client.
type Config struct {
	// URL is the platform's base URL: http or https, no query, no
	// credentials. Endpoints are URL + "/v1/...".
	URL string
	// Token is sent as "Authorization: Bearer" on every call.
	Token string
	// Reach gives an installation's organizations; required.
	Reach ReachFunc
	// Timeout bounds one call, or the caller's deadline if sooner.
	Timeout time.Duration
	// MaxAnswerBytes bounds one answer's body.
	MaxAnswerBytes int64
	// HTTP is the client calls go through; nil for a default one.
	HTTP   *http.Client
	Logger *slog.Logger
}

// Client is a platform.Platform over HTTP. It is safe for concurrent use.
type Client struct {
	base *url.URL
	cfg  Config
}

var _ platform.Platform = (*Client)(nil)

// ParseURL checks a platform's base URL: absolute http or https with a
// host, and nothing a base cannot carry (credentials go in the token,
// never in the URL).
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("platform URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("platform URL %q: want http:// or https://", raw)
	case u.Host == "":
		return nil, fmt.Errorf("platform URL %q: no host", raw)
	case u.User != nil:
		return nil, errors.New("platform URL: credentials belong in the token file, not the URL")
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("platform URL %q: a base URL has no query or fragment", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// New makes a client.
func New(cfg Config) (*Client, error) {
	base, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		return nil, errors.New("platform: no token (every call carries one)")
	}
	if strings.ContainsAny(cfg.Token, "\r\n") {
		return nil, errors.New("platform token: contains a line break")
	}
	if cfg.Reach == nil {
		return nil, errors.New("platform: no Reach")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAnswerBytes <= 0 {
		cfg.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if cfg.HTTP == nil {
		// Redirects are not followed: the token must reach only the
		// platform it was given for.
		cfg.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{base: base, cfg: cfg}, nil
}

// Error is a call that failed.
type Error struct {
	Call   string // "GET /v1/organizations"
	Status int    // the answer's HTTP status; 0 without one
	// Kind is what went wrong: ErrUnavailable, platform.ErrRefused,
	// platform.ErrDenied or platform.ErrBadAnswer.
	Kind error
	// Contract is set when the answer broke the contract.
	Contract bool
	Msg      string
}

func (e *Error) Error() string {
	s := "platform " + e.Call + ": "
	switch {
	case e.Contract:
		s += "answer breaks the contract (docs/PLATFORM.md): "
	case e.Status != 0:
		s += "answered " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": "
	case errors.Is(e.Kind, ErrUnavailable):
		s += "unavailable: "
	}
	return s + e.Msg
}

// Unwrap makes errors.Is see the kind.
func (e *Error) Unwrap() error { return e.Kind }

func (c *Client) broken(call string, status int, format string, args ...any) error {
	return &Error{Call: call, Status: status, Kind: platform.ErrBadAnswer, Contract: true, Msg: fmt.Sprintf(format, args...)}
}

// do sends one call and decodes its 2xx answer into out, strictly.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, header http.Header, in, out any) error {
	call := method + " /" + Version + path
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := *c.base
	// path is escaped (an id in it may hold "/" or "?"): the URL keeps
	// both forms.
	plain, err := url.PathUnescape(path)
	if err != nil {
		return fmt.Errorf("platform %s: %w", call, err)
	}
	u.RawPath = c.base.EscapedPath() + "/" + Version + path
	u.Path += "/" + Version + plain
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		var b []byte
		b, err = json.Marshal(in)
		if err != nil {
			return fmt.Errorf("platform %s: %w", call, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("platform %s: %w", call, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		// Refused, reset, timed out: all may pass. The URL is the
		// operator's; the error names it, never the token.
		return &Error{Call: call, Kind: ErrUnavailable, Msg: err.Error()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxAnswerBytes+1))
	if err != nil {
		return &Error{Call: call, Kind: ErrUnavailable, Msg: "reading the answer: " + err.Error()}
	}
	c.cfg.Logger.Debug("platform call", "call", call, "status", resp.StatusCode, "bytes", len(raw), "elapsed", time.Since(start))
	switch {
	case resp.StatusCode >= 500:
		return &Error{Call: call, Status: resp.StatusCode, Kind: ErrUnavailable, Msg: words(resp, raw)}
	case resp.StatusCode == http.StatusForbidden && errorCode(resp, raw) == "denied":
		return &Error{Call: call, Status: resp.StatusCode, Kind: platform.ErrDenied, Msg: words(resp, raw)}
	case resp.StatusCode == http.StatusNotFound && errorCode(resp, raw) == "not_found":
		// Only the coded 404 says the object is missing: a bare 404 is a
		// route the platform does not serve (one written before the
		// endpoint), a refusal to be mended, not a missing group.
		return &Error{Call: call, Status: resp.StatusCode, Kind: platform.ErrNotFound, Msg: words(resp, raw)}
	case resp.StatusCode >= 400:
		return &Error{Call: call, Status: resp.StatusCode, Kind: platform.ErrRefused, Msg: words(resp, raw)}
	case resp.StatusCode != http.StatusOK:
		// 1xx, 204, 3xx (redirects are not followed): none is an answer.
		return c.broken(call, resp.StatusCode, "status %d %s, want 200", resp.StatusCode, http.StatusText(resp.StatusCode))
	case int64(len(raw)) > c.cfg.MaxAnswerBytes:
		return c.broken(call, resp.StatusCode, "answer over %d bytes", c.cfg.MaxAnswerBytes)
	case !isJSON(resp):
		return c.broken(call, resp.StatusCode, "content type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if err := platform.DecodeObject(raw, out); err != nil {
		return c.broken(call, resp.StatusCode, "%v", err)
	}
	return nil
}

func isJSON(resp *http.Response) bool {
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// errorBody is an error answer's body, as the contract shapes it.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorCode(resp *http.Response, raw []byte) string {
	var e errorBody
	if !isJSON(resp) || json.Unmarshal(raw, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// words is what a platform said with an error status: its error message,
// else its body as text, cut short and made valid UTF-8 for the
// delivery log.
func words(resp *http.Response, raw []byte) string {
	var e errorBody
	s := string(raw)
	if isJSON(resp) && json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		s = e.Error.Message
		if e.Error.Code != "" {
			s = e.Error.Code + ": " + s
		}
	}
	s = strings.ToValidUTF8(strings.Join(strings.Fields(s), " "), "\uFFFD")
	if len(s) > maxWordsBytes {
		cut := maxWordsBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		s = "(no words)"
	}
	return s
}

// The answers' shapes. Required members are pointers, so that a missing
// one is told from a zero value: an assignee left out must not read as
// "unassigned".
type (
	orgJSON struct {
		ID   *string `json:"id"`
		Name *string `json:"name"`
	}
	orgsAnswer struct {
		Organizations *[]orgJSON `json:"organizations"`
	}
	groupJSON struct {
		ID           *string `json:"id"`
		Project      *string `json:"project"`
		Title        *string `json:"title"`
		Organization *string `json:"organization"`
		// Assignee is required and may be null: raw, to tell null
		// from missing.
		Assignee json.RawMessage `json:"assignee"`
		// Status is optional (added within v1, docs/PLATFORM.md): a
		// platform that does not send it has unresolved groups.
		Status string `json:"status"`
	}
	groupsAnswer struct {
		Groups *[]groupJSON `json:"groups"`
	}
	userJSON struct {
		ID       *string   `json:"id"`
		Verified *bool     `json:"verified"`
		Projects *[]string `json:"projects"`
	}
	usersAnswer struct {
		Users *[]userJSON `json:"users"`
	}
	groupAnswer struct {
		Group     *groupJSON `json:"group"`
		IssueKeys *[]string  `json:"issue_keys"`
	}
	emailJSON struct {
		Address  *string `json:"email"`
		Verified *bool   `json:"verified"`
	}
	userAnswer struct {
		User *struct {
			ID       *string      `json:"id"`
			Name     *string      `json:"name"`
			Emails   *[]emailJSON `json:"emails"`
			Projects *[]string    `json:"projects"`
		} `json:"user"`
	}
	changedAnswer struct {
		Changed *int `json:"changed"`
	}
	// AssignmentsRequest is the body of POST /v1/assignments and
	// /v1/assignments/check (which has no delivery, round or issue key).
	assignmentsRequest struct {
		Installation  string                `json:"installation"`
		Organizations []string              `json:"organizations"`
		Delivery      int64                 `json:"delivery,omitempty"`
		Round         *int                  `json:"round,omitempty"`
		IssueKey      *string               `json:"issue_key,omitempty"`
		Assignments   []platform.Assignment `json:"assignments"`
		// Statuses were added within v1: sent only when there are some,
		// so that a platform written before them sees the requests it
		// knows.
		Statuses []platform.StatusChange `json:"statuses,omitempty"`
	}
)

// missing names the first required member that is absent.
func missing(at string, members ...any) string {
	names := []string{}
	for i := 0; i < len(members); i += 2 {
		name, v := members[i].(string), members[i+1]
		switch p := v.(type) {
		case *string:
			if p == nil {
				names = append(names, name)
			}
		case *bool:
			if p == nil {
				names = append(names, name)
			}
		case *[]string:
			if p == nil {
				names = append(names, name)
			}
		case *[]emailJSON:
			if p == nil {
				names = append(names, name)
			}
		case json.RawMessage:
			if p == nil {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	return platform.Field(at, names[0]) + ": missing"
}

// Organizations lists the platform's organizations, by id.
func (c *Client) Organizations(ctx context.Context) ([]platform.Organization, error) {
	const call = "GET /v1/organizations"
	var a orgsAnswer
	if err := c.do(ctx, http.MethodGet, "/organizations", nil, nil, nil, &a); err != nil {
		return nil, err
	}
	if a.Organizations == nil {
		return nil, c.broken(call, 200, "organizations: missing")
	}
	out := make([]platform.Organization, 0, len(*a.Organizations))
	seen := map[string]bool{}
	for i, o := range *a.Organizations {
		at := fmt.Sprintf("organizations[%d]", i)
		if m := missing(at, "id", o.ID, "name", o.Name); m != "" {
			return nil, c.broken(call, 200, "%s", m)
		}
		org := platform.Organization{ID: *o.ID, Name: *o.Name}
		if err := org.Validate(); err != nil {
			return nil, c.broken(call, 200, "%v", platform.In(at, err))
		}
		if seen[org.ID] {
			return nil, c.broken(call, 200, "%s.id: %q given twice", at, org.ID)
		}
		seen[org.ID] = true
		out = append(out, org)
	}
	slices.SortFunc(out, func(a, b platform.Organization) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// LinkedGroups lists the groups linked to issueKey through installation
// in those of orgs the installation serves, by group id. Organizations it
// does not serve are not asked for: the plugin names them, and its reach
// ends at the installation's.
func (c *Client) LinkedGroups(ctx context.Context, installation, issueKey string, orgs []string) ([]platform.LinkedGroup, error) {
	const call = "GET /v1/linked-groups"
	served, err := c.cfg.Reach(ctx, installation)
	if err != nil {
		return nil, err
	}
	var asked []string
	for _, o := range orgs {
		if slices.Contains(served, o) && !slices.Contains(asked, o) {
			asked = append(asked, o)
		}
	}
	if len(asked) == 0 {
		return nil, nil
	}
	q := url.Values{"installation": {installation}, "issue_key": {issueKey}, "organization": asked}
	var a groupsAnswer
	if err := c.do(ctx, http.MethodGet, "/linked-groups", q, nil, nil, &a); err != nil {
		return nil, err
	}
	if a.Groups == nil {
		return nil, c.broken(call, 200, "groups: missing")
	}
	var out []platform.LinkedGroup
	seen := map[string]bool{}
	for i, g := range *a.Groups {
		at := fmt.Sprintf("groups[%d]", i)
		lg, err := c.group(call, at, g)
		if err != nil {
			return nil, err
		}
		switch {
		case !slices.Contains(asked, lg.Organization):
			// A group of an organization not asked for is out of the
			// installation's reach: taking it would widen it.
			return nil, c.broken(call, 200, "%s.organization: %q was not asked for", at, lg.Organization)
		case seen[lg.ID]:
			return nil, c.broken(call, 200, "%s.id: %q given twice", at, lg.ID)
		}
		seen[lg.ID] = true
		out = append(out, lg)
	}
	slices.SortFunc(out, func(a, b platform.LinkedGroup) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// group reads one group of an answer, at "at".
func (c *Client) group(call, at string, g groupJSON) (platform.LinkedGroup, error) {
	if m := missing(at, "id", g.ID, "project", g.Project, "title", g.Title, "organization", g.Organization, "assignee", g.Assignee); m != "" {
		return platform.LinkedGroup{}, c.broken(call, 200, "%s", m)
	}
	lg := platform.LinkedGroup{Group: platform.Group{ID: *g.ID, Project: *g.Project, Title: *g.Title, Status: g.Status},
		Organization: *g.Organization}
	if err := json.Unmarshal(g.Assignee, &lg.Assignee); err != nil {
		return lg, c.broken(call, 200, "%s.assignee: want a string or null", at)
	}
	if err := lg.Group.Validate(); err != nil {
		return lg, c.broken(call, 200, "%v", platform.In(at, err))
	}
	if err := platform.ValidID(platform.Field(at, "organization"), lg.Organization); err != nil {
		return lg, c.broken(call, 200, "%v", err)
	}
	lg.Status = platform.GroupStatus(lg.Status)
	return lg, nil
}

// Group reads one group, with the keys of the Jira issues linked to it
// through installation. A group the platform does not have is
// platform.ErrNotFound (its 404 with code "not_found").
func (c *Client) Group(ctx context.Context, installation, id string) (platform.GroupLinks, error) {
	path := "/groups/" + url.PathEscape(id)
	call := "GET /" + Version + path
	var a groupAnswer
	if err := c.do(ctx, http.MethodGet, path, url.Values{"installation": {installation}}, nil, nil, &a); err != nil {
		return platform.GroupLinks{}, err
	}
	if a.Group == nil {
		return platform.GroupLinks{}, c.broken(call, 200, "group: missing")
	}
	if a.IssueKeys == nil {
		return platform.GroupLinks{}, c.broken(call, 200, "issue_keys: missing")
	}
	lg, err := c.group(call, "group", *a.Group)
	if err != nil {
		return platform.GroupLinks{}, err
	}
	if lg.ID != id {
		// Another group's data would be taken for this one's.
		return platform.GroupLinks{}, c.broken(call, 200, "group.id: %q, asked for %q", lg.ID, id)
	}
	keys := slices.Clone(*a.IssueKeys)
	for i, k := range keys {
		if err := platform.ValidIssueKey(fmt.Sprintf("issue_keys[%d]", i), k); err != nil {
			return platform.GroupLinks{}, c.broken(call, 200, "%v", err)
		}
	}
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return platform.GroupLinks{}, c.broken(call, 200, "issue_keys: %q given twice", keys[i])
		}
	}
	return platform.GroupLinks{LinkedGroup: lg, IssueKeys: keys}, nil
}

// User reads one user with its addresses and memberships. A user the
// platform does not have is platform.ErrNotFound (its 404 with code
// "not_found").
func (c *Client) User(ctx context.Context, id string) (platform.User, error) {
	path := "/users/" + url.PathEscape(id)
	call := "GET /" + Version + path
	var a userAnswer
	if err := c.do(ctx, http.MethodGet, path, nil, nil, nil, &a); err != nil {
		return platform.User{}, err
	}
	if a.User == nil {
		return platform.User{}, c.broken(call, 200, "user: missing")
	}
	u := a.User
	if m := missing("user", "id", u.ID, "name", u.Name, "emails", u.Emails, "projects", u.Projects); m != "" {
		return platform.User{}, c.broken(call, 200, "%s", m)
	}
	out := platform.User{ID: *u.ID, Name: *u.Name, Projects: *u.Projects}
	for i, e := range *u.Emails {
		if m := missing(fmt.Sprintf("user.emails[%d]", i), "email", e.Address, "verified", e.Verified); m != "" {
			return platform.User{}, c.broken(call, 200, "%s", m)
		}
		out.Emails = append(out.Emails, platform.Email{Address: *e.Address, Verified: *e.Verified})
	}
	if err := out.Validate(); err != nil {
		return platform.User{}, c.broken(call, 200, "%v", platform.In("user", err))
	}
	if out.ID != id {
		return platform.User{}, c.broken(call, 200, "user.id: %q, asked for %q", out.ID, id)
	}
	return out.Sorted(), nil
}

// UsersByEmail finds the users having the address, ignoring case and
// surrounding space, in the platform's order (oldest user first).
func (c *Client) UsersByEmail(ctx context.Context, email string) ([]platform.UserMatch, error) {
	const call = "GET /v1/users"
	var a usersAnswer
	if err := c.do(ctx, http.MethodGet, "/users", url.Values{"email": {platform.NormalizeEmail(email)}}, nil, nil, &a); err != nil {
		return nil, err
	}
	if a.Users == nil {
		return nil, c.broken(call, 200, "users: missing")
	}
	var out []platform.UserMatch
	seen := map[string]bool{}
	for i, u := range *a.Users {
		at := fmt.Sprintf("users[%d]", i)
		if m := missing(at, "id", u.ID, "verified", u.Verified, "projects", u.Projects); m != "" {
			return nil, c.broken(call, 200, "%s", m)
		}
		if err := platform.ValidID(platform.Field(at, "id"), *u.ID); err != nil {
			return nil, c.broken(call, 200, "%v", err)
		}
		if seen[*u.ID] {
			return nil, c.broken(call, 200, "%s.id: %q given twice", at, *u.ID)
		}
		seen[*u.ID] = true
		for j, p := range *u.Projects {
			if err := platform.ValidID(fmt.Sprintf("%s.projects[%d]", at, j), p); err != nil {
				return nil, c.broken(call, 200, "%v", err)
			}
		}
		projects := slices.Clone(*u.Projects)
		slices.Sort(projects)
		out = append(out, platform.UserMatch{ID: *u.ID, Verified: *u.Verified, Projects: slices.Compact(projects)})
	}
	return out, nil
}

// Check asks the platform how many of the changes would change a group,
// changing nothing.
func (c *Client) Check(ctx context.Context, installation string, ch platform.Changes) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, err
	}
	served, err := c.cfg.Reach(ctx, installation)
	if err != nil {
		return 0, err
	}
	req := assignmentsRequest{Installation: installation, Organizations: nonNil(served), Assignments: nonNil(ch.Assignments),
		Statuses: ch.Statuses}
	return c.assign(ctx, "/assignments/check", nil, req)
}

// Apply makes the changes of one delivery on the platform, under the
// key's Idempotency-Key: the platform applies a key once and answers a
// repeated one with the first apply's count.
func (c *Client) Apply(ctx context.Context, key platform.ApplyKey, ch platform.Changes) (int, error) {
	if err := ch.Validate(); err != nil {
		return 0, err
	}
	served, err := c.cfg.Reach(ctx, key.Installation)
	if err != nil {
		return 0, err
	}
	round := key.Round
	req := assignmentsRequest{Installation: key.Installation, Organizations: nonNil(served), Delivery: key.Delivery,
		Round: &round, IssueKey: &key.IssueKey, Assignments: nonNil(ch.Assignments), Statuses: ch.Statuses}
	return c.assign(ctx, "/assignments", http.Header{"Idempotency-Key": {key.String()}}, req)
}

func (c *Client) assign(ctx context.Context, path string, header http.Header, req assignmentsRequest) (int, error) {
	call := "POST /" + Version + path
	var a changedAnswer
	if err := c.do(ctx, http.MethodPost, path, nil, header, req, &a); err != nil {
		return 0, err
	}
	switch {
	case a.Changed == nil:
		return 0, c.broken(call, 200, "changed: missing")
	case *a.Changed < 0 || *a.Changed > len(req.Assignments)+len(req.Statuses):
		return 0, c.broken(call, 200, "changed: %d, want 0 to %d (the assignments and statuses sent)", *a.Changed,
			len(req.Assignments)+len(req.Statuses))
	}
	return *a.Changed, nil
}

// nonNil makes a nil slice encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
