package store

import (
	"context"
	"database/sql"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// A dialect is what differs between the two databases the store runs on.
// Queries are written once, in the SQL both accept, with ? placeholders;
// a dialect opens its database, rewrites placeholders, supplies its own
// migrations and row-locking clauses, and serializes migrations.
type dialect interface {
	// name is "sqlite" or "postgres", for logs and errors.
	name() string
	open(dsn string) (*sql.DB, error)
	migrations() []string
	rebind(query string) string
	// lockRows is appended to a SELECT that reads rows it will then
	// change in the same transaction: "FOR UPDATE [OF alias]" where
	// readers and writers run at once, "" where transactions are
	// serialized anyway.
	lockRows(alias string) string
	// skipLocked is lockRows for a queue: rows another transaction holds
	// are passed over, not waited for.
	skipLocked() string
	// queueIndex follows "FROM deliveries" where a query claims the oldest
	// unsettled delivery: a planner that would pick another index without
	// table statistics is told to use deliveries_queue.
	queueIndex() string
	// lockMigrations takes a lock that a migrating process holds until
	// unlock, so that hosts starting together migrate one at a time.
	lockMigrations(ctx context.Context, c *sql.Conn) (unlock func(), err error)
	// shared reports whether other hosts may use the database at once.
	shared() bool
	// stmtCache keeps db's prepared statements where the driver does not
	// keep them itself; nil where it does (or needs none).
	stmtCache(db *sql.DB) *stmtCache
	// writeGate is the gate this process's writers pass one at a time,
	// intake first, where the database lets one writer in at a time
	// anyway; nil where writers run at once and lock rows, not the
	// database.
	writeGate() *writeGate
}

// dialectFor picks the dialect a DSN names: a postgres:// or postgresql://
// URL is PostgreSQL; anything else is the path of a SQLite file.
func dialectFor(dsn string) dialect {
	if IsPostgres(dsn) {
		return &postgres{}
	}
	return sqlite{}
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn fit for a log line: a PostgreSQL URL without its
// password.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// execer is what *sql.DB, *sql.Tx and *sql.Conn share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runner runs queries written with ? placeholders in its dialect; it has
// the method set of *sql.DB's query methods so that query code reads the
// same over a database, a transaction or a connection.
type runner struct {
	x execer
	d dialect
	// stmts, where the dialect keeps one (stmtCache), prepares the
	// queries run over the database or a transaction of it; nil: they
	// run unprepared.
	stmts *stmtCache
}

func (r runner) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query, args = r.d.rebind(query), cleanArgs(args)
	if st, done := r.prepared(ctx, query); st != nil {
		defer done()
		return st.ExecContext(ctx, args...)
	}
	return r.x.ExecContext(ctx, query, args...)
}

func (r runner) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query, args = r.d.rebind(query), cleanArgs(args)
	if st, done := r.prepared(ctx, query); st != nil {
		defer done()
		return st.QueryContext(ctx, args...)
	}
	return r.x.QueryContext(ctx, query, args...)
}

func (r runner) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = r.d.rebind(query), cleanArgs(args)
	if st, done := r.prepared(ctx, query); st != nil {
		defer done()
		return st.QueryRowContext(ctx, args...)
	}
	return r.x.QueryRowContext(ctx, query, args...)
}

// prepared returns the prepared statement to run query with, and the
// function that ends its use, or nil to run it unprepared: without a
// cache, over a single connection (migrations), or when preparing fails.
func (r runner) prepared(ctx context.Context, query string) (*sql.Stmt, func()) {
	if r.stmts == nil {
		return nil, nil
	}
	tx, inTx := r.x.(*sql.Tx)
	if _, onDB := r.x.(*sql.DB); !onDB && !inTx {
		return nil, nil
	}
	cs := r.stmts.take(ctx, query)
	if cs == nil {
		return nil, nil
	}
	if inTx {
		// The transaction's statement keeps its parent open until the
		// transaction ends: the use taken here can end at once.
		st := tx.StmtContext(ctx, cs.stmt)
		r.stmts.release(cs)
		return st, func() {}
	}
	return cs.stmt, func() { r.stmts.release(cs) }
}

// cleanArgs makes every text argument of a query valid UTF-8 without NUL,
// so that text reaches both databases the same way: PostgreSQL refuses NUL
// and invalid UTF-8 in TEXT ("invalid byte sequence for encoding UTF8"),
// and a write it refuses is an outcome never recorded. Every query passes
// here, so no caller can forget; lookups are cleaned as their keys were
// when written, and still match. []byte arguments (delivery bodies,
// BLOB/BYTEA) are bytes and pass unchanged. The caller's slice is copied
// before the first change, never written.
func cleanArgs(args []any) []any {
	out := args
	for i, a := range args {
		var c any
		switch v := a.(type) {
		case string:
			if cs := CleanText(v); cs != v {
				c = cs
			}
		case *string:
			if v != nil {
				if cs := CleanText(*v); cs != *v {
					c = &cs
				}
			}
		}
		if c == nil {
			continue
		}
		if &out[0] == &args[0] {
			out = append([]any(nil), args...)
		}
		out[i] = c
	}
	return out
}

// CleanText is text as the store keeps it: each invalid UTF-8 sequence and
// each NUL is replaced by U+FFFD, the Unicode replacement character. Text
// that needs no change is returned as is, without copying. Two texts that
// differ only in such bytes are stored alike.
func CleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// numbered rewrites ? placeholders as $1, $2, ..., leaving ? inside quoted
// strings and identifiers alone. Results are cached: the store's queries
// are a fixed set of strings.
type numbered struct{ cache sync.Map }

func (n *numbered) rebind(query string) string {
	if v, ok := n.cache.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	arg := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			arg++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(arg))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	n.cache.Store(query, out)
	return out
}
