package store

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store/storetest"
)

// eachKind runs test on a fresh store of each kind: these tests are the
// storage conformance suite, the same assertions on SQLite and PostgreSQL.
func eachKind(t *testing.T, test func(t *testing.T, s *Store)) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { test(t, open(t, storetest.DSN(t, kind))) })
	}
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, testBox(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr(s string) *string { return &s }

// seed: two organizations served by jira1 (globex with sync off), a third
// installation-less one, and groups linked to APP-1.
func seed(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, o := range []string{"acme", "globex", "initech"} {
		must(t, s.PutOrganization(ctx, Organization{ID: o}))
	}
	must(t, s.PutProject(ctx, Project{ID: "backend", Organization: "acme"}))
	must(t, s.PutProject(ctx, Project{ID: "ops", Organization: "globex"}))
	must(t, s.PutProject(ctx, Project{ID: "lab", Organization: "initech"}))
	must(t, s.PutUser(ctx, User{ID: "alice-old", Emails: []Email{{Address: "ALICE@example.com", Verified: false}}, Projects: []string{"ops"}}))
	must(t, s.PutUser(ctx, User{ID: "alice", Emails: []Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend", "ops"}}))
	for _, g := range []Group{{ID: "g1", Project: "backend"}, {ID: "g2", Project: "ops", Assignee: ptr("alice")}, {ID: "g3", Project: "lab"}} {
		must(t, s.PutGroup(ctx, g))
	}
	must(t, s.PutInstallation(ctx, Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: "https://jira.example.com",
		ConsumerKey: "k", WebhookSecret: "s", Organizations: []InstallationOrg{{ID: "acme", InboundAssignee: true}, {ID: "globex"}}}))
	for _, g := range []string{"g1", "g2", "g3"} {
		must(t, s.LinkGroup(ctx, g, "jira1", "APP-1"))
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			dsn := storetest.DSN(t, kind)
			for i := 0; i < 2; i++ {
				s, err := Open(context.Background(), dsn, testBox(t))
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				v, err := s.SchemaVersion(context.Background())
				if err != nil || v != len(s.dialect.migrations()) {
					t.Fatalf("open %d: schema version %d, %v; want %d", i, v, err, len(s.dialect.migrations()))
				}
				s.Close()
			}
		})
	}
}

func TestUsersByEmail(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		got, err := s.UsersByEmail(context.Background(), "  Alice@Example.COM ")
		must(t, err)
		if len(got) != 2 || got[0].ID != "alice-old" || got[0].Verified || got[1].ID != "alice" || !got[1].Verified {
			t.Fatalf("UsersByEmail = %+v, want alice-old (unverified) then alice (verified)", got)
		}
		if len(got[1].Projects) != 2 {
			t.Errorf("alice's projects = %v, want backend and ops", got[1].Projects)
		}
		none, err := s.UsersByEmail(context.Background(), "nobody@example.com")
		if err != nil || len(none) != 0 {
			t.Errorf("unknown email: %v, %v", none, err)
		}
	})
}

func TestLinkedGroupsOnlyInServedOrganizations(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		got, err := s.LinkedGroups(ctx, "jira1", "APP-1", []string{"acme", "globex", "initech"})
		must(t, err)
		if len(got) != 2 || got[0].ID != "g1" || got[1].ID != "g2" || got[1].Organization != "globex" {
			t.Fatalf("LinkedGroups = %+v; want g1 and g2 (g3's organization is not served by jira1)", got)
		}
		got, err = s.LinkedGroups(ctx, "jira1", "APP-1", []string{"acme"})
		must(t, err)
		if len(got) != 1 || got[0].ID != "g1" {
			t.Fatalf("LinkedGroups(acme) = %+v, want g1", got)
		}
		if got, _ := s.LinkedGroups(ctx, "jira1", "APP-2", []string{"acme"}); len(got) != 0 {
			t.Errorf("APP-2 has groups %+v", got)
		}
	})
}

// TestGroupStatus: a group is unresolved unless written resolved, reads
// (Group, LinkedGroups, ListGroups) say which, and a status other than the
// two is refused with the field named, changing nothing.
func TestGroupStatus(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		must(t, s.PutGroup(ctx, Group{ID: "g2", Project: "ops", Assignee: ptr("alice"), Status: platform.StatusResolved}))
		err := s.PutGroup(ctx, Group{ID: "g1", Project: "backend", Status: "done"})
		if err == nil || !strings.Contains(err.Error(), "status") {
			t.Fatalf("PutGroup with status done: %v, want an error naming status", err)
		}
		for _, tc := range []struct{ group, want string }{{"g1", "unresolved"}, {"g2", "resolved"}} {
			g, err := s.Group(ctx, "", tc.group)
			if err != nil || g.Status != tc.want {
				t.Errorf("Group(%s).Status = %q, %v; want %q", tc.group, g.Status, err, tc.want)
			}
		}
		linked, err := s.LinkedGroups(ctx, "jira1", "APP-1", []string{"acme", "globex"})
		must(t, err)
		if len(linked) != 2 || linked[0].Status != "unresolved" || linked[1].Status != "resolved" {
			t.Errorf("LinkedGroups = %+v; want g1 unresolved, g2 resolved", linked)
		}
		listed, err := s.ListGroups(ctx, Page{}, "")
		must(t, err)
		if len(listed) != 3 || listed[1].Status != "resolved" || listed[2].Status != "unresolved" {
			t.Errorf("ListGroups = %+v; want g2 resolved, the others unresolved", listed)
		}
	})
}

// assign applies assignments in one transaction, as Finish does.
func assign(s *Store, ctx context.Context, deliveryID int64, as []Assignment) (int, error) {
	changed := 0
	err := s.tx(ctx, func(tx runner) error {
		var err error
		changed, err = s.applyAssignments(ctx, tx, "jira1", deliveryID, as)
		return err
	})
	return changed, err
}

func TestAssignGroups(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		n, err := assign(s, ctx, 7, []Assignment{{Group: "g1", Assignee: ptr("alice")}, {Group: "g2", Assignee: ptr("alice")}})
		must(t, err)
		if n != 1 {
			t.Errorf("changed %d, want 1 (g2 already had alice)", n)
		}
		// g3 is linked, but through an organization jira1 does not serve: the
		// whole call is refused and g1's unassignment rolled back.
		_, err = assign(s, ctx, 8, []Assignment{{Group: "g1"}, {Group: "g3", Assignee: ptr("alice")}})
		if !errors.Is(err, ErrDenied) {
			t.Fatalf("assigning g3: %v, want ErrDenied", err)
		}
		g1, err := s.Group(ctx, "", "g1")
		must(t, err)
		if g1.Assignee == nil || *g1.Assignee != "alice" {
			t.Errorf("g1 = %v after a refused batch, want alice (rolled back)", g1.Assignee)
		}
		var changes int
		must(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM assignee_changes WHERE delivery_id = 7`).Scan(&changes))
		if changes != 1 {
			t.Errorf("%d audit rows for delivery 7, want 1", changes)
		}
	})
}

// TestState: per-installation and host-wide state behave alike (expiry,
// overwrite, delete) and never see each other's keys.
func TestState(t *testing.T) {
	type ops struct {
		get func(s *Store, ctx context.Context, key string) (string, bool, error)
		put func(s *Store, ctx context.Context, key, value string, ttl time.Duration) error
		del func(s *Store, ctx context.Context, key string) error
	}
	installation := ops{
		get: func(s *Store, ctx context.Context, key string) (string, bool, error) {
			return s.StateGet(ctx, "jira1", key)
		},
		put: func(s *Store, ctx context.Context, key, value string, ttl time.Duration) error {
			return s.StatePut(ctx, "jira1", key, value, ttl)
		},
		del: func(s *Store, ctx context.Context, key string) error { return s.StateDelete(ctx, "jira1", key) },
	}
	shared := ops{
		get: (*Store).SharedStateGet,
		put: (*Store).SharedStatePut,
		del: (*Store).SharedStateDelete,
	}
	for _, tc := range []struct {
		name        string
		this, other ops
	}{{"installation", installation, shared}, {"shared", shared, installation}} {
		t.Run(tc.name, func(t *testing.T) {
			eachKind(t, func(t *testing.T, s *Store) {
				seed(t, s)
				ctx := context.Background()
				now := time.Now()
				s.now = func() time.Time { return now }
				must(t, tc.this.put(s, ctx, "k", "v", time.Minute))
				if v, ok, err := tc.this.get(s, ctx, "k"); err != nil || !ok || v != "v" {
					t.Fatalf("get = %q, %v, %v", v, ok, err)
				}
				if v, ok, err := tc.other.get(s, ctx, "k"); err != nil || ok {
					t.Errorf("the other state reads %q, %v, %v; want its own keys only", v, ok, err)
				}
				must(t, tc.this.put(s, ctx, "k", "w", time.Minute))
				if v, _, _ := tc.this.get(s, ctx, "k"); v != "w" {
					t.Errorf("overwritten key reads %q, want w", v)
				}
				s.now = func() time.Time { return now.Add(2 * time.Minute) }
				if _, ok, _ := tc.this.get(s, ctx, "k"); ok {
					t.Error("an expired key is still found")
				}
				must(t, tc.this.put(s, ctx, "k", "w", 0))
				must(t, tc.other.put(s, ctx, "k", "other", 0))
				must(t, tc.this.del(s, ctx, "k"))
				if _, ok, _ := tc.this.get(s, ctx, "k"); ok {
					t.Error("a deleted key is still found")
				}
				if v, ok, _ := tc.other.get(s, ctx, "k"); !ok || v != "other" {
					t.Errorf("deleting removed the other state's key (%q, %v)", v, ok)
				}
			})
		})
	}
}

func TestInbox(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		now := time.Now()
		s.now = func() time.Time { return now }
		nd := NewDelivery{Installation: "jira1", Body: []byte(`{}`), IssueID: "10001", IssueKey: "APP-1", JiraTimestamp: 200, DedupeKey: "k1"}
		id, dup, err := s.AcceptDelivery(ctx, nd)
		must(t, err)
		if dup {
			t.Fatal("first delivery reported as a duplicate")
		}
		if again, dup, err := s.AcceptDelivery(ctx, nd); err != nil || !dup || again != id {
			t.Fatalf("same dedupe key again: id %d dup %v err %v; want %d, true", again, dup, err, id)
		}

		d, ok, err := s.Claim(ctx, id, time.Minute, 8, false)
		must(t, err)
		if !ok || d.Attempts != 1 || string(d.Body) != `{}` {
			t.Fatalf("claim = %+v, %v", d, ok)
		}
		if _, ok, _ := s.Claim(ctx, id, time.Minute, 8, true); ok {
			t.Fatal("a delivery under lease was claimed twice")
		}
		st, _, err := s.Finish(ctx, d, Outcome{Attempt: 1, StartedAt: now, Status: DeliveryRetrying, HTTPStatus: 503,
			Error: "unavailable: jira down", NextAttempt: now.Add(time.Minute)})
		if err != nil || st != DeliveryRetrying {
			t.Fatalf("Finish retry = %s, %v", st, err)
		}
		if early, ok, err := s.ClaimNext(ctx, time.Minute, 8); err != nil || ok {
			t.Fatalf("a retry due in a minute was claimed now: %+v, %v", early, err)
		}
		s.now = func() time.Time { return now.Add(2 * time.Minute) }
		d, ok, err = s.ClaimNext(ctx, time.Minute, 8)
		must(t, err)
		if !ok || d.ID != id || d.Attempts != 2 || string(d.Body) != `{}` {
			t.Fatalf("claim after the backoff = %+v, %v; want the delivery's second attempt", d, ok)
		}
		// A lease lost to an expiry: the late outcome is refused.
		s.now = func() time.Time { return now.Add(10 * time.Minute) }
		d2, ok, err := s.Claim(ctx, id, time.Minute, 8, false)
		must(t, err)
		if !ok || d2.Attempts != 3 {
			t.Fatalf("claim after lease expiry = %+v, %v", d2, ok)
		}
		if _, _, err := s.Finish(ctx, d, Outcome{Attempt: 2, Status: DeliveryDone}); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Finish with a lost lease: %v, want ErrLeaseLost", err)
		}
		st, _, err = s.Finish(ctx, d2, Outcome{Attempt: 3, StartedAt: now, Status: DeliveryDone, HTTPStatus: 200, Synced: true,
			Assignments: []Assignment{{Group: "g1", Assignee: ptr("alice")}}})
		if err != nil || st != DeliveryDone {
			t.Fatalf("Finish done = %s, %v", st, err)
		}
		if g, _ := s.Group(ctx, "", "g1"); g.Assignee == nil || *g.Assignee != "alice" {
			t.Fatalf("g1 = %v, want alice", g.Assignee)
		}
		attempts, err := s.Attempts(ctx, id)
		must(t, err)
		if len(attempts) != 2 || attempts[0].Outcome != DeliveryRetrying || attempts[1].Outcome != DeliveryDone {
			t.Fatalf("attempts = %+v, want retrying then done (the lost one recorded nothing)", attempts)
		}

		// An older delivery of the same issue arriving later is stale.
		old, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), IssueID: "10001", JiraTimestamp: 100, DedupeKey: "k0"})
		must(t, err)
		od, ok, err := s.Claim(ctx, old, time.Minute, 8, false)
		must(t, err)
		if !ok {
			t.Fatal("old delivery not claimed")
		}
		st, _, err = s.Finish(ctx, od, Outcome{Attempt: 1, StartedAt: now, Status: DeliveryDone, Synced: true,
			Assignments: []Assignment{{Group: "g1"}}})
		if err != nil || st != DeliveryStale {
			t.Fatalf("older delivery: %s, %v; want stale", st, err)
		}
		if g, _ := s.Group(ctx, "", "g1"); g.Assignee == nil {
			t.Fatal("a stale delivery unassigned g1")
		}

		must(t, s.Replay(ctx, old))
		if d, _ := s.Delivery(ctx, old); d.Status != DeliveryPending || d.Attempts != 1 || d.AttemptBase != 1 {
			t.Fatalf("replayed delivery = %s with %d attempts from %d", d.Status, d.Attempts, d.AttemptBase)
		}
		list, err := s.Deliveries(ctx, DeliveryFilter{Installation: "jira1", Status: DeliveryDone})
		must(t, err)
		if len(list) != 1 || list[0].ID != id || list[0].Body != nil {
			t.Fatalf("Deliveries(done) = %+v", list)
		}
	})
}

// TestReleaseLeases: a host that owns its database makes the deliveries
// its previous run left in flight due again, and frees the issues they
// held (Reserve): another delivery of such an issue applies at once
// instead of waiting for the hold to expire.
func TestReleaseLeases(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		accept := func(key string, ts int64) int64 {
			id, _, err := s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`), IssueID: "10001",
				JiraTimestamp: ts, DedupeKey: key})
			must(t, err)
			return id
		}
		id := accept("x", 10)
		d, ok, _ := s.Claim(ctx, id, time.Hour, 8, false)
		if !ok {
			t.Fatal("not claimed")
		}
		o := Outcome{Attempt: d.Attempts, Status: DeliveryDone, Synced: true, External: true}
		if r, _, err := s.Reserve(ctx, d, o, time.Hour); err != nil || r != ReserveApply {
			t.Fatalf("Reserve = %v, %v", r, err)
		}
		// The host dies holding the issue, and starts again.
		n, err := s.ReleaseLeases(ctx)
		if err != nil || n != 1 {
			t.Fatalf("ReleaseLeases = %d, %v", n, err)
		}
		if d, ok, err := s.ClaimNext(ctx, time.Hour, 8); err != nil || !ok || d.ID != id {
			t.Fatalf("a released delivery is not due: %+v, %v, %v", d, ok, err)
		}
		newer, ok, _ := s.Claim(ctx, accept("y", 20), time.Hour, 8, false)
		if !ok {
			t.Fatal("newer not claimed")
		}
		if r, _, err := s.Reserve(ctx, newer, Outcome{Attempt: newer.Attempts, Status: DeliveryDone, Synced: true, External: true},
			time.Hour); err != nil || r != ReserveApply {
			t.Fatalf("a newer delivery of the issue after the restart: %v, %v; want to apply, not to wait for the dead run's hold", r, err)
		}
	})
}

func testBox(t *testing.T) *secrets.Box {
	t.Helper()
	b, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSecretsAreSealedAtRest(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		in, err := s.Installation(ctx, "jira1")
		must(t, err)
		in.PrivateKeyPEM, in.AccessToken, in.AccessTokenSecret = "-----BEGIN RSA PRIVATE KEY-----", "tok-123", "sec-456"
		must(t, s.PutInstallation(ctx, in))
		var pk, tok, sec, wh string
		must(t, s.db.QueryRowContext(ctx, `SELECT private_key_pem, access_token, access_token_secret, webhook_secret FROM installations WHERE id = 'jira1'`).
			Scan(&pk, &tok, &sec, &wh))
		for _, v := range []string{pk, tok, sec, wh} {
			if !strings.HasPrefix(v, "v1:") {
				t.Errorf("stored %q in the clear", v)
			}
		}
		got, err := s.Installation(ctx, "jira1")
		must(t, err)
		if got.PrivateKeyPEM != in.PrivateKeyPEM || got.AccessToken != "tok-123" || got.AccessTokenSecret != "sec-456" || got.WebhookSecret != "s" {
			t.Errorf("read back %+v", got)
		}
		if _, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"), nil); err == nil {
			t.Error("a store without a Sealer opened")
		}
	})
}

// TestAcceptGroupCommit sends many accepts at once, a third of them
// repeats: every key is stored once and every repeat gets its id.
func TestAcceptGroupCommit(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		seed(t, s)
		ctx := context.Background()
		const n = 300
		ids := make([]int64, n)
		dups := make([]bool, n)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var err error
				ids[i], dups[i], err = s.AcceptDelivery(ctx, NewDelivery{Installation: "jira1", Body: []byte(`{}`),
					DedupeKey: "key-" + strconv.Itoa(i%200)})
				if err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		byKey := map[int]int64{}
		dupCount := 0
		for i := 0; i < n; i++ {
			if id, ok := byKey[i%200]; ok && id != ids[i] {
				t.Fatalf("key %d stored as %d and %d", i%200, id, ids[i])
			}
			byKey[i%200] = ids[i]
			if dups[i] {
				dupCount++
			}
		}
		counts, _ := s.DeliveryCounts(ctx)
		if counts[DeliveryPending] != 200 || dupCount != 100 {
			t.Fatalf("%d stored, %d duplicates; want 200 and 100", counts[DeliveryPending], dupCount)
		}
		if depth, err := s.QueueDepth(ctx); err != nil || depth != 200 {
			t.Errorf("queue depth %d, %v; want 200", depth, err)
		}
	})
}

func TestPendingSetups(t *testing.T) {
	eachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		s.now = func() time.Time { return now }
		must(t, s.PutPendingSetup(ctx, PendingSetup{RequestToken: "old", RequestTokenSecret: "sec", BaseURL: "http://j",
			ConsumerKey: "k", PrivateKeyPEM: "pem", Organization: "acme"}))
		s.now = func() time.Time { return now.Add(20 * time.Minute) }
		must(t, s.PutPendingSetup(ctx, PendingSetup{RequestToken: "new", RequestTokenSecret: "sec2", BaseURL: "http://j",
			ConsumerKey: "k", PrivateKeyPEM: "pem2", Organization: "acme"}))
		must(t, s.DeletePendingSetupsBefore(ctx, now.Add(10*time.Minute)))
		if _, err := s.TakePendingSetup(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an abandoned setup survived: %v", err)
		}
		p, err := s.TakePendingSetup(ctx, "new")
		if err != nil || p.RequestTokenSecret != "sec2" || p.PrivateKeyPEM != "pem2" {
			t.Fatalf("recent setup = %+v, %v", p, err)
		}
		if _, err := s.TakePendingSetup(ctx, "new"); !errors.Is(err, ErrNotFound) {
			t.Error("a setup was taken twice")
		}
	})
}

// TestSchemasAgree migrates a database of each kind and compares their
// tables, columns and indexes: the two migration lists must describe one
// schema.
func TestSchemasAgree(t *testing.T) {
	ctx := context.Background()
	describe := map[string]string{
		"sqlite": `SELECT 'column ' || m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c
				WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
			UNION ALL SELECT 'index ' || name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`,
		// Primary keys and UNIQUE columns have indexes of their own in
		// PostgreSQL (_pkey, _key), implicit in SQLite.
		"postgres": `SELECT 'column ' || table_name || '.' || column_name FROM information_schema.columns
				WHERE table_schema = current_schema()
			UNION ALL SELECT 'index ' || indexname FROM pg_indexes
				WHERE schemaname = current_schema() AND indexname NOT LIKE '%\_pkey' AND indexname NOT LIKE '%\_key'`,
	}
	schemas := map[string]map[string]bool{}
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := open(t, storetest.DSN(t, kind))
			rows, err := s.db.QueryContext(ctx, describe[kind])
			must(t, err)
			defer rows.Close()
			schemas[kind] = map[string]bool{}
			for rows.Next() {
				var item string
				must(t, rows.Scan(&item))
				schemas[kind][item] = true
			}
			must(t, rows.Err())
		})
	}
	lite, pg := schemas["sqlite"], schemas["postgres"]
	if len(lite) < 50 {
		t.Fatalf("SQLite schema has %d items; the query found too little", len(lite))
	}
	if pg == nil {
		return // skipped, and said so
	}
	for item := range lite {
		if !pg[item] {
			t.Errorf("%s is in SQLite's schema only", item)
		}
	}
	for item := range pg {
		if !lite[item] {
			t.Errorf("%s is in PostgreSQL's schema only", item)
		}
	}
	t.Logf("schemas compared: %d columns and indexes in SQLite, %d in PostgreSQL", len(lite), len(pg))
}
