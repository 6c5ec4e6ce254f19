package outbound

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/echo"
	"github.com/jirasync/jirasync/plugin/groupsync"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// assign makes the group's assignee the assignee of each linked issue:
// the Jira user whose email is one of the platform user's verified ones,
// nobody when the group was unassigned.
func assign(h groupsync.Host, ev *abi.PlatformEvent, g *abi.GroupInfo, sum *abi.EventSummary, log groupsync.LogFunc) error {
	name, skip := "", ""
	if ev.Assignee != nil {
		var err error
		if name, skip, err = jiraUserFor(h, *ev.Assignee, log); err != nil {
			return err
		}
	}
	if skip != "" {
		// No write: which Jira user is meant cannot be told.
		for _, key := range g.IssueKeys {
			skipIssue(sum, key, skip, log)
		}
		return nil
	}
	err := eachIssue(h, g.IssueKeys, sum, log, func(_ int, key string, is *jiraIssue) error {
		had := ""
		if is.Fields.Assignee != nil {
			had = is.Fields.Assignee.Name
		}
		res := abi.IssueResult{Key: key, Action: abi.ActionAssigned, Assignee: name}
		if strings.EqualFold(had, name) {
			// Jira compares user names case-insensitively.
			res.Action = abi.ActionUnchanged
			sum.Issues = append(sum.Issues, res)
			return nil
		}
		body := `{"name":null}`
		if name != "" {
			b, _ := json.Marshal(map[string]string{"name": name})
			body = string(b)
		} else {
			res.Action = abi.ActionUnassigned
		}
		if err := write(h, echo.Jira(key, echo.FieldAssignee), name, abi.JiraRequest{Method: "PUT",
			Path: "/rest/api/2/issue/" + key + "/assignee", Body: body}, "assigning "+key, log); err != nil {
			return err
		}
		sum.Issues = append(sum.Issues, res)
		return nil
	})
	if err != nil {
		return err
	}
	log("info", "issues assigned", map[string]any{"assignee": name, "issues": len(sum.Issues)})
	return nil
}

// jiraUserFor finds the Jira user of a platform user: the one Jira user
// whose emailAddress is one of its verified emails (Jira Server's user
// search matches user names, display names and emails alike, so each
// result's email is compared). skip names why there is none to use.
func jiraUserFor(h groupsync.Host, userID string, log groupsync.LogFunc) (name, skip string, err error) {
	u, err := h.UserGet(userID)
	if isNotFound(err) {
		log("warn", "assignee is not a platform user", map[string]any{"user": userID})
		return "", abi.ReasonNoJiraUser, nil
	} else if err != nil {
		return "", "", err
	}
	names := map[string]bool{}
	var found []string
	for _, e := range u.Emails {
		email := strings.TrimSpace(e.Email)
		if !e.Verified || email == "" {
			// An unverified address proves nothing about who owns it.
			continue
		}
		resp, err := h.JiraRequest(abi.JiraRequest{Method: "GET", Path: "/rest/api/2/user/search",
			Query: url.Values{"username": {email}}})
		if err != nil {
			return "", "", err
		}
		if err := groupsync.JiraAnswerError(resp, "the user search"); err != nil {
			return "", "", err
		}
		var users []jiraUserHit
		if err := jsonscan.Decode("answer", []byte(resp.Body), &users, readUserHits); err != nil {
			return "", "", abi.Errorf(abi.CodeJiraRejected, "Jira's user search answer is not a list of users: "+err.Error())
		}
		for _, ju := range users {
			if ju.Name != "" && strings.EqualFold(strings.TrimSpace(ju.EmailAddress), email) && !names[strings.ToLower(ju.Name)] {
				names[strings.ToLower(ju.Name)] = true
				found = append(found, ju.Name)
			}
		}
	}
	switch len(found) {
	case 0:
		log("warn", "no Jira user has a verified email of the assignee", map[string]any{"user": userID})
		return "", abi.ReasonNoJiraUser, nil
	case 1:
		return found[0], "", nil
	}
	log("warn", "several Jira users have the assignee's verified emails", map[string]any{"user": userID, "jira_users": found})
	return "", abi.ReasonAmbiguousJiraUser, nil
}

// jiraUserHit is what the plugin reads of a user search's users.
type jiraUserHit struct {
	Name         string `json:"name"`
	EmailAddress string `json:"emailAddress"`
}

var readUserHit = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, u *jiraUserHit) (bool, error) {
	switch string(key) {
	case "name":
		return true, s.String(&u.Name)
	case "emailAddress":
		return true, s.String(&u.EmailAddress)
	}
	return false, nil
})

func readUserHits(s *jsonscan.Scanner, users *[]jiraUserHit) error {
	return jsonscan.Slice(s, users, readUserHit)
}
