package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
)

// WasmConfig configures the sandbox.
type WasmConfig struct {
	// Module is the plugin's .wasm bytes.
	Module []byte
	// CacheDir keeps wazero's compiled code between runs ("" disables).
	CacheDir string
	// PoolSize bounds live instances, and so concurrent calls.
	PoolSize int
	// CallTimeout bounds one export call, host functions included.
	CallTimeout time.Duration
	// MaxMemoryPages bounds each module's linear memory (64 KiB pages).
	MaxMemoryPages uint32
	Logger         *slog.Logger
	// Observe, if set, is told of every export call: for metrics.
	Observe func(export string, elapsed time.Duration, err error)

	// noGuestMemory makes the memory functions and the direct calls
	// answer "unsupported", as a host that cannot reach the plugin's
	// memory does: for the tests of the plugin's fallback, and to measure
	// what the bulk copies and direct calls save.
	noGuestMemory bool
}

// Defaults, explained in host/RATIONALE.md.
const (
	DefaultCallTimeout    = 30 * time.Second
	DefaultMaxMemoryPages = 1024 // 64 MiB: a 1 MiB body decoded, with room for Go's heap growth
)

// Wasm runs the plugin in the Extism sandbox: compiled once, instantiated
// into a bounded pool, an instance used by one call at a time and dropped
// after any fault.
type Wasm struct {
	caps     Host
	compiled *extism.CompiledPlugin
	cfg      WasmConfig
	log      *slog.Logger

	slots chan struct{}       // one token per instance that may exist
	idle  chan *extism.Plugin // instances ready for a call

	mu     sync.Mutex
	closed bool
	stats  Stats
	// copies counts memory-function answers by result (abi.CopyDone,
	// abi.CopyUnsupported, abi.CopyOutOfRange); atomics, since a copy is
	// far cheaper than the mutex's contention would be.
	copies [3]atomic.Int64
	// directs counts direct calls (ABI 1.6) by outcome, as copies does.
	directs [directOutcomes]atomic.Int64
	// classic counts classic host-function calls (kernel blocks).
	classic atomic.Int64
}

// Outcomes of a direct-call function, the indices of Wasm.directs.
const (
	directWritten     = iota // ran, answer written in place
	directKept               // ran, answer kept for jirasync_call_answer
	directTaken              // a kept answer handed over
	directUnsupported        // abi.DirectUnsupported
	directOutOfRange         // abi.DirectOutOfRange
	directNoAnswer           // abi.DirectNoAnswer
	directOutcomes
)

// Stats counts what happened to instances, for logs and tests.
type Stats struct {
	Created, Dropped, Calls, Faults int64
	// Memory-function calls (ABI 1.5) by answer.
	Copied, CopyUnsupported, CopyOutOfRange int64
	// Direct calls (ABI 1.6): host functions run with the answer written
	// in place or kept; kept answers taken; calls answered unsupported,
	// out of range, or (jirasync_call_answer) with no kept answer.
	DirectWritten, DirectKept, DirectTaken, DirectUnsupported, DirectOutOfRange, DirectNoAnswer int64
	// ClassicCalls counts host-function calls through kernel blocks.
	ClassicCalls int64
}

// callKey is the context key of a callState.
type callKey struct{}

// callState is what host functions need of the export call they serve:
// its binding, and the answer of the last direct call if it did not fit
// the plugin's buffer (ABI 1.6). It lives in the call's context, so a kept
// answer dies with the call it belongs to and cannot leak into the next
// call on the instance; an instance runs one call at a time, so nothing
// here is shared.
type callState struct {
	binding *capabilities.Binding
	kept    []byte
}

// NewWasm compiles the module, checks its description against this host's
// ABI, and leaves one warm instance in the pool.
func NewWasm(ctx context.Context, caps Host, cfg WasmConfig) (*Wasm, error) {
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = max(2, runtime.NumCPU())
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MaxMemoryPages == 0 {
		cfg.MaxMemoryPages = DefaultMaxMemoryPages
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rc := sandboxRuntimeConfig()
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	manifest := extism.Manifest{
		Wasm: []extism.Wasm{extism.WasmData{Data: cfg.Module, Name: "main"}},
		Memory: &extism.ManifestMemory{
			MaxPages: cfg.MaxMemoryPages,
			// The ABI has no use for Extism vars or its HTTP client: all
			// outbound traffic goes through jirasync_jira_request. Zero
			// turns both off rather than leaving them at their defaults.
			MaxHttpResponseBytes: 0,
			MaxVarBytes:          0,
		},
		// No AllowedHosts: Extism's own HTTP stays denied to every host.
	}
	w := &Wasm{caps: caps, cfg: cfg, log: cfg.Logger,
		slots: make(chan struct{}, cfg.PoolSize), idle: make(chan *extism.Plugin, cfg.PoolSize)}
	var err error
	w.compiled, err = extism.NewCompiledPlugin(ctx, manifest, extism.PluginConfig{
		RuntimeConfig: rc,
		EnableWasi:    true,
	}, w.hostFunctions())
	if err != nil {
		return nil, fmt.Errorf("compiling plugin: %w", err)
	}
	d, err := w.Describe(ctx)
	if err != nil {
		w.compiled.Close(ctx)
		return nil, fmt.Errorf("describing plugin: %w", err)
	}
	if err := checkDescription(d, wasmOffers()); err != nil {
		w.compiled.Close(ctx)
		return nil, err
	}
	go w.prewarm()
	return w, nil
}

// sandboxRuntimeConfig is the wazero configuration every plugin runs under.
// Without CloseOnContextDone a guest in an endless loop ignores its
// deadline: wazero only checks the context when told to. The check costs
// an exit from native code to Go; our patched wazero
// (host/internal/third_party/wazero) takes it every 1,024 loop headers
// instead of at each one.
func sandboxRuntimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
}

// prewarm fills the pool in the background, so that the first deliveries
// after a start do not each pay for an instance's Go runtime start-up,
// while readiness waits only for the first instance.
func (w *Wasm) prewarm() {
	for i := 1; i < w.cfg.PoolSize; i++ {
		select {
		case w.slots <- struct{}{}:
		default:
			return // calls are using every slot: they make their own
		}
		inst, err := w.newInstance(context.Background())
		if err != nil {
			<-w.slots
			w.log.Warn("pre-warming a plugin instance", "error", err)
			return
		}
		w.release(inst, true)
	}
}

func (w *Wasm) hostFunctions() []extism.HostFunction {
	var fns []extism.HostFunction
	for _, name := range capabilities.Names() {
		name := name
		fn := extism.NewHostFunctionWithStack(name, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			stack[0] = w.serve(ctx, p, name, stack[0])
		}, []extism.ValueType{extism.ValueTypePTR}, []extism.ValueType{extism.ValueTypePTR})
		fn.SetNamespace(abi.HostNamespace)
		fns = append(fns, fn)
	}
	for _, name := range abi.MemoryFunctions {
		toGuest := name == abi.FuncKernelLoad
		fn := extism.NewHostFunctionWithStack(name, func(_ context.Context, p *extism.CurrentPlugin, stack []uint64) {
			stack[0] = w.copyMemory(p, toGuest, stack[0], stack[1], stack[2])
		}, []extism.ValueType{extism.ValueTypeI64, extism.ValueTypeI64, extism.ValueTypeI64}, []extism.ValueType{extism.ValueTypeI64})
		fn.SetNamespace(abi.HostNamespace)
		fns = append(fns, fn)
	}
	i64 := extism.ValueTypeI64
	call := extism.NewHostFunctionWithStack(abi.FuncCall, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		stack[0] = w.direct(ctx, p, stack[0], stack[1], stack[2], stack[3], stack[4], stack[5])
	}, []extism.ValueType{i64, i64, i64, i64, i64, i64}, []extism.ValueType{i64})
	answer := extism.NewHostFunctionWithStack(abi.FuncCallAnswer, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		stack[0] = w.takeAnswer(ctx, p, stack[0], stack[1])
	}, []extism.ValueType{i64, i64}, []extism.ValueType{i64})
	for _, fn := range []extism.HostFunction{call, answer} {
		fn.SetNamespace(abi.HostNamespace)
		fns = append(fns, fn)
	}
	return fns
}

// wasmOffers is every import the Wasm engine offers a plugin: the host
// functions, the memory functions (ABI 1.5) and the direct calls (1.6).
func wasmOffers() []string {
	return slices.Concat(capabilities.Names(), abi.MemoryFunctions[:], abi.DirectFunctions[:])
}

// copyMemory is jirasync_kernel_load (toGuest) and jirasync_kernel_store:
// one copy of n bytes between the Extism kernel's memory at kernelOff and
// the calling plugin's memory at guestPtr, in place of n/8 calls of
// go-pdk's load_u64/store_u64 (about 300 µs per 16 KiB input). Both
// ranges are checked against their memories first; a range outside one
// copies nothing and answers abi.CopyOutOfRange, which the guest tells
// from success. Nothing here can trap the guest.
func (w *Wasm) copyMemory(p *extism.CurrentPlugin, toGuest bool, kernelOff, guestPtr, n uint64) uint64 {
	rc := w.copyRanges(p, toGuest, kernelOff, guestPtr, n)
	w.copies[rc].Add(1)
	return rc
}

func (w *Wasm) copyRanges(p *extism.CurrentPlugin, toGuest bool, kernelOff, guestPtr, n uint64) uint64 {
	guest := w.callerMemory(p)
	if guest == nil {
		return abi.CopyUnsupported
	}
	k, okKernel := memoryRange(p.Memory(), kernelOff, n)
	g, okGuest := memoryRange(guest, guestPtr, n)
	if !okKernel || !okGuest {
		return abi.CopyOutOfRange
	}
	if toGuest {
		copy(g, k)
	} else {
		copy(k, g)
	}
	return abi.CopyDone
}

// serve moves one host-function call across the boundary. It must not
// panic: a panic here would trap the guest for a failure that is the
// host's, so every path answers with an envelope (run turns a host
// function's panic into one), or 0 when reading or writing the kernel's
// blocks fails, which the guest reads as an internal error.
func (w *Wasm) serve(ctx context.Context, p *extism.CurrentPlugin, name string, reqOffset uint64) (respOffset uint64) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("host function boundary panicked", "function", name, "panic", fmt.Sprint(r))
			respOffset = 0
		}
	}()
	w.classic.Add(1)
	var resp []byte
	req, err := p.ReadBytes(reqOffset)
	if err != nil {
		resp = capabilities.FaultResponse(abi.CodeInvalidRequest, "reading request: "+err.Error())
	} else {
		resp = w.run(ctx, name, req)
	}
	off, err := p.WriteBytes(resp)
	if err != nil {
		w.log.Error("writing host function response", "function", name, "error", err)
		return 0
	}
	return off
}

// run runs host function name for the call ctx belongs to: the one place
// where both the classic imports and jirasync_call reach the host
// functions, so that both act alike. A panic in the host becomes an
// internal error envelope: the function may have run, so the plugin must
// get an answer rather than try again.
func (w *Wasm) run(ctx context.Context, name string, req []byte) (resp []byte) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("host function panicked", "function", name, "panic", fmt.Sprint(r))
			resp = capabilities.FaultResponse(abi.CodeInternal, "host function "+name+" failed")
		}
	}()
	st, _ := ctx.Value(callKey{}).(*callState)
	if st == nil || st.binding == nil {
		return capabilities.FaultResponse(abi.CodeInternal, "host function called outside a bound call")
	}
	return w.caps.Call(ctx, st.binding, name, req)
}

// directResult encodes a direct call's negative result as its i64 stack
// slot.
func directResult(code int64) uint64 { return uint64(code) }

// direct is jirasync_call (ABI 1.6): the host function named in the
// plugin's memory runs with the request read from the plugin's memory, and
// its answer goes straight into the plugin's memory at outPtr, or is kept
// for jirasync_call_answer when longer than outCap. One crossing instead
// of a classic call's ten or so (kernel alloc, store, length, load, two
// frees). Every range is checked before anything is read or run; nothing
// here traps the guest.
func (w *Wasm) direct(ctx context.Context, p *extism.CurrentPlugin, namePtr, nameLen, reqPtr, reqLen, outPtr, outCap uint64) (result uint64) {
	st, _ := ctx.Value(callKey{}).(*callState)
	if st != nil {
		// Any later jirasync_call drops a kept answer, run or not.
		st.kept = nil
	}
	guest := w.callerMemory(p)
	if guest == nil {
		w.directs[directUnsupported].Add(1)
		return directResult(abi.DirectUnsupported)
	}
	name, okName := memoryRange(guest, namePtr, nameLen)
	req, okReq := memoryRange(guest, reqPtr, reqLen)
	out, okOut := memoryRange(guest, outPtr, outCap)
	if !okName || !okReq || !okOut {
		w.directs[directOutOfRange].Add(1)
		return directResult(abi.DirectOutOfRange)
	}
	// The request is copied out of the plugin's memory: a host function
	// may keep what it was given (a log line's fields), and the memory is
	// the guest's to reuse once the call returns.
	answer := w.runNamed(ctx, name, bytes.Clone(req))
	if len(answer) <= len(out) {
		copy(out, answer)
		w.directs[directWritten].Add(1)
	} else {
		if st != nil {
			st.kept = answer
		}
		w.directs[directKept].Add(1)
	}
	return uint64(len(answer))
}

// runNamed runs the host function whose name the plugin gave as bytes,
// through the allow-list of host functions: an unknown name gets the error
// envelope the capabilities give one, never a trap, and never reaches the
// host functions.
func (w *Wasm) runNamed(ctx context.Context, name, req []byte) []byte {
	for _, fn := range capabilities.Names() {
		if string(name) == fn {
			return w.run(ctx, fn, req)
		}
	}
	// The name is the plugin's bytes: bounded before it is quoted.
	const maxName = 64
	if len(name) > maxName {
		name = append(name[:maxName:maxName], "…"...)
	}
	return capabilities.UnknownFunction(string(name))
}

// takeAnswer is jirasync_call_answer (ABI 1.6): the answer the last
// jirasync_call of this export call kept, written at outPtr if it fits in
// outCap (then dropped: handed over once), with its length as the result.
// A buffer too small gets the length and nothing written, the answer
// still kept; a range outside the plugin's memory gets out of range.
func (w *Wasm) takeAnswer(ctx context.Context, p *extism.CurrentPlugin, outPtr, outCap uint64) uint64 {
	guest := w.callerMemory(p)
	if guest == nil {
		w.directs[directUnsupported].Add(1)
		return directResult(abi.DirectUnsupported)
	}
	out, ok := memoryRange(guest, outPtr, outCap)
	if !ok {
		w.directs[directOutOfRange].Add(1)
		return directResult(abi.DirectOutOfRange)
	}
	st, _ := ctx.Value(callKey{}).(*callState)
	if st == nil || st.kept == nil {
		w.directs[directNoAnswer].Add(1)
		return directResult(abi.DirectNoAnswer)
	}
	n := len(st.kept)
	if n <= len(out) {
		copy(out, st.kept)
		st.kept = nil
		w.directs[directTaken].Add(1)
	}
	return uint64(n)
}

// memoryRange is the view of mem at ptr, n bytes long, and whether that
// range lies inside mem with both values fitting 32 bits.
func memoryRange(mem api.Memory, ptr, n uint64) ([]byte, bool) {
	if ptr > math.MaxUint32 || n > math.MaxUint32 {
		return nil, false
	}
	// Read checks ptr+n against the memory's size without overflow, and
	// returns a view, not a copy.
	return mem.Read(uint32(ptr), uint32(n))
}

// callerMemory is the memory of the plugin calling a host function, nil
// when this host cannot reach it (or, for tests, must act as if).
func (w *Wasm) callerMemory(p *extism.CurrentPlugin) api.Memory {
	if w.cfg.noGuestMemory {
		return nil
	}
	return p.CallerMemory()
}

// acquire waits for a free slot, then takes an idle instance or makes one.
func (w *Wasm) acquire(ctx context.Context) (*extism.Plugin, error) {
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case inst := <-w.idle:
		return inst, nil
	default:
	}
	inst, err := w.newInstance(ctx)
	if err != nil {
		<-w.slots
		return nil, err
	}
	return inst, nil
}

func (w *Wasm) newInstance(ctx context.Context) (*extism.Plugin, error) {
	// Real clocks and crypto/rand: wazero's defaults are deterministic
	// fakes, fine for reproducible tests and wrong for a product.
	mc := wazero.NewModuleConfig().
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader)
	inst, err := w.compiled.Instance(ctx, extism.PluginInstanceConfig{ModuleConfig: mc})
	if err != nil {
		return nil, err
	}
	inst.SetLogger(func(level extism.LogLevel, msg string) {
		w.log.Debug("plugin runtime", "level", level.String(), "message", msg)
	})
	w.mu.Lock()
	w.stats.Created++
	w.mu.Unlock()
	return inst, nil
}

// release returns a healthy instance to the pool, or drops it.
func (w *Wasm) release(inst *extism.Plugin, healthy bool) {
	w.mu.Lock()
	closed := w.closed
	if !healthy {
		w.stats.Dropped++
	}
	w.mu.Unlock()
	if healthy && !closed {
		w.idle <- inst // never blocks: at most PoolSize instances exist
	} else {
		inst.Close(context.Background())
	}
	<-w.slots
}

// Call implements Engine.
func (w *Wasm) Call(ctx context.Context, b *capabilities.Binding, export string, input []byte) ([]byte, error) {
	w.mu.Lock()
	closed := w.closed
	w.stats.Calls++
	w.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	inst, err := w.acquire(ctx)
	if err != nil {
		return nil, &Fault{Export: export, Reason: "no_instance", Err: err}
	}
	callCtx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, &callState{binding: b}), w.cfg.CallTimeout)
	defer cancel()
	start := time.Now()
	out, err := w.call(ctx, callCtx, inst, export, input)
	if w.cfg.Observe != nil {
		w.cfg.Observe(export, time.Since(start), err)
	}
	return out, err
}

// call makes the call on inst and decides the instance's fate.
func (w *Wasm) call(ctx, callCtx context.Context, inst *extism.Plugin, export string, input []byte) ([]byte, error) {
	rc, out, callErr := inst.CallWithContext(callCtx, export, input)

	// A plugin-reported failure is an abi.Error in the error text with
	// rc 1; the instance is intact and goes back to the pool. Anything
	// else (a trap, a time-out, rc without an error, an error that is not
	// ours) may have left the instance broken, so it is dropped.
	if callErr == nil && rc == 0 {
		w.release(inst, true)
		return out, nil
	}
	if callErr != nil && rc == 1 {
		if e, ok := pluginError([]byte(callErr.Error())); ok {
			// An internal error is a bug, maybe in the instance's own
			// state: it is reported as the plugin said (and retried, as
			// the Native engine's is), but the instance is not reused.
			healthy := e.Code != abi.CodeInternal
			w.release(inst, healthy)
			if !healthy {
				w.countFault()
			}
			return nil, e
		}
	}
	w.release(inst, false)
	w.countFault()
	reason := "trap"
	switch {
	case callCtx.Err() != nil && ctx.Err() == nil:
		reason, callErr = "timeout", fmt.Errorf("no answer within %s: %w", w.cfg.CallTimeout, context.DeadlineExceeded)
	case ctx.Err() != nil:
		reason, callErr = "canceled", ctx.Err()
	case callErr == nil:
		callErr = fmt.Errorf("returned %d without an error", rc)
	}
	return nil, &Fault{Export: export, Reason: reason, Err: callErr}
}

func (w *Wasm) countFault() {
	w.mu.Lock()
	w.stats.Faults++
	w.mu.Unlock()
}

// Describe implements Engine; the describe export needs no binding but
// gets an empty one so that a stray host call fails cleanly.
func (w *Wasm) Describe(ctx context.Context) (abi.Description, error) {
	out, err := w.Call(ctx, &capabilities.Binding{Logger: w.log}, abi.ExportDescribe, nil)
	if err != nil {
		return abi.Description{}, err
	}
	var d abi.Description
	if err := json.Unmarshal(out, &d); err != nil {
		return d, &Fault{Export: abi.ExportDescribe, Reason: "bad_output", Err: err}
	}
	return d, nil
}

// PoolSize is the most instances, and so concurrent calls, there can be.
func (w *Wasm) PoolSize() int { return w.cfg.PoolSize }

// Stats returns a copy of the instance counters.
func (w *Wasm) Stats() Stats {
	w.mu.Lock()
	s := w.stats
	w.mu.Unlock()
	s.Copied = w.copies[abi.CopyDone].Load()
	s.CopyUnsupported = w.copies[abi.CopyUnsupported].Load()
	s.CopyOutOfRange = w.copies[abi.CopyOutOfRange].Load()
	s.DirectWritten = w.directs[directWritten].Load()
	s.DirectKept = w.directs[directKept].Load()
	s.DirectTaken = w.directs[directTaken].Load()
	s.DirectUnsupported = w.directs[directUnsupported].Load()
	s.DirectOutOfRange = w.directs[directOutOfRange].Load()
	s.DirectNoAnswer = w.directs[directNoAnswer].Load()
	s.ClassicCalls = w.classic.Load()
	return s
}

// Close drops idle instances and the compiled module. Calls in flight
// finish first only if the caller waits for them; the host does.
func (w *Wasm) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	for {
		select {
		case inst := <-w.idle:
			inst.Close(ctx)
		default:
			return w.compiled.Close(ctx)
		}
	}
}
