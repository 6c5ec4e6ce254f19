package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/store/storetest"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// BenchmarkEndToEnd measures the real binary over loopback: start to
// ready with a warm compilation cache, deliveries accepted per second
// (durable, answered 202 without waiting for processing), processed per
// second with the wasm engine against the native one, p99 accept latency
// at a paced 1,000 deliveries/s, and peak resident memory. It runs once
// whatever b.N is; the figures are its metrics.
func BenchmarkEndToEnd(b *testing.B) {
	dir := b.TempDir()
	bin, plugin, token := prepareHosts(b, dir)
	cache := pluginbuild.CacheDir()
	results := map[string]float64{}
	for _, engine := range []string{"native", "wasm"} {
		db := filepath.Join(dir, engine+".db")
		seedCrash(b, db, nil)
		addr := freeAddr(b)
		h := &hostProc{t: b, bin: bin, log: filepath.Join(dir, engine+".log"), args: []string{"serve", "-addr", addr,
			"-db", db, "-plugin", plugin, "-engine", engine, "-cache-dir", cache, "-admin-token", crashAdminToken,
			"-log-level", "error", "-answer-wait", "1ns"}}
		start := time.Now()
		h.start()
		results[engine+" start-ms"] = float64(time.Since(start).Microseconds()) / 1000
		url := "http://" + addr + "/extensions/jira-server/issue-updated/" + token

		// Accept throughput: 16 clients, 3,000 deliveries.
		const n = 3000
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
		acceptStart := time.Now()
		failed := sendAll(client, []string{url}, n, 100000)
		acceptElapsed := time.Since(acceptStart)
		waitQueueEmpty(b, addr)
		processElapsed := time.Since(acceptStart)
		if failed > 0 {
			b.Fatalf("%s: %d deliveries not accepted", engine, failed)
		}
		results[engine+" accepted/s"] = n / acceptElapsed.Seconds()
		results[engine+" processed/s"] = n / processElapsed.Seconds()

		// Accept latency at a paced 1,000/s for 3 s.
		var mu sync.Mutex
		var lat []time.Duration
		tick := time.NewTicker(time.Millisecond)
		var pw sync.WaitGroup
		for i := 0; i < 3000; i++ {
			<-tick.C
			pw.Add(1)
			go func(i int) {
				defer pw.Done()
				e := &event{issue: i % crashIssues, changelog: 200000 + i, timestamp: 1796000000000 + int64(i)*1000, user: i % crashUsers}
				s := time.Now()
				post(client, url, e.body())
				d := time.Since(s)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}(i)
		}
		tick.Stop()
		pw.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		results[engine+" p99-ms@1000/s"] = float64(lat[len(lat)*99/100].Microseconds()) / 1000
		waitQueueEmpty(b, addr)
		results[engine+" rss-MB"] = peakRSS(h.cmd.Process.Pid)
		h.stop()
	}
	for k, v := range results {
		b.ReportMetric(v, strings.ReplaceAll(k, " ", "_"))
	}
	ratio := results["wasm processed/s"] / results["native processed/s"]
	b.ReportMetric(ratio, "processed_wasm/native")
	fmt.Printf("\nend to end (2 cores, loopback, durable SQLite)          wasm      native   goal\n")
	fmt.Printf("  deliveries accepted per second              %9.0f  %9.0f   >= 3000\n", results["wasm accepted/s"], results["native accepted/s"])
	fmt.Printf("  deliveries processed per second             %9.0f  %9.0f   wasm/native %.2f (>= 0.7)\n", results["wasm processed/s"], results["native processed/s"], ratio)
	fmt.Printf("  p99 accept latency at 1000/s (ms)           %9.1f  %9.1f   <= 50 while processing runs\n", results["wasm p99-ms@1000/s"], results["native p99-ms@1000/s"])
	fmt.Printf("  start to ready, warm cache (ms)             %9.0f  %9.0f   <= 250, not worse than before\n", results["wasm start-ms"], results["native start-ms"])
	fmt.Printf("  peak resident memory (MB)                   %9.0f  %9.0f   <= 150, not worse than before\n", results["wasm rss-MB"], results["native rss-MB"])
}

// sendAll sends n deliveries from 16 clients, spread round robin over
// urls, their changelog ids from first on, and returns how many were not
// answered 2xx.
func sendAll(client *http.Client, urls []string, n, first int) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				e := &event{issue: int(i) % crashIssues, changelog: first + int(i), timestamp: 1795000000000 + i*1000, user: int(i) % crashUsers}
				if status := post(client, urls[int(i)%len(urls)], e.body()); status/100 != 2 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}

func post(c *http.Client, url string, body []byte) int {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// peakRSS reads a process's peak resident set (VmHWM) in MB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// BenchmarkReplicas measures deliveries processed per second by one host
// on SQLite, one on PostgreSQL and three on one PostgreSQL database, in
// that order, three times over. Each run sends 3,000 deliveries round robin to
// its hosts (answered once stored) and stops the clock when the last is
// settled. It needs $JIRASYNC_TEST_POSTGRES.
func BenchmarkReplicas(b *testing.B) {
	pg := storetest.PostgresURL()
	if pg == "" {
		b.Skip(storetest.ErrNoPostgres)
	}
	dir := b.TempDir()
	bin, plugin, token := prepareHosts(b, dir)
	cache := pluginbuild.CacheDir()
	type setup struct {
		name     string
		kind     string
		replicas int
	}
	setups := []setup{{"1 host, SQLite", "sqlite", 1}, {"1 host, PostgreSQL", "postgres", 1}, {"3 hosts, PostgreSQL", "postgres", 3}}
	const n, rounds = 3000, 3
	rate := map[string][]float64{}
	for round := 0; round < rounds; round++ {
		for _, su := range setups {
			db := storetest.DSN(b, su.kind)
			seedCrash(b, db, nil)
			run := hostRun{bin: bin, plugin: plugin, token: token, cache: cache, db: db, logs: filepath.Join(dir, fmt.Sprintf("%s-%d", su.kind, su.replicas))}
			rate[su.name] = append(rate[su.name], run.processed(b, su.replicas, n, 300000))
		}
	}
	base := mean(rate[setups[0].name])
	fmt.Printf("\ndeliveries processed per second (wasm, 2 cores, loopback; %d deliveries, mean of %d runs each)\n", n, rounds)
	for _, su := range setups {
		m := mean(rate[su.name])
		b.ReportMetric(m, strings.ReplaceAll(strings.ReplaceAll(su.name, ",", ""), " ", "_")+"_processed/s")
		fmt.Printf("  %-22s %7.0f   runs %5.0f   x%.2f of 1 host on SQLite\n", su.name, m, rate[su.name], m/base)
	}
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// hostRun is what a throughput run starts its hosts with.
type hostRun struct {
	bin, plugin, token, cache, db string
	logs                          string // log file prefix
	flags                         []string
}

// processed starts replicas hosts on the run's database, sends them n
// deliveries round robin (answered once stored, changelog ids from
// first on), and returns deliveries processed per second: the clock
// stops when the last one is settled.
func (r hostRun) processed(b *testing.B, replicas, n, first int) float64 {
	var urls []string
	var procs []*hostProc
	for i := 0; i < replicas; i++ {
		addr := freeAddr(b)
		h := &hostProc{t: b, bin: r.bin, log: fmt.Sprintf("%s-%d.log", r.logs, i),
			args: append([]string{"serve", "-addr", addr, "-db", r.db, "-plugin", r.plugin, "-cache-dir", r.cache,
				"-admin-token", crashAdminToken, "-log-level", "error", "-answer-wait", "1ns"}, r.flags...)}
		h.start()
		defer h.kill() // if the run fails; stopped below otherwise
		procs = append(procs, h)
		urls = append(urls, "http://"+addr+"/extensions/jira-server/issue-updated/"+r.token)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	start := time.Now()
	if failed := sendAll(client, urls, n, first); failed > 0 {
		b.Fatalf("%s: %d deliveries not accepted", r.db, failed)
	}
	// Generous: the machine may be shared, and a slow run is a figure,
	// not a failure.
	waitQueueEmptyWithin(b, procs[0].args[2], 3*time.Minute)
	rate := float64(n) / time.Since(start).Seconds()
	for _, h := range procs {
		h.stop()
	}
	return rate
}

// BenchmarkPlatforms measures deliveries processed per second by one host
// (wasm, SQLite) with the built-in platform and with the simulated
// platform over loopback HTTP (docs/PLATFORM.md), alternating, three
// rounds of 3,000 deliveries each.
func BenchmarkPlatforms(b *testing.B) {
	dir := b.TempDir()
	bin, plugin, token := prepareHosts(b, dir)
	cache := pluginbuild.CacheDir()
	tokenFile := filepath.Join(dir, "platform.token")
	if err := os.WriteFile(tokenFile, []byte(crashPlatformToken), 0o600); err != nil {
		b.Fatal(err)
	}
	setups := []string{"built-in platform", "platform over HTTP"}
	const n, rounds = 3000, 3
	rate := map[string][]float64{}
	calls := 0
	for round := 0; round < rounds; round++ {
		for _, su := range setups {
			db := filepath.Join(dir, fmt.Sprintf("%d-%s.db", round, strings.Fields(su)[0]))
			run := hostRun{bin: bin, plugin: plugin, token: token, cache: cache, db: db, logs: db}
			var fp *fakeplatform.Server
			if su == "platform over HTTP" {
				fp = fakeplatform.Start(crashPlatformToken, nil)
				run.flags = []string{"-platform", fp.URL(), "-platform-token-file", tokenFile}
			}
			seedCrash(b, db, fp)
			r := run.processed(b, 1, n, 400000)
			rate[su] = append(rate[su], r)
			if fp != nil {
				calls += len(fp.Keys())
				fp.Close()
			}
			b.Logf("round %d, %s: %.0f processed/s", round, su, r)
		}
	}
	if calls == 0 {
		b.Fatal("nothing was applied on the platform over HTTP")
	}
	base := mean(rate[setups[0]])
	fmt.Printf("\ndeliveries processed per second (1 host, wasm, SQLite, 2 cores, loopback; %d deliveries, mean of %d runs each)\n", n, rounds)
	for _, su := range setups {
		m := mean(rate[su])
		b.ReportMetric(m, strings.ReplaceAll(su, " ", "_")+"_processed/s")
		fmt.Printf("  %-20s %7.0f   runs %5.0f   x%.2f of the built-in platform\n", su, m, rate[su], m/base)
	}
}
