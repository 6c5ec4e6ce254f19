package engine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/jiraclient"
	"github.com/jirasync/jirasync/host/internal/teststore"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
	"github.com/jirasync/jirasync/testharness/abischema"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// schemaHost holds every host-function call to docs/abi.schema.json: the
// guest's request and the host's answer. calls counts them.
type schemaHost struct {
	t     testing.TB
	inner Host
	mu    sync.Mutex
	calls int
}

func (h *schemaHost) Call(ctx context.Context, b *capabilities.Binding, fn string, req []byte) []byte {
	s, err := abischema.Load()
	if err != nil {
		h.t.Error(err)
	}
	h.mu.Lock()
	h.calls++
	h.mu.Unlock()
	if err := s.Validate(abischema.Request(fn), req); err != nil {
		h.t.Errorf("guest sent: %v", err)
	}
	resp := h.inner.Call(ctx, b, fn, req)
	if err := s.Validate(abischema.Response(fn), resp); err != nil {
		h.t.Errorf("host answered: %v", err)
	}
	return resp
}

func (h *schemaHost) Calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// testCacheDir is one compilation cache for every test in the package:
// compiling a 3 MB module cold takes seconds, many more under -race.
var testCacheDir = pluginbuild.CacheDir()

// faultTimeout must outlast a memory bomb's growth under -race, so the bomb
// traps on its limit rather than timing out.
const faultTimeout = 3 * time.Second

var faultyOnce struct {
	sync.Once
	path string
	err  error
}

// faultyPlugin builds testdata/faulty once per test binary.
func faultyPlugin(t testing.TB) []byte {
	t.Helper()
	faultyOnce.Do(func() {
		faultyOnce.path = pluginbuild.Out("faulty.wasm")
		faultyOnce.err = pluginbuild.Build("./testdata/faulty", faultyOnce.path)
	})
	if faultyOnce.err != nil {
		t.Fatal(faultyOnce.err)
	}
	b, err := os.ReadFile(faultyOnce.path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func realPlugin(t testing.TB) []byte {
	t.Helper()
	p, err := pluginbuild.Path()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a store with one installation linked to two groups of APP-1.
func fixture(t testing.TB) (*capabilities.Set, *capabilities.Binding) {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t, "db")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutOrganization(ctx, store.Organization{ID: "acme"}))
	must(st.PutProject(ctx, store.Project{ID: "backend", Organization: "acme"}))
	must(st.PutUser(ctx, store.User{ID: "alice", Emails: []store.Email{{Address: "alice@example.com", Verified: true}}, Projects: []string{"backend"}}))
	must(st.PutGroup(ctx, store.Group{ID: "g1", Project: "backend"}))
	in := store.Installation{ID: "jira1", ExternalID: "jira.example.com:k", BaseURL: "http://127.0.0.1:1", ConsumerKey: "k",
		WebhookSecret: "s", Organizations: []store.InstallationOrg{{ID: "acme", InboundAssignee: true}}}
	must(st.PutInstallation(ctx, in))
	must(st.LinkGroup(ctx, "g1", "jira1", "APP-1"))
	return &capabilities.Set{Store: st, Platform: st, Jira: jiraclient.New()},
		&capabilities.Binding{Installation: in, Delivery: 1, Logger: slog.New(slog.DiscardHandler)}
}

const assignAlice = `{"webhookEvent":"jira:issue_updated","issue":{"key":"APP-1","fields":{"assignee":{"emailAddress":"alice@example.com"}}},"changelog":{"items":[{"field":"assignee"}]}}`

// TestEnginesAgree runs the same delivery through both engines: the wasm
// build must behave exactly as the native one.
func TestEnginesAgree(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"native", "wasm"} {
		t.Run(kind, func(t *testing.T) {
			set, b := fixture(t)
			caps := &schemaHost{t: t, inner: set}
			var e Engine = &Native{Caps: caps}
			if kind == "wasm" {
				w, err := NewWasm(ctx, caps, WasmConfig{Module: realPlugin(t), CacheDir: testCacheDir, PoolSize: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close(ctx)
				e = w
			}
			d, err := e.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := guest.Describe(); d.ABIVersion != want.ABIVersion || d.Name != want.Name || len(d.Imports) != len(want.Imports) {
				t.Errorf("Describe = %+v, want %+v", d, want)
			}
			sum, err := HandleIssueUpdated(ctx, e, b, []byte(assignAlice))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Outcome != abi.OutcomeSynced || sum.Assigned != 1 {
				t.Errorf("summary = %+v, want one group assigned", sum)
			}
			if caps.Calls() == 0 {
				t.Error("no host-function call went through the schema check")
			}
			// Assignments are staged on the binding; the pipeline applies
			// them when it commits the delivery.
			if len(b.Staged) != 1 || b.Staged[0].Group != "g1" || b.Staged[0].Assignee == nil || *b.Staged[0].Assignee != "alice" {
				t.Errorf("staged %+v, want g1 to alice", b.Staged)
			}
			_, err = HandleIssueUpdated(ctx, e, b, []byte(`{"webhookEvent":"jira:issue_updated","changelog":{"items":[{"field":"assignee"}]}}`))
			var ae *abi.Error
			if !errors.As(err, &ae) || ae.Code != abi.CodeInvalidPayload {
				t.Errorf("payload without issue key: error %v, want invalid_payload", err)
			}
		})
	}
}

func TestWasmFaults(t *testing.T) {
	ctx := context.Background()
	caps, b := fixture(t)
	w, err := NewWasm(ctx, caps, WasmConfig{Module: faultyPlugin(t), CacheDir: testCacheDir, PoolSize: 2,
		CallTimeout: faultTimeout, MaxMemoryPages: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)

	tests := []struct {
		input      string
		wantReason string // a Fault reason; "" for a plugin-reported error or success
		wantCode   abi.ErrorCode
		dropped    bool
	}{
		{input: "panic", wantReason: "trap", dropped: true},
		{input: "loop", wantReason: "timeout", dropped: true},
		{input: "memory", wantReason: "trap", dropped: true},
		{input: "rc_no_error", wantReason: "trap", dropped: true},
		{input: "error", wantCode: abi.CodeUnavailable},
		// Reported as such, so that the pipeline retries it as it does
		// the Native engine's; the instance is not reused.
		{input: "internal", wantCode: abi.CodeInternal, dropped: true},
		{input: "bad_output"},
		{input: "host_garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			before := w.Stats()
			start := time.Now()
			out, err := w.Call(ctx, b, abi.ExportHandleIssueUpdated, []byte(tt.input))
			elapsed := time.Since(start)
			var f *Fault
			var ae *abi.Error
			switch {
			case tt.wantReason != "":
				if !errors.As(err, &f) || f.Reason != tt.wantReason {
					t.Fatalf("Call(%s) = %q, %v; want a %s fault", tt.input, out, err, tt.wantReason)
				}
			case tt.wantCode != "":
				if !errors.As(err, &ae) || ae.Code != tt.wantCode {
					t.Fatalf("Call(%s) error = %v, want code %s", tt.input, err, tt.wantCode)
				}
			case err != nil:
				t.Fatalf("Call(%s): %v", tt.input, err)
			}
			if tt.input == "loop" && elapsed > faultTimeout+100*time.Millisecond {
				t.Errorf("a looping guest held the call for %s; the time-out is %s", elapsed, faultTimeout)
			}
			if tt.input == "host_garbage" && !strings.Contains(string(out), `"invalid_request"`) {
				t.Errorf("malformed host-function request answered %s, want an invalid_request envelope", out)
			}
			after := w.Stats()
			if got := after.Dropped - before.Dropped; (got > 0) != tt.dropped {
				t.Errorf("instances dropped = %d, want dropped=%v", got, tt.dropped)
			}
			// Whatever happened, the engine serves the next call.
			if _, err := w.Call(ctx, b, abi.ExportHandleIssueUpdated, []byte("ok")); err != nil {
				t.Fatalf("call after %s failed: %v", tt.input, err)
			}
		})
	}
}

func TestWasmBadOutputIsAFault(t *testing.T) {
	ctx := context.Background()
	caps, b := fixture(t)
	w, err := NewWasm(ctx, caps, WasmConfig{Module: faultyPlugin(t), CacheDir: testCacheDir, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	_, err = HandleIssueUpdated(ctx, w, b, []byte(`{"fault":"bad_output"}`))
	var f *Fault
	if !errors.As(err, &f) || f.Reason != "bad_output" {
		t.Fatalf("output that is not a handle response: error %v, want a bad_output fault", err)
	}
}

// TestWasmConcurrent hammers a small pool from many goroutines; run with
// -race. Every call must succeed and no more instances than the pool
// holds may ever exist.
func TestWasmConcurrent(t *testing.T) {
	ctx := context.Background()
	caps, b := fixture(t)
	w, err := NewWasm(ctx, caps, WasmConfig{Module: realPlugin(t), CacheDir: testCacheDir, PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				call := *b // a binding is per call: it collects the call's staged changes
				if _, err := HandleIssueUpdated(ctx, w, &call, []byte(assignAlice)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := w.Stats(); s.Created > 2 {
		t.Errorf("%d instances created for a pool of 2 with no faults", s.Created)
	}
}

func TestCheckDescription(t *testing.T) {
	ok := guest.Describe()
	if err := checkDescription(ok, wasmOffers()); err != nil {
		t.Fatalf("own description refused: %v", err)
	}
	future := ok
	future.ABIVersion = "2.0"
	if err := checkDescription(future, wasmOffers()); err == nil {
		t.Error("a plugin of ABI 2.0 was accepted by a 1.x host")
	}
	greedy := ok
	greedy.Imports = append(append([]string{}, ok.Imports...), "jirasync_shell_exec")
	if err := checkDescription(greedy, wasmOffers()); err == nil {
		t.Error("a plugin importing an unknown host function was accepted")
	}
}
