package groupsync

import (
	"encoding/json"
	"slices"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// statusCacheKey and statusCacheTTLSeconds: Jira's workflow statuses,
// once read, are reused for an hour. Statuses are rarely added or
// recategorised; one this list does not know makes the plugin read it
// again at once.
const (
	statusCacheKey        = "jira-statuses"
	statusCacheTTLSeconds = 3600
)

// statusCategoryDone is the statusCategory key of Jira's "done" statuses:
// an issue in one of them is resolved, whatever the status is called.
const statusCategoryDone = "done"

// statusList is what the plugin keeps of GET /rest/api/2/status: every
// status id, and those of the done category.
type statusList struct {
	All  []string `json:"all"`
	Done []string `json:"done"`
}

func (l *statusList) knows(id string) bool { return slices.Contains(l.All, id) }
func (l *statusList) done(id string) bool  { return slices.Contains(l.Done, id) }

// syncStatus resolves the linked groups (in organizations with inbound
// status sync on) when the issue moved into a done status, and unresolves
// them when it moved out of one; a move within done or within the other
// statuses changes nothing. The changelog's from and to ids say whether
// the issue crossed; the status set is read from issue.fields.status, the
// issue as it is.
func syncStatus(h Host, p *webhook.IssueUpdated, item webhook.ChangelogItem, orgs []string, sum *abi.Summary,
	req *abi.GroupsAssignRequest, log func(string, string, map[string]any)) error {
	current := item.To
	if p.Status != nil && p.Status.ID != "" {
		current = p.Status.ID
	}
	list, err := jiraStatuses(h, log, item.From, item.To, current)
	if err != nil {
		return err
	}
	if list.done(item.From) == list.done(item.To) {
		log("debug", "status changed without entering or leaving done", map[string]any{"from": item.From, "to": item.To})
		return nil
	}
	target := abi.GroupUnresolved
	if list.done(current) || (!list.knows(current) && p.Status != nil && p.Status.CategoryKey == statusCategoryDone) {
		target = abi.GroupResolved
	}
	groups, err := h.GroupsLinked(abi.GroupsLinkedRequest{IssueKey: p.IssueKey, Organizations: orgs})
	if err != nil {
		return err
	}
	for _, g := range groups {
		// Sent even when the group has it already: what is sent is the
		// state the delivery means (see apply).
		req.Statuses = append(req.Statuses, abi.StatusChange{Group: g.ID, Status: target})
		switch had := g.Status; {
		case had == target || had == "" && target == abi.GroupUnresolved: // already so
		case target == abi.GroupResolved:
			sum.Resolved++
		default:
			sum.Unresolved++
		}
		i := slices.IndexFunc(sum.Groups, func(r abi.GroupResult) bool { return r.ID == g.ID })
		if i < 0 {
			sum.Groups = append(sum.Groups, abi.GroupResult{ID: g.ID, Organization: g.Organization,
				Action: abi.ActionUnchanged, Assignee: g.Assignee})
			sum.Unchanged++
			i = len(sum.Groups) - 1
		}
		sum.Groups[i].Status = target
	}
	log("info", "group statuses synced", map[string]any{"status": target, "groups": len(groups),
		"resolved": sum.Resolved, "unresolved": sum.Unresolved})
	return nil
}

// jiraStatuses returns Jira's statuses, from the plugin's cache when it
// knows every id asked about, else read from Jira (and cached).
func jiraStatuses(h Host, log func(string, string, map[string]any), ids ...string) (*statusList, error) {
	if v, found, err := h.StateGet(statusCacheKey); err == nil && found {
		var l statusList
		if json.Unmarshal([]byte(v), &l) == nil && !slices.ContainsFunc(ids, func(id string) bool { return id != "" && !l.knows(id) }) {
			return &l, nil
		}
	} else if err != nil {
		// The cache is an optimisation; a failing store must not stop sync.
		log("warn", "status cache unavailable", map[string]any{"error": err.Error()})
	}
	resp, err := h.JiraRequest(abi.JiraRequest{Method: "GET", Path: "/rest/api/2/status"})
	if err != nil {
		return nil, err
	}
	if err := jiraAnswerError(resp, "the status list"); err != nil {
		return nil, err
	}
	var statuses []struct {
		ID             string `json:"id"`
		StatusCategory struct {
			Key string `json:"key"`
		} `json:"statusCategory"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &statuses); err != nil {
		return nil, abi.Errorf(abi.CodeJiraRejected, "Jira's status list is not a list of statuses: "+err.Error())
	}
	l := &statusList{All: []string{}, Done: []string{}}
	for _, st := range statuses {
		l.All = append(l.All, st.ID)
		if st.StatusCategory.Key == statusCategoryDone {
			l.Done = append(l.Done, st.ID)
		}
	}
	b, _ := json.Marshal(l)
	if err := h.StatePut(abi.StatePutRequest{Key: statusCacheKey, Value: string(b), TTLSeconds: statusCacheTTLSeconds}); err != nil {
		log("warn", "status cache unavailable", map[string]any{"error": err.Error()})
	}
	return l, nil
}
