package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// writeHealth is what the store knows of whether it can store a delivery:
// the outcome of the last accept, or of the last probe, whichever is newer.
type writeHealth struct {
	mu  sync.Mutex
	at  time.Time
	err error

	probing sync.Mutex // one probe at a time; the others wait for its outcome
}

// ProbeEvery bounds how often Writable writes: within this long of the
// last outcome (an accept's or a probe's) it answers from that outcome, so
// that a readiness endpoint polled by anyone costs at most one small
// commit per interval.
const ProbeEvery = time.Second

// probeBody is the probe's row's body: the size of a typical Jira
// delivery, random so that no compression makes it smaller.
var probeBody = func() []byte {
	b := make([]byte, 16<<10)
	rand.Read(b)
	return b
}()

// noteWrite records the outcome of a write that stores deliveries.
func (s *Store) noteWrite(err error) {
	s.health.mu.Lock()
	s.health.at, s.health.err = time.Now(), err
	s.health.mu.Unlock()
}

// lastWrite is the last recorded outcome, and whether it is recent enough
// to answer from.
func (s *Store) lastWrite() (error, bool) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.err, !s.health.at.IsZero() && time.Since(s.health.at) < ProbeEvery
}

// Writable reports whether the store can store a delivery now: nil if the
// last accept or probe within ProbeEvery succeeded, its error if it
// failed, and otherwise the outcome of a probe made now. The probe does
// what an accept does, and commits: it inserts a delivery-sized row into
// deliveries and deletes it in the same transaction, so no one ever sees
// it, yet the commit has to write as much as an accept (a transaction
// rolled back, or a write that changes nothing, succeeds on a full disk
// while every accept fails: SQLite writes at commit, into its WAL).
func (s *Store) Writable(ctx context.Context) error {
	if err, fresh := s.lastWrite(); fresh {
		return err
	}
	s.health.probing.Lock()
	defer s.health.probing.Unlock()
	if err, fresh := s.lastWrite(); fresh { // another caller probed meanwhile
		return err
	}
	err := s.tx(ctx, func(tx runner) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO deliveries(installation_id, received_at, body, status)
			VALUES ('', ?, ?, 'probe') RETURNING id`, s.now().UnixMilli(), probeBody).Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id = ?`, id)
		return err
	})
	if err != nil && ctx.Err() != nil {
		// The caller gave up: that says nothing of the database.
		return err
	}
	if err != nil {
		err = fmt.Errorf("storing a delivery would fail: %w", err)
	}
	s.noteWrite(err)
	return err
}
