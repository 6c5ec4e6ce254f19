package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqlite is the embedded default: one file, one host. Its transactions
// take the write lock when they begin, so they run one at a time and need
// no row locks.
type sqlite struct{}

func (sqlite) name() string { return "sqlite" }

func (sqlite) open(path string) (*sql.DB, error) {
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	// WAL lets readers run beside the one writer; synchronous(FULL) makes a
	// commit durable before it returns; IMMEDIATE transactions take the
	// write lock up front, so two writers queue on busy_timeout instead of
	// one failing with SQLITE_BUSY on upgrade.
	busy := fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds())
	for _, p := range []string{busy, "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	// As many kept idle: by default database/sql keeps 2, and closed the
	// others as they came back, so that under load connections were
	// opened (the pragmas above run again) and their prepared statements
	// lost all the time.
	db.SetMaxIdleConns(8)
	// The first connection turns a new file to WAL, which takes the
	// database's lock without calling the busy handler: hosts (or tests)
	// opening one new file at once would see SQLITE_BUSY. Once a
	// connection is made the file is in WAL and further ones need no lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.Ping()
		if err == nil {
			return db, nil
		}
		if !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sqliteBusyTimeout is how long a writer waits for the database's lock
// (busy_timeout), and for its turn at the process's write gate.
const sqliteBusyTimeout = 10 * time.Second

func (sqlite) migrations() []string   { return sqliteMigrations }
func (sqlite) rebind(q string) string { return q }
func (sqlite) lockRows(string) string { return "" }
func (sqlite) skipLocked() string     { return "" }
func (sqlite) queueIndex() string     { return " INDEXED BY deliveries_queue" }
func (sqlite) shared() bool           { return false }

// stmtCache: modernc.org/sqlite prepares a query's text on every call
// made without a prepared statement.
func (sqlite) stmtCache(db *sql.DB) *stmtCache { return newStmtCache(db, maxCachedStmts) }

// writeGate: SQLite lets one writer in at a time; the process queues its
// own (writeGate) rather than leave them to the busy handler.
func (sqlite) writeGate() *writeGate { return newWriteGate(sqliteBusyTimeout) }

// lockMigrations: each migration's IMMEDIATE transaction already excludes
// other writers.
func (sqlite) lockMigrations(context.Context, *sql.Conn) (func(), error) { return func() {}, nil }

// ownerOnly makes the database readable by its owner only: it holds
// delivery bodies, names and emails. The file is created 0600 before
// SQLite opens it, since SQLite gives the -wal and -shm files it makes
// the mode of the database file; files an older version left readable
// by others are narrowed.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil && fi.Mode().Perm()&0o077 != 0 {
			err = os.Chmod(p, fi.Mode().Perm()&0o700)
		}
		if err != nil {
			return fmt.Errorf("restricting %s to its owner: %w", p, err)
		}
	}
	return nil
}
