// Package outbound is the plugin's logic for platform events (ABI 1.4,
// handle_platform_event): a group's assignee set, or the group resolved
// or unresolved, on the platform becomes the assignee or the status of the
// Jira issues linked to it through the call's installation. It runs inside
// the wasm sandbox and, unchanged, natively in tests.
package outbound

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/echo"
	"github.com/jirasync/jirasync/plugin/groupsync"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// Handle processes one platform event, the input of
// handle_platform_event. As for deliveries, failures the host must act on
// (a malformed event, Jira down or refusing) are returned as *abi.Error;
// an event that is understood but leads to no write is a summary.
func Handle(h groupsync.Host, input []byte) (*abi.EventSummary, error) {
	ev, err := parseEvent(input)
	if err != nil {
		return nil, err
	}
	log := func(level, msg string, fields map[string]any) {
		if fields == nil {
			fields = map[string]any{}
		}
		fields["group"], fields["event_type"], fields["event"] = ev.Group, ev.Type, ev.ID
		h.Log(level, msg, fields)
	}
	sum := &abi.EventSummary{Outcome: abi.OutcomeSynced, Group: ev.Group, Type: ev.Type, Issues: []abi.IssueResult{}}
	ignore := func(reason string) (*abi.EventSummary, error) {
		log("info", "event ignored", map[string]any{"reason": reason})
		sum.Outcome, sum.Reason = abi.OutcomeIgnored, reason
		return sum, nil
	}

	inst, err := h.Installation()
	if err != nil {
		return nil, err
	}
	g, err := h.GroupGet(ev.Group)
	if isNotFound(err) {
		return ignore(abi.ReasonGroupNotFound)
	} else if err != nil {
		return nil, err
	}
	var org *abi.InstallationOrgSettings
	for i := range inst.Organizations {
		if inst.Organizations[i].ID == g.Organization {
			org = &inst.Organizations[i]
		}
	}
	if org == nil || len(g.IssueKeys) == 0 {
		return ignore(abi.ReasonNotLinked)
	}

	// The platform's echo of a change inbound sync made: not carried back
	// to Jira, where it came from, nor to the group's other issues.
	field, value := echo.FieldStatus, abi.GroupResolved
	switch ev.Type {
	case abi.EventGroupAssigned:
		field, value = echo.FieldAssignee, ""
		if ev.Assignee != nil {
			value = *ev.Assignee
		}
	case abi.EventGroupUnresolved:
		value = abi.GroupUnresolved
	}
	if seen, err := echo.Group(g.ID, field).Seen(h, value); err != nil {
		return nil, err
	} else if seen {
		return ignore(abi.ReasonEcho)
	}

	if ev.Type == abi.EventGroupAssigned {
		if !org.OutboundAssignee {
			return ignore(abi.ReasonDirectionOff)
		}
		err = assign(h, ev, g, sum, log)
	} else {
		if !org.OutboundStatus {
			return ignore(abi.ReasonDirectionOff)
		}
		err = transition(h, ev, g, org, sum, log)
	}
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// parseEvent decodes and checks the event. The host has validated it
// already (docs/ABI.md); the plugin does not act on one it cannot read.
// Members it does not know are ignored, as the ABI's versioning asks of
// every reader: a later minor version may add optional ones.
func parseEvent(input []byte) (*abi.PlatformEvent, error) {
	var ev abi.PlatformEvent
	if err := jsonscan.Decode("event", input, &ev, readEvent); err != nil {
		return nil, abi.Errorf(abi.CodeInvalidRequest, "handle_platform_event input: "+err.Error())
	}
	switch {
	case ev.Type != abi.EventGroupAssigned && ev.Type != abi.EventGroupResolved && ev.Type != abi.EventGroupUnresolved:
		return nil, abi.Errorf(abi.CodeInvalidRequest, "handle_platform_event input: type "+quote(ev.Type)+
			" is none of group.assigned, group.resolved, group.unresolved")
	case ev.Group == "":
		return nil, abi.Errorf(abi.CodeInvalidRequest, "handle_platform_event input: group is empty")
	case ev.Assignee != nil && ev.Type != abi.EventGroupAssigned:
		return nil, abi.Errorf(abi.CodeInvalidRequest, "handle_platform_event input: assignee is only for group.assigned")
	case ev.Assignee != nil && *ev.Assignee == "":
		return nil, abi.Errorf(abi.CodeInvalidRequest, "handle_platform_event input: assignee is empty (null unassigns)")
	}
	return &ev, nil
}

// readEvent reads a platform event without encoding/json's reflection
// (ten times dearer in the sandbox; BENCHMARKS.md, issue 13).
var readEvent = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, ev *abi.PlatformEvent) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&ev.ID)
	case "type":
		return true, s.String(&ev.Type)
	case "group":
		return true, s.String(&ev.Group)
	case "assignee":
		return true, s.StringPtr(&ev.Assignee)
	case "occurred_at":
		return true, s.String(&ev.OccurredAt)
	}
	return false, nil
})

func isNotFound(err error) bool {
	var ae *abi.Error
	return errors.As(err, &ae) && ae.Code == abi.CodeNotFound
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	if len(b) > 100 {
		b = append(b[:100], "…"...)
	}
	return string(b)
}

// validIssueKey admits the keys Jira makes (project key, "-", number)
// before one becomes part of a request path: letters, digits, "_" and
// "-". The host's path allow-list would refuse worse, but with a less
// helpful message.
func validIssueKey(key string) bool {
	if key == "" || len(key) > 255 || !strings.Contains(key, "-") {
		return false
	}
	for _, c := range []byte(key) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// jiraIssue is what the plugin reads of an issue before writing to it.
type jiraIssue struct {
	Fields jiraIssueFields `json:"fields"`
}

type jiraIssueFields struct {
	Assignee *jiraUserRef   `json:"assignee"`
	Status   *jiraStatusRef `json:"status"`
}

type jiraUserRef struct {
	Name string `json:"name"`
}

type jiraStatusRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Jira's answers are read without encoding/json, as the ABI's are;
// TestJiraDecodersAgree holds them to it.

var issueReader = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, is *jiraIssue) (bool, error) {
	if string(key) == "fields" {
		return true, readIssueFields(s, &is.Fields)
	}
	return false, nil
})

var readIssueFields = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, f *jiraIssueFields) (bool, error) {
	switch string(key) {
	case "assignee":
		return true, jsonscan.Ptr(s, &f.Assignee, readUserRef)
	case "status":
		return true, jsonscan.Ptr(s, &f.Status, readStatusRef)
	}
	return false, nil
})

var readUserRef = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, u *jiraUserRef) (bool, error) {
	if string(key) == "name" {
		return true, s.String(&u.Name)
	}
	return false, nil
})

var readStatusRef = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, st *jiraStatusRef) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&st.ID)
	case "name":
		return true, s.String(&st.Name)
	}
	return false, nil
})

// readIssue reads an issue's assignee and status. An issue Jira does not
// have (deleted, or out of the account's sight) is skipped with
// issue_not_found: nil, and no error.
func readIssue(h groupsync.Host, key string, sum *abi.EventSummary, log groupsync.LogFunc) (*jiraIssue, error) {
	if !validIssueKey(key) {
		return nil, abi.Errorf(abi.CodeInvalidRequest, "linked issue key "+quote(key)+" is not a Jira issue key")
	}
	resp, err := h.JiraRequest(abi.JiraRequest{Method: "GET", Path: "/rest/api/2/issue/" + key,
		Query: url.Values{"fields": {"assignee,status"}}})
	if err != nil {
		return nil, err
	}
	if resp.Status == 404 {
		skipIssue(sum, key, abi.ReasonIssueNotFound, log)
		return nil, nil
	}
	if err := groupsync.JiraAnswerError(resp, "reading issue "+key); err != nil {
		return nil, err
	}
	var is jiraIssue
	if err := jsonscan.Decode("answer", []byte(resp.Body), &is, issueReader); err != nil {
		return nil, abi.Errorf(abi.CodeJiraRejected, "Jira's answer for issue "+key+" is not an issue: "+err.Error())
	}
	return &is, nil
}

// eachIssue reads each linked issue, in order, and hands it to fn with
// its index; an issue Jira no longer has is skipped. The first failure
// ends the event: a retry starts over, and finds the issues already
// written unchanged.
func eachIssue(h groupsync.Host, keys []string, sum *abi.EventSummary, log groupsync.LogFunc,
	fn func(i int, key string, is *jiraIssue) error) error {
	for i, key := range keys {
		is, err := readIssue(h, key, sum, log)
		if err != nil {
			return err
		}
		if is != nil {
			if err := fn(i, key, is); err != nil {
				return err
			}
		}
	}
	return nil
}

// write sends one change to Jira, recorded first so that its webhook is
// known for the echo when it comes back (it may come before Jira's
// answer). A write Jira refused is not going to echo: its record is
// dropped. One that may have happened (no answer, a 5xx) keeps it.
func write(h groupsync.Host, rec echo.Record, value string, req abi.JiraRequest, what string, log groupsync.LogFunc) error {
	if err := rec.Write(h, value); err != nil {
		return err
	}
	resp, err := h.JiraRequest(req)
	if err != nil {
		return err
	}
	err = groupsync.JiraAnswerError(resp, what)
	var ae *abi.Error
	if errors.As(err, &ae) && ae.Code == abi.CodeJiraRejected {
		if derr := rec.Drop(h); derr != nil {
			// Left to expire: at worst a person's same change within
			// the window is taken for an echo.
			log("warn", "echo record of a refused write not dropped", map[string]any{"error": derr.Error()})
		}
	}
	return err
}

// skipIssue notes an issue left alone, with the reason.
func skipIssue(sum *abi.EventSummary, key, reason string, log groupsync.LogFunc) {
	log("warn", "issue left alone", map[string]any{"issue_key": key, "reason": reason})
	sum.Issues = append(sum.Issues, abi.IssueResult{Key: key, Action: abi.ActionSkipped, Reason: reason})
}
