package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retention says how long the store keeps what grows with traffic. Every
// table's story is in host/RATIONALE.md ("Retention"); in short:
// deliveries and their attempts go Settled after they settle, dead ones
// (and the assignee audit trail and the keys of applies made as another
// pipeline's platform) Dead after, the bodies of ignored
// deliveries IgnoredBody after; expired plugin state (per installation
// and shared) and setups never approved go as soon as they expire. Unsettled deliveries and issue
// watermarks are kept.
type Retention struct {
	Settled     time.Duration // done, stale and failed deliveries, with their attempts
	IgnoredBody time.Duration // the body of a delivery done with outcome ignored
	Dead        time.Duration // dead deliveries, with their attempts; assignee changes
	Setups      time.Duration // pending OAuth setups, from their start
	// Batch is the most rows one statement removes: each is a short
	// transaction, so that accepts queue behind it for milliseconds.
	Batch int
}

// BodiesDropped is the key under which Pruned counts the bodies dropped
// from deliveries that stay; its other keys are tables.
const BodiesDropped = "deliveries.body"

// Pruned counts what one Prune call removed, by table.
type Pruned map[string]int64

// Prune removes one batch of each kind of expired row and reports how
// many went, by table. A caller that wants everything expired gone calls
// it again while More reports a full batch. Hosts sharing a database may
// prune at once: rows another host is deleting are passed over.
func (s *Store) Prune(ctx context.Context, r Retention) (Pruned, error) {
	if r.Batch <= 0 || r.Settled <= 0 || r.IgnoredBody <= 0 || r.Dead <= 0 || r.Setups <= 0 {
		return nil, fmt.Errorf("prune: every retention and the batch must be positive: %+v", r)
	}
	now := s.now()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	out := Pruned{}
	var errs []error
	run := func(table string, n int64, err error) {
		out[table] += n
		errs = append(errs, err)
	}
	exec := func(table, query string, args ...any) {
		n, err := s.exec(ctx, query, args...)
		run(table, n, err)
	}
	for _, c := range []struct {
		statuses string
		before   int64
	}{
		{`'` + DeliveryDone + `', '` + DeliveryStale + `', '` + DeliveryFailed + `'`, ago(r.Settled)},
		{`'` + DeliveryDead + `'`, ago(r.Dead)},
	} {
		deliveries, attempts, err := s.pruneDeliveries(ctx, c.statuses, c.before, r.Batch)
		run("deliveries", deliveries, err)
		run("delivery_attempts", attempts, err)
	}
	exec(BodiesDropped, `UPDATE deliveries SET body = ?, body_droppable = 0
		WHERE body_droppable = 1 AND finished_at < ? AND id IN (SELECT id FROM deliveries
			WHERE body_droppable = 1 AND finished_at < ? LIMIT ?`+s.dialect.skipLocked()+`)`,
		[]byte{}, ago(r.IgnoredBody), ago(r.IgnoredBody), r.Batch)
	exec("plugin_state", `DELETE FROM plugin_state
		WHERE expires_at > 0 AND expires_at <= ? AND (installation_id, key) IN (SELECT installation_id, key FROM plugin_state
			WHERE expires_at > 0 AND expires_at <= ? LIMIT ?`+s.dialect.skipLocked()+`)`,
		now.UnixMilli(), now.UnixMilli(), r.Batch)
	exec("plugin_shared_state", `DELETE FROM plugin_shared_state
		WHERE expires_at > 0 AND expires_at <= ? AND key IN (SELECT key FROM plugin_shared_state
			WHERE expires_at > 0 AND expires_at <= ? LIMIT ?`+s.dialect.skipLocked()+`)`,
		now.UnixMilli(), now.UnixMilli(), r.Batch)
	exec("assignee_changes", `DELETE FROM assignee_changes
		WHERE changed_at < ? AND id IN (SELECT id FROM assignee_changes WHERE changed_at < ? LIMIT ?`+s.dialect.skipLocked()+`)`,
		ago(r.Dead), ago(r.Dead), r.Batch)
	// An idempotency key outlives any delivery that could apply it again:
	// it goes with the longest-kept deliveries, the dead ones.
	exec("platform_applies", `DELETE FROM platform_applies
		WHERE applied_at < ? AND (installation_id, delivery_id, round) IN (SELECT installation_id, delivery_id, round
			FROM platform_applies WHERE applied_at < ? LIMIT ?`+s.dialect.skipLocked()+`)`,
		ago(r.Dead), ago(r.Dead), r.Batch)
	exec("pending_setups", `DELETE FROM pending_setups
		WHERE created_at < ? AND request_token IN (SELECT request_token FROM pending_setups WHERE created_at < ? LIMIT ?`+s.dialect.skipLocked()+`)`,
		ago(r.Setups), ago(r.Setups), r.Batch)
	return out, errors.Join(errs...)
}

// More reports whether some table had a full batch removed: more may be
// left.
func (p Pruned) More(batch int) bool {
	for _, n := range p {
		if n >= int64(batch) {
			return true
		}
	}
	return false
}

// pruneDeliveries removes up to batch deliveries in one of statuses (a
// quoted list) settled before before, with their attempts, in one
// transaction. The rows are locked when read, so that a replay on another
// host waits for the removal or is passed over by it, and each statement
// repeats the condition.
func (s *Store) pruneDeliveries(ctx context.Context, statuses string, before int64, batch int) (deliveries, attempts int64, err error) {
	cond := `status IN (` + statuses + `) AND finished_at < ?`
	err = s.tx(ctx, func(tx runner) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM deliveries WHERE `+cond+` LIMIT ?`+s.dialect.skipLocked(), before, batch)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		in := `(` + placeholders(len(ids)) + `)`
		res, err := tx.ExecContext(ctx, `DELETE FROM delivery_attempts WHERE delivery_id IN `+in, ids...)
		if err != nil {
			return err
		}
		attempts, _ = res.RowsAffected()
		res, err = tx.ExecContext(ctx, `DELETE FROM deliveries WHERE `+cond+` AND id IN `+in, append([]any{before}, ids...)...)
		if err != nil {
			return err
		}
		deliveries, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return deliveries, attempts, nil
}
