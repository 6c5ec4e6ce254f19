package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/testharness/fakejira"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// The platform events benchmark (issue 12): groups BEN-0… are linked to
// Jira issues of the simulated Jira (testharness/fakejira, OAuth checked),
// outbound assignee and outbound status on. Even groups get assignment
// events (u0, u1, u2, nobody, in turn), odd groups resolve and unresolve
// in turn, so every event carried in order writes to Jira and the newest
// event of each group says what its issue must end with. A group gets one
// kind only: the group's watermark orders its events whatever field they
// change, so an older resolve reaching the hold after a newer assignment
// ends stale, and "the newest event of its kind" would not be what Jira
// must show.
const (
	benchEventGroups  = 16
	benchEvents       = 600 // per engine
	benchEventClients = 8
	benchEventUsers   = 3
)

// benchEvent is one event the benchmark posts.
type benchEvent struct {
	id    string
	group int
	k     int // the group's k-th event
	at    time.Time
}

func (e benchEvent) assigns() bool { return e.group%2 == 0 }

// user is the platform user an assignment names, -1 for nobody.
func (e benchEvent) user() int {
	if u := e.k % (benchEventUsers + 1); u < benchEventUsers {
		return u
	}
	return -1
}

func (e benchEvent) resolves() bool { return e.k%2 == 0 }

func (e benchEvent) body() []byte {
	group := fmt.Sprintf("bg%d", e.group)
	at := e.at.UTC().Format(time.RFC3339Nano)
	switch {
	case !e.assigns():
		typ := "group.unresolved"
		if e.resolves() {
			typ = "group.resolved"
		}
		return fmt.Appendf(nil, `{"id":%q,"type":%q,"group":%q,"occurred_at":%q}`, e.id, typ, group, at)
	case e.user() < 0:
		return fmt.Appendf(nil, `{"id":%q,"type":"group.assigned","group":%q,"assignee":null,"occurred_at":%q}`, e.id, group, at)
	default:
		return fmt.Appendf(nil, `{"id":%q,"type":"group.assigned","group":%q,"assignee":"u%d","occurred_at":%q}`, e.id, group, e.user(), at)
	}
}

func benchIssue(group int) string { return fmt.Sprintf("BEN-%d", group+1) }

// Jira statuses the mapping names: Resolved (done) and Reopened.
const (
	benchResolved   = "5"
	benchReopened   = "4"
	benchOpenStatus = "1"
)

// eventRun is what one engine's run measured.
type eventRun struct {
	acceptedPerSec, processedPerSec float64
	carriedPerSec                   float64 // done events (the plugin ran) per second of the same clock
	done, stale, writes             int
	attemptP50, attemptP99          float64 // ms, done attempts: hold, plugin with Jira, commit
	attemptMean                     float64 // ms per attempt, stale ones included (from /metrics)
}

// BenchmarkEventsEndToEnd measures platform events end to end: the real
// binary over loopback, durable SQLite, the simulated Jira; events posted
// to /api/v1/events by several clients (answered 202 once stored), the
// clock stopping when every delivery is settled. Per engine (native, then
// wasm, in the same run): events accepted and processed per second, the
// time per event, and a check that each Jira issue ends as its group's
// newest event says, every event settled once, no write repeated. It runs
// once whatever b.N is; the figures are its metrics.
func BenchmarkEventsEndToEnd(b *testing.B) {
	dir := b.TempDir()
	bin, plugin, _ := prepareHosts(b, dir)
	if !pluginCarriesEvents(b, plugin) {
		b.Fatal("the plugin does not export handle_platform_event")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	loadBefore := loadAverage()
	runs := map[string]eventRun{}
	for _, engine := range []string{"native", "wasm"} {
		runs[engine] = runEventBench(b, dir, bin, plugin, engine, key)
	}
	loadAfter := loadAverage()
	w, n := runs["wasm"], runs["native"]
	for engine, r := range runs {
		b.ReportMetric(r.acceptedPerSec, engine+"_events_accepted/s")
		b.ReportMetric(r.processedPerSec, engine+"_events_processed/s")
		b.ReportMetric(r.carriedPerSec, engine+"_events_done/s")
		b.ReportMetric(r.attemptMean, engine+"_ms/attempt")
		b.ReportMetric(r.attemptP50, engine+"_ms/attempt_p50")
	}
	b.ReportMetric(w.processedPerSec/n.processedPerSec, "processed_wasm/native")
	fmt.Printf("\nplatform events end to end (loopback, durable SQLite, simulated Jira; %d events over %d groups from %d clients)\n",
		benchEvents, benchEventGroups, benchEventClients)
	fmt.Printf("                                                    wasm     native   wasm/native\n")
	row := func(name string, wv, nv float64, format string) {
		fmt.Printf("  %-44s "+format+"  "+format+"   %6.2f\n", name, wv, nv, wv/nv)
	}
	row("events accepted per second", w.acceptedPerSec, n.acceptedPerSec, "%9.0f")
	row("events processed per second", w.processedPerSec, n.processedPerSec, "%9.0f")
	row("events carried (done) per second", w.carriedPerSec, n.carriedPerSec, "%9.0f")
	row("attempt mean, every event (ms)", w.attemptMean, n.attemptMean, "%9.2f")
	row("attempt p50, done events (ms)", w.attemptP50, n.attemptP50, "%9.1f")
	row("attempt p99, done events (ms)", w.attemptP99, n.attemptP99, "%9.1f")
	row("events done (carried to Jira)", float64(w.done), float64(n.done), "%9.0f")
	row("events stale (superseded, not run)", float64(w.stale), float64(n.stale), "%9.0f")
	row("Jira writes", float64(w.writes), float64(n.writes), "%9.0f")
	fmt.Printf("  load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAfter)
}

// runEventBench runs one engine: a fresh database and simulated Jira, the
// events posted, processed, and checked.
func runEventBench(b *testing.B, dir, bin, plugin, engine string, key *rsa.PrivateKey) eventRun {
	jira, err := fakejira.Start(fakejira.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer jira.Close()
	db := filepath.Join(dir, "events-"+engine+".db")
	seedEventBench(b, db, jira, key)

	addr := freeAddr(b)
	h := &hostProc{t: b, bin: bin, log: filepath.Join(dir, "events-"+engine+".log"), args: []string{"serve", "-addr", addr,
		"-db", db, "-plugin", plugin, "-engine", engine, "-cache-dir", pluginbuild.CacheDir(),
		"-admin-token", crashAdminToken, "-log-level", "error"}}
	h.start()
	defer h.kill() // if the run fails; stopped below otherwise

	// Per group increasing times, an hour back: the host clamps a time
	// ahead of its clock, never one behind it.
	base := time.Now().Add(-time.Hour)
	events := make([]benchEvent, benchEvents)
	for i := range events {
		events[i] = benchEvent{id: fmt.Sprintf("bench-%s-%d", engine, i), group: i % benchEventGroups, k: i / benchEventGroups,
			at: base.Add(time.Duration(i) * time.Millisecond)}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	url := "http://" + addr + "/api/v1/events"
	var next, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range benchEventClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(events)); i = next.Add(1) - 1 {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(events[i].body()))
				req.Header.Set("Authorization", "Bearer "+crashAdminToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					refused.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	if n := refused.Load(); n > 0 {
		b.Fatalf("%s: %d events not answered 202", engine, n)
	}
	waitQueueEmptyWithin(b, addr, 3*time.Minute)
	processed := time.Since(start)
	attemptMean := processingMean(b, addr)
	h.stop()

	st, err := openCrashStore(db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := eventRun{acceptedPerSec: float64(len(events)) / accepted.Seconds(), processedPerSec: float64(len(events)) / processed.Seconds(),
		attemptMean: attemptMean}
	r.done, r.stale, r.attemptP50, r.attemptP99 = checkEventDeliveries(b, st, events)
	r.writes = checkEventJira(b, jira, events, r.done)
	r.carriedPerSec = float64(r.done) / processed.Seconds()
	b.Logf("%s: %d events, %d done, %d stale, %d Jira writes; accepted in %s, settled in %s", engine, len(events), r.done, r.stale,
		r.writes, accepted.Round(time.Millisecond), processed.Round(time.Millisecond))
	return r
}

// seedEventBench writes the platform's data (an organization, users with
// verified emails, the groups linked to their issues) and an installation
// signing with key for jira, both outbound directions on, and gives jira
// the matching users, issues and OAuth consumer.
func seedEventBench(b *testing.B, db string, jira *fakejira.Server, key *rsa.PrivateKey) {
	ctx := context.Background()
	st, err := openCrashStore(db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	data := platform.Data{Organizations: []platform.Organization{{ID: "acme"}},
		Projects: []platform.Project{{ID: "backend", Organization: "acme"}}}
	for u := range benchEventUsers {
		email := fmt.Sprintf("u%d@example.com", u)
		data.Users = append(data.Users, platform.User{ID: fmt.Sprintf("u%d", u),
			Emails: []platform.Email{{Address: email, Verified: true}}, Projects: []string{"backend"}})
		jira.AddUser(fakejira.User{Name: jiraName(u), EmailAddress: email, DisplayName: fmt.Sprintf("User %d", u), Active: true})
	}
	for g := range benchEventGroups {
		id := fmt.Sprintf("bg%d", g)
		data.Groups = append(data.Groups, platform.Group{ID: id, Project: "backend"})
		data.Links = append(data.Links, platform.Link{Group: id, Installation: "jira1", IssueKey: benchIssue(g)})
		if err := jira.AddIssue(fakejira.Issue{Key: benchIssue(g)}); err != nil {
			b.Fatal(err)
		}
	}
	links := data.Links
	data.Links = nil
	if err := st.ImportData(ctx, &data); err != nil {
		b.Fatal(err)
	}
	jira.AddConsumer("jirasync-bench", &key.PublicKey)
	jira.AddAccessToken("jirasync-bench", "bench-access-token", "bench-access-secret")
	if err := st.PutInstallation(ctx, store.Installation{ID: "jira1", ExternalID: "jira.example.com:jirasync-bench",
		BaseURL: jira.URL(), ConsumerKey: "jirasync-bench", AccessToken: "bench-access-token", AccessTokenSecret: "bench-access-secret",
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		WebhookSecret: "bench-secret", VerifyTLS: true,
		Organizations: []store.InstallationOrg{{ID: "acme", OutboundAssignee: true, OutboundStatus: true,
			StatusMappings: []store.StatusMapping{{JiraProject: "BEN", ResolveStatus: benchResolved, UnresolveStatus: benchReopened}}}},
	}); err != nil {
		b.Fatal(err)
	}
	if err := st.ImportData(ctx, &platform.Data{Links: links}); err != nil {
		b.Fatal(err)
	}
}

// checkEventDeliveries checks that every event was stored once and
// settled once, done or stale (none failed, none dead), and returns the
// counts and the done attempts' p50 and p99 in milliseconds.
func checkEventDeliveries(b *testing.B, st *store.Store, events []benchEvent) (done, stale int, p50, p99 float64) {
	stored := eventDeliveries(b, st)
	if len(stored) != len(events) {
		b.Errorf("%d event deliveries stored, want %d (one per event, one installation)", len(stored), len(events))
	}
	var times []int64
	for _, d := range stored {
		switch d.Status {
		case store.DeliveryDone:
			done++
		case store.DeliveryStale:
			stale++
		default:
			b.Errorf("event delivery %d (%s) ended %s: %s", d.ID, d.IssueID, d.Status, d.Error)
			continue
		}
		settledOnce(b, st, d)
		if d.Status != store.DeliveryDone {
			continue
		}
		attempts, err := st.Attempts(context.Background(), d.ID)
		if err != nil {
			b.Fatal(err)
		}
		last := attempts[len(attempts)-1]
		times = append(times, last.FinishedAt-last.StartedAt)
	}
	if len(times) == 0 {
		b.Fatal("no event was carried to Jira")
	}
	slices.Sort(times)
	return done, stale, float64(times[len(times)/2]), float64(times[len(times)*99/100])
}

// checkEventJira checks the simulated Jira: each issue ends with what its
// group's newest event says (an unresolve leaves an issue that was never
// resolved Open), every write was accepted, no write repeats the one
// before it on its issue and field (the plugin reads the issue first, so
// a repeat would be an event carried twice), and there are no more
// writes than done events. It returns the number of writes.
func checkEventJira(b *testing.B, jira *fakejira.Server, events []benchEvent, done int) int {
	newest := map[int]benchEvent{}
	for _, e := range events {
		if n, ok := newest[e.group]; !ok || e.at.After(n.at) {
			newest[e.group] = e
		}
	}
	writes := jira.Writes()
	last := map[string]string{} // issue and field → the value written before
	statusWritten := map[string]bool{}
	for _, w := range writes {
		if w.Status != http.StatusNoContent {
			b.Errorf("Jira answered %d to the write %+v", w.Status, w)
		}
		k := w.Issue + " " + w.Field
		if prev, ok := last[k]; ok && prev == w.Value {
			b.Errorf("%s: write of %q repeats the one before: an event carried twice", k, w.Value)
		}
		last[k] = w.Value
		if w.Field == fakejira.FieldStatus {
			statusWritten[w.Issue] = true
		}
	}
	if len(writes) > done {
		b.Errorf("%d Jira writes for %d events done", len(writes), done)
	}
	for g, e := range newest {
		is, ok := jira.Issue(benchIssue(g))
		if !ok {
			b.Fatalf("issue %s is gone", benchIssue(g))
		}
		var field, got, want string
		switch {
		case e.assigns():
			field, got = "assignee", is.Assignee
			if e.user() >= 0 {
				want = jiraName(e.user())
			}
		case e.resolves():
			field, got, want = "status", is.Status, benchResolved
		case statusWritten[is.Key]:
			field, got, want = "status", is.Status, benchReopened
		default:
			field, got, want = "status", is.Status, benchOpenStatus
		}
		if got != want {
			b.Errorf("%s: %s %q, want %q (newest event %s)", is.Key, field, got, want, e.id)
		}
	}
	return len(writes)
}

// processingMean reads the host's /metrics: the mean time of a
// processing attempt (hold, plugin with its host functions and Jira's
// answers, commit) in milliseconds. The native engine reports no plugin
// call times, so the attempt is what both engines can be compared on.
func processingMean(b *testing.B, addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var sum, count float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "jirasync_delivery_processing_seconds_sum":
			sum, _ = strconv.ParseFloat(value, 64)
		case "jirasync_delivery_processing_seconds_count":
			count, _ = strconv.ParseFloat(value, 64)
		}
	}
	if count == 0 {
		b.Fatal("/metrics counts no processing attempt")
	}
	return sum / count * 1000
}

// loadAverage is the machine's load average over 1, 5 and 15 minutes.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
