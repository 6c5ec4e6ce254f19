//go:build wasip1

package main

import (
	"bytes"
	"runtime"
	"unsafe"

	"github.com/jirasync/jirasync/plugin/abi"
)

// Direct calls (ABI 1.6, docs/ABI.md "Direct calls"): the host reads the
// function's name and request from our memory and writes the answer into
// it, in one crossing, where a classic call makes about ten (allocate a
// kernel block, copy the request in, call, find the answer's length, copy
// it out, free both blocks): 0.2 µs against 4.6 µs per call in our host
// (BenchmarkHostCallCost in host/internal/engine).

//go:wasmimport extism:host/user jirasync_call
func hostCall(namePtr, nameLen, reqPtr, reqLen, outPtr, outCap uint64) uint64

//go:wasmimport extism:host/user jirasync_call_answer
func hostCallAnswer(outPtr, outCap uint64) uint64

// direct is whether the host makes direct calls. The first "unsupported"
// (a host that cannot reach our memory, such as the JS SDK's) turns it off
// for the rest of this instance's life, as bulk does for the memory
// functions.
var direct = true

// answers is where the host writes answers: reused from call to call (an
// instance runs one call at a time), grown to the largest answer seen, so
// that most calls allocate nothing but the answer's own copy. 4 KiB holds
// every answer of a usual delivery.
var answers = make([]byte, 4<<10)

// dataAddress is the address of b's bytes, 0 for an empty b (a range of
// length 0 anywhere in memory is in range).
func dataAddress(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// callDirect runs function with request through jirasync_call. ok false
// means nothing ran (unsupported or out of range) and the caller makes the
// classic call instead; ok true means the function ran once, and answer is
// its answer or an internal error. A function that ran is never run again:
// a Jira POST is not idempotent, so a failure to fetch a kept answer is
// an error, not a reason to fall back.
func callDirect(function string, request []byte) (answer []byte, ok bool) {
	if !direct {
		return nil, false
	}
	n := int64(hostCall(uint64(uintptr(unsafe.Pointer(unsafe.StringData(function)))), uint64(len(function)),
		dataAddress(request), uint64(len(request)), dataAddress(answers), uint64(len(answers))))
	runtime.KeepAlive(function)
	runtime.KeepAlive(request)
	switch {
	case n == abi.DirectOutOfRange:
		return nil, false
	case n < 0:
		// Unsupported, and any other negative result read as such.
		direct = false
		return nil, false
	case n > int64(len(answers)):
		// Too large for the buffer: the host kept it; take it into a
		// buffer that fits, which later calls reuse.
		answers = make([]byte, n)
		if got := int64(hostCallAnswer(dataAddress(answers), uint64(n))); got != n {
			return []byte(`{"error":{"code":"internal","message":"host kept no answer to ` + function + `"}}`), true
		}
	}
	// A copy of its own, as a classic call's answer is: answers is
	// overwritten by the next call.
	return bytes.Clone(answers[:n]), true
}
