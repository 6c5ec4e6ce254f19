package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
)

// TestWebhooksOrderedPerField: each field of an issue (assignee, status)
// is ordered on its own watermark, on the built-in platform (Finish
// applies) and on an external one (Reserve decides, Finish records). The
// issue's assignee was last set at 100 and its status at 200 (a
// status-only delivery that finished first); a delivery at 50 is older
// than both marks, one at 150 older than the status's only, one at 250
// newer than both. A field whose mark is newer drops that field's
// changes; the other field applies and moves its own mark; the delivery
// is stale only when every field it changes is, and a partly stale one is
// done with its summary naming the stale field. Before fields had marks
// of their own, the assignee change at 150 was stale (the status-only
// delivery at 200 had moved the issue's one mark) and its assignment was
// lost.
func TestWebhooksOrderedPerField(t *testing.T) {
	const (
		assignee = "assignee"
		status   = "status"
		both     = "both"
	)
	type want struct {
		status         string
		stale          []string // fields the done delivery did not apply
		assigned       bool     // g1 ends assigned to alice (built-in only)
		resolved       bool     // g1 ends resolved (built-in only)
		marks          [2]int64 // assignee's and status's watermark after
		reserve        Reservation
		summaryHasNote bool
	}
	cases := []struct {
		ts     int64
		fields string
		want   want
	}{
		{50, assignee, want{status: DeliveryStale, marks: [2]int64{100, 200}, reserve: ReserveStale}},
		{50, status, want{status: DeliveryStale, marks: [2]int64{100, 200}, reserve: ReserveStale}},
		{50, both, want{status: DeliveryStale, marks: [2]int64{100, 200}, reserve: ReserveStale}},
		// The bug: an assignee change older than a status-only delivery.
		{150, assignee, want{status: DeliveryDone, assigned: true, marks: [2]int64{150, 200}}},
		{150, status, want{status: DeliveryStale, marks: [2]int64{100, 200}, reserve: ReserveStale}},
		{150, both, want{status: DeliveryDone, stale: []string{FieldStatus}, assigned: true, marks: [2]int64{150, 200}, summaryHasNote: true}},
		{250, assignee, want{status: DeliveryDone, assigned: true, marks: [2]int64{250, 200}}},
		{250, status, want{status: DeliveryDone, resolved: true, marks: [2]int64{100, 250}}},
		{250, both, want{status: DeliveryDone, assigned: true, resolved: true, marks: [2]int64{250, 250}}},
	}
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		n := 0
		claim := func(issue string, ts int64) Delivery {
			t.Helper()
			n++
			id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), IssueID: issue,
				IssueKey: "KEY-" + issue, JiraTimestamp: ts, DedupeKey: fmt.Sprint(n)})
			must(t, err)
			d, ok, err := s.Claim(ctx, id, time.Minute, 8, false)
			if err != nil || !ok {
				t.Fatalf("claim %d: %v %v", id, ok, err)
			}
			return d
		}
		outcome := func(d Delivery, fields string) Outcome {
			o := Outcome{Attempt: d.Attempts, StartedAt: time.Now(), Status: DeliveryDone, HTTPStatus: 200,
				Summary: `{"outcome":"synced","groups":[]}`}
			if fields != status {
				o.Synced, o.Assignments = true, []Assignment{{Group: "g1", Assignee: ptr("alice")}}
			}
			if fields != assignee {
				o.Statuses = []platform.StatusChange{{Group: "g1", Status: platform.StatusResolved}}
			}
			return o
		}
		for _, external := range []bool{false, true} {
			for _, tc := range cases {
				name := fmt.Sprintf("external=%v/ts=%d/%s", external, tc.ts, tc.fields)
				t.Run(name, func(t *testing.T) {
					issue := fmt.Sprintf("%d", 20000+n)
					// The marks: assignee at 100, status at 200, each by a
					// delivery of that field alone; g1 back as it was.
					for _, set := range []struct {
						ts     int64
						fields string
					}{{100, assignee}, {200, status}} {
						d := claim(issue, set.ts)
						o := outcome(d, set.fields)
						if st, _, err := s.Finish(ctx, d, o); err != nil || st != DeliveryDone {
							t.Fatalf("setting the %s mark: %s, %v", set.fields, st, err)
						}
					}
					must(t, s.PutGroup(ctx, Group{ID: "g1", Project: "backend", Status: platform.StatusUnresolved}))

					d := claim(issue, tc.ts)
					o := outcome(d, tc.fields)
					if external {
						o.External = true
						r, stale, err := s.Reserve(ctx, d, o, time.Minute)
						wantReserve := tc.want.reserve
						if err != nil || r != wantReserve || !slices.Equal(stale, tc.want.stale) {
							t.Fatalf("Reserve = %v %v, %v; want %v %v", r, stale, err, wantReserve, tc.want.stale)
						}
						if r == ReserveApply {
							o = o.Without(stale)
							o.AppliedAhead = true
						}
					}
					st, stale, err := s.Finish(ctx, d, o)
					if err != nil || st != tc.want.status || !slices.Equal(stale, tc.want.stale) {
						t.Fatalf("Finish = %s %v, %v; want %s %v", st, stale, err, tc.want.status, tc.want.stale)
					}
					if !external {
						g, err := s.Group(ctx, "", "g1")
						must(t, err)
						if assigned := g.Assignee != nil && *g.Assignee == "alice"; assigned != tc.want.assigned {
							t.Errorf("g1 assigned to alice: %v, want %v", assigned, tc.want.assigned)
						}
						if resolved := g.Status == platform.StatusResolved; resolved != tc.want.resolved {
							t.Errorf("g1 resolved: %v, want %v (status %q)", resolved, tc.want.resolved, g.Status)
						}
					}
					marks, err := s.Watermarks(ctx, WatermarkFilter{Installation: "jira1", IssueID: issue})
					must(t, err)
					got := map[string]int64{}
					for _, m := range marks {
						if m.IssueID != issue || m.IssueKey != "KEY-"+issue {
							t.Errorf("watermark %+v: want issue %s, key KEY-%s", m, issue, issue)
						}
						got[m.Field] = m.JiraTimestamp
					}
					if len(marks) != 2 || got[FieldAssignee] != tc.want.marks[0] || got[FieldStatus] != tc.want.marks[1] {
						t.Errorf("marks = %+v; want assignee %d, status %d", marks, tc.want.marks[0], tc.want.marks[1])
					}
					stored, err := s.Delivery(ctx, d.ID)
					must(t, err)
					var sum map[string]any
					if err := json.Unmarshal([]byte(stored.Summary), &sum); err != nil {
						t.Fatalf("stored summary %q: %v", stored.Summary, err)
					}
					note, has := sum[SummaryStaleFields]
					if has != tc.want.summaryHasNote || sum["outcome"] != "synced" {
						t.Errorf("stored summary %s: want %q only when partly stale (%v), outcome kept", stored.Summary,
							SummaryStaleFields, tc.want.summaryHasNote)
					}
					if has && fmt.Sprint(note) != fmt.Sprint(tc.want.stale) {
						t.Errorf("stored %s = %v, want %v", SummaryStaleFields, note, tc.want.stale)
					}
				})
			}
		}
	})
}

// TestNoteStaleFields: the note is added to any summary the store may be
// given, keeping what was there.
func TestNoteStaleFields(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, `{"stale_fields":["status"]}`},
		{`{}`, `{"stale_fields":["status"]}`},
		{` { } `, `{"stale_fields":["status"]}`},
		{`{"outcome":"synced"}`, `{"outcome":"synced","stale_fields":["status"]}`},
		{`not json`, `not json`},
	} {
		if got := noteStaleFields(tc.in, []string{FieldStatus}); got != tc.want {
			t.Errorf("noteStaleFields(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
