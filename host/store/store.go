// Package store keeps the host's data: the platform's organizations,
// projects, users and issue groups, the Jira installations with their
// credentials, the links between groups and Jira issues, the delivery log
// and the plugin's per-installation state.
//
// It is the only package that speaks SQL, to one of two databases: SQLite
// (modernc.org/sqlite, pure Go, so the host builds without cgo), the
// embedded default for one host, or PostgreSQL (pgx), which several hosts
// share. The queries are the same for both; what differs is in a dialect.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jirasync/jirasync/host/platform"
)

// ErrNotFound is returned when a named row does not exist.
var ErrNotFound = platform.ErrNotFound

// ErrDenied is returned when a change names a group that the installation
// has no link to.
var ErrDenied = platform.ErrDenied

// ErrConflict is returned when a change would leave the data incoherent.
var ErrConflict = platform.ErrConflict

// Store is the database. It is safe for concurrent use.
type Store struct {
	raw     *sql.DB
	db      runner // raw, speaking the dialect
	dialect dialect
	now     func() time.Time
	secrets Sealer

	accepts    chan acceptReq
	acceptOnce sync.Once
	closing    chan struct{}
	closeOnce  sync.Once

	health writeHealth
	// gate queues this process's writers where the database takes one at
	// a time (writeGate); nil where it runs them at once.
	gate *writeGate
}

// Sealer encrypts the secrets the store keeps (installation credentials)
// before they are written and decrypts them when read. where names the
// row and column, so a sealed value only opens where it was written.
type Sealer interface {
	Seal(plain, where string) (string, error)
	Open(sealed, where string) (string, error)
}

// Open opens the database dsn names and applies pending migrations: a
// postgres:// or postgresql:// URL is a PostgreSQL database, which other
// hosts may share; anything else is the path of a SQLite file, created if
// missing, which this host owns alone. Secrets are sealed with sealer.
func Open(ctx context.Context, dsn string, sealer Sealer) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("store: a Sealer is required: secrets are never stored in the clear")
	}
	d := dialectFor(dsn)
	db, err := d.open(dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{raw: db, db: runner{db, d, d.stmtCache(db)}, dialect: d, now: time.Now, secrets: sealer,
		accepts: make(chan acceptReq), closing: make(chan struct{}), gate: d.writeGate()}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", d.name(), err)
	}
	return s, nil
}

// Shared reports whether other hosts may use this database at once, so
// that a delivery left in flight may be another host's, not a dead one's.
func (s *Store) Shared() bool { return s.dialect.shared() }

// Dialect names the database: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.name() }

// Close stops the accept writer and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return s.raw.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.raw.PingContext(ctx) }

// migrate applies pending migrations on one connection that holds the
// dialect's migration lock throughout, so that hosts starting together
// migrate one after the other: the second finds nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	c, err := s.raw.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	unlock, err := s.dialect.lockMigrations(ctx, c)
	if err != nil {
		return err
	}
	defer unlock()
	conn := runner{c, s.dialect, nil}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	for i, m := range s.dialect.migrations() {
		version := i + 1
		err := inTx(ctx, c, conn, func(tx runner) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, version, s.now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
	}
	return nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

// tx runs fn in a transaction that writes, in an ordinary turn to write
// (writing).
func (s *Store) tx(ctx context.Context, fn func(tx runner) error) error {
	return s.txAs(ctx, ordinary, fn)
}

// txAs is tx in a turn of the given class.
func (s *Store) txAs(ctx context.Context, class int, fn func(tx runner) error) error {
	return s.writing(ctx, class, func() error { return inTx(ctx, s.raw, s.db, fn) })
}

// writing runs fn, which writes to the database, in a turn at the write
// gate of class ordinary or urgent (intake), where the dialect has one:
// every write of the store passes here, in a transaction (tx) or not
// (exec, and the few statements that read what they write), except
// migrations, which run before anything else is open. A write made
// without a turn would still be correct: the database's lock orders it,
// by its busy handler. fn must not take another turn: the gate is not
// reentrant.
func (s *Store) writing(ctx context.Context, class int, fn func() error) error {
	if s.gate == nil {
		return fn()
	}
	leave, err := s.gate.enter(ctx, class)
	if err != nil {
		return err
	}
	defer leave()
	return fn()
}

// exec runs one statement that writes, outside a transaction, and returns
// the rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (n int64, err error) {
	err = s.writing(ctx, ordinary, func() error {
		res, err := s.db.ExecContext(ctx, query, args...)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n, err
}

// inTx runs fn in a transaction on db (a database or one connection),
// committing if fn returns nil and rolling back otherwise; the
// transaction's runner speaks r's dialect, with r's statements.
func inTx(ctx context.Context, db interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, r runner, fn func(tx runner) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(runner{tx, r.d, r.stmts}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
