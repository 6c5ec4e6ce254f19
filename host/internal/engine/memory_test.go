package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
)

// TestMemoryFunctionRanges calls jirasync_kernel_load and
// jirasync_kernel_store (ABI 1.5) from a guest with good ranges and with
// ranges outside the kernel's memory, outside the plugin's, or wider than
// 32 bits: the good ones copy (so the host reaches the calling module's
// memory, the go-sdk patch's CurrentPlugin.CallerMemory), the others
// answer "out of range", copy nothing, and the instance lives on.
func TestMemoryFunctionRanges(t *testing.T) {
	ctx := context.Background()
	caps, b := fixture(t)
	w, err := NewWasm(ctx, caps, WasmConfig{Module: faultyPlugin(t), CacheDir: testCacheDir, PoolSize: 1, CallTimeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	out, err := w.Call(ctx, b, abi.ExportHandleIssueUpdated, []byte("copy_ranges"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	want := map[string]any{
		"store": float64(abi.CopyDone), "load": float64(abi.CopyDone), "copied": true,
		"load_kernel_past_end": float64(abi.CopyOutOfRange), "load_kernel_over_32_bits": float64(abi.CopyOutOfRange),
		"load_guest_past_end": float64(abi.CopyOutOfRange), "load_guest_over_32_bits": float64(abi.CopyOutOfRange),
		"load_length_over_32_bits": float64(abi.CopyOutOfRange), "store_kernel_past_end": float64(abi.CopyOutOfRange),
		"store_guest_wraps": float64(abi.CopyOutOfRange), "untouched": true,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("probe reported %v, want the keys of %v", got, want)
	}
	s := w.Stats()
	if s.Dropped != 0 || s.CopyOutOfRange != 7 || s.Copied != 2 {
		t.Errorf("stats %+v: want no instance dropped, 2 copies and 7 refused", s)
	}
}

// TestPluginCopiesInBulk runs every kind of export through the real
// plugin on a host that copies for it and on one that answers
// "unsupported" (as the Node host does): both give the native engine's
// outputs, the first with no 8-byte fallback at all, the second asking
// once per instance and never again (go-pdk's path for the instance's
// life).
func TestPluginCopiesInBulk(t *testing.T) {
	ctx := context.Background()
	_, b := fixture(t)
	calls := everyExport(t, "large-16k.json")
	native := &Native{Caps: eventHost{}}
	for _, tt := range []struct {
		name          string
		noGuestMemory bool
	}{{"bulk", false}, {"unsupported", true}} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWasm(ctx, eventHost{}, WasmConfig{Module: realPlugin(t), CacheDir: testCacheDir, PoolSize: 1, noGuestMemory: tt.noGuestMemory})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			agreeWithNative(t, w, native, b, calls)
			s := w.Stats()
			switch {
			case s.Created != 1 || s.Faults != 0:
				t.Errorf("stats %+v: want one instance and no faults", s)
			case !tt.noGuestMemory && (s.Copied == 0 || s.CopyUnsupported != 0 || s.CopyOutOfRange != 0):
				t.Errorf("stats %+v: want every copy in bulk", s)
			case tt.noGuestMemory && (s.Copied != 0 || s.CopyUnsupported != 1 || s.CopyOutOfRange != 0):
				t.Errorf("stats %+v: want one unsupported answer for the instance's life", s)
			}
		})
	}
}

// engineCall is one export call with its input.
type engineCall struct {
	export string
	input  []byte
}

// everyExport is a call of every kind of export, the deliveries with the
// fixture payload named.
func everyExport(t testing.TB, payload string) []engineCall {
	body := fixturePayload(t, payload)
	return []engineCall{
		{abi.ExportDescribe, nil},
		{abi.ExportInspectDelivery, body},
		{abi.ExportHandleIssueUpdated, body},
		{abi.ExportHandlePlatformEvent, []byte(`{"id":"ev-1","type":"group.assigned","group":"g1","assignee":"alice","occurred_at":"2026-11-30T04:00:00Z"}`)},
		{abi.ExportHandlePlatformEvent, []byte(`{"id":"ev-2","type":"group.resolved","group":"g1","assignee":null,"occurred_at":"2026-11-30T04:00:00Z"}`)},
		{abi.ExportRegisterWebhook, []byte(`{not json`)}, // a failure: the error text travels too
	}
}

// agreeWithNative makes calls twice on w and on native, in turn, and
// fails the test for any output or error of w's that is not native's.
func agreeWithNative(t *testing.T, w *Wasm, native *Native, b *capabilities.Binding, calls []engineCall) {
	t.Helper()
	ctx := context.Background()
	for round := range 2 {
		for _, c := range calls {
			want, wantErr := native.Call(ctx, b, c.export, c.input)
			got, gotErr := w.Call(ctx, b, c.export, c.input)
			if !bytes.Equal(got, want) || errText(gotErr) != errText(wantErr) {
				t.Errorf("round %d, %s: wasm %q, %v; native %q, %v", round, c.export, got, gotErr, want, wantErr)
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
