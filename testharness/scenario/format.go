// Package scenario reads scenario files (fixtures/README.md documents the
// format) and runs them through the real host, with the real plugin,
// against the simulated Jira Server.
package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/testharness/fakejira"
)

// Scenario is one behaviour: platform data, what the simulated Jira knows,
// the webhooks to send and what must hold afterwards.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Level is LevelPlugin or LevelHTTP: whether the conformance kit can
	// run the scenario through a host's adapter (fixtures/README.md).
	Level      string     `json:"level"`
	Platform   Platform   `json:"platform"`
	Jira       Jira       `json:"jira"`
	Deliveries []Delivery `json:"deliveries"`
	// Events are the steps beside webhook deliveries: platform events
	// POSTed to /api/v1/events, a person's edits in the simulated Jira,
	// and replays of stored deliveries, each placed among the deliveries
	// by its After.
	Events []Event `json:"events,omitempty"`
	Expect Expect  `json:"expect"`

	// Path is the file the scenario came from; payload paths are relative
	// to its folder.
	Path string `json:"-"`
}

// Platform is the data seeded into the host before the deliveries: a
// platform data file (what `jirasync platform import` reads, in the same
// types), plus the installations, which the runner connects to the
// simulated Jira.
type Platform struct {
	platform.Data
	Installations []Installation `json:"installations"`
}

// Installation is a Jira connection. The runner points it at the simulated
// Jira and gives it real OAuth credentials there.
type Installation struct {
	ID            string            `json:"id"`
	ExternalID    string            `json:"external_id"`
	WebhookSecret string            `json:"webhook_secret"`
	ConsumerKey   string            `json:"consumer_key,omitempty"`
	Organizations []InstallationOrg `json:"organizations"`
}

// InstallationOrg is one organization an installation serves, with its
// sync settings.
type InstallationOrg struct {
	ID              string `json:"id"`
	InboundAssignee *bool  `json:"inbound_assignee"` // absent means true
	InboundStatus   bool   `json:"inbound_status"`
	// OutboundAssignee and OutboundStatus (issue 12): platform events
	// become Jira writes; StatusMappings name, per Jira project, the
	// status to reach on resolve and on unresolve.
	OutboundAssignee bool                  `json:"outbound_assignee,omitempty"`
	OutboundStatus   bool                  `json:"outbound_status,omitempty"`
	StatusMappings   []store.StatusMapping `json:"status_mappings,omitempty"`
}

// Jira is what the simulated Jira Server knows.
type Jira struct {
	Users []struct {
		Name         string `json:"name"`
		Key          string `json:"key"`
		EmailAddress string `json:"emailAddress,omitempty"`
		DisplayName  string `json:"displayName,omitempty"`
		// Active false is a deactivated account (true when left out).
		Active *bool `json:"active,omitempty"`
	} `json:"users"`
	Down    bool   `json:"down"`
	Version string `json:"version,omitempty"`
	// Statuses replace the simulated Jira's workflow statuses
	// (fakejira.DefaultStatuses when left out).
	Statuses []JiraStatus `json:"statuses,omitempty"`
	// Issues are the issues the simulated Jira has (GET, assignee PUT,
	// transitions); Transitions replace its workflow
	// (fakejira.DefaultTransitions when left out).
	Issues      []JiraIssue           `json:"issues,omitempty"`
	Transitions []fakejira.Transition `json:"transitions,omitempty"`
	// Echo registers a webhook for every installation on the simulated
	// Jira and has it fire the issue-updated webhook after every change
	// to an issue, as a real Jira does: jirasync sees its writes come back.
	Echo bool `json:"echo,omitempty"`
}

// JiraIssue is one issue of the simulated Jira: its assignee's user name
// (null for none) and its status id ("1", Open, when left out).
// RefuseAssign 400 or 403 makes assigning it fail as Jira does for a user
// who cannot be assigned, and for a caller without the permission.
type JiraIssue struct {
	Key          string  `json:"key"`
	ID           string  `json:"id,omitempty"`
	Assignee     *string `json:"assignee"`
	Status       string  `json:"status,omitempty"`
	RefuseAssign int     `json:"refuse_assign,omitempty"`
}

// Event is one step besides the webhook deliveries; exactly one of Event,
// JiraEdit and Replay. It runs after the first After deliveries (0:
// before any), events with the same After in the order listed. After each
// step the runner waits until every stored delivery is settled and the
// simulated Jira has sent its echoes.
type Event struct {
	After int `json:"after,omitempty"`
	// Event is a platform event body, POSTed as is to /api/v1/events with
	// the admin token.
	Event json.RawMessage `json:"event,omitempty"`
	// JiraEdit is a person changing an issue in Jira's UI.
	JiraEdit *JiraEdit `json:"jira_edit,omitempty"`
	// Replay replays the Replay-th stored delivery (1 is the oldest)
	// through the delivery log's replay endpoint, with the admin token.
	Replay        int             `json:"replay,omitempty"`
	JiraDown      *bool           `json:"jira_down,omitempty"`
	JiraStatus    *int            `json:"jira_status,omitempty"`
	ExpectStatus  json.RawMessage `json:"expect_status,omitempty"`
	ExpectSummary map[string]any  `json:"expect_summary,omitempty"`
}

// JiraEdit changes an issue as a person would: Assignee absent leaves it,
// null unassigns, a user name assigns; Status, when given, is the status
// id the issue moves to.
type JiraEdit struct {
	Issue    string          `json:"issue"`
	Assignee json.RawMessage `json:"assignee,omitempty"`
	Status   string          `json:"status,omitempty"`
}

// assignee is the edit's assignee: nil to leave it, "" to unassign.
func (e JiraEdit) assignee() (*string, error) {
	if e.Assignee == nil {
		return nil, nil
	}
	var name *string
	if err := json.Unmarshal(e.Assignee, &name); err != nil {
		return nil, fmt.Errorf("jira_edit.assignee: want a user name or null")
	}
	if name == nil {
		name = new(string)
	}
	return name, nil
}

// JiraStatus is one of the simulated Jira's workflow statuses; Category
// is its statusCategory key ("new", "indeterminate", "done").
type JiraStatus struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// Delivery is one HTTP request to the webhook endpoint.
type Delivery struct {
	Installation  string          `json:"installation,omitempty"`
	Token         *string         `json:"token,omitempty"`
	Forge         *Forge          `json:"forge,omitempty"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Body          *string         `json:"body,omitempty"`
	Method        string          `json:"method,omitempty"`
	TrailingSlash bool            `json:"trailing_slash,omitempty"`
	PadBytes      int             `json:"pad_bytes,omitempty"`
	JiraDown      *bool           `json:"jira_down,omitempty"`
	JiraStatus    *int            `json:"jira_status,omitempty"`
	ExpectStatus  json.RawMessage `json:"expect_status,omitempty"`
	ExpectSummary map[string]any  `json:"expect_summary,omitempty"`
}

// Forge builds a token from exactly these parts, to test refusals.
type Forge struct {
	Claims map[string]any `json:"claims"`
	Secret string         `json:"secret"`
	Alg    string         `json:"alg"`
}

// Expect is checked after every delivery has been answered.
type Expect struct {
	Groups []struct {
		ID       string  `json:"id"`
		Assignee *string `json:"assignee"`
		// Status, when given, is the group's status after all deliveries.
		Status string `json:"status,omitempty"`
	} `json:"groups"`
	JiraLookups *int `json:"jira_lookups,omitempty"`
	// JiraStatusLookups, when given, is how many times the status list
	// (/rest/api/2/status) was read.
	JiraStatusLookups *int `json:"jira_status_lookups,omitempty"`
	// Deliveries, when given, lists every stored delivery in the order
	// stored: refused requests are not stored, duplicates are stored once.
	Deliveries []ExpectDelivery `json:"deliveries,omitempty"`
	// Jira is what the simulated Jira must hold and have received.
	Jira *ExpectJira `json:"jira,omitempty"`
}

// ExpectDelivery is what one stored delivery must look like once settled.
type ExpectDelivery struct {
	Status   string `json:"status"`
	Attempts *int   `json:"attempts,omitempty"`
	IssueKey string `json:"issue_key,omitempty"`
	// Event and IssueID, when given, are the stored event type and issue
	// id (group:<id> for a platform event).
	Event   string `json:"event,omitempty"`
	IssueID string `json:"issue_id,omitempty"`
	// Summary is matched against the stored summary: objects on the keys
	// given, arrays element by element, recursively.
	Summary map[string]any `json:"summary,omitempty"`
	// Error must be a part of the stored error.
	Error string `json:"error,omitempty"`
}

// ExpectJira is the simulated Jira's side once everything settled.
type ExpectJira struct {
	// Issues are issues' final assignee (user name or null) and status
	// (when given).
	Issues []struct {
		Key      string  `json:"key"`
		Assignee *string `json:"assignee"`
		Status   string  `json:"status,omitempty"`
	} `json:"issues,omitempty"`
	// Writes, when given, are every write Jira's REST API received, in
	// order ([] for none).
	Writes []ExpectWrite `json:"writes"`
	// UserSearches, when given, is how many user searches
	// (/rest/api/2/user/search) Jira received.
	UserSearches *int `json:"user_searches,omitempty"`
}

// ExpectWrite is one write: an assignment (Value the user name, "" to
// unassign) or a transition (Value the status it leads to). Transition
// and Status (the HTTP status Jira answered) are checked when given.
type ExpectWrite struct {
	Issue      string `json:"issue"`
	Field      string `json:"field"`
	Value      string `json:"value"`
	Transition string `json:"transition,omitempty"`
	Status     int    `json:"status,omitempty"`
}

// Scenario levels. A plugin-level scenario's behaviour is the plugin's
// and the host functions': every delivery is a well-formed body for a
// known installation, and no two of them need the host's pipeline (no
// duplicates, no out-of-order events, no retries). An HTTP-level scenario
// needs the webhook endpoint: tokens, methods, sizes, the durable
// pipeline's deduplication, ordering and backoff.
const (
	LevelPlugin = "plugin"
	LevelHTTP   = "http"
)

// Load reads one scenario file. Unknown keys are an error: a misspelt
// expectation must not pass silently.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sc.Name == "" {
		return nil, fmt.Errorf("%s: scenario has no name", path)
	}
	if len(sc.Deliveries) == 0 && len(sc.Events) == 0 {
		return nil, fmt.Errorf("%s: scenario has no deliveries and no events", path)
	}
	switch sc.Level {
	case LevelPlugin, LevelHTTP:
	default:
		return nil, fmt.Errorf("%s: level %q: want %q or %q", path, sc.Level, LevelPlugin, LevelHTTP)
	}
	if sc.Level == LevelPlugin {
		if err := sc.pluginLevelTwoWay(); err != nil {
			return nil, fmt.Errorf("%s: %w (mark the scenario %q)", path, err, LevelHTTP)
		}
	}
	for i, e := range sc.Events {
		if err := e.check(len(sc.Deliveries)); err != nil {
			return nil, fmt.Errorf("%s: event %d: %w", path, i+1, err)
		}
	}
	if sc.Expect.Jira != nil {
		for i, w := range sc.Expect.Jira.Writes {
			if w.Field != fakejira.FieldAssignee && w.Field != fakejira.FieldStatus {
				return nil, fmt.Errorf("%s: expect.jira.writes[%d].field %q: want %q or %q", path, i, w.Field, fakejira.FieldAssignee, fakejira.FieldStatus)
			}
		}
	}
	for i, d := range sc.Deliveries {
		if sc.Level == LevelPlugin {
			if err := pluginLevel(d); err != nil {
				return nil, fmt.Errorf("%s: delivery %d: %w (mark the scenario %q)", path, i+1, err, LevelHTTP)
			}
		}
		if len(d.ExpectStatus) == 0 {
			return nil, fmt.Errorf("%s: delivery %d has no expect_status", path, i+1)
		}
		if _, err := parseStatus(d.ExpectStatus); err != nil {
			return nil, fmt.Errorf("%s: delivery %d: %w", path, i+1, err)
		}
		if (d.Payload != nil) == (d.Body != nil) {
			return nil, fmt.Errorf("%s: delivery %d needs exactly one of payload and body", path, i+1)
		}
		n := 0
		for _, set := range []bool{d.Installation != "", d.Token != nil, d.Forge != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: delivery %d needs exactly one of installation, token and forge", path, i+1)
		}
	}
	sc.Path = path
	return &sc, nil
}

// Expand turns files and folders into the scenario files they hold
// (*.json, recursively), in a stable order.
func Expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".json") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// statusExpectation is an exact status or a class ("4xx").
type statusExpectation struct {
	exact int
	class int
}

func parseStatus(raw json.RawMessage) (statusExpectation, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		if n < 100 || n > 599 {
			return statusExpectation{}, fmt.Errorf("expect_status %d is not an HTTP status", n)
		}
		return statusExpectation{exact: n}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && len(s) == 3 && s[0] >= '1' && s[0] <= '5' && strings.ToLower(s[1:]) == "xx" {
		return statusExpectation{class: int(s[0] - '0')}, nil
	}
	return statusExpectation{}, fmt.Errorf("expect_status %s: want a status like 200 or a class like \"4xx\"", raw)
}

func (e statusExpectation) match(status int) bool {
	if e.exact != 0 {
		return status == e.exact
	}
	return status/100 == e.class
}

func (e statusExpectation) String() string {
	if e.exact != 0 {
		return fmt.Sprint(e.exact)
	}
	return fmt.Sprintf("%dxx", e.class)
}

// check validates one step against a scenario of n deliveries.
func (e Event) check(n int) error {
	kinds := 0
	for _, set := range []bool{e.Event != nil, e.JiraEdit != nil, e.Replay != 0} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		return fmt.Errorf("needs exactly one of event, jira_edit and replay")
	case e.After < 0 || e.After > n:
		return fmt.Errorf("after %d: want 0 to %d, the number of deliveries", e.After, n)
	case e.Replay < 0:
		return fmt.Errorf("replay %d: want the stored delivery's position, from 1", e.Replay)
	case e.Event != nil && (len(e.Event) == 0 || e.Event[0] != '{'):
		return fmt.Errorf("event: want a JSON object")
	case e.JiraEdit != nil:
		if e.JiraEdit.Issue == "" {
			return fmt.Errorf("jira_edit needs an issue")
		}
		if len(e.ExpectStatus) > 0 || e.ExpectSummary != nil {
			return fmt.Errorf("a jira_edit has no HTTP answer: no expect_status or expect_summary")
		}
		_, err := e.JiraEdit.assignee()
		return err
	}
	if len(e.ExpectStatus) == 0 {
		return fmt.Errorf("no expect_status")
	}
	_, err := parseStatus(e.ExpectStatus)
	return err
}

// pluginLevelTwoWay refuses, in a plugin-level scenario, the two-way
// parts the conformance kit does not carry: steps other than platform
// events (a person's edit in Jira, a replay), an event the endpoint would
// not answer 202 or whose answer is checked (its members are the
// endpoint's), and the simulated Jira's echo (webhooks sent back to the
// host's endpoint). Platform events, Jira's issues and workflow, the
// outbound settings and the expectations on Jira's side and on the
// stored records are the kit's (docs/CONFORMANCE.md, protocol 2).
func (sc *Scenario) pluginLevelTwoWay() error {
	if sc.Jira.Echo {
		return fmt.Errorf("the simulated Jira's echo is HTTP-level")
	}
	for i, e := range sc.Events {
		switch {
		case e.Event == nil:
			return fmt.Errorf("event %d: jira_edit and replay are HTTP-level", i+1)
		case e.ExpectSummary != nil:
			return fmt.Errorf("event %d: expect_summary (the endpoint's answer) is HTTP-level", i+1)
		}
		if want, err := parseStatus(e.ExpectStatus); err == nil && want.exact != http.StatusAccepted {
			return fmt.Errorf("event %d: expect_status %s: only an event answered 202 is plugin-level", i+1, want)
		}
	}
	return nil
}

// pluginLevel refuses what only the webhook endpoint can do: a delivery of
// a plugin-level scenario is a body sent for a known installation.
func pluginLevel(d Delivery) error {
	switch {
	case d.Installation == "":
		return fmt.Errorf("a plugin-level delivery names its installation (no token or forge)")
	case d.Method != "" || d.TrailingSlash || d.PadBytes != 0:
		return fmt.Errorf("method, trailing_slash and pad_bytes are HTTP-level")
	}
	for k := range d.ExpectSummary {
		if k == "delivery" || k == "duplicate" || k == "next_attempt_at" {
			return fmt.Errorf("expect_summary %q is the pipeline's", k)
		}
	}
	return nil
}
