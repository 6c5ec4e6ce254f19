package store

import (
	"context"
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
// done. Urgent writers (accepts) go before every waiting ordinary one;
// ordinary writers are not starved: after an urgent turn, a waiting
// ordinary writer goes next, so under a stream of accepts the workers
// still get every other turn. The database's own lock and busy handler
// still order this process against others (a second process on the
// file), and any write that does not pass here.
type writeGate struct {
	mu      sync.Mutex
	held    bool
	urgent  bool // the turn held, or the last one, was urgent
	waiting [2][]chan struct{}
	timeout time.Duration
}

// errWriteTimeout is returned by a write that waited longer than the
// database's busy timeout for its turn, as it would have for the
// database's lock.
var errWriteTimeout = fmt.Errorf("database busy: no turn to write within %s", sqliteBusyTimeout)

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
		g.held, g.urgent = true, class == urgent
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
		err = errWriteTimeout
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
	class := urgent
	if len(g.waiting[urgent]) == 0 || (g.urgent && len(g.waiting[ordinary]) > 0) {
		class = ordinary
	}
	if len(g.waiting[class]) == 0 {
		g.held, g.urgent = false, false
		return
	}
	turn := g.waiting[class][0]
	g.waiting[class] = g.waiting[class][1:]
	g.urgent = class == urgent
	close(turn)
}
