package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
)

// settle accepts a delivery and records one attempt with the given status.
func settle(t *testing.T, s *Store, key, status string, o Outcome) int64 {
	t.Helper()
	ctx := context.Background()
	id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{"n":"` + key + `"}`), IssueID: key, DedupeKey: key})
	must(t, err)
	if status == DeliveryPending {
		return id
	}
	d, ok, err := s.Claim(ctx, id, time.Minute, 8, true)
	if err != nil || !ok {
		t.Fatalf("claim %s: %v %v", key, ok, err)
	}
	o.Attempt, o.StartedAt, o.Status = d.Attempts, s.now(), status
	if status == DeliveryRetrying {
		o.NextAttempt = s.now().Add(time.Hour)
	}
	if _, _, err := s.Finish(ctx, d, o); err != nil {
		t.Fatal(err)
	}
	return id
}

// testRetention keeps settled deliveries two days, ignored bodies one,
// dead ones four, in batches of two: smaller than what the tests remove.
var testRetention = Retention{Settled: 48 * time.Hour, IgnoredBody: 24 * time.Hour, Dead: 96 * time.Hour, Setups: time.Hour, Batch: 2}

// pruneAll prunes until no batch comes back full, and sums what went.
func pruneAll(t *testing.T, s *Store, r Retention) Pruned {
	t.Helper()
	total := Pruned{}
	for {
		p, err := s.Prune(context.Background(), r)
		must(t, err)
		for k, n := range p {
			total[k] += n
		}
		if !p.More(r.Batch) {
			return total
		}
	}
}

func rowCount(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	must(t, s.db.QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// TestRetention walks a store through time: each kind of row goes when its
// retention says, in batches smaller than what there is to remove, and
// nothing unsettled goes.
func TestRetention(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		t0 := time.Now()
		now := t0
		s.now = func() time.Time { return now }
		r := testRetention

		ids := map[string]int64{
			"ignored": settle(t, s, "ignored", DeliveryDone, Outcome{Ignored: true}),
			"synced": settle(t, s, "synced", DeliveryDone, Outcome{Synced: true,
				Assignments: []Assignment{{Group: "g1", Assignee: ptr("alice")}}}),
			"failed":   settle(t, s, "failed", DeliveryFailed, Outcome{Error: "invalid_payload: x"}),
			"dead":     settle(t, s, "dead", DeliveryDead, Outcome{Error: "unavailable: x"}),
			"pending":  settle(t, s, "pending", DeliveryPending, Outcome{}),
			"retrying": settle(t, s, "retrying", DeliveryRetrying, Outcome{Error: "unavailable: x"}),
		}
		must(t, s.StatePut(ctx, "jira1", "expiring", "v", time.Hour))
		must(t, s.StatePut(ctx, "jira1", "forever", "v", 0))
		must(t, s.StatePut(ctx, "jira1", "fresh", "v", 1000*time.Hour))
		// The host-wide state goes the same way, in batches (three
		// expiring keys, two per batch).
		for _, k := range []string{"echo:1", "echo:2", "echo:3"} {
			must(t, s.SharedStatePut(ctx, k, "v", 2*time.Minute))
		}
		must(t, s.SharedStatePut(ctx, "shared forever", "v", 0))
		must(t, s.SharedStatePut(ctx, "shared fresh", "v", 1000*time.Hour))
		must(t, s.PutPendingSetup(ctx, PendingSetup{RequestToken: "abandoned", RequestTokenSecret: "s", BaseURL: "http://j",
			ConsumerKey: "k", PrivateKeyPEM: "pem", Organization: "acme"}))
		if _, err := s.Apply(ctx, platform.ApplyKey{Installation: "jira1", Delivery: 9999, Round: 0},
			platform.Changes{Assignments: []Assignment{{Group: "g1", Assignee: nil}}}); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(25 * time.Hour)
		ids["recent ignored"] = settle(t, s, "recent ignored", DeliveryDone, Outcome{Ignored: true})

		type want struct {
			present []string // deliveries still stored, with or without a body
			bodies  []string // of those, the ones with their body
			pruned  Pruned
		}
		for _, step := range []struct {
			at time.Duration
			want
		}{
			{26 * time.Hour, want{
				present: []string{"ignored", "synced", "failed", "dead", "pending", "retrying", "recent ignored"},
				bodies:  []string{"synced", "failed", "dead", "pending", "retrying", "recent ignored"},
				pruned:  Pruned{BodiesDropped: 1, "plugin_state": 1, "plugin_shared_state": 3, "pending_setups": 1},
			}},
			{50 * time.Hour, want{
				present: []string{"dead", "pending", "retrying", "recent ignored"},
				bodies:  []string{"dead", "pending", "retrying"},
				pruned:  Pruned{BodiesDropped: 1, "deliveries": 3, "delivery_attempts": 3},
			}},
			{100 * time.Hour, want{
				present: []string{"pending", "retrying"},
				bodies:  []string{"pending", "retrying"},
				pruned:  Pruned{"deliveries": 2, "delivery_attempts": 2, "assignee_changes": 2, "platform_applies": 1},
			}},
		} {
			now = t0.Add(step.at)
			got := pruneAll(t, s, r)
			for k, n := range got {
				if n != step.pruned[k] {
					t.Errorf("at +%v: pruned %v, want %v", step.at, got, step.pruned)
					break
				}
			}
			present, bodies := map[string]bool{}, map[string]bool{}
			for _, k := range step.present {
				present[k] = true
			}
			for _, k := range step.bodies {
				bodies[k] = true
			}
			for name, id := range ids {
				d, err := s.Delivery(ctx, id)
				switch {
				case errors.Is(err, ErrNotFound) && present[name]:
					t.Errorf("at +%v: %s was removed", step.at, name)
				case err == nil && !present[name]:
					t.Errorf("at +%v: %s (%s) is still stored", step.at, name, d.Status)
				case err == nil && bodies[name] != (len(d.Body) > 0):
					t.Errorf("at +%v: %s has body %q; want a body: %v", step.at, name, d.Body, bodies[name])
				case err != nil && !errors.Is(err, ErrNotFound):
					t.Fatal(err)
				}
			}
		}
		if _, ok, _ := s.StateGet(ctx, "jira1", "forever"); !ok {
			t.Error("a key without expiry was removed")
		}
		if n := rowCount(t, s, "plugin_state"); n != 2 {
			t.Errorf("%d plugin state rows, want 2 (forever, fresh)", n)
		}
		if _, ok, _ := s.SharedStateGet(ctx, "shared forever"); !ok {
			t.Error("a shared key without expiry was removed")
		}
		if n := rowCount(t, s, "plugin_shared_state"); n != 2 {
			t.Errorf("%d shared state rows, want 2 (shared forever, shared fresh)", n)
		}
		if n := rowCount(t, s, "platform_applies"); n != 0 {
			t.Errorf("%d idempotency keys of applies, want none after the dead retention", n)
		}
		if n := rowCount(t, s, "delivery_attempts"); n != 1 {
			t.Errorf("%d attempt rows, want the retrying delivery's one", n)
		}
	})
}

// TestReplayAfterBodyDropped: a delivery whose body retention dropped is
// refused a replay, saying why, instead of failing on an empty payload.
func TestReplayAfterBodyDropped(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		now := time.Now()
		s.now = func() time.Time { return now }
		id := settle(t, s, "ignored", DeliveryDone, Outcome{Ignored: true})
		now = now.Add(2 * time.Hour)
		pruneAll(t, s, Retention{Settled: 48 * time.Hour, IgnoredBody: time.Hour, Dead: 96 * time.Hour, Setups: time.Hour, Batch: 10})
		if err := s.Replay(context.Background(), id); !errors.Is(err, ErrBodyDropped) {
			t.Fatalf("replay without a body: %v, want ErrBodyDropped", err)
		}
	})
}

// TestRetentionKeepsSizeFlat pushes a steady stream of 16 KB deliveries,
// half of them ignored, through a store whose retention is two rounds of
// the stream, pruning as the host does: past retention the row counts and
// the database's size stop growing. SQLite reuses the pages deletes free
// (the file keeps its high-water mark); PostgreSQL reuses the space a
// vacuum frees (autovacuum in production; here VACUUM, so the figure does
// not depend on its timing). The row counts are checked on both, the size
// on SQLite.
func TestRetentionKeepsSizeFlat(t *testing.T) {
	const rounds, perRound = 10, 300
	// Random, so that PostgreSQL's TOAST compression does not shrink it.
	pad := make([]byte, 8<<10)
	rand.Read(pad)
	body := []byte(`{"webhookEvent":"jira:issue_updated","pad":"` + hex.EncodeToString(pad) + `"}`)
	size := map[string]string{
		"sqlite":   `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`,
		"postgres": `SELECT pg_total_relation_size('deliveries')`,
	}
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		now := time.Now()
		s.now = func() time.Time { return now }
		r := Retention{Settled: 90 * time.Minute, IgnoredBody: 30 * time.Minute, Dead: 3 * 90 * time.Minute, Setups: time.Hour, Batch: 500}
		var sizes []int64
		var slowest time.Duration
		for round := 0; round < rounds; round++ {
			var wg sync.WaitGroup
			for i := 0; i < perRound; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if _, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: body,
						DedupeKey: strconv.Itoa(round) + "-" + strconv.Itoa(i)}); err != nil {
						t.Error(err)
					}
				}(i)
			}
			wg.Wait()
			// Settle the round as the workers would, half of it ignored.
			_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET status = ?, finished_at = ?, body_droppable = id % 2
				WHERE status = ?`, DeliveryDone, now.UnixMilli(), DeliveryPending)
			must(t, err)
			now = now.Add(time.Hour)
			for {
				start := time.Now()
				p, err := s.Prune(ctx, r)
				must(t, err)
				slowest = max(slowest, time.Since(start))
				if !p.More(r.Batch) {
					break
				}
			}
			if s.Dialect() == "postgres" {
				_, err := s.raw.ExecContext(ctx, `VACUUM deliveries`)
				must(t, err)
			}
			var sz int64
			must(t, s.db.QueryRowContext(ctx, size[s.Dialect()]).Scan(&sz))
			sizes = append(sizes, sz)
			if n := rowCount(t, s, "deliveries"); n > 2*perRound {
				t.Fatalf("round %d: %d deliveries stored; retention keeps at most %d", round, n, 2*perRound)
			}
		}
		t.Logf("%s: %d rounds of %d deliveries of %d bytes; size after each round (MB): %s; slowest prune statement batch: %v",
			s.Dialect(), rounds, perRound, len(body), megabytes(sizes), slowest.Round(time.Millisecond))
		// Rounds 0 and 1 fill the retention window; from round 2 on, each
		// round removes about what it adds. On PostgreSQL the size is only
		// reported: VACUUM frees no row that a transaction open anywhere
		// in the database may still see, and the test server is shared.
		if last, steady := sizes[rounds-1], sizes[3]; s.Dialect() == "sqlite" && float64(last) > 1.2*float64(steady) {
			t.Errorf("size grew from %d to %d bytes past retention", steady, last)
		}
	})
}

func megabytes(sizes []int64) string {
	var b strings.Builder
	for i, n := range sizes {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64))
	}
	return b.String()
}
