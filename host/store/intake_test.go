package store

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAcceptGoesBeforeQueuedWrites keeps the database busy with a stream
// of writes, as the delivery workers do (plugin state written outside a
// transaction, platform objects in one), and accepts deliveries one after
// another meanwhile. On SQLite, which lets one writer in at a time, an
// accept must not queue behind that stream: it goes after the write under
// way, and no write that began after it may commit before it. The test
// counts such writes for each accept, an order rather than a time. Left
// to SQLite's busy handler (which sleeps the longer the longer a writer
// has waited, while a writer that has just committed takes the lock again
// at once), one accept in a run let thousands pass, for seconds, and a
// writer of the stream or an accept waited out the whole busy timeout
// and failed with SQLITE_BUSY.
// PostgreSQL runs the writes beside the accept, so there the count says
// nothing of order; there the test checks that every accept is stored
// under the stream.
func TestAcceptGoesBeforeQueuedWrites(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		const writers, accepts = 4, 30
		// started numbers the writes as they begin; order lists the
		// numbers of those committed, in the order they committed.
		var started atomic.Int64
		var mu sync.Mutex
		var order []int64
		stop := make(chan struct{})
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					n := started.Add(1)
					var err error
					if w%2 == 0 {
						err = s.StatePut(ctx, "jira1", "writer-"+strconv.Itoa(w), strconv.Itoa(i), 0)
					} else {
						err = s.PutOrganization(ctx, Organization{ID: "writer-" + strconv.Itoa(w), Name: strconv.Itoa(i)})
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					order = append(order, n)
					mu.Unlock()
				}
			}()
		}
		commits := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(order)
		}
		passed := make([]int, accepts)
		for i := range passed {
			// Before each accept, the stream has the database again: a
			// few writes commit.
			for until := commits() + writers; commits() < until; {
				select {
				case err := <-errs:
					t.Fatalf("a write of the stream: %v", err)
				default:
					runtime.Gosched()
				}
			}
			from, after := commits(), started.Load()
			if _, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`),
				DedupeKey: "accept-" + strconv.Itoa(i)}); err != nil {
				t.Fatalf("accept %d under the write stream: %v", i, err)
			}
			to := commits()
			mu.Lock()
			for _, n := range order[from:to] {
				if n > after {
					passed[i]++
				}
			}
			mu.Unlock()
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a write of the stream: %v", err)
		}
		counts, err := s.DeliveryCounts(ctx)
		must(t, err)
		if counts[DeliveryPending] != accepts {
			t.Errorf("%d deliveries stored, want %d", counts[DeliveryPending], accepts)
		}
		t.Logf("writes begun after an accept and committed before it (sorted): %v", slices.Sorted(slices.Values(passed)))
		if s.Dialect() == "postgres" {
			return // PostgreSQL: writers run at once; nothing overtakes
		}
		// First in line, none passes. The bound leaves room for the
		// moment between reading the counts and the accept writer asking
		// for its turn, in which a test goroutine descheduled on a loaded
		// machine may see a write or two begin and finish.
		if most := slices.Max(passed); most > writers {
			t.Errorf("an accept waited while %d writes begun after it committed; want at most %d", most, writers)
		}
	})
}
