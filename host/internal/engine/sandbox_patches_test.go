package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/jirasync/jirasync/plugin/abi"
)

// spinModule is the smallest guest that never returns and never calls the
// host: (module (func (export "spin") (loop (br 0)))).
var spinModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
	0x03, 0x02, 0x01, 0x00, // functions: one of type 0
	0x07, 0x08, 0x01, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00, // export "spin"
	0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end end
}

// TestSpinningGuestIsStopped proves the patched termination check (wazero
// exits to Go every LoopCheckInterval loop headers, not at each): guests
// spinning on every CPU in a loop with no host calls are each stopped
// within their deadline plus 100 ms, and while they spin the Go runtime
// can still stop the world (a garbage collection) and run other
// goroutines, which it could not if compiled code never left for Go.
func TestSpinningGuestIsStopped(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, sandboxRuntimeConfig())
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, spinModule)
	if err != nil {
		t.Fatal(err)
	}
	spinners := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, spinners)
	started := time.Now()
	for i := range spinners {
		mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			callCtx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			_, err := mod.ExportedFunction("spin").Call(callCtx)
			var exit *sys.ExitError
			switch elapsed := time.Since(start); {
			case !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded:
				errs <- fmt.Errorf("spinner %d did not stop on its deadline: %v", i, err)
			case elapsed > timeout+100*time.Millisecond:
				errs <- fmt.Errorf("spinner %d ran %s past a %s deadline", i, elapsed, timeout)
			}
		}()
	}
	// Every P is (about to be) spinning in guest code: a collection has to
	// stop them all, and must not wait for their deadlines to do so. (It
	// takes about 4 ms here, 13-32 ms under -race; without the patch's
	// synchronous preemption point 25 ms; if compiled code never left for
	// Go, until the deadline. The bound catches the last.)
	time.Sleep(50 * time.Millisecond)
	gcStart := time.Now()
	runtime.GC()
	gc := time.Since(gcStart)
	if gc > timeout/3 {
		t.Errorf("a garbage collection took %s while guests spun: compiled code is not letting the runtime in", gc)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d spinners stopped in %s; a collection while they spun took %s", spinners, time.Since(started), gc)
}

// TestWasmCallAllocations bounds what an empty call allocates on the
// host. Unpatched, go-sdk made a new wazero call engine (a 10 KiB stack)
// for each of the half a dozen kernel calls around every export call;
// host/internal/third_party/go-sdk caches one handle per export.
func TestWasmCallAllocations(t *testing.T) {
	ctx := context.Background()
	_, b := fixture(t)
	w, err := NewWasm(ctx, memoryHost{}, WasmConfig{Module: realPlugin(t), CacheDir: testCacheDir, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	call := func() {
		if _, err := w.Call(ctx, b, abi.ExportDescribe, nil); err != nil {
			t.Fatal(err)
		}
	}
	call() // the first call makes the handles
	const calls = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		call()
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / calls
	const limit = 16 << 10
	if perCall > limit {
		t.Errorf("an empty call allocates %d bytes on the host, want at most %d: are export handles made per call again?", perCall, limit)
	}
	t.Logf("an empty call allocates %d bytes", perCall)
}
