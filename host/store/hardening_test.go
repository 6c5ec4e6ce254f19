package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTextReachingStorageIsClean writes text with NUL and invalid UTF-8
// through every kind of column a delivery and the plugin's state touch.
// PostgreSQL refused such text ("invalid byte sequence for encoding UTF8:
// 0x00"), so a Jira error page with a NUL in it, copied into an outcome,
// made Finish fail on every attempt and the delivery was claimed forever.
// Now both databases store the same cleaned text, and a lookup by the
// uncleaned key finds what was stored under it.
func TestTextReachingStorageIsClean(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"valid", "APP-1 ✓", "APP-1 ✓"},
		{"nul", "time\x00x", "time\uFFFDx"},
		{"invalid utf-8", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
		{"both", "\x00\xfe\x00", "\uFFFD\uFFFD\uFFFD"},
	}
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{"k":"\u0000"}` + "\x00\xff"),
					IssueKey: tt.text, Event: tt.text, DedupeKey: tt.text + strconv.Itoa(i)})
				if err != nil {
					t.Fatalf("accept: %v", err)
				}
				if again, dup, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`),
					DedupeKey: tt.text + strconv.Itoa(i)}); err != nil || !dup || again != id {
					t.Fatalf("the same dedupe key again: %d %v %v; want %d, a duplicate", again, dup, err, id)
				}
				d, ok, err := s.Claim(ctx, id, time.Minute, 8, false)
				if err != nil || !ok {
					t.Fatalf("claim: %v %v", ok, err)
				}
				st, _, err := s.Finish(ctx, d, Outcome{Attempt: d.Attempts, StartedAt: time.Now(), Status: DeliveryFailed,
					HTTPStatus: 400, Error: "invalid_payload: timestamp " + tt.text, Summary: tt.text})
				if err != nil || st != DeliveryFailed {
					t.Fatalf("Finish = %s, %v; want failed recorded", st, err)
				}
				got, err := s.Delivery(ctx, id)
				must(t, err)
				if got.IssueKey != tt.want || got.Event != tt.want || got.Summary != tt.want ||
					got.Error != "invalid_payload: timestamp "+tt.want {
					t.Errorf("stored %q %q %q %q; want %q", got.IssueKey, got.Event, got.Summary, got.Error, tt.want)
				}
				if string(got.Body) != `{"k":"\u0000"}`+"\x00\xff" {
					t.Errorf("body %q: a body is bytes and must be stored unchanged", got.Body)
				}
				attempts, err := s.Attempts(ctx, id)
				must(t, err)
				if len(attempts) != 1 || attempts[0].Error != "invalid_payload: timestamp "+tt.want {
					t.Errorf("attempts = %+v", attempts)
				}
				must(t, s.StatePut(ctx, "jira1", "key "+tt.text, "value "+tt.text, 0))
				if v, ok, err := s.StateGet(ctx, "jira1", "key "+tt.text); err != nil || !ok || v != "value "+tt.want {
					t.Errorf("state = %q %v %v; want %q", v, ok, err, "value "+tt.want)
				}
				must(t, s.SharedStatePut(ctx, "key "+tt.text, "value "+tt.text, 0))
				if v, ok, err := s.SharedStateGet(ctx, "key "+tt.text); err != nil || !ok || v != "value "+tt.want {
					t.Errorf("shared state = %q %v %v; want %q", v, ok, err, "value "+tt.want)
				}
			})
		}
	})
}

func TestCleanText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"\x00", "\uFFFD"},
		{"\xff\xff", "\uFFFD"}, // one run of invalid bytes, one replacement
		{"é\x00é", "é\uFFFDé"},
		{"\uFFFD", "\uFFFD"},
	} {
		if got := CleanText(tt.in); got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestClaimSettlesDeadWhenOutOfAttempts: a delivery whose attempts never
// record an outcome (its host killed mid-attempt, or the outcome refused by
// the database) used to be claimed again every lease, for ever, its
// attempts counting past the maximum. The claim now settles it dead once
// its budget is spent, with the reason, and says so; the next claim takes
// the next delivery.
func TestClaimSettlesDeadWhenOutOfAttempts(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		now := time.Now()
		s.now = func() time.Time { return now }
		const max = 3
		poison, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), DedupeKey: "poison"})
		must(t, err)
		next, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), DedupeKey: "next"})
		must(t, err)
		for attempt := 1; attempt <= max; attempt++ {
			d, ok, err := s.Claim(ctx, poison, time.Minute, max, false)
			if err != nil || !ok || d.Attempts != attempt {
				t.Fatalf("claim %d: %+v %v %v", attempt, d, ok, err)
			}
			// No Finish: the lease expires.
			now = now.Add(2 * time.Minute)
		}
		if d, ok, err := s.Claim(ctx, poison, time.Minute, max, true); !errors.Is(err, ErrOutOfAttempts) || ok || d.ID != poison {
			t.Fatalf("claim past the budget: %+v %v %v; want the delivery, not ok, ErrOutOfAttempts", d, ok, err)
		}
		d, err := s.Delivery(ctx, poison)
		must(t, err)
		if d.Status != DeliveryDead || d.Attempts != max || d.Error != OutOfAttempts || d.HTTPStatus != 500 || d.FinishedAt != now.UnixMilli() {
			t.Fatalf("after the budget: %+v; want dead with %d attempts and the reason", d, max)
		}

		// ClaimNext passes over (and settles) one out of attempts.
		must(t, s.Replay(ctx, poison))
		for attempt := 1; attempt <= max; attempt++ {
			if _, ok, err := s.Claim(ctx, poison, time.Minute, max, false); err != nil || !ok {
				t.Fatalf("claim %d after the replay (a fresh budget): %v %v", attempt, ok, err)
			}
			now = now.Add(2 * time.Minute)
		}
		if got, ok, err := s.ClaimNext(ctx, time.Minute, max); !errors.Is(err, ErrOutOfAttempts) || ok || got.ID != poison {
			t.Fatalf("ClaimNext = %d %v %v; want %d settled dead", got.ID, ok, err, poison)
		}
		got, ok, err := s.ClaimNext(ctx, time.Minute, max)
		if err != nil || !ok || got.ID != next {
			t.Fatalf("ClaimNext = %d %v %v; want %d, the next one", got.ID, ok, err, next)
		}
		if d, _ := s.Delivery(ctx, poison); d.Status != DeliveryDead || d.Attempts != 2*max {
			t.Errorf("poison after ClaimNext: %s with %d attempts", d.Status, d.Attempts)
		}
		if _, _, err := s.Claim(ctx, next, time.Minute, 0, true); err == nil || !strings.Contains(err.Error(), "max attempts") {
			t.Errorf("a claim without a budget: %v, want refused", err)
		}
	})
}
