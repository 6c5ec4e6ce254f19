// Package capabilities implements the host functions of the plugin ABI
// (plugin/abi): logging, the installation's settings, signed requests to
// its Jira, the platform data group sync reads and writes, and the
// plugin's state (per installation, and host-wide).
//
// Each function takes and returns JSON and reports failure inside the
// response. Every call is bound to one installation and delivery by the
// host, never by the plugin: a plugin cannot name another installation.
package capabilities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/internal/jiraclient"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/platform/platformhttp"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
)

// Binding is what one plugin call acts for.
type Binding struct {
	Installation store.Installation
	Delivery     int64
	// Logger carries the installation and, for a delivery, its id and
	// issue key.
	Logger *slog.Logger
	// Staged collects the group assignments the plugin asked for. They are
	// checked when asked for and applied by the pipeline in the transaction
	// that marks the delivery done, so that a delivery's effect and its
	// record cannot part.
	Staged []platform.Assignment
	// StagedStatuses are the group statuses it asked for, staged and
	// applied as Staged, together with them.
	StagedStatuses []platform.StatusChange
	// WebhookURL is what the plugin's PlaceholderWebhookURL becomes in a
	// substituted Jira request: the installation's webhook URL, token
	// included. Set only for the install flow.
	WebhookURL string
}

// Set holds the host's services behind the host functions.
type Set struct {
	Store *store.Store // the plugin's state
	// Platform answers groups_linked, users_by_email, group_get and
	// user_get and checks groups_assign: every read of platform data goes
	// through it.
	Platform platform.Platform
	Jira     *jiraclient.Client
}

type handler func(s *Set, ctx context.Context, b *Binding, req []byte) any

var handlers = map[string]handler{
	abi.FuncLog:             (*Set).log,
	abi.FuncInstallationGet: (*Set).installationGet,
	abi.FuncJiraRequest:     (*Set).jiraRequest,
	abi.FuncGroupsLinked:    (*Set).groupsLinked,
	abi.FuncUsersByEmail:    (*Set).usersByEmail,
	abi.FuncGroupsAssign:    (*Set).groupsAssign,
	abi.FuncStateGet:        (*Set).stateGet,
	abi.FuncStatePut:        (*Set).statePut,
	abi.FuncGroupGet:        (*Set).groupGet,
	abi.FuncUserGet:         (*Set).userGet,
}

// Names lists the host functions a Set implements.
func Names() []string { return abi.HostFunctions[:] }

// Call runs host function fn. It always returns a JSON response: an
// unknown function, a malformed request or a panic in a handler become an
// abi.Error in the answer, so the guest is never trapped by the host.
func (s *Set) Call(ctx context.Context, b *Binding, fn string, req []byte) (resp []byte) {
	defer func() {
		if r := recover(); r != nil {
			b.Logger.Error("host function panicked", "function", fn, "panic", fmt.Sprint(r))
			resp = FaultResponse(abi.CodeInternal, fmt.Sprintf("host function %s failed", fn))
		}
	}()
	h, ok := handlers[fn]
	if !ok {
		return UnknownFunction(fn)
	}
	if b.Installation.ID == "" {
		// describe and inspect_delivery are bound to no installation; a
		// host call from them must not read or write the state of one
		// whose id is "".
		return FaultResponse(abi.CodeDenied, "host function "+fn+" called outside an installation's call")
	}
	answer := h(s, ctx, b, req)
	if f, ok := answer.(interface{ Err() *abi.Error }); ok && f.Err() != nil {
		// A failure is the error envelope alone, as the ABI schema says:
		// zero-valued success members beside it would read as an answer to
		// a host that looks at them first.
		answer = abi.Empty{Fault: abi.Fault{Error: f.Err()}}
	}
	out, err := json.Marshal(answer)
	if err != nil {
		return FaultResponse(abi.CodeInternal, "encoding response: "+err.Error())
	}
	return out
}

// UnknownFunction is the answer to a call of a host function that does not
// exist (a direct call, ABI 1.6, names its function with bytes).
func UnknownFunction(fn string) []byte {
	return FaultResponse(abi.CodeInvalidRequest, "unknown host function "+fn)
}

// FaultResponse encodes a failure as a host-function response.
func FaultResponse(code abi.ErrorCode, msg string) []byte {
	b, _ := json.Marshal(abi.Empty{Fault: abi.Fault{Error: abi.Errorf(code, msg)}})
	return b
}

func decode(req []byte, v any) *abi.Error {
	if err := json.Unmarshal(req, v); err != nil {
		return abi.Errorf(abi.CodeInvalidRequest, "request: "+err.Error())
	}
	return nil
}

// decodeID decodes a request into v that names one object by id (*id,
// a member of v), and checks the id as the platform checks ids.
func decodeID(req []byte, v any, field string, id *string) *abi.Error {
	if e := decode(req, v); e != nil {
		return e
	}
	if err := platform.ValidID(field, *id); err != nil {
		return abi.Errorf(abi.CodeInvalidRequest, err.Error())
	}
	return nil
}

// PlatformCode maps a platform's failure that does not pass onto the ABI
// (docs/PLATFORM.md, "Errors"): a group out of reach and a refusal (a
// 4xx, a wrong token) are denied, not retried; an answer that breaks the
// contract is a bug on the platform's side, internal, retried as the ABI
// retries internal. ok is false for a failure that may pass.
func PlatformCode(err error) (code abi.ErrorCode, ok bool) {
	switch {
	case errors.Is(err, platform.ErrDenied), errors.Is(err, platform.ErrRefused):
		return abi.CodeDenied, true
	case errors.Is(err, platform.ErrNotFound):
		return abi.CodeNotFound, true
	case errors.Is(err, platform.ErrBadAnswer):
		return abi.CodeInternal, true
	}
	return "", false
}

// storeError maps a storage or platform failure onto the ABI. Anything
// but a refusal, a broken answer or a missing object is treated as
// passing (a busy or unreachable database or platform).
func storeError(b *Binding, op string, err error) *abi.Error {
	if code, ok := PlatformCode(err); ok {
		if !errors.Is(err, platform.ErrDenied) && !errors.Is(err, platform.ErrNotFound) {
			b.Logger.Error("platform refused or broke its contract", "op", op, "error", err)
			return abi.Errorf(code, op+": "+err.Error())
		}
		return abi.Errorf(code, err.Error())
	}
	if pe := (*platformhttp.Error)(nil); errors.As(err, &pe) {
		// A platform over HTTP that is down: its error says which call
		// and how, and carries no secret.
		b.Logger.Warn("platform unavailable", "op", op, "error", err)
		return abi.Errorf(abi.CodeUnavailable, op+": "+err.Error())
	}
	b.Logger.Error("storage failed", "op", op, "error", err)
	return abi.Errorf(abi.CodeUnavailable, op+": storage unavailable")
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

// maxLogFields keeps one plugin log line from flooding the host's log.
const maxLogFields = 32

func (s *Set) log(ctx context.Context, b *Binding, req []byte) any {
	var r abi.LogRequest
	if e := decode(req, &r); e != nil {
		return abi.Empty{Fault: abi.Fault{Error: e}}
	}
	level, ok := logLevels[r.Level]
	if !ok {
		level = slog.LevelInfo
	}
	attrs := make([]any, 0, 2*len(r.Fields)+2)
	attrs = append(attrs, "source", "plugin")
	n := 0
	for k, v := range r.Fields {
		// The binding already carries these; the plugin's copy must not
		// contradict it, nor repeat it (a key twice on one line).
		if k == "delivery" || k == "installation" || (k == "issue_key" && b.Delivery != 0) {
			continue
		}
		if n++; n > maxLogFields {
			break
		}
		attrs = append(attrs, k, v)
	}
	b.Logger.Log(ctx, level, r.Message, attrs...)
	return abi.Empty{}
}

func (s *Set) installationGet(_ context.Context, b *Binding, _ []byte) any {
	in := b.Installation
	resp := abi.InstallationResponse{ID: in.ID, ExternalID: in.ExternalID, BaseURL: in.BaseURL,
		Organizations: make([]abi.InstallationOrgSettings, 0, len(in.Organizations))}
	for _, o := range in.Organizations {
		settings := abi.InstallationOrgSettings{ID: o.ID, InboundAssignee: o.InboundAssignee, InboundStatus: o.InboundStatus,
			OutboundAssignee: o.OutboundAssignee, OutboundStatus: o.OutboundStatus}
		for _, m := range o.StatusMappings {
			settings.StatusMappings = append(settings.StatusMappings, abi.StatusMapping{JiraProject: m.JiraProject,
				ResolveStatus: m.ResolveStatus, UnresolveStatus: m.UnresolveStatus})
		}
		resp.Organizations = append(resp.Organizations, settings)
	}
	return resp
}

func (s *Set) jiraRequest(ctx context.Context, b *Binding, req []byte) any {
	var r abi.JiraRequest
	if e := decode(req, &r); e != nil {
		return abi.JiraResponse{Fault: abi.Fault{Error: e}}
	}
	in := b.Installation
	body := r.Body
	if r.Substitute {
		if b.WebhookURL == "" || in.WebhookSecret == "" {
			return abi.JiraResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeDenied, "substitution is only for the install flow")}}
		}
		// JSON-encode the values: they land inside JSON strings.
		body = strings.ReplaceAll(body, abi.PlaceholderWebhookURL, jsonStringContent(b.WebhookURL))
		body = strings.ReplaceAll(body, abi.PlaceholderWebhookSecret, jsonStringContent(in.WebhookSecret))
	}
	start := time.Now()
	resp, err := s.Jira.Do(ctx, jiraclient.Credentials{BaseURL: in.BaseURL, ConsumerKey: in.ConsumerKey,
		PrivateKeyPEM: in.PrivateKeyPEM, AccessToken: in.AccessToken, AccessTokenSecret: in.AccessTokenSecret,
		VerifyTLS: in.VerifyTLS}, jiraclient.Request{Method: r.Method, Path: r.Path, Query: r.Query, Body: body})
	switch {
	case errors.Is(err, jiraclient.ErrRefused):
		b.Logger.Warn("jira request refused", "path", r.Path, "error", err)
		return abi.JiraResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeDenied, err.Error())}}
	case errors.Is(err, jiraclient.ErrUnreachable):
		b.Logger.Warn("jira unreachable", "path", r.Path, "error", err, "elapsed", time.Since(start))
		return abi.JiraResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeUnavailable, err.Error())}}
	case err != nil:
		// A key that does not parse: the installation needs an operator.
		b.Logger.Error("jira request not sent", "path", r.Path, "error", err)
		return abi.JiraResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeJiraRejected, err.Error())}}
	}
	b.Logger.Debug("jira request", "method", r.Method, "path", r.Path, "status", resp.Status, "elapsed", time.Since(start))
	answer := string(resp.Body)
	if r.Substitute && in.WebhookSecret != "" {
		// Jira may echo what it was sent; the secret goes no further.
		answer = strings.ReplaceAll(answer, in.WebhookSecret, abi.PlaceholderWebhookSecret)
	}
	return abi.JiraResponse{Status: resp.Status, Body: answer}
}

// jsonStringContent is s encoded for use inside a JSON string.
func jsonStringContent(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func (s *Set) groupsLinked(ctx context.Context, b *Binding, req []byte) any {
	var r abi.GroupsLinkedRequest
	if e := decode(req, &r); e != nil {
		return abi.GroupsLinkedResponse{Fault: abi.Fault{Error: e}}
	}
	groups, err := s.Platform.LinkedGroups(ctx, b.Installation.ID, strings.TrimSpace(r.IssueKey), r.Organizations)
	if err != nil {
		return abi.GroupsLinkedResponse{Fault: abi.Fault{Error: storeError(b, "groups_linked", err)}}
	}
	resp := abi.GroupsLinkedResponse{Groups: make([]abi.LinkedGroup, 0, len(groups))}
	for _, g := range groups {
		resp.Groups = append(resp.Groups, abi.LinkedGroup{ID: g.ID, Organization: g.Organization,
			Project: g.Project, Assignee: g.Assignee, Status: platform.GroupStatus(g.Status)})
	}
	return resp
}

func (s *Set) usersByEmail(ctx context.Context, b *Binding, req []byte) any {
	var r abi.UsersByEmailRequest
	if e := decode(req, &r); e != nil {
		return abi.UsersByEmailResponse{Fault: abi.Fault{Error: e}}
	}
	if strings.TrimSpace(r.Email) == "" {
		return abi.UsersByEmailResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeInvalidRequest, "email is empty")}}
	}
	users, err := s.Platform.UsersByEmail(ctx, r.Email)
	if err != nil {
		return abi.UsersByEmailResponse{Fault: abi.Fault{Error: storeError(b, "users_by_email", err)}}
	}
	resp := abi.UsersByEmailResponse{Users: make([]abi.PlatformUser, 0, len(users))}
	for _, u := range users {
		projects := u.Projects
		if projects == nil {
			projects = []string{}
		}
		resp.Users = append(resp.Users, abi.PlatformUser{ID: u.ID, Verified: u.Verified, Projects: projects})
	}
	return resp
}

func (s *Set) groupsAssign(ctx context.Context, b *Binding, req []byte) any {
	var r abi.GroupsAssignRequest
	if e := decode(req, &r); e != nil {
		return abi.GroupsAssignResponse{Fault: abi.Fault{Error: e}}
	}
	as := make([]platform.Assignment, 0, len(r.Assignments))
	for _, a := range r.Assignments {
		as = append(as, platform.Assignment{Group: a.Group, Assignee: a.Assignee})
	}
	ss := make([]platform.StatusChange, 0, len(r.Statuses))
	for _, sc := range r.Statuses {
		ss = append(ss, platform.StatusChange{Group: sc.Group, Status: sc.Status})
	}
	ch := platform.Changes{Assignments: as, Statuses: ss}
	if err := ch.Validate(); err != nil {
		return abi.GroupsAssignResponse{Fault: abi.Fault{Error: abi.Errorf(abi.CodeInvalidRequest, err.Error())}}
	}
	changed, err := s.Platform.Check(ctx, b.Installation.ID, ch)
	if err != nil {
		return abi.GroupsAssignResponse{Fault: abi.Fault{Error: storeError(b, "groups_assign", err)}}
	}
	b.Staged = append(b.Staged, as...)
	b.StagedStatuses = append(b.StagedStatuses, ss...)
	return abi.GroupsAssignResponse{Changed: changed}
}

// groupGet reads one group by id, with the issue keys linked to it
// through the call's installation. It answers for a group of any
// organization: platform events reach every installation, and the plugin
// tells "not linked here" (it checks the organization against
// installation_get) from "no such group" (not_found).
func (s *Set) groupGet(ctx context.Context, b *Binding, req []byte) any {
	var r abi.GroupGetRequest
	if e := decodeID(req, &r, "group", &r.Group); e != nil {
		return abi.GroupGetResponse{Fault: abi.Fault{Error: e}}
	}
	g, err := s.Platform.Group(ctx, b.Installation.ID, r.Group)
	if err != nil {
		return abi.GroupGetResponse{Fault: abi.Fault{Error: storeError(b, "group_get", err)}}
	}
	keys := g.IssueKeys
	if keys == nil {
		keys = []string{}
	}
	return abi.GroupGetResponse{Group: &abi.GroupInfo{ID: g.ID, Organization: g.Organization, Project: g.Project,
		Assignee: g.Assignee, Status: platform.GroupStatus(g.Status), IssueKeys: keys}}
}

// userGet reads one platform user by id, with its addresses: the plugin
// looks the verified ones up in Jira to find the user's Jira account.
func (s *Set) userGet(ctx context.Context, b *Binding, req []byte) any {
	var r abi.UserGetRequest
	if e := decodeID(req, &r, "user", &r.User); e != nil {
		return abi.UserGetResponse{Fault: abi.Fault{Error: e}}
	}
	u, err := s.Platform.User(ctx, r.User)
	if err != nil {
		return abi.UserGetResponse{Fault: abi.Fault{Error: storeError(b, "user_get", err)}}
	}
	info := &abi.UserInfo{ID: u.ID, Emails: make([]abi.UserEmail, 0, len(u.Emails))}
	for _, e := range u.Emails {
		info.Emails = append(info.Emails, abi.UserEmail{Email: e.Address, Verified: e.Verified})
	}
	return abi.UserGetResponse{User: info}
}

// maxStateValueBytes bounds one state value; state is for small facts.
const maxStateValueBytes = 64 << 10

func (s *Set) stateGet(ctx context.Context, b *Binding, req []byte) any {
	var r abi.StateGetRequest
	if e := decode(req, &r); e != nil {
		return abi.StateGetResponse{Fault: abi.Fault{Error: e}}
	}
	var v string
	var found bool
	var err error
	if r.Shared {
		v, found, err = s.Store.SharedStateGet(ctx, r.Key)
	} else {
		v, found, err = s.Store.StateGet(ctx, b.Installation.ID, r.Key)
	}
	if err != nil {
		return abi.StateGetResponse{Fault: abi.Fault{Error: storeError(b, "state_get", err)}}
	}
	return abi.StateGetResponse{Value: v, Found: found}
}

func (s *Set) statePut(ctx context.Context, b *Binding, req []byte) any {
	var r abi.StatePutRequest
	if e := decode(req, &r); e != nil {
		return abi.Empty{Fault: abi.Fault{Error: e}}
	}
	switch {
	case r.Key == "" || len(r.Key) > 512:
		return abi.Empty{Fault: abi.Fault{Error: abi.Errorf(abi.CodeInvalidRequest, "key must be 1-512 bytes")}}
	case len(r.Value) > maxStateValueBytes:
		return abi.Empty{Fault: abi.Fault{Error: abi.Errorf(abi.CodeInvalidRequest, "value is over 64 KiB")}}
	case r.TTLSeconds < 0:
		return abi.Empty{Fault: abi.Fault{Error: abi.Errorf(abi.CodeInvalidRequest, "ttl_seconds is negative")}}
	}
	ttl := time.Duration(r.TTLSeconds) * time.Second
	var err error
	switch {
	case r.Shared && r.Delete:
		err = s.Store.SharedStateDelete(ctx, r.Key)
	case r.Shared:
		err = s.Store.SharedStatePut(ctx, r.Key, r.Value, ttl)
	case r.Delete:
		err = s.Store.StateDelete(ctx, b.Installation.ID, r.Key)
	default:
		err = s.Store.StatePut(ctx, b.Installation.ID, r.Key, r.Value, ttl)
	}
	if err != nil {
		return abi.Empty{Fault: abi.Fault{Error: storeError(b, "state_put", err)}}
	}
	return abi.Empty{}
}
