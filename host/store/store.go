// Package store keeps the host's data in SQLite: the platform's
// organizations, projects, users and issue groups, the Jira installations
// with their credentials, the links between groups and Jira issues, the
// delivery log and the plugin's per-installation state.
//
// It is the only package that speaks SQL. The driver is modernc.org/sqlite,
// pure Go, so the host builds without cgo.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a named row does not exist.
var ErrNotFound = errors.New("not found")

// ErrDenied is returned when a change names a group that the installation
// has no link to.
var ErrDenied = errors.New("denied")

// Store is the database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	now     func() time.Time
	secrets Sealer

	accepts    chan acceptReq
	acceptOnce sync.Once
	closing    chan struct{}
	closeOnce  sync.Once
}

// Sealer encrypts the secrets the store keeps (installation credentials)
// before they are written and decrypts them when read. where names the
// row and column, so a sealed value only opens where it was written.
type Sealer interface {
	Seal(plain, where string) (string, error)
	Open(sealed, where string) (string, error)
}

// Open opens (creating if needed) the database at path and applies pending
// migrations. Secrets are sealed with sealer.
func Open(ctx context.Context, path string, sealer Sealer) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("store: a Sealer is required: secrets are never stored in the clear")
	}
	q := url.Values{}
	// WAL lets readers run beside the one writer; synchronous(FULL) makes a
	// commit durable before it returns; IMMEDIATE transactions take the
	// write lock up front, so two writers queue on busy_timeout instead of
	// one failing with SQLITE_BUSY on upgrade.
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	s := &Store{db: db, now: time.Now, secrets: sealer, accepts: make(chan acceptReq), closing: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the accept writer and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return s.db.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		err := s.tx(ctx, func(tx *sql.Tx) error {
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

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
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
