package engine

import (
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

	// noGuestMemory makes the memory functions answer "unsupported", as a
	// host that cannot reach the plugin's memory does: for the tests of
	// the plugin's fallback, and to measure what the bulk copy saves.
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
}

// Stats counts what happened to instances, for logs and tests.
type Stats struct {
	Created, Dropped, Calls, Faults int64
	// Memory-function calls (ABI 1.5) by answer.
	Copied, CopyUnsupported, CopyOutOfRange int64
}

type bindingKey struct{}

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
	return fns
}

// wasmOffers is every import the Wasm engine offers a plugin: the host
// functions and the memory functions (ABI 1.5).
func wasmOffers() []string {
	return slices.Concat(capabilities.Names(), abi.MemoryFunctions[:])
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
	guest := p.CallerMemory()
	if w.cfg.noGuestMemory || guest == nil {
		return abi.CopyUnsupported
	}
	if kernelOff > math.MaxUint32 || guestPtr > math.MaxUint32 || n > math.MaxUint32 {
		return abi.CopyOutOfRange
	}
	// Read checks offset+n against the memory's size, without overflow,
	// and returns a view of the memory, not a copy.
	k, ok := p.Memory().Read(uint32(kernelOff), uint32(n))
	if !ok {
		return abi.CopyOutOfRange
	}
	g, ok := guest.Read(uint32(guestPtr), uint32(n))
	if !ok {
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
// host's, so every path answers with an envelope (or 0 when even writing
// one fails, which the guest reads as an internal error).
func (w *Wasm) serve(ctx context.Context, p *extism.CurrentPlugin, name string, reqOffset uint64) (respOffset uint64) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("host function boundary panicked", "function", name, "panic", fmt.Sprint(r))
			respOffset = 0
		}
	}()
	var resp []byte
	b, _ := ctx.Value(bindingKey{}).(*capabilities.Binding)
	req, err := p.ReadBytes(reqOffset)
	switch {
	case b == nil:
		resp = capabilities.FaultResponse(abi.CodeInternal, "host function called outside a bound call")
	case err != nil:
		resp = capabilities.FaultResponse(abi.CodeInvalidRequest, "reading request: "+err.Error())
	default:
		resp = w.caps.Call(ctx, b, name, req)
	}
	off, err := p.WriteBytes(resp)
	if err != nil {
		w.log.Error("writing host function response", "function", name, "error", err)
		return 0
	}
	return off
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
	callCtx, cancel := context.WithTimeout(context.WithValue(ctx, bindingKey{}, b), w.cfg.CallTimeout)
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
