// Package abi defines the contract between the jirasync plugin (the guest)
// and any host that runs it: the exports the plugin offers, the host
// functions it imports, and the JSON envelopes that cross the boundary.
//
// The written specification is docs/ABI.md; this package is its Go form and
// is imported by both sides so they cannot drift apart. It has no
// dependencies beyond the standard library and compiles for wasip1 and
// natively alike.
package abi

// Version is the ABI version. A host refuses a plugin whose describe export
// reports another major version; minor versions only add optional fields.
const Version = "1.6"

// Exports of the plugin.
const (
	ExportDescribe           = "describe"
	ExportHandleIssueUpdated = "handle_issue_updated"
	// Since 1.1: the webhook's registration on Jira, for the install flow.
	ExportRegisterWebhook   = "register_webhook"
	ExportUnregisterWebhook = "unregister_webhook"
	// Since 1.2: what a host needs to know of a delivery before it stores
	// it (issue, Jira timestamp, dedupe key), with no host calls.
	ExportInspectDelivery = "inspect_delivery"
	// Since 1.4: a platform event (a group assigned, resolved or
	// unresolved) carried to the installation's Jira (two-way sync).
	ExportHandlePlatformEvent = "handle_platform_event"
)

// Exports lists every export of this ABI version, in a fixed order.
var Exports = [...]string{ExportDescribe, ExportHandleIssueUpdated, ExportRegisterWebhook,
	ExportUnregisterWebhook, ExportInspectDelivery, ExportHandlePlatformEvent}

// HostNamespace is the Wasm import module of every host function. It is the
// go-sdk default for user host functions.
const HostNamespace = "extism:host/user"

// Host functions the plugin may import. Each takes one JSON request and
// answers one JSON response; failures travel inside the response as Error,
// never as a trap.
const (
	FuncLog             = "jirasync_log"
	FuncInstallationGet = "jirasync_installation_get"
	FuncJiraRequest     = "jirasync_jira_request"
	FuncGroupsLinked    = "jirasync_groups_linked"
	FuncUsersByEmail    = "jirasync_users_by_email"
	FuncGroupsAssign    = "jirasync_groups_assign"
	FuncStateGet        = "jirasync_state_get"
	FuncStatePut        = "jirasync_state_put"
	// Since 1.4: one group with the Jira issues it is linked to through
	// the call's installation, and one platform user with its emails.
	FuncGroupGet         = "jirasync_group_get"
	FuncUserGet          = "jirasync_user_get"
	hostFunctionCount    = 10
	maxErrorMessageBytes = 2048
)

// HostFunctions lists every host function of this ABI version, in a fixed
// order, so a host can check that it offers all of them.
var HostFunctions = [hostFunctionCount]string{
	FuncLog, FuncInstallationGet, FuncJiraRequest, FuncGroupsLinked,
	FuncUsersByEmail, FuncGroupsAssign, FuncStateGet, FuncStatePut,
	FuncGroupGet, FuncUserGet,
}

// Memory functions (since 1.5) copy bytes in bulk between the Extism
// kernel's memory, where inputs, outputs and host-function blocks live,
// and the plugin's own linear memory. They are raw Wasm functions, NOT
// JSON-envelope host functions: each has the type (i64, i64, i64) -> i64,
// (kernel offset, guest address, length) -> a Copy result. They live in
// HostNamespace beside the host functions.
const (
	// FuncKernelLoad copies length bytes from the kernel's memory at the
	// kernel offset to the plugin's memory at the guest address.
	FuncKernelLoad = "jirasync_kernel_load"
	// FuncKernelStore copies length bytes from the plugin's memory at the
	// guest address to the kernel's memory at the kernel offset.
	FuncKernelStore = "jirasync_kernel_store"
)

// MemoryFunctions lists the memory functions, in a fixed order.
var MemoryFunctions = [...]string{FuncKernelLoad, FuncKernelStore}

// Results of a memory function.
const (
	// CopyDone: every byte was copied.
	CopyDone = 0
	// CopyUnsupported: this host cannot reach the plugin's memory (the
	// JS SDK's host functions cannot); nothing was copied, and the plugin
	// copies through Extism's 8-byte kernel functions from then on.
	CopyUnsupported = 1
	// CopyOutOfRange: a range lies outside its memory (or the length does
	// not fit 32 bits); nothing was copied.
	CopyOutOfRange = 2
)

// Direct calls (since 1.6) run a host function with its name, request and
// answer in the plugin's own linear memory, where a classic host-function
// call moves both through Extism kernel blocks (an allocation, a copy, a
// length, a free: about ten crossings between the host and the guest per
// call). Like the memory functions they are raw Wasm functions in
// HostNamespace, not JSON-envelope host functions.
const (
	// FuncCall is (name_ptr, name_len, req_ptr, req_len, out_ptr, out_cap
	// i64) -> i64: the host runs the host function named by the bytes at
	// name_ptr with the request at req_ptr, as its classic import would,
	// and writes the answer at out_ptr if it fits in out_cap. The result
	// is the answer's length n >= 0, or a Direct result below. When n >
	// out_cap nothing is written and the host keeps the answer for
	// FuncCallAnswer.
	FuncCall = "jirasync_call"
	// FuncCallAnswer is (out_ptr, out_cap i64) -> i64: it writes the
	// answer FuncCall kept at out_ptr if it fits in out_cap and returns
	// its length, or a Direct result. The answer is handed over once; the
	// next FuncCall, or the end of the export call, drops it.
	FuncCallAnswer = "jirasync_call_answer"
)

// DirectFunctions lists the direct-call functions, in a fixed order.
var DirectFunctions = [...]string{FuncCall, FuncCallAnswer}

// Results of a direct-call function besides an answer's length. They are
// negative, so that no length can be taken for one.
const (
	// DirectUnsupported: this host cannot reach the plugin's memory
	// (the JS SDK's host functions cannot); nothing was read or run, and
	// the plugin uses classic host-function calls from then on.
	DirectUnsupported = -1
	// DirectOutOfRange: a range lies outside the plugin's memory, or a
	// value does not fit 32 bits; nothing was read, run or written.
	DirectOutOfRange = -2
	// DirectNoAnswer: FuncCallAnswer found no kept answer (none was kept,
	// it was taken already, or a later FuncCall or the end of the export
	// call dropped it).
	DirectNoAnswer = -3
)

// ErrorCode classifies a failure so that the host can choose an HTTP status
// and decide whether to retry without parsing messages.
type ErrorCode string

const (
	// CodeInvalidRequest: the caller sent something malformed. Not retryable.
	CodeInvalidRequest ErrorCode = "invalid_request"
	// CodeInvalidPayload: the Jira payload cannot be acted on. Not retryable.
	CodeInvalidPayload ErrorCode = "invalid_payload"
	// CodeNotFound: a named thing does not exist.
	CodeNotFound ErrorCode = "not_found"
	// CodeDenied: the call asked for something outside its installation.
	CodeDenied ErrorCode = "denied"
	// CodeUnavailable: a dependency (Jira, the database) failed in a way
	// that may pass. Retryable.
	CodeUnavailable ErrorCode = "unavailable"
	// CodeJiraRejected: Jira refused our credentials or request. Not
	// retryable without operator action.
	CodeJiraRejected ErrorCode = "jira_rejected"
	// CodeInternal: a bug on either side.
	CodeInternal ErrorCode = "internal"
)

// Codes lists every error code of this ABI version.
var Codes = [...]ErrorCode{CodeInvalidRequest, CodeInvalidPayload, CodeNotFound, CodeDenied,
	CodeUnavailable, CodeJiraRejected, CodeInternal}

// Retryable reports whether a failure with this code may pass on its own.
// An internal error is a bug, but possibly a transient one of the host (a
// host function that failed) or of the instance (a state it should not be
// in): the host drops the instance and tries again later with a fresh one,
// which loses nothing; a bug that stays ends the delivery "dead" when the
// retries run out, where an operator can replay it after the fix.
func (c ErrorCode) Retryable() bool { return c == CodeUnavailable || c == CodeInternal }

// Error is how failures cross the boundary, in both directions.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an Error, keeping the message to a bounded size so that a
// huge upstream body cannot balloon an envelope.
func Errorf(code ErrorCode, msg string) *Error {
	if len(msg) > maxErrorMessageBytes {
		msg = msg[:maxErrorMessageBytes] + "…"
	}
	return &Error{Code: code, Message: msg}
}

// Description is the output of the describe export: read by the host before
// it wires anything, like a manifest.
type Description struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	ABIVersion string   `json:"abi_version"`
	Exports    []string `json:"exports"`
	// Imports lists the host functions the plugin calls; the host grants
	// exactly these.
	Imports []string `json:"imports"`
}

// The input of handle_issue_updated is the Jira webhook body exactly as
// received, not wrapped in an envelope: wrapping would make the guest scan
// the whole body once more just to find it (about 1 ms per 16 KiB in the
// sandbox). The host has already checked the token and that the body is a
// JSON object of bounded size; which installation and delivery the call is
// for is bound by the host to the call, so the plugin never names them.

// HandleResponse is the output of handle_issue_updated: the sync summary
// on success, Error otherwise.
type HandleResponse struct {
	Summary *Summary `json:"summary,omitempty"`
	Fault
}

// Outcomes of a handled delivery.
const (
	OutcomeSynced  = "synced"
	OutcomeIgnored = "ignored"
	OutcomeNoEmail = "no_email"
)

// Reasons accompany OutcomeIgnored and skipped groups.
const (
	ReasonNoChangelog       = "no_changelog"
	ReasonAssigneeUnchanged = "assignee_unchanged"
	ReasonUnsupportedEvent  = "unsupported_event"
	ReasonAssigneeNotFound  = "assignee-not-found"
)

// Group actions in a Summary.
const (
	ActionAssigned   = "assigned"
	ActionUnassigned = "unassigned"
	ActionUnchanged  = "unchanged"
	ActionSkipped    = "skipped"
)

// Summary tells what one delivery did; the webhook answers with it.
type Summary struct {
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
	IssueKey   string `json:"issue_key,omitempty"`
	Email      string `json:"email,omitempty"`
	Assigned   int    `json:"assigned"`
	Unassigned int    `json:"unassigned"`
	Unchanged  int    `json:"unchanged"`
	Skipped    int    `json:"skipped"`
	// Resolved and Unresolved (since 1.3) count the groups whose status
	// the delivery set that way (inbound status sync).
	Resolved   int           `json:"resolved,omitempty"`
	Unresolved int           `json:"unresolved,omitempty"`
	Groups     []GroupResult `json:"groups"`
}

// GroupResult is what happened to one group.
type GroupResult struct {
	ID           string  `json:"id"`
	Organization string  `json:"organization"`
	Action       string  `json:"action"`
	Assignee     *string `json:"assignee"`
	Reason       string  `json:"reason,omitempty"`
	// Status (since 1.3) is the status the delivery set, when it set one.
	Status string `json:"status,omitempty"`
}

// The input of inspect_delivery is the Jira webhook body as received, as
// for handle_issue_updated.

// InspectResponse is the output of inspect_delivery. The export does not
// fail: a body it cannot read is still a delivery (handle_issue_updated
// reports why it is refused), identified by its bytes.
type InspectResponse struct {
	Inspection *Inspection `json:"inspection,omitempty"`
	Fault
}

// Inspection is what a host needs of a delivery before processing it: to
// deduplicate it and order it against other deliveries of the issue.
type Inspection struct {
	// Event is webhookEvent, or "jira:issue_updated" when the body has
	// none (see handle_issue_updated); "" when the body is unreadable.
	Event       string `json:"event"`
	IssueID     string `json:"issue_id"`
	IssueKey    string `json:"issue_key"`
	ChangelogID string `json:"changelog_id"`
	// Timestamp is the body's timestamp as sent, milliseconds since the
	// epoch, 0 if absent. A host clamps it to its own clock before
	// ordering by it; that rule is the host's (docs/ABI.md).
	Timestamp int64 `json:"timestamp"`
	// DedupeKey is equal for two deliveries that are the same Jira event:
	// "changelog:<issue_id>:<changelog_id>:<timestamp>" when the body has
	// both ids, else "body:<hex SHA-256 of the body's bytes>".
	DedupeKey string `json:"dedupe_key"`
	// Unreadable says why the body could not be read; the members above
	// are then empty, and the dedupe key is the body's hash.
	Unreadable string `json:"unreadable,omitempty"`
}

// Dedupe key prefixes.
const (
	DedupeChangelog = "changelog:"
	DedupeBody      = "body:"
)

// LogRequest is the input of jirasync_log. Fields become structured
// attributes of the host's log line.
type LogRequest struct {
	Level   string         `json:"level"` // debug, info, warn, error
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// Fault is embedded in every response: a failure travels as data in its
// "error" member, so a host function never has to trap to report one.
type Fault struct {
	Error *Error `json:"error,omitempty"`
}

// Err returns the failure, or nil.
func (f Fault) Err() *Error { return f.Error }

// Empty is the response of host functions that only report success.
type Empty struct {
	Fault
}

// InstallationResponse answers jirasync_installation_get for the
// installation the call is bound to. It never carries a secret.
type InstallationResponse struct {
	ID            string                    `json:"id"`
	ExternalID    string                    `json:"external_id"`
	BaseURL       string                    `json:"base_url"`
	Organizations []InstallationOrgSettings `json:"organizations"`
	Fault
}

// InstallationOrgSettings is one organization an installation serves.
type InstallationOrgSettings struct {
	ID              string `json:"id"`
	InboundAssignee bool   `json:"inbound_assignee"`
	// InboundStatus (since 1.3): Jira's status moving into or out of its
	// "done" category resolves or unresolves the linked groups.
	InboundStatus bool `json:"inbound_status,omitempty"`
	// OutboundAssignee (since 1.4): a group's assignee set on the
	// platform becomes its linked issues' assignee in Jira.
	OutboundAssignee bool `json:"outbound_assignee,omitempty"`
	// OutboundStatus (since 1.4): a group resolved or unresolved on the
	// platform moves its linked issues to the status StatusMappings names
	// for their Jira project.
	OutboundStatus bool            `json:"outbound_status,omitempty"`
	StatusMappings []StatusMapping `json:"status_mappings,omitempty"`
}

// StatusMapping (since 1.4) is the Jira status, by id or name, to move an
// issue of one Jira project to when its group is resolved, and when it is
// unresolved.
type StatusMapping struct {
	JiraProject     string `json:"jira_project"`
	ResolveStatus   string `json:"resolve_status"`
	UnresolveStatus string `json:"unresolve_status"`
}

// JiraRequest asks the host to send a request to the installation's Jira,
// signed with its OAuth 1.0a access token. Path is relative to the base URL
// and must start with /rest/; the host refuses anything else.
type JiraRequest struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  map[string][]string `json:"query,omitempty"`
	Body   string              `json:"body,omitempty"`
	// Substitute (since 1.1) makes the host replace PlaceholderWebhookURL
	// and PlaceholderWebhookSecret in Body with the call's values, so that
	// registering a webhook never shows the plugin its secret.
	Substitute bool `json:"substitute,omitempty"`
}

// Placeholders a JiraRequest body may carry with Substitute.
const (
	PlaceholderWebhookURL    = "{{webhook_url}}"
	PlaceholderWebhookSecret = "{{webhook_secret}}"
)

// Webhook APIs of Jira Server / Data Center.
const (
	WebhookAPILegacy = "webhooks-1.0"     // /rest/webhooks/1.0/webhook, Jira before 10
	WebhookAPIJira10 = "jira-webhook-1.0" // /rest/jira-webhook/1.0/webhooks, Jira 10 and later
)

// WebhookRef names a webhook registered on Jira.
type WebhookRef struct {
	API string `json:"api"`
	ID  string `json:"id"`
}

// RegisterWebhookRequest is the input of register_webhook. The call is
// bound to an installation whose credentials, webhook URL and secret the
// host holds. Previous, when set, is removed once the new one exists.
type RegisterWebhookRequest struct {
	Name     string      `json:"name"`
	Previous *WebhookRef `json:"previous,omitempty"`
}

// RegisterWebhookResponse tells what was registered.
type RegisterWebhookResponse struct {
	Webhook     *WebhookRef `json:"webhook,omitempty"`
	JiraVersion string      `json:"jira_version,omitempty"`
	Fault
}

// UnregisterWebhookRequest is the input of unregister_webhook.
type UnregisterWebhookRequest struct {
	Webhook WebhookRef `json:"webhook"`
}

// JiraResponse is Jira's answer. A transport failure (connection refused,
// timeout) is an Error with CodeUnavailable; any HTTP answer, 5xx included,
// is a Status and Body for the plugin to interpret.
type JiraResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	Fault
}

// GroupsLinkedRequest asks for the groups linked to a Jira issue through the
// call's installation, in the given organizations.
type GroupsLinkedRequest struct {
	IssueKey      string   `json:"issue_key"`
	Organizations []string `json:"organizations"`
}

// GroupsLinkedResponse lists those groups in a stable order.
type GroupsLinkedResponse struct {
	Groups []LinkedGroup `json:"groups"`
	Fault
}

// LinkedGroup is a platform issue group with what group sync needs of it.
type LinkedGroup struct {
	ID           string  `json:"id"`
	Organization string  `json:"organization"`
	Project      string  `json:"project"`
	Assignee     *string `json:"assignee"`
	// Status (since 1.3) is GroupResolved or GroupUnresolved; a host
	// before 1.3 leaves it out (unresolved).
	Status string `json:"status,omitempty"`
}

// A group's statuses (since 1.3).
const (
	GroupUnresolved = "unresolved"
	GroupResolved   = "resolved"
)

// UsersByEmailRequest asks for platform users having an email address,
// compared case-insensitively.
type UsersByEmailRequest struct {
	Email string `json:"email"`
}

// UsersByEmailResponse lists matching users in the platform's order (oldest
// first). Verified tells whether the matching address is verified; the
// plugin decides what that means.
type UsersByEmailResponse struct {
	Users []PlatformUser `json:"users"`
	Fault
}

// PlatformUser is a user with the projects it is a member of.
type PlatformUser struct {
	ID       string   `json:"id"`
	Verified bool     `json:"verified"`
	Projects []string `json:"projects"`
}

// GroupsAssignRequest sets the assignee of several groups in one
// transaction, recorded against the call's delivery. A nil Assignee
// unassigns.
type GroupsAssignRequest struct {
	Assignments []Assignment `json:"assignments"`
	// Statuses (since 1.3) set groups' statuses, staged and applied with
	// the assignments.
	Statuses []StatusChange `json:"statuses,omitempty"`
}

// StatusChange is one group's new status (since 1.3).
type StatusChange struct {
	Group  string `json:"group"`
	Status string `json:"status"`
}

// Assignment is one group's new assignee.
type Assignment struct {
	Group    string  `json:"group"`
	Assignee *string `json:"assignee"`
}

// GroupsAssignResponse reports how many groups changed.
type GroupsAssignResponse struct {
	Changed int `json:"changed"`
	Fault
}

// StateGetRequest reads a key of the plugin's per-installation state.
// Shared (since 1.4) reads the host-wide state instead, which every
// installation of the host reads and writes alike (echo records of
// platform writes, which come back as events to every installation).
type StateGetRequest struct {
	Key    string `json:"key"`
	Shared bool   `json:"shared,omitempty"`
}

// StateGetResponse answers it; Found is false for a missing or expired key.
type StateGetResponse struct {
	Value string `json:"value"`
	Found bool   `json:"found"`
	Fault
}

// StatePutRequest writes a key; TTLSeconds 0 keeps it until overwritten.
// An empty Value with Delete removes the key.
type StatePutRequest struct {
	Key        string `json:"key"`
	Value      string `json:"value"`
	TTLSeconds int64  `json:"ttl_seconds,omitempty"`
	Delete     bool   `json:"delete,omitempty"`
	// Shared (since 1.4): as in StateGetRequest.
	Shared bool `json:"shared,omitempty"`
}

// GroupGetRequest (since 1.4) asks for one platform group.
type GroupGetRequest struct {
	Group string `json:"group"`
}

// GroupGetResponse answers it; a group that does not exist is an Error
// with CodeNotFound.
type GroupGetResponse struct {
	Group *GroupInfo `json:"group,omitempty"`
	Fault
}

// GroupInfo is a group with the keys of the Jira issues it is linked to
// through the call's installation (sorted, maybe none). Whether the
// installation serves the group's organization is the plugin's to check
// against installation_get.
type GroupInfo struct {
	ID           string   `json:"id"`
	Organization string   `json:"organization"`
	Project      string   `json:"project"`
	Assignee     *string  `json:"assignee"`
	Status       string   `json:"status"`
	IssueKeys    []string `json:"issue_keys"`
}

// UserGetRequest (since 1.4) asks for one platform user.
type UserGetRequest struct {
	User string `json:"user"`
}

// UserGetResponse answers it; a user that does not exist is an Error with
// CodeNotFound.
type UserGetResponse struct {
	User *UserInfo `json:"user,omitempty"`
	Fault
}

// UserInfo is a platform user with its email addresses.
type UserInfo struct {
	ID     string      `json:"id"`
	Emails []UserEmail `json:"emails"`
}

// UserEmail is one of a user's addresses.
type UserEmail struct {
	Email    string `json:"email"`
	Verified bool   `json:"verified"`
}

// Platform event types (since 1.4).
const (
	EventGroupAssigned   = "group.assigned"
	EventGroupResolved   = "group.resolved"
	EventGroupUnresolved = "group.unresolved"
)

// PlatformEvent is the input of handle_platform_event: what the platform
// said happened to a group, as the host stored it. OccurredAt is RFC 3339.
// Assignee is a platform user id, null to unassign; only group.assigned
// carries it. The call is bound by the host to one installation: the
// plugin acts on the group's issues linked through it.
type PlatformEvent struct {
	ID         string  `json:"id"`
	Type       string  `json:"type"`
	Group      string  `json:"group"`
	Assignee   *string `json:"assignee"`
	OccurredAt string  `json:"occurred_at"`
}

// EventResponse is the output of handle_platform_event.
type EventResponse struct {
	Summary *EventSummary `json:"summary,omitempty"`
	Fault
}

// EventSummary tells what one platform event did in one installation's
// Jira. Outcome is OutcomeSynced or OutcomeIgnored (with Reason).
type EventSummary struct {
	Outcome string        `json:"outcome"`
	Reason  string        `json:"reason,omitempty"`
	Group   string        `json:"group"`
	Type    string        `json:"type"`
	Issues  []IssueResult `json:"issues"`
}

// IssueResult is what an event did to one linked Jira issue.
type IssueResult struct {
	Key    string `json:"key"`
	Action string `json:"action"` // assigned, unassigned, transitioned, unchanged, skipped
	// Assignee is the Jira user name set (assigned), Status the Jira
	// status id reached (transitioned).
	Assignee string `json:"assignee,omitempty"`
	Status   string `json:"status,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Actions on a Jira issue (since 1.4), beside ActionAssigned,
// ActionUnassigned, ActionUnchanged and ActionSkipped.
const ActionTransitioned = "transitioned"

// Reasons (since 1.4) for ignored events, skipped issues and ignored
// deliveries.
const (
	// ReasonEcho: the change is the echo of one jirasync itself made.
	ReasonEcho = "echo"
	// ReasonDirectionOff: the organization's setting for this direction
	// is off.
	ReasonDirectionOff = "direction_off"
	// ReasonNotLinked: the group has no issue linked through this
	// installation in an organization it serves.
	ReasonNotLinked = "not_linked"
	// ReasonGroupNotFound: the group no longer exists.
	ReasonGroupNotFound = "group_not_found"
	// ReasonNoJiraUser: no Jira user has one of the assignee's verified
	// emails; ReasonAmbiguousJiraUser: more than one has.
	ReasonNoJiraUser        = "no_jira_user"
	ReasonAmbiguousJiraUser = "ambiguous_jira_user"
	// ReasonIssueNotFound: Jira has no such issue (any more).
	ReasonIssueNotFound = "issue_not_found"
)
