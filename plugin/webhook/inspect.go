package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/jirasync/jirasync/plugin/abi"
)

// Inspect reads what a host needs of a delivery before processing it: the
// inspect_delivery export's answer. It never fails: a body Parse refuses
// is still a delivery, identified by its bytes (handle_issue_updated then
// reports why it is refused). The Go host calls it natively; other hosts
// call the export.
func Inspect(body []byte) abi.Inspection {
	var in abi.Inspection
	p, err := Parse(body)
	if err != nil {
		in.Unreadable = err.Error()
	} else {
		in.Event, in.IssueID, in.IssueKey, in.ChangelogID, in.Timestamp = p.Event, p.IssueID, p.IssueKey, p.ChangelogID, p.Timestamp
	}
	if in.IssueID != "" && in.ChangelogID != "" {
		// The timestamp as sent, not as a host clamps it: Jira sending the
		// same event again sends the same one.
		in.DedupeKey = abi.DedupeChangelog + in.IssueID + ":" + in.ChangelogID + ":" + strconv.FormatInt(in.Timestamp, 10)
	} else {
		sum := sha256.Sum256(body)
		in.DedupeKey = abi.DedupeBody + hex.EncodeToString(sum[:])
	}
	return in
}
