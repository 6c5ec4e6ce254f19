package store

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"
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
	st, err := s.Finish(ctx, d, Outcome{Attempt: 1, StartedAt: time.Now(), Status: DeliveryDone, Synced: true,
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
			{"all, the future first", WatermarkFilter{}, []Watermark{{"jira1", "10001", "APP-1", future, frozen}, {"jira1", "10002", "APP-2", 100, other}}},
			{"by key", WatermarkFilter{Installation: "jira1", IssueKey: "APP-2"}, []Watermark{{"jira1", "10002", "APP-2", 100, other}}},
			{"by id", WatermarkFilter{Installation: "jira1", IssueID: "10001"}, []Watermark{{"jira1", "10001", "APP-1", future, frozen}}},
			{"limit", WatermarkFilter{Limit: 1}, []Watermark{{"jira1", "10001", "APP-1", future, frozen}}},
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
		if !slices.Equal(reset, []Watermark{{"jira1", "10001", "APP-1", future, frozen}}) {
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
		if !slices.Equal(got, []Watermark{{"jira1", "10001", "APP-1", 600, next}}) {
			t.Errorf("watermark after the reset = %+v", got)
		}
		if r, err := s.ResetWatermarks(ctx, WatermarkFilter{Installation: "jira1", IssueID: "10002"}); err != nil || len(r) != 1 {
			t.Errorf("reset by id = %+v, %v", r, err)
		}
	})
}
