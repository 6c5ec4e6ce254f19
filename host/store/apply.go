package store

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Applying on a platform outside this database (host/RATIONALE.md,
// "Applying on an external platform"): the assignments cannot be applied
// in Finish's transaction, so they are applied between two: Reserve
// decides, under the issue's watermark lock, that the delivery is not
// stale and takes the issue's hold; the pipeline applies (idempotent by
// key); Finish records the outcome, moves the mark and releases the hold.
// The hold keeps deliveries of one issue applying one at a time, in the
// order their Reserve ran, which the watermark makes Jira's order.

// Reservation is what Reserve decided.
type Reservation int

// Reserve's decisions.
const (
	// ReserveApply: apply the assignments, then Finish with AppliedAhead.
	ReserveApply Reservation = iota
	// ReserveStale: a newer delivery of the issue was applied; Finish
	// without applying records the delivery stale.
	ReserveStale
	// ReserveWait: another delivery of the issue holds it while it
	// applies; ask again shortly.
	ReserveWait
)

// Reserve decides whether a done delivery's changes may be applied on an
// external platform now, and if so holds its issue until Finish or until
// hold has passed (crash safety: a dead host's hold expires). hold must
// outlast the apply: the pipeline gives the delivery's lease, twice the
// time-out that bounds the apply. A delivery may take its own hold again
// (its host died after Reserve).
//
// Each field the delivery changes is checked against its own watermark
// (orderedFields): with ReserveApply, stale names the fields a newer
// delivery has already applied, whose changes must not be applied
// (Outcome.Without drops them); when every field is stale the answer is
// ReserveStale. The hold is the issue's one, on its base row, whatever the
// fields.
func (s *Store) Reserve(ctx context.Context, d Delivery, o Outcome, hold time.Duration) (r Reservation, stale []string, err error) {
	fields := orderedFields(d, o)
	if len(fields) == 0 {
		return ReserveApply, nil, nil // not ordered against other deliveries
	}
	decision := ReserveApply
	err = s.tx(ctx, func(tx runner) error {
		stale = nil
		if err := s.holdLease(ctx, tx, d, o.Attempt); err != nil {
			return err
		}
		// The base row holds the hold: made and locked first, always, so
		// that transactions lock an issue's rows in one order.
		if _, err := s.lockWatermark(ctx, tx, d.Installation, d.IssueID); err != nil {
			return err
		}
		var err error
		if stale, err = s.staleFields(ctx, tx, d, fields); err != nil {
			return err
		}
		if len(stale) == len(fields) {
			decision = ReserveStale
			return nil
		}
		now := s.now().UnixMilli()
		var holder, until int64
		if err := tx.QueryRowContext(ctx, `SELECT applying_delivery, applying_until FROM issue_watermarks
			WHERE installation_id = ? AND issue_id = ?`, d.Installation, d.IssueID).Scan(&holder, &until); err != nil {
			return err
		}
		if holder != 0 && holder != d.ID && until > now {
			decision = ReserveWait
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE issue_watermarks SET applying_delivery = ?, applying_until = ?
			WHERE installation_id = ? AND issue_id = ?`, d.ID, now+hold.Milliseconds(), d.Installation, d.IssueID)
		return err
	})
	if decision != ReserveApply {
		stale = nil
	}
	return decision, stale, err
}

// holdLease checks, in tx, that the attempt still holds the delivery's
// lease, and locks the delivery's row until tx ends: a host that claims
// the delivery after its lease expired waits for this transaction, then
// finds it settled.
func (s *Store) holdLease(ctx context.Context, tx runner, d Delivery, attempt int) error {
	var cur string
	var attempts int
	if err := tx.QueryRowContext(ctx, `SELECT status, attempts FROM deliveries WHERE id = ?`+s.dialect.lockRows(""),
		d.ID).Scan(&cur, &attempts); err != nil {
		return err
	}
	if cur != DeliveryProcessing || attempts != attempt {
		return fmt.Errorf("delivery %d attempt %d: %w", d.ID, attempt, ErrLeaseLost)
	}
	return nil
}

// lockWatermark makes the watermark row (installation, issueID) if it is
// missing, locks it until tx ends and returns the mark: deliveries of one
// issue finishing on several hosts at once decide one after the other,
// each against the mark the one before it left. A row made here holds no
// mark yet (math.MinInt64, delivery 0) and is not listed (Watermarks).
func (s *Store) lockWatermark(ctx context.Context, tx runner, installation, issueID string) (int64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO issue_watermarks(installation_id, issue_id, jira_timestamp, delivery_id)
		VALUES (?, ?, ?, 0) ON CONFLICT (installation_id, issue_id) DO NOTHING`,
		installation, issueID, int64(math.MinInt64)); err != nil {
		return 0, err
	}
	var mark int64
	err := tx.QueryRowContext(ctx, `SELECT jira_timestamp FROM issue_watermarks
		WHERE installation_id = ? AND issue_id = ?`+s.dialect.lockRows(""), installation, issueID).Scan(&mark)
	return mark, err
}

// staleFields locks the watermark of each of d's fields, in the order
// given (base row first: every transaction locks an issue's rows in the
// same order, so two cannot wait on each other), and returns the names of
// those whose mark is newer than d.
func (s *Store) staleFields(ctx context.Context, tx runner, d Delivery, fields []markedField) ([]string, error) {
	var stale []string
	for _, f := range fields {
		mark, err := s.lockWatermark(ctx, tx, d.Installation, f.issueID)
		if err != nil {
			return nil, err
		}
		if d.JiraTimestamp < mark {
			stale = append(stale, f.name)
		}
	}
	return stale, nil
}

// releaseHold ends d's hold on its issue, if it has it.
func (s *Store) releaseHold(ctx context.Context, tx runner, d Delivery) error {
	_, err := tx.ExecContext(ctx, `UPDATE issue_watermarks SET applying_delivery = 0, applying_until = 0
		WHERE installation_id = ? AND issue_id = ? AND applying_delivery = ?`, d.Installation, d.IssueID, d.ID)
	return err
}
