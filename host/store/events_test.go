package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store/storetest"
)

func newEvent(id, group string, ts int64) NewEvent {
	return NewEvent{ID: id, Type: platform.EventResolved, Group: group, Timestamp: ts,
		Body: []byte(`{"id":"` + id + `","type":"group.resolved","group":"` + group + `"}`)}
}

// TestAcceptEventFansOut: an event is one pending delivery per installation
// not uninstalled, in one transaction, identified by its group and its id;
// the same id again stores nothing, even for an installation added since,
// and answers the earlier deliveries; with no installation nothing is
// stored.
func TestAcceptEventFansOut(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if ids, dup, err := s.AcceptEvent(ctx, newEvent("e0", "g1", 5)); err != nil || dup || len(ids) != 0 {
			t.Fatalf("no installation: %v %v %v, want nothing stored", ids, dup, err)
		}
		withInstallation(t, s, "jira1")
		withInstallation(t, s, "jira2")
		gone := Installation{ID: "jira3", ExternalID: "jira.example.com:jira3", BaseURL: "https://jira.example.com", ConsumerKey: "c",
			WebhookSecret: "s", UninstalledAt: 1}
		must(t, s.PutInstallation(ctx, gone))

		ids, dup, err := s.AcceptEvent(ctx, newEvent("e1", "g1", 1000))
		if err != nil || dup || len(ids) != 2 {
			t.Fatalf("accept: %v %v %v, want two deliveries", ids, dup, err)
		}
		for i, inst := range []string{"jira1", "jira2"} {
			d, err := s.Delivery(ctx, ids[i])
			must(t, err)
			if d.Installation != inst || d.Kind != KindEvent || d.Event != platform.EventResolved || d.IssueID != "group:g1:status" ||
				d.IssueKey != "group:g1" || d.JiraTimestamp != 1000 || d.Status != DeliveryPending || string(d.Body) != string(newEvent("e1", "g1", 0).Body) {
				t.Errorf("delivery %d: %+v", i, d)
			}
		}
		withInstallation(t, s, "jira0") // sorted first: its insert would succeed before the duplicate is met
		again, dup, err := s.AcceptEvent(ctx, newEvent("e1", "g1", 2000))
		if err != nil || !dup || !slices.Equal(again, ids) {
			t.Fatalf("the same id again: %v %v %v, want duplicate of %v", again, dup, err, ids)
		}
		if n := rowCount(t, s, "deliveries"); n != 2 {
			t.Errorf("%d deliveries after a duplicate, want 2", n)
		}
		// The log tells events from webhooks.
		_, _, err = s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), Event: "jira:issue_updated", DedupeKey: "w"})
		must(t, err)
		for kind, want := range map[string]int{KindEvent: 2, KindWebhook: 1, "": 3} {
			ds, err := s.Deliveries(ctx, DeliveryFilter{Kind: kind})
			must(t, err)
			if len(ds) != want {
				t.Errorf("kind %q: %d deliveries, want %d", kind, len(ds), want)
			}
			for _, d := range ds {
				if kind != "" && d.Kind != kind {
					t.Errorf("kind %q lists a %s", kind, d.Kind)
				}
			}
		}
		if _, err := s.Deliveries(ctx, DeliveryFilter{Kind: "email"}); err == nil {
			t.Error("an unknown kind was taken")
		}
	})
}

// TestPutGroupRaising: a group's write and the events its change raises
// are one transaction: an unchanged group raises none, a refused group
// and a failing raise store neither the group nor an event.
func TestPutGroupRaising(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		n := 0
		raise := func(before *Group, after Group) ([]NewEvent, error) {
			var out []NewEvent
			for _, e := range platform.GroupEvents(before, after, time.UnixMilli(1000), func() string { n++; return fmt.Sprint("b", n) }) {
				out = append(out, NewEvent{ID: e.ID, Type: e.Type, Group: e.Group, Body: []byte(`{}`), Timestamp: 1000})
			}
			return out, nil
		}
		types := func(rs []RaisedEvent) []string {
			var out []string
			for _, r := range rs {
				if len(r.Deliveries) != 1 {
					t.Errorf("event %s: deliveries %v, want one (jira1)", r.ID, r.Deliveries)
				}
				out = append(out, r.Type)
			}
			return out
		}
		steps := []struct {
			name  string
			group Group
			want  []string
		}{
			{"assign", Group{ID: "g1", Project: "backend", Assignee: ptr("alice")}, []string{platform.EventAssigned}},
			{"unchanged", Group{ID: "g1", Project: "backend", Assignee: ptr("alice"), Title: "new title"}, nil},
			{"unassign and resolve", Group{ID: "g1", Project: "backend", Status: platform.StatusResolved},
				[]string{platform.EventAssigned, platform.EventResolved}},
			{"new group", Group{ID: "g9", Project: "backend", Assignee: ptr("alice")}, nil},
		}
		total := 0
		for _, st := range steps {
			raised, err := s.PutGroupRaising(ctx, st.group, raise)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got := types(raised); !slices.Equal(got, st.want) {
				t.Errorf("%s: raised %v, want %v", st.name, got, st.want)
			}
			total += len(st.want)
		}
		if c := rowCount(t, s, "deliveries"); c != total {
			t.Errorf("%d deliveries, want %d", c, total)
		}
		// Refused (unknown assignee): nothing raised, nothing written.
		if _, err := s.PutGroupRaising(ctx, Group{ID: "g1", Project: "backend", Assignee: ptr("nobody")}, raise); err == nil {
			t.Error("a group with an unknown assignee was written")
		}
		// The raise fails: the group is not written either.
		boom := errors.New("boom")
		_, err := s.PutGroupRaising(ctx, Group{ID: "g1", Project: "backend", Assignee: ptr("alice")},
			func(*Group, Group) ([]NewEvent, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Errorf("failing raise: %v, want boom", err)
		}
		g, err := s.Group(ctx, "", "g1")
		must(t, err)
		if g.Assignee != nil || g.Status != platform.StatusResolved {
			t.Errorf("g1 after refused writes: %+v, want unassigned and resolved", g)
		}
		if c := rowCount(t, s, "deliveries"); c != total {
			t.Errorf("%d deliveries after refused writes, want %d", c, total)
		}
	})
}

// TestRetentionTreatsEventsAsDeliveries: settled event deliveries go when
// webhook deliveries would (an ignored one's body first), unsettled ones
// stay.
func TestRetentionTreatsEventsAsDeliveries(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		t0 := time.Now()
		now := t0
		s.now = func() time.Time { return now }
		r := testRetention
		settleEvent := func(id string, o Outcome) int64 {
			ids, _, err := s.AcceptEvent(ctx, newEvent(id, "g1", now.UnixMilli()))
			must(t, err)
			if o.Status == DeliveryPending {
				return ids[0]
			}
			d, ok, err := s.Claim(ctx, ids[0], time.Minute, 8, true)
			if err != nil || !ok {
				t.Fatalf("claim %s: %v %v", id, ok, err)
			}
			o.Attempt, o.StartedAt = d.Attempts, now
			if o.External {
				if _, _, err := s.Reserve(ctx, d, o, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err = s.Finish(ctx, d, o)
			must(t, err)
			return ids[0]
		}
		ids := map[string]int64{
			"ignored": settleEvent("ignored", Outcome{Status: DeliveryDone, Ignored: true, Synced: true, External: true, AppliedAhead: true}),
			"synced":  settleEvent("synced", Outcome{Status: DeliveryDone, Synced: true, External: true, AppliedAhead: true}),
			"dead":    settleEvent("dead", Outcome{Status: DeliveryDead, External: true, Error: "unavailable: x"}),
			"pending": settleEvent("pending", Outcome{Status: DeliveryPending}),
		}
		for _, step := range []struct {
			at      time.Duration
			present []string
			bodies  []string
		}{
			{26 * time.Hour, []string{"ignored", "synced", "dead", "pending"}, []string{"synced", "dead", "pending"}},
			{50 * time.Hour, []string{"dead", "pending"}, []string{"dead", "pending"}},
			{100 * time.Hour, []string{"pending"}, []string{"pending"}},
		} {
			now = t0.Add(step.at)
			pruneAll(t, s, r)
			for name, id := range ids {
				d, err := s.Delivery(ctx, id)
				switch {
				case errors.Is(err, ErrNotFound):
					if slices.Contains(step.present, name) {
						t.Errorf("at +%v: %s was removed", step.at, name)
					}
				case err != nil:
					t.Fatal(err)
				case !slices.Contains(step.present, name):
					t.Errorf("at +%v: %s (%s) is still stored", step.at, name, d.Status)
				case slices.Contains(step.bodies, name) != (len(d.Body) > 0):
					t.Errorf("at +%v: %s has body %q", step.at, name, d.Body)
				}
			}
		}
	})
}

// TestAcceptEventConcurrently: the same event sent to several hosts at
// once (or re-sent while its first accept commits) is stored once: one
// accept stores it, every other answers duplicate with its deliveries.
func TestAcceptEventConcurrently(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, inst := range []string{"jira1", "jira2", "jira3"} {
			withInstallation(t, s, inst)
		}
		const senders = 8
		type result struct {
			ids []int64
			dup bool
			err error
		}
		results := make(chan result, senders)
		for i := 0; i < senders; i++ {
			go func() {
				ids, dup, err := s.AcceptEvent(ctx, newEvent("same", "g1", 1000))
				results <- result{ids, dup, err}
			}()
		}
		stored := 0
		var first []int64
		for i := 0; i < senders; i++ {
			r := <-results
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !r.dup {
				stored++
			}
			if first == nil {
				first = r.ids
			} else if !slices.Equal(first, r.ids) {
				t.Errorf("deliveries %v and %v for one event", first, r.ids)
			}
		}
		if stored != 1 || rowCount(t, s, "deliveries") != 3 {
			t.Errorf("%d accepts stored, %d deliveries; want 1 and 3", stored, rowCount(t, s, "deliveries"))
		}
	})
}

// BenchmarkAcceptEvent measures events stored per second, each one
// transaction of one delivery per installation, from 8 senders at once,
// with one installation and with three.
func BenchmarkAcceptEvent(b *testing.B) {
	for _, kind := range storetest.Kinds {
		for _, installations := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s/%d-installations", kind, installations), func(b *testing.B) {
				s := openScale(b, kind)
				for i := 1; i < installations; i++ {
					withInstallation(b, s, fmt.Sprint("jira", i), "acme")
				}
				var n atomic.Int64
				b.SetParallelism(8)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if _, _, err := s.AcceptEvent(context.Background(), newEvent(fmt.Sprint("bench-", i), fmt.Sprint("g", i%50), i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
