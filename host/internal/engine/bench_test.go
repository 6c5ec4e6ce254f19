package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
)

// payloadOfSize builds a jira:issue_updated body of about n bytes that
// assigns APP-1 to alice: the assignee snapshot plus custom fields and a
// long description, like a real Jira Server issue.
func payloadOfSize(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"timestamp":1764410000000,"webhookEvent":"jira:issue_updated","issue_event_type_name":"issue_assigned",`)
	b.WriteString(`"user":{"name":"bob","key":"JIRAUSER10001","emailAddress":"bob@example.com","displayName":"Bob Builder","active":true},`)
	b.WriteString(`"issue":{"id":"10002","key":"APP-1","fields":{`)
	for i := 0; b.Len() < n-600; i++ {
		fmt.Fprintf(&b, `"customfield_%d":{"self":"https://jira.example.com/rest/api/2/customFieldOption/%d","value":"Option %d","id":"%d"},`, 10000+i, 20000+i, i, 20000+i)
	}
	b.WriteString(`"summary":"Checkout fails for carts over 100 items","description":"Steps to reproduce...",`)
	b.WriteString(`"assignee":{"name":"alice","key":"JIRAUSER10000","emailAddress":"alice@example.com","displayName":"Alice Adams","active":true}}},`)
	b.WriteString(`"changelog":{"id":"10431","items":[{"field":"assignee","fieldtype":"jira","from":"bob","fromString":"Bob Builder","to":"alice","toString":"Alice Adams"}]}}`)
	return []byte(b.String())
}

// compareEngines runs op on the wasm and the native engine alternately, b.N
// times each, over the same store, and reports both times and their ratio.
func compareEngines(b *testing.B, op func(ctx context.Context, e Engine, bind *capabilities.Binding) error) {
	caps, bind := fixture(b)
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
}

// BenchmarkHandle is one delivery that assigns a group, through the real
// host functions on a real (temporary) SQLite store.
func BenchmarkHandle(b *testing.B) {
	for _, size := range []int{4 << 10, 16 << 10, 64 << 10} {
		body := payloadOfSize(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			compareEngines(b, func(ctx context.Context, e Engine, bind *capabilities.Binding) error {
				_, err := HandleIssueUpdated(ctx, e, bind, body)
				return err
			})
		})
	}
}

// BenchmarkEmptyCall is the round trip of the smallest export, describe.
func BenchmarkEmptyCall(b *testing.B) {
	compareEngines(b, func(ctx context.Context, e Engine, bind *capabilities.Binding) error {
		_, err := e.Call(ctx, bind, abi.ExportDescribe, nil)
		return err
	})
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
}
