package store

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// postgres serves several hosts on one database. Transactions run at READ
// COMMITTED beside each other, so a transaction that reads rows to decide
// what to write locks them (lockRows), and workers take deliveries off the
// queue with SKIP LOCKED.
type postgres struct{ numbered }

func (*postgres) name() string { return "postgres" }

func (*postgres) open(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	return db, nil
}

func (*postgres) migrations() []string { return postgresMigrations }
func (*postgres) skipLocked() string   { return " FOR UPDATE SKIP LOCKED" }
func (*postgres) queueIndex() string   { return "" } // its planner finds it
func (*postgres) shared() bool         { return true }

// stmtCache: none; pgx prepares and caches statements per connection.
func (*postgres) stmtCache(*sql.DB) *stmtCache { return nil }

// writeGate: none. Transactions run at once and lock rows, so an accept's
// insert waits for no worker's transaction; and a gate in one process
// would not order the other hosts' writers anyway.
func (*postgres) writeGate() *writeGate { return nil }

func (*postgres) lockRows(alias string) string {
	if alias == "" {
		return " FOR UPDATE"
	}
	return " FOR UPDATE OF " + alias
}

// migrationLock is the advisory lock key hosts take to migrate: any
// constant, the same in every version ("jirasync" in ASCII).
const migrationLock = 0x6a69726173796e63

// lockMigrations takes a session-level advisory lock on c: a host that
// starts while another migrates waits, then finds the work done.
func (*postgres) lockMigrations(ctx context.Context, c *sql.Conn) (func(), error) {
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	}, nil
}
