package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSQLiteFilesAreOwnerOnly: the database and its WAL and shared-memory
// files are 0600, whether new, or left readable by an older version.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	for _, tt := range []struct {
		name     string
		existing os.FileMode // 0: no file before the open
	}{
		{"new database", 0},
		{"database readable by others", 0o644},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "j.db")
			if tt.existing != 0 {
				for _, p := range []string{db, db + "-wal", db + "-shm"} {
					if err := os.WriteFile(p, nil, tt.existing); err != nil {
						t.Fatal(err)
					}
					if err := os.Chmod(p, tt.existing); err != nil { // past the umask
						t.Fatal(err)
					}
				}
			}
			s := open(t, db)
			// A write makes sure the WAL and its index exist.
			must(t, s.PutOrganization(context.Background(), Organization{ID: "acme"}))
			for _, p := range []string{db, db + "-wal", db + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("%s: %v", filepath.Base(p), err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
				}
			}
		})
	}
}
