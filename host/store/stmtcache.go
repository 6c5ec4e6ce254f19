package store

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements by query text, for a driver that
// does not: modernc.org/sqlite parses and plans a query's text on every
// call made without one, and that was a quarter of the host's CPU under
// load (the accept path's installation lookup was mostly parsing). A
// *sql.Stmt is prepared on each connection when first used there and
// kept. Query texts built with a varying number of placeholders come and
// go, so the cache holds the most recently used maxCachedStmts and closes
// the statements it drops, once no call is using them.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	max   int
	items map[string]*list.Element // of *cachedStmt; front: most recent
	lru   list.List
}

type cachedStmt struct {
	query   string
	stmt    *sql.Stmt
	users   int  // calls between take and release
	dropped bool // out of the cache: closed when users is 0
}

// maxCachedStmts bounds the statements kept: the store's fixed queries
// are fewer than that (each delivery uses a few dozen), and a prepared
// statement costs a few KB on each connection it is used on.
const maxCachedStmts = 128

func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, items: map[string]*list.Element{}}
}

// take returns the prepared statement of query, preparing it if needed,
// for use until release; nil if it cannot be prepared (the caller runs
// the query unprepared, and meets the same error there if it is one).
func (c *stmtCache) take(ctx context.Context, query string) *cachedStmt {
	c.mu.Lock()
	if e, ok := c.items[query]; ok {
		c.lru.MoveToFront(e)
		cs := e.Value.(*cachedStmt)
		cs.users++
		c.mu.Unlock()
		return cs
	}
	c.mu.Unlock()
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[query]; ok {
		// Prepared meanwhile by another call: use that one.
		st.Close()
		c.lru.MoveToFront(e)
		cs := e.Value.(*cachedStmt)
		cs.users++
		return cs
	}
	cs := &cachedStmt{query: query, stmt: st, users: 1}
	c.items[query] = c.lru.PushFront(cs)
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.items, old.query)
		old.dropped = true
		if old.users == 0 {
			old.stmt.Close()
		}
	}
	return cs
}

// release ends a use begun by take. Rows and a transaction's statement
// made from the statement keep it open themselves (database/sql closes a
// statement only once they are closed), so a use ends when the call that
// starts them returns.
func (c *stmtCache) release(cs *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.users--
	if cs.dropped && cs.users == 0 {
		cs.stmt.Close()
	}
}
