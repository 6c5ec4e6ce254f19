package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// Watermark is the newest Jira timestamp applied to a field of an issue
// (FieldAssignee, FieldStatus): a delivery's change of that field with an
// older one is stale. Operators read it when an issue's deliveries keep
// coming out stale, and reset it. An issue has up to one per field; a
// group's events (issue id group:<id>:<field>) one per field too.
type Watermark struct {
	Installation string `json:"installation"`
	IssueID      string `json:"issue_id"`
	// Field is the field the mark orders: the assignee's mark is the row
	// of the issue id, the status's that of the issue id with
	// StatusMarkSuffix (shown here without it).
	Field         string `json:"field"`
	IssueKey      string `json:"issue_key"` // of the delivery that set it; "" if that one is gone
	JiraTimestamp int64  `json:"jira_timestamp"`
	Delivery      int64  `json:"delivery"` // the delivery that set it
}

// WatermarkFilter selects watermarks. IssueKey matches the issues that
// have a stored delivery with that key: watermarks are kept by issue id,
// which survives a key change, but operators know issues by key.
type WatermarkFilter struct {
	Installation string
	IssueID      string
	IssueKey     string
	Limit        int // at most 500; 0 means 50
}

// ErrNoFilter is returned by ResetWatermarks when the filter does not name
// an installation and an issue: a reset never sweeps a whole table.
//
// IssueID and IssueKey select all of an issue's watermarks, one per field.
var ErrNoFilter = errors.New("an installation and an issue id or key are required")

// where returns the filter's condition on issue_watermarks (aliased w)
// and its parameters. Rows that hold no mark yet (made for a lock or a
// hold, lockWatermark) are not watermarks, and never selected.
func (f WatermarkFilter) where() (string, []any) {
	conds := []string{"w.delivery_id != 0"}
	var args []any
	if f.Installation != "" {
		conds = append(conds, "w.installation_id = ?")
		args = append(args, f.Installation)
	}
	if f.IssueID != "" {
		conds = append(conds, "w.issue_id IN (?, ?)")
		args = append(args, f.IssueID, f.IssueID+StatusMarkSuffix)
	}
	if f.IssueKey != "" {
		// deliveries_by_issue (installation_id, issue_key, id) serves it.
		conds = append(conds, `EXISTS (SELECT 1 FROM deliveries k WHERE k.installation_id = w.installation_id
			AND k.issue_key = ? AND (k.issue_id = w.issue_id OR k.issue_id || '`+StatusMarkSuffix+`' = w.issue_id))`)
		args = append(args, f.IssueKey)
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Watermarks lists watermarks, the furthest in the future first: an issue
// frozen by a timestamp from the future is at the top.
func (s *Store) Watermarks(ctx context.Context, f WatermarkFilter) ([]Watermark, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	where, args := f.where()
	ms, _, err := readWatermarks(s.db.QueryContext(ctx, selectWatermarks+where+`
		ORDER BY w.jira_timestamp DESC, w.installation_id, w.issue_id LIMIT ?`, append(args, f.Limit)...))
	return ms, err
}

// selectWatermarks reads watermarks (w) with the issue key of the delivery
// that set each, for readWatermarks; a WHERE and an ORDER BY follow.
const selectWatermarks = `SELECT w.installation_id, w.issue_id, COALESCE(d.issue_key, ''), w.jira_timestamp, w.delivery_id
	FROM issue_watermarks w LEFT JOIN deliveries d ON d.id = w.delivery_id`

// readWatermarks reads the rows of selectWatermarks and closes them. It
// returns the watermarks and, for each, its row's issue id as stored.
func readWatermarks(rows *sql.Rows, err error) ([]Watermark, []string, error) {
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out, ids := []Watermark{}, []string{}
	for rows.Next() {
		var m Watermark
		var id string
		if err := rows.Scan(&m.Installation, &id, &m.IssueKey, &m.JiraTimestamp, &m.Delivery); err != nil {
			return nil, nil, err
		}
		m.IssueID, m.Field = markField(id)
		out, ids = append(out, m), append(ids, id)
	}
	return out, ids, rows.Err()
}

// ResetWatermarks removes the watermarks the filter selects, which must
// name an installation and an issue, and returns them: the issue's next
// delivery applies whatever its timestamp, and sets a new one. A delivery
// finishing at that moment either sees the old mark (it committed first)
// or makes a new one: the row lock orders them.
func (s *Store) ResetWatermarks(ctx context.Context, f WatermarkFilter) ([]Watermark, error) {
	if f.Installation == "" || (f.IssueID == "" && f.IssueKey == "") {
		return nil, ErrNoFilter
	}
	var out []Watermark
	err := s.tx(ctx, func(tx runner) error {
		where, args := f.where()
		// Read with the keys first (DELETE ... RETURNING cannot join),
		// locked, then delete exactly those rows.
		var ids []string
		var err error
		out, ids, err = readWatermarks(tx.QueryContext(ctx, selectWatermarks+where+`
			ORDER BY w.issue_id`+s.dialect.lockRows("w"), args...))
		if err != nil {
			return err
		}
		for i, m := range out {
			if _, err := tx.ExecContext(ctx, `DELETE FROM issue_watermarks WHERE installation_id = ? AND issue_id = ?`,
				m.Installation, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// markField reads a watermark row's issue id: the issue's (or event
// group's) id and the field the row orders.
func markField(rowID string) (issueID, field string) {
	if id, ok := strings.CutSuffix(rowID, StatusMarkSuffix); ok {
		return id, FieldStatus
	}
	if strings.HasPrefix(rowID, "group:") && strings.HasSuffix(rowID, ":"+FieldStatus) {
		return rowID, FieldStatus // an event group's status (EventIssueID)
	}
	return rowID, FieldAssignee
}
