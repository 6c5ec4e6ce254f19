package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/store/storetest"
)

// These tests open one database from several Stores at once, as several
// hosts do, and check what must hold across them: migrations run once,
// each delivery is claimed by one host at a time, and deliveries of one
// issue apply in Jira's order whoever finishes them.

const hosts = 3

// eachKindShared runs test with hosts Stores on one fresh database of
// each kind.
func eachKindShared(t *testing.T, test func(t *testing.T, stores []*Store)) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := storetest.DSN(t, kind)
			stores := make([]*Store, hosts)
			for i := range stores {
				stores[i] = open(t, dsn)
			}
			test(t, stores)
		})
	}
}

// drainAll runs four workers per store, as hosts do, each claiming due
// deliveries and handing them to finish until none is left.
func drainAll(t *testing.T, stores []*Store, finish func(s *Store, d Delivery) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*4)
	for _, s := range stores {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					d, ok, err := s.ClaimNext(context.Background(), time.Minute, 8)
					if err == nil && ok {
						err = finish(s, d)
					}
					if err != nil {
						errs <- err
					}
					if err != nil || !ok {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestHostsMigrateTogether(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := storetest.DSN(t, kind)
			errs := make([]error, 4)
			stores := make([]*Store, len(errs))
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stores[i], errs[i] = Open(context.Background(), dsn, testBox(t))
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("host %d: %v", i, err)
				}
				defer stores[i].Close()
			}
			var n int
			must(t, stores[0].db.QueryRowContext(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n))
			if want := len(stores[0].dialect.migrations()); n != want {
				t.Fatalf("%d migrations recorded, want %d (each once)", n, want)
			}
		})
	}
}

func TestHostsClaimEachDeliveryOnce(t *testing.T) {
	eachKindShared(t, func(t *testing.T, stores []*Store) {
		seed(t, stores[0])
		ctx := context.Background()
		const n = 200
		for i := 0; i < n; i++ {
			_, _, err := stores[i%hosts].AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`),
				DedupeKey: fmt.Sprint("d", i)})
			must(t, err)
		}
		var mu sync.Mutex
		claimed := map[int64]int{}
		drainAll(t, stores, func(s *Store, d Delivery) error {
			mu.Lock()
			claimed[d.ID]++
			mu.Unlock()
			_, _, err := s.Finish(ctx, d, Outcome{Attempt: d.Attempts, StartedAt: time.Now(), Status: DeliveryDone})
			return err
		})
		if len(claimed) != n {
			t.Fatalf("%d deliveries claimed, want %d", len(claimed), n)
		}
		for id, times := range claimed {
			if times != 1 {
				t.Errorf("delivery %d claimed %d times", id, times)
			}
		}
		counts, err := stores[0].DeliveryCounts(ctx)
		must(t, err)
		if counts[DeliveryDone] != n {
			t.Errorf("statuses %v, want %d done", counts, n)
		}
	})
}

// TestHostsOrderDeliveriesOfAnIssue finishes many deliveries of one issue
// from several hosts at once, each assigning a different user. Every one
// that applied must have been newer than all applied before it, and the
// group must end with the newest one's assignee.
func TestHostsOrderDeliveriesOfAnIssue(t *testing.T) {
	eachKindShared(t, func(t *testing.T, stores []*Store) {
		seed(t, stores[0])
		ctx := context.Background()
		const n = 60
		stamps := rand.Perm(n)
		byID := map[int64]int{}
		for i, ts := range stamps {
			must(t, stores[0].PutUser(ctx, User{ID: fmt.Sprint("u", ts), Projects: []string{"backend"}}))
			id, _, err := stores[i%hosts].AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`),
				IssueID: "10001", IssueKey: "APP-1", JiraTimestamp: int64(ts), DedupeKey: fmt.Sprint("ts", ts)})
			must(t, err)
			byID[id] = ts
		}
		drainAll(t, stores, func(s *Store, d Delivery) error {
			user := fmt.Sprint("u", d.JiraTimestamp)
			_, _, err := s.Finish(ctx, d, Outcome{Attempt: d.Attempts, StartedAt: time.Now(), Status: DeliveryDone,
				Synced: true, Assignments: []Assignment{{Group: "g1", Assignee: &user}}})
			return err
		})

		rows, err := stores[0].db.QueryContext(ctx, `SELECT delivery_id FROM assignee_changes WHERE group_id = 'g1' ORDER BY id`)
		must(t, err)
		defer rows.Close()
		last, applied := -1, 0
		for rows.Next() {
			var id int64
			must(t, rows.Scan(&id))
			if ts := byID[id]; ts <= last {
				t.Errorf("delivery with timestamp %d applied after one with %d", ts, last)
			} else {
				last = ts
			}
			applied++
		}
		must(t, rows.Err())
		if last != n-1 {
			t.Errorf("newest applied timestamp %d, want %d", last, n-1)
		}
		g, err := stores[0].Group(ctx, "", "g1")
		must(t, err)
		if want := fmt.Sprint("u", n-1); g.Assignee == nil || *g.Assignee != want {
			t.Errorf("g1 = %s, want %s (the newest delivery's)", deref(g.Assignee), want)
		}
		counts, err := stores[0].DeliveryCounts(ctx)
		must(t, err)
		if counts[DeliveryDone] != applied || counts[DeliveryDone]+counts[DeliveryStale] != n {
			t.Errorf("statuses %v with %d applied; want every delivery done (applied) or stale", counts, applied)
		}
		t.Logf("%d deliveries of one issue over %d hosts: %d applied in order, %d stale", n, hosts, applied, counts[DeliveryStale])
	})
}

func deref(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}
