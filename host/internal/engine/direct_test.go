package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
)

// countingHost counts the host functions it runs, by name, and answers
// through next; with pad it adds an unknown member of pad bytes to every
// successful answer (an answer larger than the plugin's 4 KiB buffer,
// which a reader skips).
type countingHost struct {
	next Host
	pad  int
	mu   sync.Mutex
	runs map[string]int
}

func (h *countingHost) Call(ctx context.Context, b *capabilities.Binding, fn string, req []byte) []byte {
	h.mu.Lock()
	if h.runs == nil {
		h.runs = map[string]int{}
	}
	h.runs[fn]++
	h.mu.Unlock()
	answer := h.next.Call(ctx, b, fn, req)
	if h.pad > 0 && bytes.HasPrefix(answer, []byte(`{"`)) && !bytes.HasPrefix(answer, []byte(`{"error"`)) {
		answer = append([]byte(`{"padding":"`+strings.Repeat("p", h.pad)+`",`), answer[1:]...)
	}
	return answer
}

func (h *countingHost) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.runs {
		out[k] = v
	}
	return out
}

// stateHost answers jirasync_state_get with the key it was asked for as
// the value, or 1,000 bytes for the key "big", and panics for the key
// "panic": a request read from the plugin's memory shows in its answer.
type stateHost struct{}

func bigValue() string { return strings.Repeat("b", 1000) }

func (stateHost) Call(_ context.Context, _ *capabilities.Binding, fn string, req []byte) []byte {
	var r abi.StateGetRequest
	if fn != abi.FuncStateGet || json.Unmarshal(req, &r) != nil {
		return capabilities.FaultResponse(abi.CodeInvalidRequest, "stateHost answers state_get only")
	}
	if r.Key == "panic" {
		panic("stateHost was asked to panic")
	}
	if r.Key == "big" {
		r.Key = bigValue()
	}
	out, _ := json.Marshal(abi.StateGetResponse{Value: r.Key, Found: true})
	return out
}

// TestDirectCallRanges calls jirasync_call and jirasync_call_answer (ABI
// 1.6) from a guest with good arguments and with a name, a request or an
// output buffer outside the plugin's memory or wider than 32 bits, an
// unknown name, an answer larger than the buffer, and call_answer with no
// kept answer: the good ones run the host function once each and answer in
// place, the refused ones answer "out of range" and run nothing, an
// unknown name gets the capabilities' error envelope, a kept answer is
// handed over once and dropped by the next call and by the end of the
// export call, and the instance lives on.
func TestDirectCallRanges(t *testing.T) {
	ctx := context.Background()
	_, b := fixture(t)
	host := &countingHost{next: stateHost{}}
	w, err := NewWasm(ctx, host, WasmConfig{Module: faultyPlugin(t), CacheDir: testCacheDir, PoolSize: 1, CallTimeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	out, err := w.Call(ctx, b, abi.ExportHandleIssueUpdated, []byte("direct_ranges"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	small := `{"value":"small","found":true}`
	unknown := string(capabilities.UnknownFunction("jirasync_shell_exec"))
	big := `{"value":"` + bigValue() + `","found":true}`
	for _, tt := range []struct {
		key  string
		want any
	}{
		{"small", float64(len(small))},
		{"small_answer", small},
		{"name_past_end", float64(abi.DirectOutOfRange)},
		{"name_over_32_bits", float64(abi.DirectOutOfRange)},
		{"request_past_end", float64(abi.DirectOutOfRange)},
		{"request_len_over_32_bits", float64(abi.DirectOutOfRange)},
		{"out_past_end", float64(abi.DirectOutOfRange)},
		{"out_cap_over_32_bits", float64(abi.DirectOutOfRange)},
		{"answer_none_kept", float64(abi.DirectNoAnswer)},
		{"untouched", true},
		{"unknown", float64(len(unknown))},
		{"unknown_answer", unknown},
		{"panic_answer", string(capabilities.FaultResponse(abi.CodeInternal, "host function jirasync_state_get failed"))},
		{"big", float64(len(big))},
		{"big_untouched", true},
		{"big_answer_too_small", float64(len(big))},
		{"big_answer_out_of_range", float64(abi.DirectOutOfRange)},
		{"big_answer", float64(len(big))},
		{"big_answer_text", big},
		{"big_answer_again", float64(abi.DirectNoAnswer)},
		{"dropped_by_next_call", float64(abi.DirectNoAnswer)},
	} {
		if got[tt.key] != tt.want {
			t.Errorf("%s = %v, want %v", tt.key, got[tt.key], tt.want)
		}
		delete(got, tt.key)
	}
	if len(got) != 0 {
		t.Errorf("probe reported more than asked: %v", got)
	}
	// small, the panic, big and the big call dropped by the next: four
	// runs, none for a refused range, the unknown name or a call_answer.
	if c := host.counts(); len(c) != 1 || c[abi.FuncStateGet] != 4 {
		t.Errorf("host functions run %v, want state_get 4 times", c)
	}
	s := w.Stats()
	if s.Dropped != 0 || s.DirectWritten != 3 || s.DirectKept != 2 || s.DirectTaken != 1 ||
		s.DirectOutOfRange != 8 || s.DirectNoAnswer != 3 || s.DirectUnsupported != 0 || s.ClassicCalls != 0 {
		t.Errorf("stats %+v: want no instance dropped, 3 answers in place, 2 kept, 1 taken, 8 out of range, 3 without an answer", s)
	}

	// A kept answer dies with its export call: the next call on the same
	// instance finds none, and nothing runs again.
	for _, c := range []struct{ mode, key string }{{"direct_keep", "kept"}, {"direct_take", "taken"}} {
		out, err := w.Call(ctx, b, abi.ExportHandleIssueUpdated, []byte(c.mode))
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s output %s: %v", c.mode, out, err)
		}
		want := map[string]any{"kept": float64(len(big)), "taken": float64(abi.DirectNoAnswer)}[c.key]
		if got[c.key] != want {
			t.Errorf("%s: %s = %v, want %v", c.mode, c.key, got[c.key], want)
		}
	}
	if c := host.counts(); c[abi.FuncStateGet] != 5 {
		t.Errorf("host functions run %v, want state_get 5 times", c)
	}
	if s := w.Stats(); s.Created != 1 || s.Faults != 0 {
		t.Errorf("stats %+v: want one instance and no faults", s)
	}
}

// TestPluginCallsDirect runs every kind of export through the real plugin
// on a host that makes direct calls and on one that answers
// "unsupported", with answers that fit the plugin's 4 KiB buffer and
// answers padded past it: every output is the native engine's, every host
// function runs exactly as often as natively (never twice for one call),
// the direct host makes no classic call at all and hands over each
// oversized answer through jirasync_call_answer, and the unsupported one
// is asked once per instance, then served the classic way.
func TestPluginCallsDirect(t *testing.T) {
	ctx := context.Background()
	_, b := fixture(t)
	calls := everyExport(t, "minimal-assigned.json")
	for _, tt := range []struct {
		name          string
		noGuestMemory bool
		pad           int
	}{
		{"direct", false, 0},
		{"direct-oversized", false, 6 << 10},
		{"unsupported", true, 0},
		{"unsupported-oversized", true, 6 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nativeHost := &countingHost{next: eventHost{}, pad: tt.pad}
			wasmHost := &countingHost{next: eventHost{}, pad: tt.pad}
			native := &Native{Caps: nativeHost}
			w, err := NewWasm(ctx, wasmHost, WasmConfig{Module: realPlugin(t), CacheDir: testCacheDir, PoolSize: 1, noGuestMemory: tt.noGuestMemory})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			agreeWithNative(t, w, native, b, calls)
			runs, nativeRuns := wasmHost.counts(), nativeHost.counts()
			total := 0
			for fn, n := range nativeRuns {
				total += n
				if runs[fn] != n {
					t.Errorf("%s ran %d times in the sandbox, %d natively", fn, runs[fn], n)
				}
			}
			s := w.Stats()
			direct := s.DirectWritten + s.DirectKept
			switch {
			case total == 0:
				t.Error("no host function ran: the calls prove nothing")
			case s.Created != 1 || s.Faults != 0:
				t.Errorf("stats %+v: want one instance and no faults", s)
			case !tt.noGuestMemory && (direct != int64(total) || s.ClassicCalls != 0 || s.DirectUnsupported != 0 || s.DirectOutOfRange != 0):
				t.Errorf("stats %+v: want all %d host calls direct", s, total)
			case !tt.noGuestMemory && tt.pad > 0 && (s.DirectKept == 0 || s.DirectTaken != s.DirectKept):
				t.Errorf("stats %+v: want oversized answers kept and each taken", s)
			case !tt.noGuestMemory && tt.pad == 0 && s.DirectKept != 0:
				t.Errorf("stats %+v: want every answer in the 4 KiB buffer", s)
			case tt.noGuestMemory && (direct != 0 || s.DirectUnsupported != 1 || s.ClassicCalls != int64(total)):
				t.Errorf("stats %+v: want one unsupported answer for the instance's life, then %d classic calls", s, total)
			}
		})
	}
}
