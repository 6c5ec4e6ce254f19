package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/platform"
)

// Delivery statuses. A delivery is settled when it is in any status but
// pending and processing.
const (
	DeliveryPending    = "pending"    // stored, first attempt not made yet
	DeliveryProcessing = "processing" // an attempt holds its lease
	DeliveryRetrying   = "retrying"   // an attempt failed in a way that may pass; next_attempt_at says when
	DeliveryDone       = "done"       // applied (or understood to need no change)
	DeliveryStale      = "stale"      // older than what was already applied to its issue; not applied
	DeliveryFailed     = "failed"     // failed in a way that will not pass (e.g. a payload the plugin rejects)
	DeliveryDead       = "dead"       // out of retries
)

// Delivery is one webhook POST that passed the token and body checks.
type Delivery struct {
	ID            int64  `json:"id"`
	Installation  string `json:"installation"`
	ReceivedAt    int64  `json:"received_at"` // unix milliseconds
	Event         string `json:"event"`
	Kind          string `json:"kind"` // KindWebhook or KindEvent, read from Event
	IssueID       string `json:"issue_id"`
	IssueKey      string `json:"issue_key"`
	ChangelogID   string `json:"changelog_id"`
	JiraTimestamp int64  `json:"jira_timestamp"`
	Status        string `json:"status"`
	Attempts      int    `json:"attempts"`
	AttemptBase   int    `json:"attempt_base,omitempty"` // attempts made before the last replay
	NextAttemptAt int64  `json:"next_attempt_at,omitempty"`
	HTTPStatus    int    `json:"http_status,omitempty"`
	Summary       string `json:"summary,omitempty"` // JSON sync summary when the plugin produced one
	Error         string `json:"error,omitempty"`
	FinishedAt    int64  `json:"finished_at,omitempty"`
	Body          []byte `json:"-"`
}

// NewDelivery is what the accept path knows of a delivery.
type NewDelivery struct {
	Installation  string
	Body          []byte
	Event         string
	IssueID       string
	IssueKey      string
	ChangelogID   string
	JiraTimestamp int64
	// DedupeKey identifies the delivery among its installation's; the same
	// key twice is the same delivery. Empty disables the check.
	DedupeKey string
}

const deliveryColumns = `id, installation_id, received_at, event, issue_id, issue_key, changelog_id, jira_timestamp,
	status, attempts, attempt_base, next_attempt_at, http_status, summary, error, finished_at`

func scanDelivery(sc interface{ Scan(...any) error }, d *Delivery, extra ...any) error {
	err := sc.Scan(append([]any{&d.ID, &d.Installation, &d.ReceivedAt, &d.Event, &d.IssueID, &d.IssueKey,
		&d.ChangelogID, &d.JiraTimestamp, &d.Status, &d.Attempts, &d.AttemptBase, &d.NextAttemptAt, &d.HTTPStatus, &d.Summary,
		&d.Error, &d.FinishedAt}, extra...)...)
	d.Kind = kindOf(d.Event)
	return err
}

// AcceptDelivery stores a delivery as pending. When one with the same
// dedupe key is already stored it stores nothing and returns that one's id
// with duplicate set. It returns once the row is durable.
//
// Accepts are group-committed: one writer takes every accept waiting and
// commits them in one transaction, so concurrent webhooks share an fsync
// instead of queueing for one each. The batching window is whatever the
// writer waited for its turn (writeGate: first in line, behind at most
// the write under way); a lone accept on an idle database commits at once.
func (s *Store) AcceptDelivery(ctx context.Context, d NewDelivery) (id int64, duplicate bool, err error) {
	s.acceptOnce.Do(func() { go s.acceptLoop() })
	req := acceptReq{d: d, done: make(chan acceptRes, 1)}
	select {
	case s.accepts <- req:
	case <-s.closing:
		return 0, false, errors.New("store closed")
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.id, r.dup, r.err
	case <-ctx.Done():
		// The row may yet be written: at-least-once, and a re-send is a
		// duplicate.
		return 0, false, ctx.Err()
	}
}

type acceptReq struct {
	d    NewDelivery
	done chan acceptRes
}

type acceptRes struct {
	id  int64
	dup bool
	err error
}

const maxAcceptBatch = 256

func (s *Store) acceptLoop() {
	for {
		var first acceptReq
		select {
		case first = <-s.accepts:
		case <-s.closing:
			return
		}
		batch := []acceptReq{first}
		var res []acceptRes
		// The turn is taken with the first accept, and the batch collected
		// once it comes: the accepts that arrived while it waited go in
		// the same commit.
		err := s.writing(context.Background(), urgent, func() error {
			batch = s.moreAccepts(batch)
			res = s.acceptBatch(batch)
			return nil
		})
		if err != nil {
			batch = s.moreAccepts(batch)
			res = make([]acceptRes, len(batch))
			for i := range res {
				res[i].err = err
			}
		}
		s.noteWrite(batchOutcome(res))
		for i, r := range batch {
			r.done <- res[i]
		}
	}
}

// moreAccepts adds to batch the accepts waiting, up to maxAcceptBatch.
func (s *Store) moreAccepts(batch []acceptReq) []acceptReq {
	for len(batch) < maxAcceptBatch {
		select {
		case r := <-s.accepts:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// acceptBatch stores a batch of accepts in one transaction, in a turn to
// write already taken.
func (s *Store) acceptBatch(batch []acceptReq) []acceptRes {
	res := make([]acceptRes, len(batch))
	each := func(tx runner, batch []acceptReq, res []acceptRes) error {
		for i, r := range batch {
			id, dup, err := s.acceptOne(tx, r.d)
			if err != nil {
				return err
			}
			res[i] = acceptRes{id: id, dup: dup}
		}
		return nil
	}
	err := inTx(context.Background(), s.raw, s.db, func(tx runner) error { return each(tx, batch, res) })
	if err != nil && len(batch) > 1 {
		// One bad row must not fail its neighbours: each on its own.
		for i := range batch {
			res[i] = acceptRes{}
			res[i].err = inTx(context.Background(), s.raw, s.db, func(tx runner) error {
				return each(tx, batch[i:i+1], res[i:i+1])
			})
		}
	} else if err != nil {
		res[0].err = err
	}
	return res
}

// batchOutcome is what an accept batch says of whether deliveries can be
// stored: yes if any was, else the last error.
func batchOutcome(res []acceptRes) error {
	var err error
	for _, r := range res {
		if r.err == nil {
			return nil
		}
		err = r.err
	}
	return err
}

func (s *Store) acceptOne(tx runner, d NewDelivery) (id int64, duplicate bool, err error) {
	ctx := context.Background()
	now := s.now().UnixMilli()
	err = tx.QueryRowContext(ctx, `INSERT INTO deliveries(installation_id, received_at, body, status, event,
			issue_id, issue_key, changelog_id, jira_timestamp, dedupe_key, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(installation_id, dedupe_key) WHERE dedupe_key != '' DO NOTHING
		RETURNING id`, d.Installation, now, d.Body, DeliveryPending, d.Event, d.IssueID, d.IssueKey,
		d.ChangelogID, d.JiraTimestamp, d.DedupeKey, now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT id FROM deliveries WHERE installation_id = ? AND dedupe_key = ?`,
			d.Installation, d.DedupeKey).Scan(&id)
		return id, true, err
	}
	return id, false, err
}

// Claim takes a delivery for one attempt: it must be pending or retrying
// and due (or now is set), or processing with an expired lease (its
// processor died). It returns the delivery with its body, and false when
// someone else has it or there is nothing to do. A delivery that has had
// maxAttempts attempts since its last replay is not handed out again: the
// claim settles it dead and returns it, not ok, with ErrOutOfAttempts.
func (s *Store) Claim(ctx context.Context, id int64, lease time.Duration, maxAttempts int, now bool) (Delivery, bool, error) {
	t := s.now().UnixMilli()
	return s.claim(ctx, t, lease, maxAttempts, `id = ? AND `+claimable, id, now, t, t)
}

// ClaimNext claims the oldest delivery ready for an attempt, as Claim
// does, and returns false when there is none. Hosts sharing the database
// claim different deliveries: one that another host is claiming this
// moment is passed over, not waited for.
func (s *Store) ClaimNext(ctx context.Context, lease time.Duration, maxAttempts int) (Delivery, bool, error) {
	t := s.now().UnixMilli()
	return s.claim(ctx, t, lease, maxAttempts, `id = (SELECT id FROM deliveries`+s.dialect.queueIndex()+`
			WHERE `+claimable+`
			ORDER BY id LIMIT 1`+s.dialect.skipLocked()+`)`, false, t, t)
}

// ErrOutOfAttempts is returned, with the delivery, by a claim that found
// the delivery's attempts used up and settled it dead instead.
var ErrOutOfAttempts = errors.New("out of attempts: settled dead")

// OutOfAttempts is the error recorded on a delivery that a claim settled
// dead: its attempts were used up without the last one's outcome being
// recorded (its host stopped, or the outcome could not be stored).
const OutOfAttempts = "internal: out of attempts: the last ended without a recorded outcome"

// claim claims the delivery that where picks (a condition on deliveries
// that includes claimable, its parameters in args): at t it becomes
// processing under a lease, its attempt counted. One whose attempts since
// its last replay are maxAttempts or more is settled dead instead, in the
// same statement, and returned, not ok, with ErrOutOfAttempts: whatever
// kept its attempts from recording an outcome (a host killed mid-attempt,
// a write the database refused), it is retried no further.
func (s *Store) claim(ctx context.Context, t int64, lease time.Duration, maxAttempts int, where string, args ...any) (d Delivery, ok bool, err error) {
	if maxAttempts <= 0 {
		return d, false, fmt.Errorf("claim: max attempts is %d; want at least 1", maxAttempts)
	}
	// A constant, not a parameter: it appears in every SET below, and the
	// query text stays the same for the life of the process.
	spent := `attempts - attempt_base >= ` + strconv.Itoa(maxAttempts)
	err = s.writing(ctx, ordinary, func() error {
		return scanDelivery(s.db.QueryRowContext(ctx, `UPDATE deliveries SET
			status = CASE WHEN `+spent+` THEN '`+DeliveryDead+`' ELSE '`+DeliveryProcessing+`' END,
			attempts = CASE WHEN `+spent+` THEN attempts ELSE attempts + 1 END,
			lease_until = CASE WHEN `+spent+` THEN 0 ELSE CAST(? AS BIGINT) END,
			next_attempt_at = CASE WHEN `+spent+` THEN 0 ELSE next_attempt_at END,
			finished_at = CASE WHEN `+spent+` THEN CAST(? AS BIGINT) ELSE finished_at END,
			http_status = CASE WHEN `+spent+` THEN 500 ELSE http_status END,
			error = CASE WHEN `+spent+` THEN '`+OutOfAttempts+`' ELSE error END
		WHERE `+where+`
		RETURNING `+deliveryColumns+`, body`,
			append([]any{t + lease.Milliseconds(), t}, args...)...), &d, &d.Body)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return d, false, nil
	case err != nil:
		return d, false, err
	case d.Status == DeliveryDead:
		return d, false, fmt.Errorf("delivery %d after %d attempts: %w", d.ID, d.Attempts-d.AttemptBase, ErrOutOfAttempts)
	}
	return d, true, nil
}

// claimable is a delivery that an attempt may take, with three
// parameters: whether to take one whose retry is not due yet, and now
// twice. It is unsettled and either due, or processing under a lease that
// expired (its processor died).
const claimable = unsettled + `
	AND ((status != '` + DeliveryProcessing + `' AND (? OR next_attempt_at <= ?))
		OR (status = '` + DeliveryProcessing + `' AND lease_until < ?))`

// unsettled is the predicate of the deliveries_queue index (migration4),
// in the same words, and with constants rather than parameters: only then
// can either planner use that index for a prepared query.
const unsettled = `status IN ('` + DeliveryPending + `', '` + DeliveryRetrying + `', '` + DeliveryProcessing + `')`

// ReleaseLeases makes every delivery left processing by a previous run of
// this host due now, and ends the holds on issues (Reserve) that run's
// attempts left: none of them is in flight any more. Left until they
// expire (the lease, twice the attempt time-out), a hold made the issue's
// other deliveries wait in a worker each, and with as many issues held as
// workers, the holders themselves waited for a worker: nothing moved for
// minutes after a crash. Only for a host that owns the database alone
// (not Shared): elsewhere the deliveries may be other hosts' work in
// progress, and their leases and holds are left to expire.
func (s *Store) ReleaseLeases(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx runner) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_until = 0
			WHERE status = ?`, DeliveryRetrying, s.now().UnixMilli(), DeliveryProcessing)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE issue_watermarks SET applying_delivery = 0, applying_until = 0
			WHERE applying_delivery != 0`)
		return err
	})
	return n, err
}

// Outcome is how an attempt ended.
type Outcome struct {
	Attempt    int
	StartedAt  time.Time
	Status     string // done, retrying, failed, dead
	HTTPStatus int
	Summary    string
	IssueKey   string
	Error      string
	// Synced marks a delivery whose effect is ordered against its issue's
	// other deliveries on the watermark of its issue id as it is: a
	// webhook's assignee field (a delivery with Assignments is so ordered
	// anyway), an event's group field. Statuses are ordered on the issue's
	// status field (orderedFields). Each field is checked against, and
	// moves, its own watermark.
	Synced bool
	// StaleFields names the fields whose changes were dropped because a
	// newer delivery had applied them (Without); the delivery is done for
	// its other fields, and its stored summary names these.
	StaleFields []string
	// Ignored marks a done delivery the plugin found nothing to do for:
	// retention drops its body early (Retention.IgnoredBody).
	Ignored bool
	// Assignments and Statuses are applied in the same transaction that
	// marks the delivery done, on the built-in platform.
	Assignments []Assignment
	Statuses    []platform.StatusChange
	// External marks an outcome whose assignments go to a platform
	// outside this database: Finish applies nothing, and releases the
	// issue's hold that Reserve took. AppliedAhead says they were applied
	// (platform.Platform.Apply) after Reserve said so.
	External, AppliedAhead bool
	NextAttempt            time.Time // with retrying
}

// Changes are the outcome's changes of groups.
func (o Outcome) Changes() platform.Changes {
	return platform.Changes{Assignments: o.Assignments, Statuses: o.Statuses}
}

// ErrLeaseLost is returned when a delivery was taken from an attempt that
// outlived its lease; the attempt's outcome is discarded.
var ErrLeaseLost = errors.New("lease lost")

// Finish records an attempt's outcome. For a done delivery it
// applies the changes, each field's (orderedFields) unless the issue
// already has a newer applied delivery of that field: the changes of such
// a field are dropped and the others still apply and move their own
// marks. A delivery every field of which is so is stale, and applies
// nothing. Applying and marking happen in one transaction, so a
// delivery's effect happens once. It returns the final status and, for a
// done delivery, the fields that were stale (dropped here, or by Reserve:
// Outcome.StaleFields); the stored summary names them too
// (SummaryStaleFields).
func (s *Store) Finish(ctx context.Context, d Delivery, o Outcome) (status string, stale []string, err error) {
	status = o.Status
	err = s.tx(ctx, func(tx runner) error {
		if err := s.holdLease(ctx, tx, d, o.Attempt); err != nil {
			return err
		}
		now := s.now()
		if fields := orderedFields(d, o); len(fields) > 0 {
			newer, err := s.staleFields(ctx, tx, d, fields)
			if err != nil {
				return err
			}
			switch {
			case o.AppliedAhead:
				// Applied on the external platform after Reserve. A field
				// a newer delivery took meanwhile (this one applied after
				// its hold ran out) keeps that one's mark.
			case len(newer) == len(fields):
				status = DeliveryStale
			case o.External:
				// Reserve said apply, but nothing was: not done.
				return fmt.Errorf("delivery %d: finished as done without applying on the external platform", d.ID)
			default:
				o = o.Without(newer)
				if _, err := s.applyChanges(ctx, tx, d.Installation, d.ID, o.Changes()); err != nil {
					return err
				}
			}
			if status == DeliveryDone {
				for _, f := range fields {
					if slices.Contains(newer, f.name) {
						continue
					}
					if _, err := tx.ExecContext(ctx, `UPDATE issue_watermarks SET jira_timestamp = ?, delivery_id = ?
						WHERE installation_id = ? AND issue_id = ?`, d.JiraTimestamp, d.ID, d.Installation, f.issueID); err != nil {
						return err
					}
				}
			}
		} else if status == DeliveryDone && !o.External {
			if _, err := s.applyChanges(ctx, tx, d.Installation, d.ID, o.Changes()); err != nil {
				return err
			}
		}
		summary := o.Summary
		if status == DeliveryDone && len(o.StaleFields) > 0 {
			stale, summary = o.StaleFields, noteStaleFields(o.Summary, o.StaleFields)
		}
		if o.External && d.IssueID != "" {
			if err := s.releaseHold(ctx, tx, d); err != nil {
				return err
			}
		}
		var next, finished int64
		if status == DeliveryRetrying {
			next = o.NextAttempt.UnixMilli()
		} else {
			finished = now.UnixMilli()
		}
		issueKey := d.IssueKey
		if issueKey == "" {
			issueKey = o.IssueKey
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = ?, http_status = ?, summary = ?, error = ?,
				issue_key = ?, next_attempt_at = ?, finished_at = ?, lease_until = 0, body_droppable = ? WHERE id = ?`,
			status, o.HTTPStatus, summary, o.Error, issueKey, next, finished, boolInt(status == DeliveryDone && o.Ignored), d.ID); err != nil {
			return err
		}
		outcome := status
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts(delivery_id, attempt, started_at, finished_at, outcome, error)
			VALUES (?, ?, ?, ?, ?, ?)`, d.ID, o.Attempt, o.StartedAt.UnixMilli(), now.UnixMilli(), outcome, o.Error)
		return err
	})
	if err != nil {
		stale = nil
	}
	return status, stale, err
}

// Replay makes a settled delivery due again, with a fresh retry budget.
// One whose body retention dropped cannot be replayed (ErrBodyDropped).
func (s *Store) Replay(ctx context.Context, id int64) error {
	n, err := s.exec(ctx, `UPDATE deliveries SET status = ?, attempt_base = attempts, next_attempt_at = ?,
		finished_at = 0, body_droppable = 0 WHERE id = ? AND status NOT IN (?, ?) AND length(body) > 0`,
		DeliveryPending, s.now().UnixMilli(), id, DeliveryPending, DeliveryProcessing)
	if err != nil {
		return err
	}
	if n == 0 {
		d, err := s.Delivery(ctx, id)
		if err != nil {
			return err
		}
		if len(d.Body) == 0 {
			return fmt.Errorf("delivery %d: %w", id, ErrBodyDropped)
		}
		return fmt.Errorf("delivery %d is being processed: %w", id, ErrBusy)
	}
	return nil
}

// ErrBusy is returned for an operation on a delivery that is in flight.
var ErrBusy = errors.New("busy")

// ErrBodyDropped is returned for replaying a delivery whose body retention
// has dropped: there is nothing left to process.
var ErrBodyDropped = errors.New("its body was dropped by retention")

// Delivery reads one delivery with its body.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	var d Delivery
	err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+`, body FROM deliveries WHERE id = ?`, id), &d, &d.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return d, err
}

// Attempt is one processing attempt of a delivery.
type Attempt struct {
	Attempt    int    `json:"attempt"`
	StartedAt  int64  `json:"started_at"`
	FinishedAt int64  `json:"finished_at"`
	Outcome    string `json:"outcome"`
	Error      string `json:"error,omitempty"`
}

// Attempts lists a delivery's attempts in order.
func (s *Store) Attempts(ctx context.Context, id int64) ([]Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT attempt, started_at, finished_at, outcome, error
		FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		if err := rows.Scan(&a.Attempt, &a.StartedAt, &a.FinishedAt, &a.Outcome, &a.Error); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeliveryFilter selects deliveries for the log, newest first.
type DeliveryFilter struct {
	Installation string
	Status       string
	IssueKey     string
	// Kind is KindWebhook or KindEvent; "" for both.
	Kind   string
	Before int64 // only ids below this, for paging; 0 for the newest
	Limit  int
}

// Deliveries lists deliveries without their bodies.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	var where []string
	var args []any
	for _, c := range []struct {
		col, val string
	}{{"installation_id", f.Installation}, {"status", f.Status}, {"issue_key", f.IssueKey}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	switch f.Kind {
	case "":
	case KindEvent, KindWebhook:
		// The event types are constants: the condition reads the same
		// for every query.
		cond := "event IN ('" + strings.Join(platform.EventTypes, "', '") + "')"
		if f.Kind == KindWebhook {
			cond = "event NOT IN ('" + strings.Join(platform.EventTypes, "', '") + "')"
		}
		where = append(where, cond)
	default:
		return nil, fmt.Errorf("kind %q: want %q or %q", f.Kind, KindEvent, KindWebhook)
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	q := `SELECT ` + deliveryColumns + ` FROM deliveries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		if err := scanDelivery(rows, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// QueueDepth counts the deliveries not settled: pending, processing, or
// waiting for a retry. Unlike DeliveryCounts it reads only the queue index,
// however long the log.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE `+unsettled).Scan(&n)
	return n, err
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
