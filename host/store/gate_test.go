package store

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// queued waits until the gate has n waiters of class.
func queued(g *writeGate, class, n int) {
	for {
		g.mu.Lock()
		got := len(g.waiting[class])
		g.mu.Unlock()
		if got == n {
			return
		}
		runtime.Gosched()
	}
}

// TestWriteGateOrder queues writers behind a held turn, one at a time so
// that their order of arrival is known, then lets the turns go: urgent
// ones go before ordinary ones that came first, and an ordinary one that
// has seen maxUrgentInRow urgent ones go ahead goes next (no starvation).
func TestWriteGateOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arrive  string // the classes in order of arrival: o ordinary, u urgent
		holder  int
		want    string
		explain string
	}{
		{"urgent first", "ooou", ordinary, "uooo", "an accept goes before the writers waiting"},
		{"ordinary in order", "ooo", ordinary, "ooo", "writers go in order of arrival"},
		{"urgents in order", "uu", ordinary, "uu", "accepts go in order of arrival"},
		{"urgents ahead of ordinaries", "ouou", urgent, "uuoo", "accepts go before writers whenever they wait"},
		{"no starvation", "o" + strings.Repeat("u", maxUrgentInRow+2), ordinary,
			strings.Repeat("u", maxUrgentInRow) + "ouu", "a writer goes after maxUrgentInRow accepts went ahead of it"},
		{"bound counts from the last ordinary turn", "oo" + strings.Repeat("u", maxUrgentInRow+1), ordinary,
			strings.Repeat("u", maxUrgentInRow) + "ouo", "the second writer too waits for maxUrgentInRow accepts only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newWriteGate(time.Minute)
			leave, err := g.enter(context.Background(), tc.holder)
			if err != nil {
				t.Fatal(err)
			}
			var order []byte // appended to in turn, so under the gate
			done := make(chan struct{})
			n := [2]int{}
			for _, c := range []byte(tc.arrive) {
				class := ordinary
				if c == 'u' {
					class = urgent
				}
				go func() {
					defer func() { done <- struct{}{} }()
					leave, err := g.enter(context.Background(), class)
					if err != nil {
						t.Error(err)
						return
					}
					order = append(order, c)
					leave()
				}()
				n[class]++
				queued(g, class, n[class])
			}
			leave()
			for range tc.arrive {
				<-done
			}
			if string(order) != tc.want {
				t.Errorf("turns went %s, want %s: %s", order, tc.want, tc.explain)
			}
			assertFree(t, g)
		})
	}
}

// assertFree fails t unless g is free: no turn held, no one waiting.
func assertFree(t *testing.T, g *writeGate) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held || len(g.waiting[urgent])+len(g.waiting[ordinary]) > 0 {
		t.Errorf("gate held %v, waiting %v after every turn ended", g.held, g.waiting)
	}
}

// TestWriteGateGivingUp: a writer whose context ends, or whose wait
// outlasts the timeout, leaves the queue with that error: a request whose
// client left does not hang, and the turn is not handed to a writer that
// is gone (the gate is free once its holder leaves).
func TestWriteGateGivingUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		cancel  bool
		want    error
	}{
		{"context canceled", time.Minute, true, context.Canceled},
		{"timed out", time.Millisecond, false, errWriteTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newWriteGate(tc.timeout)
			leave, err := g.enter(context.Background(), ordinary)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			gaveUp := make(chan error)
			go func() {
				_, err := g.enter(ctx, urgent)
				gaveUp <- err
			}()
			queued(g, urgent, 1)
			if tc.cancel {
				cancel()
			}
			if err := <-gaveUp; !errors.Is(err, tc.want) {
				t.Fatalf("gave up with %v, want %v", err, tc.want)
			}
			leave()
			assertFree(t, g)
		})
	}
}

// TestWriteGateTurnHandedWhileGivingUp: a writer handed its turn at the
// moment its context ends either takes the turn or passes it on; the turn
// is never lost, whichever of the two its select picks.
func TestWriteGateTurnHandedWhileGivingUp(t *testing.T) {
	outcomes := map[bool]int{}
	for range 50 {
		g := newWriteGate(time.Minute)
		if _, err := g.enter(context.Background(), ordinary); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan func())
		go func() {
			leave, _ := g.enter(ctx, ordinary)
			result <- leave
		}()
		queued(g, ordinary, 1)
		// Both at once: under the gate's lock, the context ends and the
		// turn is handed over.
		g.mu.Lock()
		cancel()
		g.next()
		g.mu.Unlock()
		// The holder's turn was handed over by next; its leave is
		// not called.
		took := <-result
		outcomes[took != nil]++
		if took != nil {
			took()
		}
		assertFree(t, g)
	}
	t.Logf("handed the turn while giving up, 50 times: took it %d, passed it on %d", outcomes[true], outcomes[false])
}
