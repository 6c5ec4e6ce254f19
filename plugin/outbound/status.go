package outbound

import (
	"encoding/json"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/echo"
	"github.com/jirasync/jirasync/plugin/groupsync"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// transition moves each linked issue to the status the organization maps
// its Jira project to for the event (resolve_status on group.resolved,
// unresolve_status on group.unresolved), through the workflow transition
// that leads there; an issue already in a done status (resolving) or out
// of one (unresolving) is unchanged. Every issue's target is settled before the first
// write, so that a mapping missing for one project changes nothing.
func transition(h groupsync.Host, ev *abi.PlatformEvent, g *abi.GroupInfo, org *abi.InstallationOrgSettings,
	sum *abi.EventSummary, log groupsync.LogFunc) error {
	refs := make([]string, len(g.IssueKeys))
	for i, key := range g.IssueKeys {
		ref, err := mappedStatus(ev.Type, key, org)
		if err != nil {
			return err
		}
		refs[i] = ref
	}
	list, err := groupsync.ReadStatuses(h, log, refs...)
	if err != nil {
		return err
	}
	targets := make([]string, len(refs))
	for i, key := range g.IssueKeys {
		var ok bool
		if targets[i], ok = list.Resolve(refs[i]); !ok {
			return abi.Errorf(abi.CodeInvalidRequest, "status "+quote(refs[i])+" of organization "+org.ID+
				"'s mapping for Jira project "+project(key)+" is no status of this Jira")
		}
	}
	err = eachIssue(h, g.IssueKeys, sum, log, func(i int, key string, is *jiraIssue) error {
		target := targets[i]
		res := abi.IssueResult{Key: key, Action: abi.ActionTransitioned, Status: target}
		from := ""
		if is.Fields.Status != nil {
			from = is.Fields.Status.ID
		}
		// An issue already on the side the event asks for (in a done
		// status when resolving, out of one when unresolving) is left
		// where it is, as inbound sync treats done→done and other→other:
		// a group resolved while its issue sits in Closed must not fail
		// for want of a Closed→Done transition, nor reopen anything.
		if from == target || (from != "" && list.IsDone(from) == (ev.Type == abi.EventGroupResolved)) {
			res.Action, res.Status = abi.ActionUnchanged, from
			sum.Issues = append(sum.Issues, res)
			return nil
		}
		id, err := transitionTo(h, key, target)
		if err != nil {
			return err
		}
		if id == "" {
			return abi.Errorf(abi.CodeJiraRejected, "no transition from "+list.Name(from)+" to "+list.Name(target)+" on "+key)
		}
		body, _ := json.Marshal(map[string]any{"transition": map[string]string{"id": id}})
		if err := write(h, echo.Jira(key, echo.FieldStatus), target, abi.JiraRequest{Method: "POST",
			Path: "/rest/api/2/issue/" + key + "/transitions", Body: string(body)}, "transitioning "+key, log); err != nil {
			return err
		}
		sum.Issues = append(sum.Issues, res)
		return nil
	})
	if err != nil {
		return err
	}
	log("info", "issues transitioned", map[string]any{"issues": len(sum.Issues)})
	return nil
}

// project is the Jira project key of an issue key: all before the last "-".
func project(issueKey string) string {
	if i := strings.LastIndexByte(issueKey, '-'); i > 0 {
		return issueKey[:i]
	}
	return issueKey
}

// mappedStatus is the status, by id or name, the organization's mapping
// names for the issue's project and the event.
func mappedStatus(eventType, key string, org *abi.InstallationOrgSettings) (string, error) {
	p := project(key)
	for _, m := range org.StatusMappings {
		if !strings.EqualFold(m.JiraProject, p) {
			continue
		}
		ref := m.ResolveStatus
		if eventType == abi.EventGroupUnresolved {
			ref = m.UnresolveStatus
		}
		if ref = strings.TrimSpace(ref); ref != "" {
			return ref, nil
		}
	}
	what := "resolve_status"
	if eventType == abi.EventGroupUnresolved {
		what = "unresolve_status"
	}
	return "", abi.Errorf(abi.CodeInvalidRequest, "organization "+org.ID+" has outbound status sync on but no "+what+
		" for Jira project "+p+" (issue "+key+"): add it to the organization's status mappings")
}

// transitionTo returns the id of the issue's transition that leads to
// status target, "" when its workflow offers none from where it is.
func transitionTo(h groupsync.Host, key, target string) (string, error) {
	resp, err := h.JiraRequest(abi.JiraRequest{Method: "GET", Path: "/rest/api/2/issue/" + key + "/transitions"})
	if err != nil {
		return "", err
	}
	if err := groupsync.JiraAnswerError(resp, "listing the transitions of "+key); err != nil {
		return "", err
	}
	var doc jiraTransitions
	if err := jsonscan.Decode("answer", []byte(resp.Body), &doc, readTransitions); err != nil {
		return "", abi.Errorf(abi.CodeJiraRejected, "Jira's transitions of "+key+" are not a transition list: "+err.Error())
	}
	for _, t := range doc.Transitions {
		if t.To.ID == target && t.ID != "" {
			return t.ID, nil
		}
	}
	return "", nil
}

// jiraTransitions is what the plugin reads of an issue's transitions.
type jiraTransitions struct {
	Transitions []jiraTransition `json:"transitions"`
}

type jiraTransition struct {
	ID string           `json:"id"`
	To jiraTransitionTo `json:"to"`
}

type jiraTransitionTo struct {
	ID string `json:"id"`
}

var readTransitions = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, l *jiraTransitions) (bool, error) {
	if string(key) == "transitions" {
		return true, jsonscan.Slice(s, &l.Transitions, readTransition)
	}
	return false, nil
})

var readTransition = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, t *jiraTransition) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&t.ID)
	case "to":
		return true, readTransitionTo(s, &t.To)
	}
	return false, nil
})

var readTransitionTo = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, t *jiraTransitionTo) (bool, error) {
	if string(key) == "id" {
		return true, s.String(&t.ID)
	}
	return false, nil
})
