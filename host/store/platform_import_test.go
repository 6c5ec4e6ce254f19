package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store/storetest"
)

func export(t testing.TB, s *Store) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Export(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func withInstallation(t testing.TB, s *Store, id string, orgs ...string) {
	t.Helper()
	in := Installation{ID: id, ExternalID: "jira.example.com:" + id, BaseURL: "https://jira.example.com", ConsumerKey: id, WebhookSecret: "s"}
	for _, o := range orgs {
		in.Organizations = append(in.Organizations, InstallationOrg{ID: o, InboundAssignee: true})
	}
	if err := s.PutInstallation(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// openScale opens a fresh database of kind with organization acme and
// installation jira serving it, for a benchmark.
func openScale(b *testing.B, kind string) *Store {
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(context.Background(), storetest.DSN(b, kind), box)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.PutOrganization(context.Background(), Organization{ID: "acme"}); err != nil {
		b.Fatal(err)
	}
	withInstallation(b, s, "jira", "acme")
	return s
}

const goodFile = `{
 "organizations": [{"id": "acme", "name": "Acme"}],
 "projects": [{"id": "backend", "organization": "acme"}, {"id": "frontend", "organization": "acme", "name": "Front"}],
 "users": [
  {"id": "alice", "name": "Alice", "emails": [{"email": "alice@example.com", "verified": true}], "projects": ["backend", "frontend"]},
  {"id": "bob", "emails": [{"email": "bob@example.com", "verified": false}, {"email": "b@example.org", "verified": true}], "projects": []}
 ],
 "groups": [{"id": "g1", "project": "backend", "title": "Timeouts", "assignee": "alice"}, {"id": "g2", "project": "frontend", "assignee": null, "status": "resolved"}],
 "links": [{"group": "g1", "installation": "jira", "issue_key": "APP-1"}, {"group": "g2", "installation": "jira", "issue_key": "APP-1"}]
}`

// TestImportRoundTrip: an import is idempotent, and an export imports
// into the same data elsewhere.
func TestImportRoundTrip(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must(t, s.PutOrganization(ctx, Organization{ID: "acme"}))
		withInstallation(t, s, "jira", "acme")
		for i := 0; i < 2; i++ {
			n, err := s.Import(ctx, strings.NewReader(goodFile))
			if err != nil {
				t.Fatal(err)
			}
			if n != (ImportStats{Organizations: 1, Projects: 2, Users: 2, Groups: 2, Links: 2}) {
				t.Fatalf("import counted %+v", n)
			}
		}
		first := export(t, s)
		again := open(t, storetest.DSN(t, "sqlite"))
		must(t, again.PutOrganization(ctx, Organization{ID: "acme"}))
		withInstallation(t, again, "jira", "acme")
		if _, err := again.Import(ctx, strings.NewReader(first)); err != nil {
			t.Fatalf("importing an export: %v", err)
		}
		if got := export(t, again); got != first {
			t.Fatalf("export of the import differs:\n%s\nwant\n%s", got, first)
		}
		groups, err := s.LinkedGroups(ctx, "jira", "APP-1", []string{"acme"})
		if err != nil || len(groups) != 2 || *groups[0].Assignee != "alice" ||
			groups[0].Status != platform.StatusUnresolved || groups[1].Status != platform.StatusResolved {
			t.Fatalf("imported links: %+v, %v", groups, err)
		}
	})
}

// TestImportIsAtomicAndSaysWhere: a file with an error anywhere changes
// nothing, and the error names the place.
func TestImportIsAtomicAndSaysWhere(t *testing.T) {
	forEachKind(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must(t, s.PutOrganization(ctx, Organization{ID: "acme"}))
		withInstallation(t, s, "jira", "acme")
		before := export(t, s)
		for _, tc := range []struct{ name, file, want string }{
			{"email not an email", strings.Replace(goodFile, `"b@example.org"`, `"b at example.org"`, 1), "users[1].emails[1].email: not an email address"},
			{"unknown project", strings.Replace(goodFile, `"projects": ["backend", "frontend"]`, `"projects": ["backend", "nope"]`, 1), `users[0].projects[1]: unknown project "nope"`},
			{"unknown assignee", strings.Replace(goodFile, `"assignee": "alice"`, `"assignee": "carol"`, 1), `groups[0].assignee: unknown user "carol"`},
			{"unknown installation, last of all", strings.Replace(goodFile, `"installation": "jira", "issue_key": "APP-1"}]`, `"installation": "jira9", "issue_key": "APP-1"}]`, 1), `links[1].installation: unknown installation "jira9"`},
			{"bad issue key", strings.Replace(goodFile, `"APP-1"}]`, `"app 1"}]`, 1), "links[1].issue_key: not a Jira issue key"},
			{"unknown key", strings.Replace(goodFile, `"title": "Timeouts"`, `"titel": "Timeouts"`, 1), `groups[0]: unknown key "titel"`},
			{"unknown section", strings.Replace(goodFile, `"groups":`, `"grops":`, 1), "grops: unknown key"},
			{"installations are not imported", strings.Replace(goodFile, `"links":`, `"installations": [], "links":`, 1), "installations: unknown key"},
			{"wrong type", strings.Replace(goodFile, `"verified": true}], "projects"`, `"verified": 1}], "projects"`, 1), "users[0].emails.verified: want true or false, got number"},
			{"section not an array", strings.Replace(goodFile, `"links": [`, `"links": {"x": [`, 1), "links: want an array"},
			{"truncated", goodFile[:len(goodFile)/2], "unexpected EOF"},
			{"trailing data", goodFile + "{}", "data after the top-level object"},
			{"section twice", strings.Replace(goodFile, `"links":`, `"projects": [], "links":`, 1), "projects: given twice"},
			{"invalid UTF-8", strings.Replace(goodFile, "Alice", "Al\xffce", 1), "not valid UTF-8"},
			{"NUL", strings.Replace(goodFile, "Alice", `Al\u0000ce`, 1), "users[0].name: contains NUL"},
			{"id over 200 bytes", strings.Replace(goodFile, `"id": "g2"`, `"id": "`+strings.Repeat("g", 201)+`"`, 1), "groups[1].id: 201 bytes"},
		} {
			_, err := s.Import(ctx, strings.NewReader(tc.file))
			var fe *platform.FieldError
			if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want a FieldError saying %q", tc.name, err, tc.want)
			}
			if got := export(t, s); got != before {
				t.Fatalf("%s: a refused import changed data", tc.name)
			}
		}
	})
}

func forEachKind(t *testing.T, test func(t *testing.T, s *Store)) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { test(t, open(t, storetest.DSN(t, kind))) })
	}
}

// scaleFile writes a platform file of n users, n groups and n links (one
// organization, 100 projects) to w, without holding it in memory.
func scaleFile(w io.WriteCloser, n int) {
	defer w.Close()
	fmt.Fprint(w, `{"organizations":[{"id":"acme"}],"projects":[`)
	for p := 0; p < 100; p++ {
		if p > 0 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, `{"id":"p%d","organization":"acme"}`, p)
	}
	fmt.Fprint(w, `],"users":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, `{"id":"u%d","name":"User %d","emails":[{"email":"user%d@example.com","verified":true}],"projects":["p%d"]}`, i, i, i, i%100)
	}
	fmt.Fprint(w, `],"groups":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, `{"id":"g%d","project":"p%d","title":"Group %d","assignee":"u%d"}`, i, i%100, i, i)
	}
	fmt.Fprint(w, `],"links":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, `{"group":"g%d","installation":"jira","issue_key":"APP-%d"}`, i, i)
	}
	fmt.Fprint(w, `]}`)
}

// peakHeap samples the heap in use until stop is called, and returns the
// highest figure seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); return peak.Load() }
}

const scaleN = 100_000

// BenchmarkPlatformImport100k imports 100,000 users, groups and links,
// streamed, into a fresh database; it reports the heap's peak.
func BenchmarkPlatformImport100k(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := openScale(b, kind)
				ctx := context.Background()
				r, w := io.Pipe()
				go scaleFile(w, scaleN)
				runtime.GC()
				stop := peakHeap()
				start := time.Now()
				n, err := s.Import(ctx, r)
				elapsed := time.Since(start)
				peak := stop()
				if err != nil {
					b.Fatal(err)
				}
				if n.Users != scaleN || n.Groups != scaleN || n.Links != scaleN {
					b.Fatalf("imported %+v", n)
				}
				b.ReportMetric(elapsed.Seconds(), "s/import")
				b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-heap")
				s.Close()
			}
		})
	}
}

// BenchmarkPlatformLookups100k times the sync's reads, linked groups,
// users by email, and a group and a user by id (two-way sync), with
// 100,000 of everything stored, and reports p50 and p99.
func BenchmarkPlatformLookups100k(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s := openScale(b, kind)
			defer s.Close()
			ctx := context.Background()
			r, w := io.Pipe()
			go scaleFile(w, scaleN)
			if _, err := s.Import(ctx, r); err != nil {
				b.Fatal(err)
			}
			for _, op := range []struct {
				name string
				do   func(i int) error
			}{
				{"linked-groups", func(i int) error {
					g, err := s.LinkedGroups(ctx, "jira", fmt.Sprintf("APP-%d", i), []string{"acme"})
					if err == nil && len(g) != 1 {
						err = fmt.Errorf("APP-%d: %d groups", i, len(g))
					}
					return err
				}},
				{"group", func(i int) error {
					g, err := s.Group(ctx, "jira", fmt.Sprintf("g%d", i))
					if err == nil && (len(g.IssueKeys) != 1 || g.Organization != "acme") {
						err = fmt.Errorf("g%d: %+v", i, g)
					}
					return err
				}},
				{"user", func(i int) error {
					u, err := s.User(ctx, fmt.Sprintf("u%d", i))
					if err == nil && (len(u.Emails) != 1 || len(u.Projects) != 1) {
						err = fmt.Errorf("u%d: %+v", i, u)
					}
					return err
				}},
				{"users-by-email", func(i int) error {
					u, err := s.UsersByEmail(ctx, fmt.Sprintf("USER%d@example.com", i))
					if err == nil && (len(u) != 1 || len(u[0].Projects) != 1) {
						err = fmt.Errorf("user%d: %+v", i, u)
					}
					return err
				}},
			} {
				b.Run(op.name, func(b *testing.B) {
					runtime.GC() // the import's garbage is not the lookups' cost
					times := make([]time.Duration, 0, b.N)
					for i := 0; i < b.N; i++ {
						start := time.Now()
						if err := op.do((i * 7919) % scaleN); err != nil {
							b.Fatal(err)
						}
						times = append(times, time.Since(start))
					}
					sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
					b.ReportMetric(float64(times[len(times)/2].Microseconds()), "µs-p50")
					b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "µs-p99")
				})
			}
		})
	}
}

// TestPlatformLookupsUseIndexes: with a few thousand users, groups and
// links imported, the sync's two reads are planned on indexes, not
// scans (migration 5 added project_members_by_user for users by email).
func TestPlatformLookupsUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 5,000 of everything")
	}
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := open(t, storetest.DSN(t, kind))
			ctx := context.Background()
			must(t, s.PutOrganization(ctx, Organization{ID: "acme"}))
			withInstallation(t, s, "jira", "acme")
			r, w := io.Pipe()
			go scaleFile(w, 5000)
			if _, err := s.Import(ctx, r); err != nil {
				t.Fatal(err)
			}
			explain := map[string]string{"sqlite": "EXPLAIN QUERY PLAN ", "postgres": "EXPLAIN "}[kind]
			for _, q := range []struct {
				name, query string
				args        []any
			}{
				{"users by email", usersByEmailQuery, []any{"user42@example.com"}},
				{"linked groups", linkedGroupsQuery(1), []any{"jira", "APP-42", "acme"}},
			} {
				rows, err := s.db.QueryContext(ctx, explain+q.query, q.args...)
				if err != nil {
					t.Fatal(err)
				}
				var plan []string
				for rows.Next() {
					cols, _ := rows.Columns()
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					must(t, rows.Scan(ptrs...))
					plan = append(plan, fmt.Sprint(vals[len(vals)-1]))
				}
				rows.Close()
				text := strings.Join(plan, "\n")
				if strings.Contains(text, "Seq Scan") || strings.Contains(text, "SCAN ") {
					t.Errorf("%s scans a table:\n%s", q.name, text)
				}
			}
		})
	}
}
