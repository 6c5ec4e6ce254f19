// Package teststore opens a fresh SQLite store for a test: the host's
// tests that need real storage behind the host functions, without the
// storage conformance suite's two databases.
package teststore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/store"
)

// Open opens a store in a file of t's temporary folder, closed when the
// test ends; name tells two of one test apart.
func Open(t testing.TB, name string) *store.Store {
	t.Helper()
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), name), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
