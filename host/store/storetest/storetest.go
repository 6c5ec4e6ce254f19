// Package storetest gives tests a fresh, empty database of each kind the
// store runs on: a SQLite file always, and a PostgreSQL schema when
// $JIRASYNC_TEST_POSTGRES names a server (a postgres:// URL). Tests that
// run over Kinds are the storage conformance suite: the same assertions on
// both.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvPostgres names the PostgreSQL server the PostgreSQL suites use. Each
// test gets a schema of its own there, dropped when it ends.
const EnvPostgres = "JIRASYNC_TEST_POSTGRES"

// Kinds are the databases the store runs on.
var Kinds = []string{"sqlite", "postgres"}

// ErrNoPostgres is returned when EnvPostgres is not set.
var ErrNoPostgres = errors.New(EnvPostgres + " is not set: PostgreSQL suites skipped")

// PostgresURL is the server named by EnvPostgres, or "".
func PostgresURL() string { return os.Getenv(EnvPostgres) }

// DSN returns the DSN of a fresh database of the given kind, removed when
// t ends. A PostgreSQL test is skipped, saying why, when EnvPostgres is not
// set.
func DSN(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case "sqlite":
		return filepath.Join(t.TempDir(), "jirasync.db")
	case "postgres":
		base := PostgresURL()
		if base == "" {
			t.Skip(ErrNoPostgres)
		}
		dsn, drop, err := NewSchema(context.Background(), base)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := drop(); err != nil {
				t.Errorf("dropping test schema: %v", err)
			}
		})
		return dsn
	}
	t.Fatalf("unknown database kind %q", kind)
	return ""
}

// NewSchema makes an empty schema in the PostgreSQL database base names
// and returns a DSN whose connections work in it, and a function that
// drops it with everything in it.
func NewSchema(ctx context.Context, base string) (dsn string, drop func() error, err error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("%s: want a postgres:// URL, got %q", EnvPostgres, base)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "jirasync_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("creating schema on %s: %w", u.Redacted(), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop = func() error {
		defer admin.Close()
		_, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		return err
	}
	return u.String(), drop, nil
}
