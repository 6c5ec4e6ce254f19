package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
)

// memoryHost answers every host function from memory, as one linked
// group whose project alice is a member of: the plugin's own cost, without
// SQLite's.
type memoryHost struct{}

var memoryAnswers = map[string][]byte{
	abi.FuncInstallationGet: []byte(`{"id":"jira1","external_id":"jira.example.com:k","base_url":"http://127.0.0.1:1","organizations":[{"id":"acme","inbound_assignee":true}]}`),
	abi.FuncGroupsLinked:    []byte(`{"groups":[{"id":"g1","organization":"acme","project":"backend","assignee":"bob"}]}`),
	abi.FuncUsersByEmail:    []byte(`{"users":[{"id":"alice","verified":true,"projects":["backend"]}]}`),
	abi.FuncGroupsAssign:    []byte(`{"changed":1}`),
	abi.FuncStateGet:        []byte(`{"value":"","found":false}`),
}

func (memoryHost) Call(_ context.Context, _ *capabilities.Binding, fn string, _ []byte) []byte {
	if a, ok := memoryAnswers[fn]; ok {
		return a
	}
	return []byte(`{}`)
}

func fixturePayload(b *testing.B, name string) []byte {
	body, err := os.ReadFile(filepath.Join("..", "..", "..", "fixtures", "payloads", name))
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// compareEngines runs op on the wasm and the native engine alternately, b.N
// times each, over the same store, reports both times and their ratio, and
// returns the mean wasm and native times.
func compareEngines(b *testing.B, caps Host, op func(ctx context.Context, e Engine, bind *capabilities.Binding) error) (wasm, native time.Duration) {
	_, bind := fixture(b)
	ctx := context.Background()
	w, err := NewWasm(ctx, caps, WasmConfig{Module: realPlugin(b), PoolSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	n := &Native{Caps: caps}
	var wasmT, nativeT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := op(ctx, w, bind); err != nil {
			b.Fatal(err)
		}
		wasmT += time.Since(start)
		start = time.Now()
		if err := op(ctx, n, bind); err != nil {
			b.Fatal(err)
		}
		nativeT += time.Since(start)
	}
	b.ReportMetric(float64(wasmT.Nanoseconds())/float64(b.N)/1e3, "wasm-µs/op")
	b.ReportMetric(float64(nativeT.Nanoseconds())/float64(b.N)/1e3, "native-µs/op")
	b.ReportMetric(float64(wasmT)/float64(nativeT), "wasm/native")
	return wasmT / time.Duration(b.N), nativeT / time.Duration(b.N)
}

// printGoal prints a figure beside its comparator and goal, once per
// benchmark (the last, largest b.N), for make bench's summary.
func printGoal(b *testing.B, what string, wasm, native time.Duration, goal string) {
	if b.N < 2 {
		return // the calibration run
	}
	fmt.Printf("goal  %-44s wasm %10s  native %10s  %6.1fx  %s\n", what, wasm.Round(100*time.Nanosecond),
		native.Round(100*time.Nanosecond), float64(wasm)/float64(native), goal)
}

// BenchmarkHandle is one delivery that assigns a group (fixtures'
// large-*.json: 4, 16 and 64 KiB Jira Server bodies), host functions
// answering from memory.
func BenchmarkHandle(b *testing.B) {
	for _, size := range []string{"4k", "16k", "64k"} {
		body := fixturePayload(b, "large-"+size+".json")
		b.Run(size, func(b *testing.B) {
			wasm, native := compareEngines(b, memoryHost{}, func(ctx context.Context, e Engine, bind *capabilities.Binding) error {
				_, err := HandleIssueUpdated(ctx, e, bind, body)
				return err
			})
			if size == "16k" {
				printGoal(b, "16 KiB delivery, host functions from memory", wasm, native, "goal wasm/native <= 3x")
			}
		})
	}
}

// BenchmarkHandleSQLite is the same delivery through the real host
// functions on a real (temporary) SQLite store.
func BenchmarkHandleSQLite(b *testing.B) {
	caps, _ := fixture(b)
	body := fixturePayload(b, "large-16k.json")
	compareEngines(b, caps, func(ctx context.Context, e Engine, bind *capabilities.Binding) error {
		call := *bind
		_, err := HandleIssueUpdated(ctx, e, &call, body)
		return err
	})
}

// BenchmarkEmptyCall is the round trip of the smallest export, describe.
func BenchmarkEmptyCall(b *testing.B) {
	wasm, native := compareEngines(b, memoryHost{}, func(ctx context.Context, e Engine, bind *capabilities.Binding) error {
		_, err := e.Call(ctx, bind, abi.ExportDescribe, nil)
		return err
	})
	printGoal(b, "empty call round trip (describe)", wasm, native, "goal wasm <= 10 µs (empty), <= 15 µs (describe)")
}

// BenchmarkCompile measures loading the plugin cold (empty cache) and warm
// (compilation cache on disk), in one run.
func BenchmarkCompile(b *testing.B) {
	caps, _ := fixture(b)
	ctx := context.Background()
	module := realPlugin(b)
	warmDir := b.TempDir()
	if w, err := NewWasm(ctx, caps, WasmConfig{Module: module, CacheDir: warmDir, PoolSize: 1}); err != nil {
		b.Fatal(err)
	} else {
		w.Close(ctx)
	}
	var cold, warm time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		w, err := NewWasm(ctx, caps, WasmConfig{Module: module, CacheDir: b.TempDir(), PoolSize: 1})
		if err != nil {
			b.Fatal(err)
		}
		cold += time.Since(start)
		w.Close(ctx)
		start = time.Now()
		w, err = NewWasm(ctx, caps, WasmConfig{Module: module, CacheDir: warmDir, PoolSize: 1})
		if err != nil {
			b.Fatal(err)
		}
		warm += time.Since(start)
		w.Close(ctx)
	}
	b.ReportMetric(float64(cold.Milliseconds())/float64(b.N), "cold-ms/op")
	b.ReportMetric(float64(warm.Milliseconds())/float64(b.N), "warm-ms/op")
	b.ReportMetric(float64(cold)/float64(warm), "cold/warm")
	if b.N >= 2 {
		fmt.Printf("goal  %-44s cold %8.0f ms  warm %8.0f ms  not worse than before (BENCHMARKS.md)\n", "load plugin: compile cold vs disk cache",
			float64(cold.Milliseconds())/float64(b.N), float64(warm.Milliseconds())/float64(b.N))
	}
}
