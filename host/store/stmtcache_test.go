package store

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/host/store/storetest"
)

// TestStatementsArePreparedOnce: on SQLite the store's queries run from
// prepared statements kept by query text, not parsed again on each call
// (a quarter of the host's CPU under load), over the database and in
// transactions alike; PostgreSQL keeps none (pgx prepares its own).
func TestStatementsArePreparedOnce(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		if s.Dialect() == "postgres" {
			if s.db.stmts != nil {
				t.Fatal("a statement cache on PostgreSQL, whose driver keeps its own")
			}
			return
		}
		seed(t, s)
		ctx := context.Background()
		lookup := func() {
			t.Helper()
			if _, err := s.InstallationByExternalID(ctx, "jira.example.com:k"); err != nil {
				t.Fatal(err)
			}
		}
		lookup()
		cached := map[string]*cachedStmt{}
		for q, e := range s.db.stmts.items {
			cached[q] = e.Value.(*cachedStmt)
		}
		lookup()
		if _, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), DedupeKey: "a"}); err != nil {
			t.Fatal(err)
		}
		for _, table := range []struct{ name, query string }{
			{"installation lookup", `FROM installations WHERE external_id = ?`},
			{"accept (in a transaction)", `INSERT INTO deliveries(installation_id, received_at, body, status, event,`},
		} {
			found := false
			for q := range s.db.stmts.items {
				found = found || strings.Contains(q, table.query)
			}
			if !found {
				t.Errorf("%s: no prepared statement kept", table.name)
			}
		}
		for q, cs := range cached {
			e, ok := s.db.stmts.items[q]
			if !ok || e.Value.(*cachedStmt).stmt != cs.stmt {
				t.Errorf("prepared again on the second call: %.60q", q)
			}
			if cs.users != 0 {
				t.Errorf("%d uses not ended: %.60q", cs.users, q)
			}
		}
	})
}

// TestStatementCacheDropsSafely fills a small cache past its bound while
// its statements are in use: a statement dropped while a call holds it,
// while rows read from it are open, or while a transaction uses it, keeps
// working for them, and is closed once they are done.
func TestStatementCacheDropsSafely(t *testing.T) {
	s := open(t, storetest.DSN(t, "sqlite"))
	ctx := context.Background()
	c := newStmtCache(s.raw, 2)
	r := runner{s.raw, s.dialect, c}
	query := func(i int) string { return `SELECT ` + strconv.Itoa(i) + ` + ?` }

	held := c.take(ctx, query(0)) // a call between take and release
	rows, err := r.QueryContext(ctx, query(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	txr := runner{tx, s.dialect, c}
	txStmt, done := txr.prepared(ctx, query(2))
	if txStmt == nil {
		t.Fatal("no prepared statement in a transaction")
	}
	done() // the transaction's statement holds its parent from here
	var n int
	if err := txStmt.QueryRowContext(ctx, 1).Scan(&n); err != nil || n != 3 {
		t.Fatalf("in a transaction: %d, %v", n, err)
	}
	// Three more queries push all of the above out of the cache.
	for i := 3; i < 6; i++ {
		if err := r.QueryRowContext(ctx, query(i), 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	if len(c.items) != 2 || c.lru.Len() != 2 {
		t.Fatalf("cache holds %d (list %d); want its bound, 2", len(c.items), c.lru.Len())
	}
	if !held.dropped {
		t.Fatal("the least recently used statement was not dropped")
	}
	if err := held.stmt.QueryRowContext(ctx, 1).Scan(&n); err != nil || n != 1 {
		t.Fatalf("a dropped statement still held: %d, %v", n, err)
	}
	c.release(held)
	if err := held.stmt.QueryRowContext(ctx, 1).Scan(&n); err == nil {
		t.Error("a dropped statement no one holds is still open")
	}
	if !rows.Next() {
		t.Fatalf("rows of a dropped statement: %v", rows.Err())
	}
	if err := rows.Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows of a dropped statement: %d, %v", n, err)
	}
	rows.Close()
	if err := txStmt.QueryRowContext(ctx, 2).Scan(&n); err != nil || n != 4 {
		t.Fatalf("in a transaction, its statement dropped from the cache: %d, %v", n, err)
	}
}
