package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Delivery statuses.
const (
	DeliveryProcessing = "processing"
	DeliveryDone       = "done"
	DeliveryFailed     = "failed"
)

// Delivery is one webhook POST that passed the token check.
type Delivery struct {
	ID           int64
	Installation string
	ReceivedAt   int64 // unix milliseconds
	Body         []byte
	Status       string
	HTTPStatus   int
	IssueKey     string
	Summary      string // JSON sync summary when the plugin produced one
	Error        string
	FinishedAt   int64
}

// CreateDelivery records a delivery as processing and returns its id. It is
// written before the plugin runs, so that a delivery that fails (Jira down,
// a plugin fault) is still on record with its body.
func (s *Store) CreateDelivery(ctx context.Context, installationID string, body []byte) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO deliveries(installation_id, received_at, body, status)
		VALUES (?, ?, ?, ?)`, installationID, s.now().UnixMilli(), body, DeliveryProcessing)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// FinishDelivery records how a delivery ended.
func (s *Store) FinishDelivery(ctx context.Context, d Delivery) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET status = ?, http_status = ?, issue_key = ?,
		summary = ?, error = ?, finished_at = ? WHERE id = ?`,
		d.Status, d.HTTPStatus, d.IssueKey, d.Summary, d.Error, s.now().UnixMilli(), d.ID)
	return err
}

// Delivery reads one delivery.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	d := Delivery{ID: id}
	err := s.db.QueryRowContext(ctx, `SELECT installation_id, received_at, body, status, http_status,
			issue_key, summary, error, finished_at FROM deliveries WHERE id = ?`, id).
		Scan(&d.Installation, &d.ReceivedAt, &d.Body, &d.Status, &d.HTTPStatus, &d.IssueKey, &d.Summary,
			&d.Error, &d.FinishedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return d, err
}

// DeliveryCounts counts deliveries by status.
func (s *Store) DeliveryCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, count(*) FROM deliveries GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
