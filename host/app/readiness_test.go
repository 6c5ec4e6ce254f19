package app

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
)

const assignAlice = `{"webhookEvent":"jira:issue_updated","timestamp":5,"issue":{"id":"1","key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"id":"9","items":[{"field":"assignee"}]}}`

func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, body := adminGet(t, base+"/readyz", "", "")
	return resp.StatusCode, body
}

// checkReadiness walks a host through its storage refusing writes and
// recovering: readiness must say unready while a delivery cannot be
// stored, both from a probe of its own (no webhook in between) and at once
// after a webhook is refused, and ready again once writes succeed.
func checkReadiness(t *testing.T, base, tok string, refuse, restore func()) {
	t.Helper()
	if status, body := readyz(t, base); status != http.StatusOK {
		t.Fatalf("readyz before: %d %s", status, body)
	}
	refuse()
	time.Sleep(store.ProbeEvery) // past the last answer's validity
	if status, body := readyz(t, base); status != http.StatusServiceUnavailable || !strings.Contains(body, "not writable") {
		t.Fatalf("readyz while writes fail: %d %s; want 503, storage not writable", status, body)
	}
	status, ans := post(t, base+WebhookPath+tok, assignAlice)
	if status != http.StatusServiceUnavailable || !strings.Contains(ans["error"].(string), "not stored") {
		t.Fatalf("webhook while writes fail: %d %v; want 503, not stored", status, ans)
	}
	if status, body := readyz(t, base); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz after a refused webhook: %d %s", status, body)
	}
	restore()
	time.Sleep(store.ProbeEvery)
	if status, body := readyz(t, base); status != http.StatusOK {
		t.Fatalf("readyz once writes succeed: %d %s", status, body)
	}
	if status, ans := post(t, base+WebhookPath+tok, assignAlice); status != http.StatusOK || ans["status"] != store.DeliveryDone {
		t.Fatalf("webhook once writes succeed: %d %v", status, ans)
	}
}

// TestReadinessWhenDiskFull runs the host on SQLite on a small tmpfs and
// fills it. Readiness used to say ready (the database still answers a
// ping) while every webhook got 503. Mounting needs root (CI runs as
// root); elsewhere the test skips, saying so.
func TestReadinessWhenDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Skipf("mounting a tmpfs to fill needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	_, srv, tok := newTestAppConfig(t, func(c *Config) { c.DB = filepath.Join(dir, "j.db") })
	filler := filepath.Join(dir, "filler")
	checkReadiness(t, srv.URL, tok, func() {
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		chunk := bytes.Repeat([]byte{1}, 64<<10)
		for {
			if _, err := f.Write(chunk); errors.Is(err, syscall.ENOSPC) {
				return
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReadinessWhenWritesRefused runs the host on PostgreSQL as a role of
// its own, then takes away that role's right to insert deliveries, as a
// database gone read-only for it would: the ping still answers, the writes
// are refused. (A role of its own: the test server's user may be a
// superuser, whose privileges cannot be revoked.)
func TestReadinessWhenWritesRefused(t *testing.T) {
	dsn := storetest.DSN(t, "postgres")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Migrate as the owner; the host's role then only uses the tables.
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), dsn, box)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	role := schema + "_host"
	if _, err := admin.Exec(`CREATE ROLE ` + role + ` LOGIN`); err != nil {
		t.Skipf("making a role for the host needs CREATEROLE: %v", err)
	}
	t.Cleanup(func() {
		for _, q := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := admin.Exec(q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	exec(`GRANT USAGE, CREATE ON SCHEMA ` + schema + ` TO ` + role)
	exec(`GRANT ALL ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + role)
	exec(`GRANT ALL ON ALL SEQUENCES IN SCHEMA ` + schema + ` TO ` + role)
	u.User = url.User(role)
	_, srv, tok := newTestAppConfig(t, func(c *Config) {
		c.DB, c.SecretKeyFile, c.AdminToken = u.String(), filepath.Join(t.TempDir(), "secret.key"), sharedTestAdminToken
	})
	checkReadiness(t, srv.URL, tok, func() { exec(`REVOKE INSERT ON deliveries FROM ` + role) },
		func() { exec(`GRANT INSERT ON deliveries TO ` + role) })
}
