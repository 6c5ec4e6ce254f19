package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestReserveOrdersExternalApplies: deliveries of one issue applying on
// an external platform take the issue's hold one at a time; an older one
// finds itself stale; a dead holder's hold expires; a delivery retaken
// after its host died takes its own hold again.
func TestReserveOrdersExternalApplies(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		withInstallation(t, s, "jira")
		claimed := func(ts int64) Delivery {
			t.Helper()
			id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira", Body: []byte(`{}`), IssueID: "10001",
				JiraTimestamp: ts, DedupeKey: fmt.Sprint(ts)})
			if err != nil {
				t.Fatal(err)
			}
			d, ok, err := s.Claim(ctx, id, time.Minute, 8, true)
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			return d
		}
		done := func(d Delivery) Outcome {
			return Outcome{Attempt: d.Attempts, StartedAt: time.Now(), Status: DeliveryDone, Synced: true, External: true}
		}
		reserve := func(d Delivery, hold time.Duration, want Reservation) {
			t.Helper()
			got, _, err := s.Reserve(ctx, d, done(d), hold)
			if err != nil || got != want {
				t.Fatalf("Reserve(ts %d) = %v, %v; want %v", d.JiraTimestamp, got, err, want)
			}
		}
		finish := func(d Delivery, applied bool, want string) {
			t.Helper()
			o := done(d)
			o.AppliedAhead = applied
			got, _, err := s.Finish(ctx, d, o)
			if err != nil || got != want {
				t.Fatalf("Finish(ts %d) = %s, %v; want %s", d.JiraTimestamp, got, err, want)
			}
		}
		d20, d10 := claimed(20), claimed(10)
		reserve(d20, time.Minute, ReserveApply)
		reserve(d10, time.Minute, ReserveWait) // d20 is applying
		finish(d20, true, DeliveryDone)
		reserve(d10, time.Minute, ReserveStale)
		finish(d10, false, DeliveryStale)

		// Done without applying what Reserve allowed is refused.
		d25 := claimed(25)
		reserve(d25, time.Minute, ReserveApply)
		if _, _, err := s.Finish(ctx, d25, done(d25)); err == nil {
			t.Fatal("Finish of an external delivery not applied: no error")
		}
		// A host that died holding the issue: d25's hold expires.
		reserve(d25, time.Millisecond, ReserveApply)
		time.Sleep(20 * time.Millisecond)
		d30 := claimed(30)
		reserve(d30, time.Minute, ReserveApply)
		reserve(d25, time.Minute, ReserveWait)  // d30 holds it now
		reserve(d30, time.Minute, ReserveApply) // its own hold, again
		finish(d30, true, DeliveryDone)
		reserve(d25, time.Minute, ReserveStale)
		// Not synced (no assignee change): not ordered, no hold.
		d40 := claimed(40)
		if got, _, err := s.Reserve(ctx, d40, Outcome{Attempt: d40.Attempts, Status: DeliveryDone}, time.Minute); err != nil || got != ReserveApply {
			t.Fatalf("unordered: %v %v", got, err)
		}
	})
}
