// Package groupsync is the product's logic: from a Jira issue-updated
// webhook to the assignee of every platform group linked to that issue.
// It runs inside the wasm sandbox and, unchanged, natively in tests.
package groupsync

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// emailCacheTTLSeconds bounds how long a Jira user's email, once looked up,
// is reused. A burst of reassignments to one person (a bulk edit) then costs
// one REST call, and an email changed in Jira is picked up within minutes.
const emailCacheTTLSeconds = 600

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
	if !p.ChangesField("assignee") {
		log("debug", "delivery ignored: assignee unchanged", map[string]any{"items": len(p.Items)})
		return ignored(p, abi.ReasonAssigneeUnchanged), nil
	}
	if p.IssueKey == "" {
		return nil, abi.Errorf(abi.CodeInvalidPayload, "assignee changed but the payload has no issue.key")
	}

	inst, err := h.Installation()
	if err != nil {
		return nil, err
	}
	var orgs []string
	for _, o := range inst.Organizations {
		if o.InboundAssignee {
			orgs = append(orgs, o.ID)
		}
	}
	sum := &abi.Summary{Outcome: abi.OutcomeSynced, IssueKey: p.IssueKey, Groups: []abi.GroupResult{}}
	if len(orgs) == 0 {
		log("info", "no organization of this installation has inbound assignee sync enabled", nil)
		return sum, nil
	}
	groups, err := h.GroupsLinked(abi.GroupsLinkedRequest{IssueKey: p.IssueKey, Organizations: orgs})
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		// Checked before any Jira lookup: most Jira issues have no linked
		// group, and they must not cost a REST call each.
		log("debug", "no platform group linked to the issue", nil)
		return sum, nil
	}

	if p.Assignee == nil {
		return apply(h, sum, groups, func(abi.LinkedGroup) (*string, string) { return nil, "" }, log)
	}

	email, err := assigneeEmail(h, p.Assignee, log)
	if err != nil {
		return nil, err
	}
	if email == "" {
		log("warn", "assignee has no email address; nothing changed", map[string]any{
			"jira_user": p.Assignee.Name, "jira_user_key": p.Assignee.Key})
		return &abi.Summary{Outcome: abi.OutcomeNoEmail, IssueKey: p.IssueKey, Groups: []abi.GroupResult{}}, nil
	}
	sum.Email = email

	users, err := h.UsersByEmail(email)
	if err != nil {
		return nil, err
	}
	var verified []abi.PlatformUser
	for _, u := range users {
		if u.Verified {
			verified = append(verified, u)
		}
	}
	return apply(h, sum, groups, func(g abi.LinkedGroup) (*string, string) {
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
}

// apply decides each group's new assignee with choose, sends them in one
// call, and fills in the summary. choose answers a skip reason when the
// group is to be left alone.
//
// Groups that already have their assignee are sent too: the host applies
// assignments when it commits the delivery, and by then another delivery
// (on another worker or host) may have changed the group. What is sent is
// the state this delivery means, not the difference from what it read.
func apply(h Host, sum *abi.Summary, groups []abi.LinkedGroup,
	choose func(abi.LinkedGroup) (*string, string), log func(string, string, map[string]any)) (*abi.Summary, error) {
	var assignments []abi.Assignment
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
			assignments = append(assignments, abi.Assignment{Group: g.ID, Assignee: target})
			res.Action = abi.ActionUnchanged
			sum.Unchanged++
		default:
			assignments = append(assignments, abi.Assignment{Group: g.ID, Assignee: target})
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
	if len(assignments) > 0 {
		if _, err := h.GroupsAssign(abi.GroupsAssignRequest{Assignments: assignments}); err != nil {
			return nil, err
		}
	}
	log("info", "groups synced", map[string]any{"assigned": sum.Assigned, "unassigned": sum.Unassigned,
		"unchanged": sum.Unchanged, "skipped": sum.Skipped})
	return sum, nil
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
func assigneeEmail(h Host, u *webhook.User, log func(string, string, map[string]any)) (string, error) {
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
	switch {
	case resp.Status == 404:
		log("warn", "assignee not found in Jira", map[string]any{param: value})
		return "", nil
	case resp.Status == 401 || resp.Status == 403:
		return "", abi.Errorf(abi.CodeJiraRejected, "Jira refused the user lookup ("+
			statusText(resp.Status)+"): "+resp.Body)
	case resp.Status >= 500:
		return "", abi.Errorf(abi.CodeUnavailable, "Jira answered "+statusText(resp.Status)+" to the user lookup")
	case resp.Status != 200:
		return "", abi.Errorf(abi.CodeJiraRejected, "Jira answered "+statusText(resp.Status)+" to the user lookup: "+resp.Body)
	}
	var ju webhook.User
	if err := json.Unmarshal([]byte(resp.Body), &ju); err != nil {
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

func statusText(code int) string { return "HTTP " + strconv.Itoa(code) }

// AsABIError turns any error into the form that crosses the boundary.
func AsABIError(err error) *abi.Error {
	var ae *abi.Error
	if errors.As(err, &ae) {
		return ae
	}
	return abi.Errorf(abi.CodeInternal, err.Error())
}
