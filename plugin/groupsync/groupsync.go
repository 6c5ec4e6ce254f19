// Package groupsync is the product's logic: from a Jira issue-updated
// webhook to the assignee of every platform group linked to that issue.
// It runs inside the wasm sandbox and, unchanged, natively in tests.
package groupsync

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/echo"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// emailCacheTTLSeconds bounds how long a Jira user's email, once looked up,
// is reused. A burst of reassignments to one person (a bulk edit) then costs
// one REST call, and an email changed in Jira is picked up within minutes.
const emailCacheTTLSeconds = 600

// LogFunc logs one line through the host, with the plugin's own fields
// (the issue, the group) added.
type LogFunc = func(level, message string, fields map[string]any)

// Handle processes one delivery, the Jira webhook body. Failures that the host must act on (a bad
// payload, Jira or storage unavailable) are returned as *abi.Error; a
// delivery that is understood but leads to no change is a Summary.
func Handle(h Host, body []byte) (*abi.Summary, error) {
	p, err := webhook.Parse(body)
	if err != nil {
		return nil, abi.Errorf(abi.CodeInvalidPayload, err.Error())
	}
	// The host adds the installation and delivery to every line; the
	// issue is the plugin's to add.
	log := func(level, msg string, fields map[string]any) {
		if fields == nil {
			fields = map[string]any{}
		}
		if p.IssueKey != "" {
			fields["issue_key"] = p.IssueKey
		}
		h.Log(level, msg, fields)
	}

	if p.Event != webhook.EventIssueUpdated {
		log("info", "event ignored", map[string]any{"event": p.Event})
		return ignored(p, abi.ReasonUnsupportedEvent), nil
	}
	if len(p.Items) == 0 {
		log("info", "delivery ignored: no changelog", nil)
		return ignored(p, abi.ReasonNoChangelog), nil
	}
	assigneeChanged := p.ChangesField("assignee")
	statusItem, statusChanged := p.Item("status")
	if !assigneeChanged && !statusChanged {
		log("debug", "delivery ignored: assignee unchanged", map[string]any{"items": len(p.Items)})
		return ignored(p, abi.ReasonAssigneeUnchanged), nil
	}
	if p.IssueKey == "" && assigneeChanged {
		return nil, abi.Errorf(abi.CodeInvalidPayload, "assignee changed but the payload has no issue.key")
	}

	inst, err := h.Installation()
	if err != nil {
		return nil, err
	}
	var statusOrgs []string
	assigneeSynced := false
	for _, o := range inst.Organizations {
		if statusChanged && o.InboundStatus {
			statusOrgs = append(statusOrgs, o.ID)
		}
		assigneeSynced = assigneeSynced || o.InboundAssignee
	}
	if !assigneeChanged && len(statusOrgs) == 0 {
		// A status change where no organization syncs statuses is what it
		// was before status sync: nothing to do.
		log("debug", "delivery ignored: status changed, no organization has inbound status sync on", nil)
		return ignored(p, abi.ReasonAssigneeUnchanged), nil
	}
	if p.IssueKey == "" {
		return nil, abi.Errorf(abi.CodeInvalidPayload, "status changed but the payload has no issue.key")
	}

	// Echoes of jirasync's own writes to the issue (outbound sync) are
	// not applied again, nor passed on to the issue's other groups. Only
	// asked when the field would be synced: the check is a state read.
	var echoed []string
	if assigneeChanged && assigneeSynced {
		seen, err := echo.Jira(p.IssueKey, echo.FieldAssignee).Seen(h, jiraUserName(p.Assignee))
		if err != nil {
			return nil, err
		}
		if seen {
			assigneeChanged, echoed = false, append(echoed, echo.FieldAssignee)
		}
	}
	if len(statusOrgs) > 0 {
		seen, err := echo.Jira(p.IssueKey, echo.FieldStatus).Seen(h, currentStatus(p, statusItem))
		if err != nil {
			return nil, err
		}
		if seen {
			statusOrgs, echoed = nil, append(echoed, echo.FieldStatus)
		}
	}
	if len(echoed) > 0 {
		log("info", "the echo of jirasync's own change to the issue: not applied", map[string]any{"fields": echoed})
		if !assigneeChanged && len(statusOrgs) == 0 {
			return ignored(p, abi.ReasonEcho), nil
		}
	}

	sum := &abi.Summary{Outcome: abi.OutcomeSynced, IssueKey: p.IssueKey, Groups: []abi.GroupResult{}}
	var req abi.GroupsAssignRequest
	if assigneeChanged {
		if err := syncAssignee(h, p, inst, sum, &req, log); err != nil {
			return nil, err
		}
	}
	var statusChanges []abi.StatusChange
	if len(statusOrgs) > 0 {
		if statusChanges, err = syncStatus(h, p, statusItem, statusOrgs, sum, &req, log); err != nil {
			return nil, err
		}
	}
	if err := recordGroupWrites(h, sum, statusChanges); err != nil {
		return nil, err
	}
	// One call for both: the host stages them together, and applies them
	// all or none when the delivery commits.
	if len(req.Assignments)+len(req.Statuses) > 0 {
		if _, err := h.GroupsAssign(req); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// jiraUserName is how an issue's assignee is compared with an echo
// record: the Jira Server user name outbound sync writes, "" for none.
func jiraUserName(u *webhook.User) string {
	if u == nil {
		return ""
	}
	return u.Name
}

// recordGroupWrites records, host-wide, each change this delivery makes to
// a group, before it is staged: a platform that sends an event for it
// sends it to every installation, and each must know it for the echo.
// Groups left as they were get no record: no event comes back for them.
func recordGroupWrites(h Host, sum *abi.Summary, statuses []abi.StatusChange) error {
	for _, g := range sum.Groups {
		if g.Action != abi.ActionAssigned && g.Action != abi.ActionUnassigned {
			continue
		}
		value := ""
		if g.Assignee != nil {
			value = *g.Assignee
		}
		if err := echo.Group(g.ID, echo.FieldAssignee).Write(h, value); err != nil {
			return err
		}
	}
	for _, c := range statuses {
		if err := echo.Group(c.Group, echo.FieldStatus).Write(h, c.Status); err != nil {
			return err
		}
	}
	return nil
}

// syncAssignee decides the linked groups' assignee from the issue's
// (organizations with inbound assignee sync on), adding the assignments
// to req and the outcome to sum.
func syncAssignee(h Host, p *webhook.IssueUpdated, inst *abi.InstallationResponse, sum *abi.Summary,
	req *abi.GroupsAssignRequest, log LogFunc) error {
	var orgs []string
	for _, o := range inst.Organizations {
		if o.InboundAssignee {
			orgs = append(orgs, o.ID)
		}
	}
	if len(orgs) == 0 {
		log("info", "no organization of this installation has inbound assignee sync enabled", nil)
		return nil
	}
	groups, err := h.GroupsLinked(abi.GroupsLinkedRequest{IssueKey: p.IssueKey, Organizations: orgs})
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		// Checked before any Jira lookup: most Jira issues have no linked
		// group, and they must not cost a REST call each.
		log("debug", "no platform group linked to the issue", nil)
		return nil
	}

	if p.Assignee == nil {
		apply(sum, req, groups, func(abi.LinkedGroup) (*string, string) { return nil, "" }, log)
		return nil
	}

	email, err := assigneeEmail(h, p.Assignee, log)
	if err != nil {
		return err
	}
	if email == "" {
		log("warn", "assignee has no email address; nothing changed", map[string]any{
			"jira_user": p.Assignee.Name, "jira_user_key": p.Assignee.Key})
		sum.Outcome = abi.OutcomeNoEmail
		return nil
	}
	sum.Email = email

	users, err := h.UsersByEmail(email)
	if err != nil {
		return err
	}
	var verified []abi.PlatformUser
	for _, u := range users {
		if u.Verified {
			verified = append(verified, u)
		}
	}
	apply(sum, req, groups, func(g abi.LinkedGroup) (*string, string) {
		for _, u := range verified {
			for _, proj := range u.Projects {
				if proj == g.Project {
					id := u.ID
					return &id, ""
				}
			}
		}
		return nil, abi.ReasonAssigneeNotFound
	}, log)
	return nil
}

// apply decides each group's new assignee with choose, adds them to req,
// and fills in the summary. choose answers a skip reason when the group
// is to be left alone.
//
// Groups that already have their assignee are sent too: the host applies
// assignments when it commits the delivery, and by then another delivery
// (on another worker or host) may have changed the group. What is sent is
// the state this delivery means, not the difference from what it read.
func apply(sum *abi.Summary, req *abi.GroupsAssignRequest, groups []abi.LinkedGroup,
	choose func(abi.LinkedGroup) (*string, string), log LogFunc) {
	for _, g := range groups {
		target, skip := choose(g)
		res := abi.GroupResult{ID: g.ID, Organization: g.Organization, Assignee: target}
		switch {
		case skip != "":
			res.Action, res.Reason, res.Assignee = abi.ActionSkipped, skip, g.Assignee
			sum.Skipped++
			log("warn", "group left alone: no verified platform user with that email is a member of its project",
				map[string]any{"group": g.ID, "project": g.Project, "organization": g.Organization, "reason": skip})
		case sameAssignee(g.Assignee, target):
			req.Assignments = append(req.Assignments, abi.Assignment{Group: g.ID, Assignee: target})
			res.Action = abi.ActionUnchanged
			sum.Unchanged++
		default:
			req.Assignments = append(req.Assignments, abi.Assignment{Group: g.ID, Assignee: target})
			if target == nil {
				res.Action = abi.ActionUnassigned
				sum.Unassigned++
			} else {
				res.Action = abi.ActionAssigned
				sum.Assigned++
			}
		}
		sum.Groups = append(sum.Groups, res)
	}
	log("info", "groups synced", map[string]any{"assigned": sum.Assigned, "unassigned": sum.Unassigned,
		"unchanged": sum.Unchanged, "skipped": sum.Skipped})
}

func sameAssignee(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func ignored(p *webhook.IssueUpdated, reason string) *abi.Summary {
	return &abi.Summary{Outcome: abi.OutcomeIgnored, Reason: reason, IssueKey: p.IssueKey, Groups: []abi.GroupResult{}}
}

// assigneeEmail returns the assignee's email: from the payload when Jira
// included it, else from Jira's REST API (Jira hides emailAddress in
// payloads when email visibility is restricted). "" means none is to be
// had; an error means the lookup could not be made.
func assigneeEmail(h Host, u *webhook.User, log LogFunc) (string, error) {
	if e := strings.TrimSpace(u.EmailAddress); e != "" {
		return e, nil
	}
	param, value := "username", u.Name
	if value == "" {
		param, value = "key", u.Key
	}
	if value == "" {
		log("warn", "assignee has neither name nor key; cannot look up an email", nil)
		return "", nil
	}
	cacheKey := "jira-user-email:" + param + ":" + value
	if v, found, err := h.StateGet(cacheKey); err == nil && found {
		return v, nil
	} else if err != nil {
		// The cache is an optimisation; a failing store must not stop sync.
		log("warn", "email cache unavailable", map[string]any{"error": err.Error()})
	}

	resp, err := h.JiraRequest(abi.JiraRequest{Method: "GET", Path: "/rest/api/2/user",
		Query: url.Values{param: {value}}})
	if err != nil {
		return "", err
	}
	if resp.Status == 404 {
		log("warn", "assignee not found in Jira", map[string]any{param: value})
		return "", nil
	}
	if err := JiraAnswerError(resp, "the user lookup"); err != nil {
		return "", err
	}
	var ju webhook.User
	if err := jsonscan.Decode("answer", []byte(resp.Body), &ju, readJiraUser); err != nil {
		return "", abi.Errorf(abi.CodeJiraRejected, "Jira's user lookup answer is not a user: "+err.Error())
	}
	email := strings.TrimSpace(ju.EmailAddress)
	if email != "" {
		if err := h.StatePut(abi.StatePutRequest{Key: cacheKey, Value: email, TTLSeconds: emailCacheTTLSeconds}); err != nil {
			log("warn", "email cache unavailable", map[string]any{"error": err.Error()})
		}
	}
	return email, nil
}

// readJiraUser reads the user of a user lookup (/rest/api/2/user).
var readJiraUser = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, u *webhook.User) (bool, error) {
	switch string(key) {
	case "name":
		return true, s.String(&u.Name)
	case "key":
		return true, s.String(&u.Key)
	case "emailAddress":
		return true, s.String(&u.EmailAddress)
	case "displayName":
		return true, s.String(&u.DisplayName)
	}
	return false, nil
})

func statusText(code int) string { return "HTTP " + strconv.Itoa(code) }

// JiraAnswerError sorts a Jira answer: any 2xx is success; a refusal
// (401, 403) needs the operator, a 5xx may pass, anything else is a
// refusal. A refusal carries Jira's words (its errorMessages and errors
// when the body is Jira's error document, else the body).
func JiraAnswerError(resp *abi.JiraResponse, what string) error {
	switch {
	case resp.Status >= 200 && resp.Status < 300:
		return nil
	case resp.Status == 401 || resp.Status == 403:
		return abi.Errorf(abi.CodeJiraRejected, "Jira refused "+what+" ("+statusText(resp.Status)+"): "+jiraWords(resp.Body))
	case resp.Status >= 500:
		return abi.Errorf(abi.CodeUnavailable, "Jira answered "+statusText(resp.Status)+" to "+what)
	}
	return abi.Errorf(abi.CodeJiraRejected, "Jira answered "+statusText(resp.Status)+" to "+what+": "+jiraWords(resp.Body))
}

// jiraWords is what Jira said in an error body: {"errorMessages": [...],
// "errors": {"field": "message"}} joined, or the body as it is.
func jiraWords(body string) string {
	var doc struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil {
		return body
	}
	words := doc.ErrorMessages
	fields := make([]string, 0, len(doc.Errors))
	for f := range doc.Errors {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		words = append(words, f+": "+doc.Errors[f])
	}
	if len(words) == 0 {
		return body
	}
	return strings.Join(words, "; ")
}

// AsABIError turns any error into the form that crosses the boundary.
func AsABIError(err error) *abi.Error {
	var ae *abi.Error
	if errors.As(err, &ae) {
		return ae
	}
	return abi.Errorf(abi.CodeInternal, err.Error())
}
