package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/store"
)

// freshDB makes an empty, migrated SQLite database with its key beside
// it, as `jirasync serve` leaves one.
func freshDB(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "jirasync.db")
	box, err := secrets.Load(filepath.Join(filepath.Dir(db), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), db, box)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	return db
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "platform.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runPlatform(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := platformCmd(args, &out)
	return out.String(), err
}

func TestPlatformImportExportCommands(t *testing.T) {
	db := freshDB(t)
	good := `{"organizations": [{"id": "acme", "name": "Acme"}],
		"projects": [{"id": "backend", "organization": "acme"}],
		"users": [{"id": "alice", "emails": [{"email": "alice@example.com", "verified": true}], "projects": ["backend"]}],
		"groups": [{"id": "g1", "project": "backend", "title": "Timeouts", "assignee": "alice"}]}`
	out, err := runPlatform(t, "import", "-db", db, writeFile(t, good))
	if err != nil || !strings.HasPrefix(out, "imported 1 organizations, 1 projects, 1 users, 1 groups, 0 links") {
		t.Fatalf("import: %q, %v", out, err)
	}
	exported, err := runPlatform(t, "export", "-db", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"acme"`, `"email":"alice@example.com","verified":true`, `"assignee":"alice"`, `"links": [`} {
		if !strings.Contains(exported, want) {
			t.Errorf("export lacks %s:\n%s", want, exported)
		}
	}
	// A bad file: nothing imported, and the error says where.
	bad := strings.Replace(good, `"alice@example.com"`, `"alice"`, 1)
	bad = strings.Replace(bad, `"name": "Acme"`, `"name": "Acme renamed"`, 1)
	_, err = runPlatform(t, "import", "-db", db, writeFile(t, bad))
	if err == nil || !strings.Contains(err.Error(), "nothing imported: users[0].emails[0].email: not an email address") {
		t.Fatalf("bad import: %v", err)
	}
	if again, _ := runPlatform(t, "export", "-db", db); again != exported {
		t.Fatalf("a refused import changed data:\n%s", again)
	}
	// The export imports into a fresh host as the same data.
	other := freshDB(t)
	if _, err := runPlatform(t, "import", "-db", other, writeFile(t, exported)); err != nil {
		t.Fatal(err)
	}
	if got, _ := runPlatform(t, "export", "-db", other); got != exported {
		t.Fatalf("round trip differs:\n%s\nwant\n%s", got, exported)
	}
	for _, args := range [][]string{{}, {"import", "-db", db}, {"export", "-db", db, "x"}, {"frobnicate"}} {
		if _, err := runPlatform(t, args...); err == nil {
			t.Errorf("platform %v: no error", args)
		}
	}
}

// TestReadPlatformToken: -platform takes its token from a file, trimmed;
// a missing, empty or unneeded file is an error that says so.
func TestReadPlatformToken(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	if err := os.WriteFile(good, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url, file string
		demo      bool
		want, err string
	}{
		{"", "", false, "", ""},
		{"https://p.example", good, false, "s3cret", ""},
		{"https://p.example", "", false, "", "needs -platform-token-file"},
		{"https://p.example", empty, false, "", "is empty"},
		{"https://p.example", filepath.Join(dir, "nope"), false, "", "no such file"},
		{"", good, false, "", "without -platform"},
		{"https://p.example", good, true, "", "-demo"},
	} {
		got, err := readPlatformToken(tc.url, tc.file, tc.demo)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("readPlatformToken(%q, %q, %v) = %q, %v; want %q, %q", tc.url, tc.file, tc.demo, got, err, tc.want, tc.err)
		}
	}
}
