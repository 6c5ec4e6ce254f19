package groupsync

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
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

// StatusList is what the plugin keeps of GET /rest/api/2/status: every
// status id, those of the done category, and each one's name (outbound
// status mappings may name a status rather than give its id).
type StatusList struct {
	All   []string          `json:"all"`
	Done  []string          `json:"done"`
	Names map[string]string `json:"names,omitempty"` // id → name
}

func (l *StatusList) knows(id string) bool { return slices.Contains(l.All, id) }
func (l *StatusList) done(id string) bool  { return slices.Contains(l.Done, id) }

// IsDone reports whether status id is in Jira's "done" category: an issue
// in it is resolved, whatever the status is called.
func (l *StatusList) IsDone(id string) bool { return l.done(id) }

// Resolve returns the id of the status ref names, by id or else by name
// (case-insensitively, as Jira compares status names).
func (l *StatusList) Resolve(ref string) (string, bool) {
	if l.knows(ref) {
		return ref, true
	}
	for id, name := range l.Names {
		if strings.EqualFold(name, ref) {
			return id, true
		}
	}
	return "", false
}

// Name returns a status's name for messages, its id when it has none.
func (l *StatusList) Name(id string) string {
	if n := l.Names[id]; n != "" {
		return n
	}
	return id
}

// syncStatus resolves the linked groups (in organizations with inbound
// status sync on) when the issue moved into a done status, and unresolves
// them when it moved out of one; a move within done or within the other
// statuses changes nothing. The changelog's from and to ids say whether
// the issue crossed; the status set is read from issue.fields.status, the
// issue as it is.
func syncStatus(h Host, p *webhook.IssueUpdated, item webhook.ChangelogItem, orgs []string, sum *abi.Summary,
	req *abi.GroupsAssignRequest, log LogFunc) (changed []abi.StatusChange, err error) {
	current := currentStatus(p, item)
	list, err := ReadStatuses(h, log, item.From, item.To, current)
	if err != nil {
		return nil, err
	}
	if list.done(item.From) == list.done(item.To) {
		log("debug", "status changed without entering or leaving done", map[string]any{"from": item.From, "to": item.To})
		return nil, nil
	}
	target := abi.GroupUnresolved
	if list.done(current) || (!list.knows(current) && p.Status != nil && p.Status.CategoryKey == statusCategoryDone) {
		target = abi.GroupResolved
	}
	groups, err := h.GroupsLinked(abi.GroupsLinkedRequest{IssueKey: p.IssueKey, Organizations: orgs})
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		// Sent even when the group has it already: what is sent is the
		// state the delivery means (see apply).
		c := abi.StatusChange{Group: g.ID, Status: target}
		req.Statuses = append(req.Statuses, c)
		switch had := g.Status; {
		case had == target || had == "" && target == abi.GroupUnresolved: // already so
		case target == abi.GroupResolved:
			sum.Resolved++
			changed = append(changed, c)
		default:
			sum.Unresolved++
			changed = append(changed, c)
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
	return changed, nil
}

// currentStatus is the id of the status the issue is in now:
// issue.fields.status's, else the changelog's new value.
func currentStatus(p *webhook.IssueUpdated, item webhook.ChangelogItem) string {
	if p.Status != nil && p.Status.ID != "" {
		return p.Status.ID
	}
	return item.To
}

// ReadStatuses returns Jira's statuses, from the plugin's cache when it
// resolves every status asked about (by id or name), else read from Jira
// (and cached).
func ReadStatuses(h Host, log LogFunc, refs ...string) (*StatusList, error) {
	if v, found, err := h.StateGet(statusCacheKey); err == nil && found {
		var l StatusList
		if jsonscan.Decode("status cache", []byte(v), &l, readStatusList) == nil && !slices.ContainsFunc(refs, func(ref string) bool {
			_, ok := l.Resolve(ref)
			return ref != "" && !ok
		}) {
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
	if err := JiraAnswerError(resp, "the status list"); err != nil {
		return nil, err
	}
	var statuses []jiraStatus
	if err := jsonscan.Decode("answer", []byte(resp.Body), &statuses, readStatuses); err != nil {
		return nil, abi.Errorf(abi.CodeJiraRejected, "Jira's status list is not a list of statuses: "+err.Error())
	}
	l := &StatusList{All: []string{}, Done: []string{}, Names: map[string]string{}}
	for _, st := range statuses {
		l.All = append(l.All, st.ID)
		if st.Name != "" {
			l.Names[st.ID] = st.Name
		}
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

// The status list and its cache are read on every status change, without
// encoding/json's reflection (ten times dearer in the sandbox;
// BENCHMARKS.md, issue 13). TestStatusDecodersAgree holds them to it.

var readStatusList = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, l *StatusList) (bool, error) {
	switch string(key) {
	case "all":
		return true, s.Strings(&l.All)
	case "done":
		return true, s.Strings(&l.Done)
	case "names":
		return true, s.StringMap(&l.Names)
	}
	return false, nil
})

// jiraStatus is what the plugin reads of one of Jira's statuses.
type jiraStatus struct {
	ID             string             `json:"id"`
	Name           string             `json:"name"`
	StatusCategory jiraStatusCategory `json:"statusCategory"`
}

type jiraStatusCategory struct {
	Key string `json:"key"`
}

var readStatus = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, st *jiraStatus) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&st.ID)
	case "name":
		return true, s.String(&st.Name)
	case "statusCategory":
		return true, readStatusCategory(s, &st.StatusCategory)
	}
	return false, nil
})

var readStatusCategory = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, c *jiraStatusCategory) (bool, error) {
	if string(key) == "key" {
		return true, s.String(&c.Key)
	}
	return false, nil
})

func readStatuses(s *jsonscan.Scanner, l *[]jiraStatus) error {
	return jsonscan.Slice(s, l, readStatus)
}
