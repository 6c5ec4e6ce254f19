package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/abischema"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
)

// noHost counts host-function calls and refuses them: inspect_delivery
// makes none.
type noHost struct{ calls *atomic.Int64 }

func (h noHost) Call(context.Context, *capabilities.Binding, string, []byte) []byte {
	h.calls.Add(1)
	return capabilities.FaultResponse(abi.CodeDenied, "no host calls here")
}

var hostCalls atomic.Int64

var inspectEngine struct {
	sync.Once
	w   *engine.Wasm
	err error
}

// wasmInspector is the real plugin in the sandbox, once per test binary
// (and once per fuzz worker).
func wasmInspector(t testing.TB) *engine.Wasm {
	t.Helper()
	inspectEngine.Do(func() {
		path, err := pluginbuild.Path()
		if err != nil {
			inspectEngine.err = err
			return
		}
		module, err := os.ReadFile(path)
		if err != nil {
			inspectEngine.err = err
			return
		}
		inspectEngine.w, inspectEngine.err = engine.NewWasm(context.Background(), noHost{&hostCalls}, engine.WasmConfig{Module: module,
			CacheDir: pluginbuild.CacheDir(), PoolSize: 1,
			Logger: slog.New(slog.DiscardHandler)})
	})
	if inspectEngine.err != nil {
		t.Fatal(inspectEngine.err)
	}
	return inspectEngine.w
}

// checkInspectAgrees runs body through the inspect_delivery export of the
// wasm plugin and through the host's native identify, and fails when they
// disagree on anything the host stores.
func checkInspectAgrees(t testing.TB, body []byte) {
	t.Helper()
	w := wasmInspector(t)
	calls := hostCalls.Load()
	out, err := w.Call(context.Background(), &capabilities.Binding{Logger: slog.New(slog.DiscardHandler)}, abi.ExportInspectDelivery, body)
	if err != nil {
		t.Fatalf("inspect_delivery(%q): %v", body, err)
	}
	s, err := abischema.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := hostCalls.Load() - calls; n != 0 {
		t.Fatalf("inspect_delivery made %d host calls", n)
	}
	if err := s.Validate(abischema.Output(abi.ExportInspectDelivery), out); err != nil {
		t.Fatal(err)
	}
	var resp abi.InspectResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Inspection == nil {
		t.Fatalf("inspect_delivery output %q: %v", out, err)
	}
	in := resp.Inspection
	skew := time.Minute
	a := &App{cfg: Config{MaxClockSkew: skew}}
	before := time.Now()
	d, err := a.identify(slog.New(slog.DiscardHandler), "jira1", body)
	if d.DedupeKey != in.DedupeKey {
		t.Fatalf("dedupe key: native %q, export %q; body %q", d.DedupeKey, in.DedupeKey, body)
	}
	if err != nil {
		// The host refuses a field it cannot store as text. JSON cannot
		// carry such a field either: the export shows U+FFFD or NUL.
		if !strings.ContainsAny(in.Event+in.IssueID+in.IssueKey+in.ChangelogID, "\ufffd\x00") {
			t.Fatalf("native identify refused %q (%v) but the export's fields are clean: %+v", body, err, in)
		}
		return
	}
	got := fmt.Sprintf("%q %q %q %q", d.Event, d.IssueID, d.IssueKey, d.ChangelogID)
	want := fmt.Sprintf("%q %q %q %q", in.Event, in.IssueID, in.IssueKey, in.ChangelogID)
	if got != want {
		t.Fatalf("native identify read %s, export %s; body %q", got, want, body)
	}
	if in.Unreadable != "" && (got != `"" "" "" ""` || in.Timestamp != 0 || d.JiraTimestamp != 0 || !strings.HasPrefix(d.DedupeKey, abi.DedupeBody)) {
		t.Fatalf("export says unreadable (%s), native read %s at %d, key %q", in.Unreadable, got, d.JiraTimestamp, d.DedupeKey)
	}
	// The host clamps the timestamp to its arrival plus the skew; the
	// export reports it as sent.
	limit := before.Add(skew).UnixMilli()
	if in.Timestamp <= limit && d.JiraTimestamp != in.Timestamp ||
		in.Timestamp > limit && (d.JiraTimestamp > in.Timestamp || d.JiraTimestamp < limit) {
		t.Fatalf("timestamp: export %d, native ordered at %d (limit %d)", in.Timestamp, d.JiraTimestamp, limit)
	}
}

func payloadSeeds(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "payloads", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no payloads: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte(`{}`), []byte(`{"issue":{"id":10042},"changelog":{"id":10500},"timestamp":"1700000000000"}`),
		[]byte(`{"issue":{"id":"1\u0000"},"changelog":{"id":"2"}}`), []byte("{\"issue\":{\"key\":\"A-\xff\"}}"),
		[]byte(`{"webhookEvent":null,"issue":{"id":"7","key":"A-1"},"changelog":{"id":"9"},"timestamp":99999999999999}`),
		[]byte(`{"issue":[]}`), []byte(`{"timestamp":-5,"issue":{"id":"1"},"changelog":{"id":"2"}}`))
}

// generated builds a body from parts a Jira body has, each present or not,
// of the right type or not.
func generated(r *rand.Rand) []byte {
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	var members []string
	add := func(p float64, m string) {
		if r.Float64() < p {
			members = append(members, m)
		}
	}
	id := func() string {
		return pick(`"10042"`, `10042`, `""`, `null`, `"x\u0000"`, `"\ud800"`, `-1`, `1.5`, `"é"`, `[]`, `"`+fmt.Sprint(r.Uint64())+`"`)
	}
	add(0.8, `"webhookEvent":`+pick(`"jira:issue_updated"`, `"jira:issue_created"`, `""`, `null`, `3`))
	add(0.8, `"timestamp":`+pick(`1764410000000`, `"1764410000000"`, `0`, `-1`, `9223372036854775807`, `1e3`, `null`, `"x"`,
		fmt.Sprint(time.Now().Add(time.Duration(r.IntN(7200)-3600)*time.Second).UnixMilli())))
	add(0.8, `"issue":`+pick(`null`, `{}`, `{"id":`+id()+`,"key":`+pick(`"APP-1"`, `""`, `null`, `1`, `"A\u0000"`)+`}`))
	add(0.8, `"changelog":`+pick(`null`, `{}`, `{"id":`+id()+`,"items":[{"field":"assignee"}]}`))
	add(0.3, `"user":{"name":"x"}`)
	r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	return []byte("{" + strings.Join(members, ",") + "}")
}

// TestInspectAgrees is the seeded property test: every payload fixture and
// many generated bodies get the same answer from the wasm export and the
// host's native identify. FuzzInspectAgrees goes on from here.
func TestInspectAgrees(t *testing.T) {
	for _, b := range payloadSeeds(t) {
		checkInspectAgrees(t, b)
	}
	n := 2000
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewPCG(14, 2))
	for range n {
		checkInspectAgrees(t, generated(r))
	}
}

func FuzzInspectAgrees(f *testing.F) {
	for _, b := range payloadSeeds(f) {
		f.Add(b)
	}
	r := rand.New(rand.NewPCG(14, 3))
	for range 50 {
		f.Add(generated(r))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkInspectAgrees(t, body) })
}
