package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// writeGate queues this process's writers of a database that lets one
// writer in at a time (SQLite), in Go, with intake first. Left to the
// database, writers that find its lock taken sleep in its busy handler
// and poll, longer the longer they have waited (1, 2, 5, ... 100 ms), and
// whoever polls when the lock is free gets it: a worker that has just
// committed takes it again at once while the accept that waited longest
// sleeps longest. Accepts, which a client waits for, queued behind plugin
// work for hundreds of milliseconds, some for seconds.
//
// Through the gate a writer waits its turn without a connection and
// without polling, and is handed the turn when the writer before it is
// done. Urgent writers (accepts) go before every waiting ordinary one:
// while an accept waits, no worker's write starts. Ordinary writers are
// not starved for good: one that has seen maxUrgentInRow urgent turns go
// ahead of it goes next. The database's own lock and busy handler still
// order this process against others (a second process on the file), and
// any write that does not pass here.
type writeGate struct {
	mu      sync.Mutex
	held    bool
	waiting [2][]chan struct{}
	// passed counts the urgent turns handed over in a row while ordinary
	// writers waited.
	passed  int
	timeout time.Duration
}

// maxUrgentInRow bounds the urgent turns that go ahead of a waiting
// ordinary writer. An accept batch takes every accept waiting, so under a
// flood of deliveries each urgent turn stores many, and the workers still
// write once in every nine turns. Alternating (one each) let a worker's
// write hold up every other accept batch: host/RATIONALE.md, "Intake
// first".
const maxUrgentInRow = 8

// errWriteTimeout is returned, with the time waited, by a write that
// waited longer than the gate's timeout (the database's busy timeout) for
// its turn, as it would have for the database's lock.
var errWriteTimeout = errors.New("database busy: no turn to write")

const (
	ordinary = 0
	urgent   = 1
)

func newWriteGate(timeout time.Duration) *writeGate { return &writeGate{timeout: timeout} }

// enter waits for a turn to write, at most the gate's timeout and until
// ctx is done, and returns the function that ends it.
func (g *writeGate) enter(ctx context.Context, class int) (leave func(), err error) {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return g.leave, nil
	}
	turn := make(chan struct{})
	g.waiting[class] = append(g.waiting[class], turn)
	g.mu.Unlock()

	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	select {
	case <-turn:
		return g.leave, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("%w within %s", errWriteTimeout, g.timeout)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-turn:
		// Handed the turn as we gave up: pass it on.
		g.next()
		return nil, err
	default:
	}
	for i, w := range g.waiting[class] {
		if w == turn {
			g.waiting[class] = append(g.waiting[class][:i], g.waiting[class][i+1:]...)
			break
		}
	}
	return nil, err
}

func (g *writeGate) leave() {
	g.mu.Lock()
	g.next()
	g.mu.Unlock()
}

// next hands the turn to the next waiter, or frees the gate; g.mu held.
func (g *writeGate) next() {
	class := ordinary
	if len(g.waiting[urgent]) > 0 && (len(g.waiting[ordinary]) == 0 || g.passed < maxUrgentInRow) {
		class = urgent
	}
	switch {
	case len(g.waiting[class]) == 0:
		g.held = false
		return
	case class == ordinary || len(g.waiting[ordinary]) == 0:
		g.passed = 0
	default:
		g.passed++
	}
	turn := g.waiting[class][0]
	g.waiting[class] = g.waiting[class][1:]
	close(turn)
}
