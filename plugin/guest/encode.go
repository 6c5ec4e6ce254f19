package guest

import (
	"github.com/jirasync/jirasync/plugin/abi"
	w "github.com/jirasync/jirasync/plugin/internal/jsonwrite"
)

// The host functions' requests, written without encoding/json (see
// decode.go for why): each encoder appends its type's members in the order
// and with the omissions of its JSON tags. TestEncodersAgree holds every
// one to encoding/json's bytes on random values with every field set.

// encoder appends one request.
type encoder[T any] func(dst []byte, v *T) ([]byte, error)

func encodeEmpty(dst []byte, _ *struct{}) ([]byte, error) { return append(dst, "{}"...), nil }

func encodeLog(dst []byte, v *abi.LogRequest) ([]byte, error) {
	dst = w.String(w.Member(append(dst, '{'), "level"), v.Level)
	dst = w.String(w.Member(dst, "message"), v.Message)
	if len(v.Fields) > 0 {
		var err error
		if dst, err = w.Map(w.Member(dst, "fields"), v.Fields, w.Any); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func encodeJiraRequest(dst []byte, v *abi.JiraRequest) ([]byte, error) {
	dst = w.String(w.Member(append(dst, '{'), "method"), v.Method)
	dst = w.String(w.Member(dst, "path"), v.Path)
	if len(v.Query) > 0 {
		dst, _ = w.Map(w.Member(dst, "query"), v.Query, func(dst []byte, vs []string) ([]byte, error) {
			return w.Strings(dst, vs), nil
		})
	}
	if v.Body != "" {
		dst = w.String(w.Member(dst, "body"), v.Body)
	}
	if v.Substitute {
		dst = w.Bool(w.Member(dst, "substitute"), true)
	}
	return append(dst, '}'), nil
}

func encodeGroupsLinked(dst []byte, v *abi.GroupsLinkedRequest) ([]byte, error) {
	dst = w.String(w.Member(append(dst, '{'), "issue_key"), v.IssueKey)
	dst = w.Strings(w.Member(dst, "organizations"), v.Organizations)
	return append(dst, '}'), nil
}

func encodeUsersByEmail(dst []byte, v *abi.UsersByEmailRequest) ([]byte, error) {
	return append(w.String(w.Member(append(dst, '{'), "email"), v.Email), '}'), nil
}

func encodeGroupsAssign(dst []byte, v *abi.GroupsAssignRequest) ([]byte, error) {
	dst = w.Slice(w.Member(append(dst, '{'), "assignments"), v.Assignments, func(dst []byte, a abi.Assignment) []byte {
		dst = w.String(w.Member(append(dst, '{'), "group"), a.Group)
		return append(w.StringPtr(w.Member(dst, "assignee"), a.Assignee), '}')
	})
	if len(v.Statuses) > 0 {
		dst = w.Slice(w.Member(dst, "statuses"), v.Statuses, func(dst []byte, c abi.StatusChange) []byte {
			dst = w.String(w.Member(append(dst, '{'), "group"), c.Group)
			return append(w.String(w.Member(dst, "status"), c.Status), '}')
		})
	}
	return append(dst, '}'), nil
}

func encodeStateGet(dst []byte, v *abi.StateGetRequest) ([]byte, error) {
	dst = w.String(w.Member(append(dst, '{'), "key"), v.Key)
	if v.Shared {
		dst = w.Bool(w.Member(dst, "shared"), true)
	}
	return append(dst, '}'), nil
}

func encodeStatePut(dst []byte, v *abi.StatePutRequest) ([]byte, error) {
	dst = w.String(w.Member(append(dst, '{'), "key"), v.Key)
	dst = w.String(w.Member(dst, "value"), v.Value)
	if v.TTLSeconds != 0 {
		dst = w.Int(w.Member(dst, "ttl_seconds"), v.TTLSeconds)
	}
	if v.Delete {
		dst = w.Bool(w.Member(dst, "delete"), true)
	}
	if v.Shared {
		dst = w.Bool(w.Member(dst, "shared"), true)
	}
	return append(dst, '}'), nil
}

func encodeGroupGet(dst []byte, v *abi.GroupGetRequest) ([]byte, error) {
	return append(w.String(w.Member(append(dst, '{'), "group"), v.Group), '}'), nil
}

func encodeUserGet(dst []byte, v *abi.UserGetRequest) ([]byte, error) {
	return append(w.String(w.Member(append(dst, '{'), "user"), v.User), '}'), nil
}

// The exports' outputs on every call: a delivery's and an event's summary,
// an inspection.

func encodeHandleResponse(dst []byte, v *abi.HandleResponse) ([]byte, error) {
	dst = append(dst, '{')
	if v.Summary != nil {
		dst = encodeSummary(w.Member(dst, "summary"), v.Summary)
	}
	return append(encodeFault(dst, v.Fault), '}'), nil
}

func encodeSummary(dst []byte, v *abi.Summary) []byte {
	dst = w.String(w.Member(append(dst, '{'), "outcome"), v.Outcome)
	dst = optionalString(dst, "reason", v.Reason)
	dst = optionalString(dst, "issue_key", v.IssueKey)
	dst = optionalString(dst, "email", v.Email)
	dst = w.Int(w.Member(dst, "assigned"), int64(v.Assigned))
	dst = w.Int(w.Member(dst, "unassigned"), int64(v.Unassigned))
	dst = w.Int(w.Member(dst, "unchanged"), int64(v.Unchanged))
	dst = w.Int(w.Member(dst, "skipped"), int64(v.Skipped))
	if v.Resolved != 0 {
		dst = w.Int(w.Member(dst, "resolved"), int64(v.Resolved))
	}
	if v.Unresolved != 0 {
		dst = w.Int(w.Member(dst, "unresolved"), int64(v.Unresolved))
	}
	dst = w.Slice(w.Member(dst, "groups"), v.Groups, func(dst []byte, g abi.GroupResult) []byte {
		dst = w.String(w.Member(append(dst, '{'), "id"), g.ID)
		dst = w.String(w.Member(dst, "organization"), g.Organization)
		dst = w.String(w.Member(dst, "action"), g.Action)
		dst = w.StringPtr(w.Member(dst, "assignee"), g.Assignee)
		dst = optionalString(dst, "reason", g.Reason)
		return append(optionalString(dst, "status", g.Status), '}')
	})
	return append(dst, '}')
}

func encodeEventResponse(dst []byte, v *abi.EventResponse) ([]byte, error) {
	dst = append(dst, '{')
	if s := v.Summary; s != nil {
		dst = w.String(w.Member(append(w.Member(dst, "summary"), '{'), "outcome"), s.Outcome)
		dst = optionalString(dst, "reason", s.Reason)
		dst = w.String(w.Member(dst, "group"), s.Group)
		dst = w.String(w.Member(dst, "type"), s.Type)
		dst = w.Slice(w.Member(dst, "issues"), s.Issues, func(dst []byte, r abi.IssueResult) []byte {
			dst = w.String(w.Member(append(dst, '{'), "key"), r.Key)
			dst = w.String(w.Member(dst, "action"), r.Action)
			dst = optionalString(dst, "assignee", r.Assignee)
			dst = optionalString(dst, "status", r.Status)
			return append(optionalString(dst, "reason", r.Reason), '}')
		})
		dst = append(dst, '}')
	}
	return append(encodeFault(dst, v.Fault), '}'), nil
}

func encodeInspectResponse(dst []byte, v *abi.InspectResponse) ([]byte, error) {
	dst = append(dst, '{')
	if in := v.Inspection; in != nil {
		dst = w.String(w.Member(append(w.Member(dst, "inspection"), '{'), "event"), in.Event)
		dst = w.String(w.Member(dst, "issue_id"), in.IssueID)
		dst = w.String(w.Member(dst, "issue_key"), in.IssueKey)
		dst = w.String(w.Member(dst, "changelog_id"), in.ChangelogID)
		dst = w.Int(w.Member(dst, "timestamp"), in.Timestamp)
		dst = w.String(w.Member(dst, "dedupe_key"), in.DedupeKey)
		dst = append(optionalString(dst, "unreadable", in.Unreadable), '}')
	}
	return append(encodeFault(dst, v.Fault), '}'), nil
}

// encodeFault appends an answer's "error" member, when it has one.
func encodeFault(dst []byte, f abi.Fault) []byte {
	if e := f.Error; e != nil {
		dst = w.String(w.Member(append(w.Member(dst, "error"), '{'), "code"), string(e.Code))
		dst = append(w.String(w.Member(dst, "message"), e.Message), '}')
	}
	return dst
}

// optionalString appends a member tagged omitempty: left out when "".
func optionalString(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	return w.String(w.Member(dst, name), v)
}
