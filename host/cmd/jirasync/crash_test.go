package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/store/storetest"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

const (
	crashIssues     = 25
	crashUsers      = 8
	crashSenders    = 8
	crashAdminToken = "crash-test-admin-token"
)

// crashPlatformToken is the simulated platform's bearer token.
const crashPlatformToken = "crash-platform-token"

// event is one Jira issue-updated delivery the test sends.
type event struct {
	issue     int
	changelog int
	timestamp int64
	user      int // -1 unassigns
	acked     atomic.Bool
}

func (e *event) body() []byte {
	assignee := "null"
	if e.user >= 0 {
		assignee = fmt.Sprintf(`{"name":"u%d","key":"JIRAUSER%d","emailAddress":"u%d@example.com"}`, e.user, 10000+e.user, e.user)
	}
	return []byte(fmt.Sprintf(`{"timestamp":%d,"webhookEvent":"jira:issue_updated","issue_event_type_name":"issue_assigned",`+
		`"issue":{"id":"%d","key":"APP-%d","fields":{"summary":"crash test","assignee":%s}},`+
		`"changelog":{"id":"%d","items":[{"field":"assignee","fieldtype":"jira"}]}}`,
		e.timestamp, 20000+e.issue, e.issue, assignee, e.changelog))
}

// TestCrashSafety runs the real jirasync binary, sends it thousands of
// deliveries while killing it with SIGKILL at random moments and starting
// it again, then checks that every delivery answered 2xx was stored and
// applied exactly once, and that every group ends with the assignee of the
// newest Jira event of its issue. Once the plugin exports
// handle_platform_event, platform events go alongside (crash_events_test.go):
// every one acknowledged is stored and settled once, and each Jira issue
// ends with its group's newest assignee, no write repeated.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	runCrash(t, crashRun{db: filepath.Join(t.TempDir(), "jirasync.db"), replicas: 1, deliveries: 2000, kills: 4, restart: true})
}

// TestCrashSafetyHTTPPlatform is TestCrashSafety with the platform's data
// on the simulated platform, reached over HTTP: assignments are applied
// there between the store's Reserve and Finish, so a host killed between
// them applies again on its retry, under the same idempotency key. The
// platform's records of the keys show each delivery applied exactly once.
func TestCrashSafetyHTTPPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	runCrash(t, crashRun{db: filepath.Join(t.TempDir(), "jirasync.db"), replicas: 1, deliveries: 1500, kills: 4, restart: true,
		http: true})
}

// TestReplicasCrashSafety runs three replicas of the real binary on one
// PostgreSQL database, spreads 3,000 deliveries across them, and kills one
// with SIGKILL midway for good: the others take over what it had claimed
// once its leases expire. The same checks as TestCrashSafety hold.
func TestReplicasCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	// A short attempt limit makes a short lease (twice it), so that the
	// dead replica's deliveries are taken over within seconds.
	runCrash(t, crashRun{db: storetest.DSN(t, "postgres"), replicas: 3, deliveries: 3000, kills: 1,
		flags: []string{"-delivery-timeout", "3s", "-retry-base", "1s"}})
}

// crashRun is one crash test: deliveries sent to replicas hosts on db,
// some of them killed along the way.
type crashRun struct {
	db         string
	replicas   int
	deliveries int
	kills      int
	// restart starts a killed host again (one host that crashes); without
	// it, the first host is killed once, midway, and stays dead (a
	// replica lost).
	restart bool
	flags   []string // more serve flags
	// http keeps the platform's data on the simulated platform, reached
	// over HTTP, instead of the built-in one.
	http bool
}

func runCrash(t *testing.T, run crashRun) {
	dir := t.TempDir()
	bin, plugin, token := prepareHosts(t, dir)
	var fp *fakeplatform.Server
	if run.http {
		// In this process: it outlives every host killed.
		fp = fakeplatform.Start(crashPlatformToken, nil)
		defer fp.Close()
		tokenFile := filepath.Join(dir, "platform.token")
		if err := os.WriteFile(tokenFile, []byte(crashPlatformToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run.flags = append(run.flags, "-platform", fp.URL(), "-platform-token-file", tokenFile)
	}
	seedCrash(t, run.db, fp)
	// Platform events beside the webhooks, once the plugin carries them.
	var pevents []*platformEvent
	var jira *crashJira
	if pluginCarriesEvents(t, plugin) {
		jira = startCrashJira()
		defer jira.srv.Close()
		seedCrashEvents(t, run.db, fp, jira)
		pevents = crashEvents(rand.IntN)
		// Shuffled within windows of 30 (three per group), so that some
		// arrive after newer ones of their group and must end stale.
		for w := 0; w < len(pevents); w += 30 {
			win := pevents[w:min(w+30, len(pevents))]
			rand.Shuffle(len(win), func(i, j int) { win[i], win[j] = win[j], win[i] })
		}
	} else {
		t.Log("the plugin does not export handle_platform_event: platform events left out of this run")
	}

	// Events: per issue, increasing timestamps; sent in Jira's order but
	// shuffled within windows of 40, so that some arrive after newer ones
	// of their issue (and must end stale) while most apply.
	events := make([]*event, run.deliveries)
	for i := range events {
		events[i] = &event{issue: i % crashIssues, changelog: 50000 + i, timestamp: 1795000000000 + int64(i)*1000,
			user: rand.IntN(crashUsers+1) - 1}
	}
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	for w := 0; w < len(order); w += 40 {
		win := order[w:min(w+40, len(order))]
		rand.Shuffle(len(win), func(i, j int) { win[i], win[j] = win[j], win[i] })
	}

	hostsUp := make([]*hostProc, run.replicas)
	urls := make([]string, run.replicas)
	eventURLs := make([]string, run.replicas)
	for r := range hostsUp {
		addr := freeAddr(t)
		hostsUp[r] = &hostProc{t: t, bin: bin, args: append([]string{"serve", "-addr", addr, "-db", run.db, "-plugin", plugin,
			"-cache-dir", pluginbuild.CacheDir(),
			"-admin-token", crashAdminToken, "-log-level", "warn", "-grace", "5s"}, run.flags...),
			log: filepath.Join(dir, fmt.Sprintf("host%d.log", r))}
		hostsUp[r].start()
		defer hostsUp[r].kill()
		urls[r] = "http://" + addr + "/extensions/jira-server/issue-updated/" + token
		eventURLs[r] = "http://" + addr + "/api/v1/events"
	}

	client := &http.Client{Timeout: 15 * time.Second}
	var next atomic.Int64
	var sent, acked, refusedConn atomic.Int64
	ackedBy := make([]atomic.Int64, run.replicas)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for s := 0; s < crashSenders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(order)) {
					return
				}
				e := events[order[i]]
				// Round robin, as a load balancer would. Jira would give
				// up after a failure; this sender tries the next host
				// until one answers, to exercise duplicates after a crash.
				r := sendUntilAcked(ctx, client, int(i), run.replicas, &sent, &refusedConn, func(r int) *http.Request {
					req, _ := http.NewRequest(http.MethodPost, urls[r], bytes.NewReader(e.body()))
					req.Header.Set("Content-Type", "application/json")
					return req
				})
				if r >= 0 {
					e.acked.Store(true)
					acked.Add(1)
					ackedBy[r].Add(1)
				}
			}
		}()
	}
	// Events: two senders, each event sent until a host acknowledges it
	// (202, or 200 for one a killed host stored before it could answer).
	var nextEvent atomic.Int64
	for s := 0; s < 2 && len(pevents) > 0; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := nextEvent.Add(1) - 1
				if i >= int64(len(pevents)) {
					return
				}
				e := pevents[i]
				if sendUntilAcked(ctx, client, int(i), run.replicas, &sent, &refusedConn, func(r int) *http.Request {
					req, _ := http.NewRequest(http.MethodPost, eventURLs[r], bytes.NewReader(e.body()))
					req.Header.Set("Authorization", "Bearer "+crashAdminToken)
					return req
				}) >= 0 {
					e.acked.Store(true)
				}
			}
		}()
	}
	kills := 0
	if run.restart {
		for kills < run.kills && next.Load() < int64(len(order)) {
			time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
			hostsUp[0].kill()
			kills++
			hostsUp[0].start()
		}
	} else {
		for next.Load() < int64(len(order))/2 {
			time.Sleep(5 * time.Millisecond)
		}
		hostsUp[0].kill()
		kills++
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("sending did not finish in time: %d of %d acknowledged", acked.Load(), len(events))
	}
	live := hostsUp[len(hostsUp)-1]
	waitQueueEmpty(t, live.args[2])
	for _, h := range hostsUp {
		h.stop()
	}

	st, err := openCrashStore(run.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counts, retaken := verifyCrash(t, st, events, fp)
	if jira != nil {
		verifyCrashEvents(t, st, pevents, eventDeliveries(t, st), jira)
	}
	perHost := make([]int64, run.replicas)
	for r := range ackedBy {
		perHost[r] = ackedBy[r].Load()
	}
	platformKind := "built-in platform"
	if fp != nil {
		platformKind = "platform over HTTP"
	}
	t.Logf("crash test on %s, %s: %d hosts, %d deliveries, %d requests, %d acknowledged (per host %v), %d connection failures, "+
		"%d SIGKILLs; stored by status: %v; %d claims lost with a killed host and taken over",
		st.Dialect(), platformKind, run.replicas, len(events), sent.Load(), acked.Load(), perHost, refusedConn.Load(), kills, counts, retaken)
}

// sendUntilAcked sends a request (made by req for host r) to the hosts in
// turn, from the start-th, until one answers 2xx, and returns which one
// did; -1 if ctx ended first. It counts each request and each failed
// connection.
func sendUntilAcked(ctx context.Context, client *http.Client, start, hosts int, sent, refusedConn *atomic.Int64,
	req func(r int) *http.Request) int {
	for try := start; ctx.Err() == nil; try++ {
		r := try % hosts
		sent.Add(1)
		resp, err := client.Do(req(r).WithContext(ctx))
		if err != nil {
			refusedConn.Add(1)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// prepareHosts builds the jirasync binary into dir and returns it, the
// plugin, and the webhook token of the installation seedCrash makes. The
// test seeds and checks the database itself, so it and the hosts share the
// key that seals the installation's secrets, put in the environment here.
func prepareHosts(tb testing.TB, dir string) (bin, plugin, token string) {
	bin = filepath.Join(dir, "jirasync")
	gobin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		gobin = filepath.Join(root, "bin", "go")
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("building jirasync: %v\n%s", err, out)
	}
	plugin, err := pluginbuild.Path()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Setenv(secrets.EnvKey, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	token, err = webhooktoken.Mint("jira.example.com:crash", []byte("crash-secret"))
	if err != nil {
		tb.Fatal(err)
	}
	return bin, plugin, token
}

// seedCrash writes the installation into db, and the platform's data
// (an organization, users, a group per issue linked to it) into db or,
// given one, the simulated platform.
func seedCrash(t testing.TB, db string, fp *fakeplatform.Server) {
	ctx := context.Background()
	st, err := openCrashStore(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	data := platform.Data{Organizations: []platform.Organization{{ID: "acme"}},
		Projects: []platform.Project{{ID: "backend", Organization: "acme"}}}
	for u := 0; u < crashUsers; u++ {
		data.Users = append(data.Users, platform.User{ID: fmt.Sprintf("u%d", u),
			Emails: []platform.Email{{Address: fmt.Sprintf("u%d@example.com", u), Verified: true}}, Projects: []string{"backend"}})
	}
	for i := 0; i < crashIssues; i++ {
		g := fmt.Sprintf("g%d", i)
		data.Groups = append(data.Groups, platform.Group{ID: g, Project: "backend"})
		data.Links = append(data.Links, platform.Link{Group: g, Installation: "jira1", IssueKey: fmt.Sprintf("APP-%d", i)})
	}
	links := data.Links
	if fp != nil {
		check(fp.Load(&data))
		data = platform.Data{}
	}
	data.Links = nil
	check(st.ImportData(ctx, &data))
	check(st.PutInstallation(ctx, store.Installation{ID: "jira1", ExternalID: "jira.example.com:crash",
		BaseURL: "http://127.0.0.1:1", ConsumerKey: "crash", WebhookSecret: "crash-secret",
		Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}}))
	if fp == nil {
		check(st.ImportData(ctx, &platform.Data{Links: links}))
	}
}

// verifyCrash checks the database against what was sent and acknowledged.
// It returns the deliveries by status, and how many claims ended with no
// outcome recorded: attempts whose host was killed, taken over later.
// With the simulated platform fp, groups are read there, and its records
// of idempotency keys must show every done delivery applied exactly once.
func verifyCrash(t *testing.T, st *store.Store, events []*event, fp *fakeplatform.Server) (counts map[string]int, retaken int) {
	ctx := context.Background()
	byChangelog := map[string]*event{}
	for _, e := range events {
		byChangelog[strconv.Itoa(e.changelog)] = e
	}
	stored := map[string]store.Delivery{}
	for before := int64(0); ; {
		page, err := st.Deliveries(ctx, store.DeliveryFilter{Before: before, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if d.Kind == store.KindEvent {
				continue // verifyCrashEvents
			}
			if _, dup := stored[d.ChangelogID]; dup {
				t.Errorf("changelog %s stored twice", d.ChangelogID)
			}
			stored[d.ChangelogID] = d
		}
		if len(page) < 500 {
			break
		}
		before = page[len(page)-1].ID
	}
	counts = map[string]int{}
	newest := map[int]*event{}
	for cl, d := range stored {
		counts[d.Status]++
		e := byChangelog[cl]
		if e == nil {
			t.Errorf("stored delivery %d has a changelog id %s nobody sent", d.ID, cl)
			continue
		}
		if d.Status != store.DeliveryDone && d.Status != store.DeliveryStale {
			t.Errorf("delivery %d (changelog %s) ended %s: %s", d.ID, cl, d.Status, d.Error)
		}
		if n := newest[e.issue]; n == nil || e.timestamp > n.timestamp {
			newest[e.issue] = e
		}
		retaken += d.Attempts - settledOnce(t, st, d)
		if fp != nil && d.Status == store.DeliveryDone {
			key := platform.ApplyKey{Installation: d.Installation, Delivery: d.ID, Round: d.AttemptBase}.String()
			if rec := fp.Keys()[key]; rec.Applied != 1 {
				t.Errorf("delivery %d done, its key %s applied %d times on the platform (posted %d), want once", d.ID, key, rec.Applied, rec.Posts)
			}
		}
	}
	if fp != nil {
		verifyKeys(t, fp, stored)
	}
	for _, e := range events {
		if e.acked.Load() {
			if _, ok := stored[strconv.Itoa(e.changelog)]; !ok {
				t.Errorf("acknowledged delivery (changelog %d) is not stored", e.changelog)
			}
		}
	}
	for issue, e := range newest {
		g, err := st.Group(ctx, "", fmt.Sprintf("g%d", issue))
		if fp != nil {
			var ok bool
			if g.Assignee, ok = fp.Assignee(fmt.Sprintf("g%d", issue)); ok {
				err = nil
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		var want *string
		if e.user >= 0 {
			u := fmt.Sprintf("u%d", e.user)
			want = &u
		}
		if (g.Assignee == nil) != (want == nil) || (want != nil && *g.Assignee != *want) {
			t.Errorf("group g%d: assignee %s, want %s (newest event, changelog %d)", issue, who(g.Assignee), who(want), e.changelog)
		}
	}
	return counts, retaken
}

// settledOnce checks that a delivery was settled (done or stale) by
// exactly one attempt, and returns how many attempts were recorded.
func settledOnce(t testing.TB, st *store.Store, d store.Delivery) int {
	t.Helper()
	attempts, err := st.Attempts(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	settled := 0
	for _, a := range attempts {
		if a.Outcome == store.DeliveryDone || a.Outcome == store.DeliveryStale {
			settled++
		}
	}
	if settled != 1 {
		t.Errorf("delivery %d (%s) settled %d times (attempts %+v), want exactly once", d.ID, d.Kind, settled, attempts)
	}
	return len(attempts)
}

// eventDeliveries lists every platform event's delivery.
func eventDeliveries(t testing.TB, st *store.Store) []store.Delivery {
	var out []store.Delivery
	for before := int64(0); ; {
		page, err := st.Deliveries(context.Background(), store.DeliveryFilter{Kind: store.KindEvent, Before: before, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 500 {
			return out
		}
		before = page[len(page)-1].ID
	}
}

// verifyKeys checks the simulated platform's idempotency keys: each names
// a stored delivery, and was applied once; a repeated post (a host killed
// after applying, before recording it) changed nothing.
func verifyKeys(t *testing.T, fp *fakeplatform.Server, stored map[string]store.Delivery) {
	ids := map[string]bool{}
	for _, d := range stored {
		ids[platform.ApplyKey{Installation: d.Installation, Delivery: d.ID, Round: d.AttemptBase}.String()] = true
	}
	reposted := 0
	for key, rec := range fp.Keys() {
		if !ids[key] {
			t.Errorf("platform key %s names no stored delivery", key)
		}
		if rec.Applied > 1 {
			t.Errorf("platform key %s applied %d times", key, rec.Applied)
		}
		if rec.Posts > 1 {
			reposted++
		}
	}
	t.Logf("platform over HTTP: %d idempotency keys, %d posted again after a kill and answered from the record", len(fp.Keys()), reposted)
}

func who(user *string) string {
	if user == nil {
		return "(none)"
	}
	return *user
}

type hostProc struct {
	t    testing.TB
	bin  string
	args []string
	log  string
	cmd  *exec.Cmd
}

func (h *hostProc) start() {
	h.t.Helper()
	logf, err := os.OpenFile(h.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cmd = exec.Command(h.bin, h.args...)
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	addr := h.args[2]
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(h.log)
	h.t.Fatalf("host not ready within 30s; log:\n%s", b)
}

func (h *hostProc) kill() {
	if h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Kill()
		h.cmd.Wait()
		h.cmd = nil
	}
}

func (h *hostProc) stop() {
	if h.cmd != nil {
		h.cmd.Process.Signal(syscall.SIGTERM)
		h.cmd.Wait()
		h.cmd = nil
	}
}

func waitQueueEmpty(t testing.TB, addr string) {
	t.Helper()
	waitQueueEmptyWithin(t, addr, 30*time.Second)
}

// waitQueueEmptyWithin waits until the host at addr has no delivery
// pending, processing or retrying, failing the test after limit.
func waitQueueEmptyWithin(t testing.TB, addr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		busy := 0
		for _, status := range []string{store.DeliveryPending, store.DeliveryProcessing, store.DeliveryRetrying} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/extensions/jira-server/deliveries?limit=1&status="+status, nil)
			req.Header.Set("Authorization", "Bearer "+crashAdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Deliveries []json.RawMessage `json:"deliveries"`
			}
			json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
			busy += len(list.Deliveries)
		}
		if busy == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("deliveries still unsettled after %s", limit)
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// openCrashStore opens the test's database with the key in the environment.
func openCrashStore(db string) (*store.Store, error) {
	box, err := secrets.Load("")
	if err != nil {
		return nil, err
	}
	return store.Open(context.Background(), db, box)
}
