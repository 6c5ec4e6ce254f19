//go:build wasip1

package main

import (
	"runtime"
	"unsafe"

	"github.com/extism/go-pdk"

	"github.com/jirasync/jirasync/plugin/abi"
)

// The memory functions (ABI 1.5, docs/ABI.md "Memory functions"): one host
// call copies a whole block between the Extism kernel's memory and ours,
// where go-pdk makes one call per 8 bytes (about 300 µs per 16 KiB input
// in our host).

//go:wasmimport extism:host/user jirasync_kernel_load
func kernelLoad(kernelOffset, guestPtr, length uint64) uint64

//go:wasmimport extism:host/user jirasync_kernel_store
func kernelStore(kernelOffset, guestPtr, length uint64) uint64

//go:wasmimport extism:host/env input_offset
func extismInputOffset() uint64

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

// bulk is whether the host copies for us. The first "unsupported" (a host
// that cannot reach our memory, such as the JS SDK's) turns it off for the
// rest of this instance's life, and go-pdk's 8-byte path does the copies.
var bulk = true

// address is p's address in this module's linear memory, as the memory
// functions take it. Go's collector does not move objects.
func address(p *byte) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// copied reports whether a memory function's result rc means the bytes
// were copied. A range the host finds out of range is copied the 8-byte
// way instead, which traps if it really is (as go-pdk always did); any
// result but those two is read as "unsupported".
func copied(rc uint64) bool {
	switch rc {
	case abi.CopyDone:
		return true
	case abi.CopyOutOfRange:
	default:
		bulk = false
	}
	return false
}

// input is the export's input (pdk.Input, in one copy).
func input() []byte {
	if !bulk {
		return pdk.Input()
	}
	n := extismInputLength()
	buf := make([]byte, n)
	if n == 0 || copied(kernelLoad(extismInputOffset(), address(&buf[0]), n)) {
		return buf
	}
	return pdk.Input()
}

// load reads the kernel block mem (mem.ReadBytes, in one copy).
func load(mem pdk.Memory) []byte {
	buf := make([]byte, mem.Length())
	if len(buf) == 0 || (bulk && copied(kernelLoad(mem.Offset(), address(&buf[0]), mem.Length()))) {
		return buf
	}
	mem.Load(buf)
	return buf
}

// store allocates a kernel block holding data (pdk.AllocateBytes, in one
// copy); the caller frees it, or hands it to the host.
func store(data []byte) pdk.Memory {
	if len(data) == 0 || !bulk {
		return pdk.AllocateBytes(data)
	}
	mem := pdk.Allocate(len(data))
	rc := kernelStore(mem.Offset(), address(&data[0]), mem.Length())
	runtime.KeepAlive(data)
	if copied(rc) {
		return mem
	}
	// A fresh block for the 8-byte path: the JS SDK in worker mode loses
	// writes to a block allocated before a host call (docs/CONFORMANCE.md).
	mem.Free()
	return pdk.AllocateBytes(data)
}
