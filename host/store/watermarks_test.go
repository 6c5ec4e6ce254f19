package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
)

// applySynced stores a delivery of an issue and runs it to an assignee
// change's outcome, returning its id and final status (done or stale).
func applySynced(t *testing.T, s *Store, issueID, issueKey string, ts int64, assignee *string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	key := "changelog:" + issueID + ":" + strconv.FormatInt(ts, 10)
	id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), IssueID: issueID,
		IssueKey: issueKey, JiraTimestamp: ts, DedupeKey: key})
	must(t, err)
	d, ok, err := s.Claim(ctx, id, time.Minute, 8, false)
	if err != nil || !ok {
		t.Fatalf("claim %d: %v %v", id, ok, err)
	}
	st, _, err := s.Finish(ctx, d, Outcome{Attempt: 1, StartedAt: time.Now(), Status: DeliveryDone, Synced: true,
		Assignments: []Assignment{{Group: "g1", Assignee: assignee}}})
	must(t, err)
	return id, st
}

// TestWatermarks: an operator sees each issue's watermark, the one set by a
// timestamp from the future first, by issue id or key, and resetting it
// lets the issue's next delivery apply again.
func TestWatermarks(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		const future = int64(9_000_000_000_000_000_000)
		frozen, st := applySynced(t, s, "10001", "APP-1", future, ptr("alice"))
		if st != DeliveryDone {
			t.Fatalf("first delivery %s", st)
		}
		other, _ := applySynced(t, s, "10002", "APP-2", 100, nil)
		if _, st := applySynced(t, s, "10001", "APP-1", 500, nil); st != DeliveryStale {
			t.Fatalf("delivery after the future one: %s, want stale", st)
		}

		for _, tt := range []struct {
			name string
			f    WatermarkFilter
			want []Watermark
		}{
			{"all, the future first", WatermarkFilter{}, []Watermark{{"jira1", "10001", FieldAssignee, "APP-1", future, frozen}, {"jira1", "10002", FieldAssignee, "APP-2", 100, other}}},
			{"by key", WatermarkFilter{Installation: "jira1", IssueKey: "APP-2"}, []Watermark{{"jira1", "10002", FieldAssignee, "APP-2", 100, other}}},
			{"by id", WatermarkFilter{Installation: "jira1", IssueID: "10001"}, []Watermark{{"jira1", "10001", FieldAssignee, "APP-1", future, frozen}}},
			{"limit", WatermarkFilter{Limit: 1}, []Watermark{{"jira1", "10001", FieldAssignee, "APP-1", future, frozen}}},
			{"other installation", WatermarkFilter{Installation: "jira2"}, []Watermark{}},
			{"unknown key", WatermarkFilter{Installation: "jira1", IssueKey: "APP-9"}, []Watermark{}},
		} {
			got, err := s.Watermarks(ctx, tt.f)
			must(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Watermarks(%s) = %+v, want %+v", tt.name, got, tt.want)
			}
		}

		for _, f := range []WatermarkFilter{{}, {Installation: "jira1"}, {IssueID: "10001"}} {
			if _, err := s.ResetWatermarks(ctx, f); !errors.Is(err, ErrNoFilter) {
				t.Errorf("ResetWatermarks(%+v) = %v, want ErrNoFilter", f, err)
			}
		}
		reset, err := s.ResetWatermarks(ctx, WatermarkFilter{Installation: "jira1", IssueKey: "APP-1"})
		must(t, err)
		if !slices.Equal(reset, []Watermark{{"jira1", "10001", FieldAssignee, "APP-1", future, frozen}}) {
			t.Fatalf("ResetWatermarks(APP-1) = %+v", reset)
		}
		if again, err := s.ResetWatermarks(ctx, WatermarkFilter{Installation: "jira1", IssueKey: "APP-1"}); err != nil || len(again) != 0 {
			t.Fatalf("second reset = %+v, %v; want none", again, err)
		}
		next, st := applySynced(t, s, "10001", "APP-1", 600, nil)
		if st != DeliveryDone {
			t.Fatalf("delivery after the reset: %s, want done", st)
		}
		if g, _ := s.Group(ctx, "", "g1"); g.Assignee != nil {
			t.Errorf("g1 = %v after the reset, want unassigned", *g.Assignee)
		}
		got, err := s.Watermarks(ctx, WatermarkFilter{Installation: "jira1", IssueID: "10001"})
		must(t, err)
		if !slices.Equal(got, []Watermark{{"jira1", "10001", FieldAssignee, "APP-1", 600, next}}) {
			t.Errorf("watermark after the reset = %+v", got)
		}
		if r, err := s.ResetWatermarks(ctx, WatermarkFilter{Installation: "jira1", IssueID: "10002"}); err != nil || len(r) != 1 {
			t.Errorf("reset by id = %+v, %v", r, err)
		}
	})
}

// TestWatermarksPerField: an issue's watermarks are listed and reset one
// per field, both by the issue's id or key; the row an external
// platform's hold made on an issue with no assignee mark is not listed.
func TestWatermarksPerField(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		finish := func(key string, ts int64, o Outcome, external bool) int64 {
			t.Helper()
			id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), IssueID: "10001",
				IssueKey: "APP-1", JiraTimestamp: ts, DedupeKey: key})
			must(t, err)
			d, ok, err := s.Claim(ctx, id, time.Minute, 8, false)
			if err != nil || !ok {
				t.Fatalf("claim %d: %v %v", id, ok, err)
			}
			o.Attempt, o.Status = d.Attempts, DeliveryDone
			if external {
				o.External, o.AppliedAhead = true, true
				if r, _, err := s.Reserve(ctx, d, o, time.Minute); err != nil || r != ReserveApply {
					t.Fatalf("Reserve = %v, %v", r, err)
				}
			}
			if st, _, err := s.Finish(ctx, d, o); err != nil || st != DeliveryDone {
				t.Fatalf("Finish = %s, %v", st, err)
			}
			return id
		}
		resolve := Outcome{Statuses: []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved}}}
		// Status only, on an external platform: its hold is on the
		// assignee's row, which holds no mark.
		st := finish("s", 200, resolve, true)
		statusOnly := []Watermark{{"jira1", "10001", FieldStatus, "APP-1", 200, st}}
		for _, f := range []WatermarkFilter{{}, {Installation: "jira1", IssueID: "10001"}, {Installation: "jira1", IssueKey: "APP-1"}} {
			if got, err := s.Watermarks(ctx, f); err != nil || !slices.Equal(got, statusOnly) {
				t.Errorf("Watermarks(%+v) = %+v, %v; want %+v", f, got, err, statusOnly)
			}
		}
		as := finish("a", 100, Outcome{Synced: true, Assignments: []Assignment{{Group: "g1", Assignee: ptr("alice")}}}, false)
		both := []Watermark{{"jira1", "10001", FieldStatus, "APP-1", 200, st}, {"jira1", "10001", FieldAssignee, "APP-1", 100, as}}
		if got, err := s.Watermarks(ctx, WatermarkFilter{Installation: "jira1", IssueKey: "APP-1"}); err != nil || !slices.Equal(got, both) {
			t.Errorf("Watermarks(APP-1) = %+v, %v; want %+v", got, err, both)
		}
		for i, f := range []WatermarkFilter{{Installation: "jira1", IssueID: "10001"}, {Installation: "jira1", IssueKey: "APP-1"}} {
			reset, err := s.ResetWatermarks(ctx, f)
			must(t, err)
			if len(reset) != 2 {
				t.Fatalf("ResetWatermarks(%+v) = %+v; want both fields' marks", f, reset)
			}
			if left, err := s.Watermarks(ctx, WatermarkFilter{}); err != nil || len(left) != 0 {
				t.Fatalf("after the reset: %+v, %v; want none", left, err)
			}
			// Both fields apply again, whatever their timestamps.
			finish(fmt.Sprint("a", i), 1, Outcome{Synced: true, Assignments: []Assignment{{Group: "g1"}}}, false)
			finish(fmt.Sprint("s", i), 1, resolve, false)
		}
	})
}
