package store

import (
	"encoding/json"
	"slices"
	"strings"
)

// A Jira issue's webhooks are ordered per field (host/RATIONALE.md,
// "Ordering: a watermark per field of an issue"): a delivery changes the issue's
// assignee, its status, or both, and each field has a watermark of its
// own. Ordered as one, a status-only webhook that finished first made an
// older assignee change of the issue stale, and the assignment never
// reached the groups although the newer delivery said nothing of the
// assignee.

// The fields of an issue a webhook's changes are ordered on.
const (
	FieldAssignee = "assignee"
	FieldStatus   = "status"
)

// StatusMarkSuffix makes the issue id of an issue's status watermark: the
// row (installation, issue id + "#status"). The assignee's is the row of
// the issue id as it is, the one every issue had before statuses were
// synced, so existing marks keep their meaning. Neither a Jira issue id
// (digits) nor an event's (group:<id>:assignee or group:<id>:status,
// EventIssueID) ends in "#status", so no other row is taken for it. Only
// a hand-written body with such an issue id would share one, as one with
// an issue id group:<id>:<field> shares an event's.
const StatusMarkSuffix = "#status"

// SummaryStaleFields is the member a done delivery's stored summary gets
// when some of its fields were stale: their names (FieldAssignee,
// FieldStatus), whose changes were not applied because a newer delivery of
// the issue had applied that field.
const SummaryStaleFields = "stale_fields"

// markedField is one field a delivery is ordered on, and the issue id of
// its watermark row.
type markedField struct{ name, issueID string }

// orderedFields are the fields a done outcome of d is ordered on, the base
// row (d's issue id) first: the assignee field when the outcome is Synced
// or has assignments, the status field when it has statuses. An event's
// issue id names its group's field already (EventIssueID) and it stages
// nothing, so it is ordered on that row alone, as Synced. None: the
// delivery is not ordered.
func orderedFields(d Delivery, o Outcome) []markedField {
	if o.Status != DeliveryDone || d.IssueID == "" {
		return nil
	}
	var fs []markedField
	if o.Synced || len(o.Assignments) > 0 {
		fs = append(fs, markedField{FieldAssignee, d.IssueID})
	}
	if len(o.Statuses) > 0 {
		fs = append(fs, markedField{FieldStatus, d.IssueID + StatusMarkSuffix})
	}
	return fs
}

// Without returns o with the changes of the named fields dropped, and
// those fields added to StaleFields: what is left of a delivery of which
// a newer one has applied these fields already.
func (o Outcome) Without(fields []string) Outcome {
	for _, f := range fields {
		switch f {
		case FieldAssignee:
			o.Synced, o.Assignments = false, nil
		case FieldStatus:
			o.Statuses = nil
		}
	}
	o.StaleFields = append(slices.Clip(o.StaleFields), fields...)
	return o
}

// noteStaleFields adds SummaryStaleFields to a summary, a JSON object (or
// "", taken as an empty one), keeping its members as they are and in
// their order. A summary that is not an object (the pipeline always
// stores one) is kept as it is.
func noteStaleFields(summary string, fields []string) string {
	note, _ := json.Marshal(fields) // strings: cannot fail
	member := `"` + SummaryStaleFields + `":` + string(note)
	body := strings.TrimSpace(summary)
	if body == "" {
		return "{" + member + "}"
	}
	if !strings.HasPrefix(body, "{") || !strings.HasSuffix(body, "}") {
		return summary
	}
	inner := strings.TrimSpace(body[1 : len(body)-1])
	if inner == "" {
		return "{" + member + "}"
	}
	return "{" + inner + "," + member + "}"
}
